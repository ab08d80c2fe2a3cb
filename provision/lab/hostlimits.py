"""What this machine's kernel allows the lab's systemd containers (pure checks + /proc reads).

Every lab container runs systemd as root without a user namespace, so all of them share
root's inotify instance limit (``fs.inotify.max_user_instances``, 128 by default) with every
other root process and container on the machine. A systemd that cannot get its inotify
instances hangs in early boot (``systemd-ask-password-*.path`` failed, ``sysinit.target``
waiting, sshd never started): measured on a 2-core machine, the 16th container of a lab stayed
'initializing' for 10+ minutes while 7 other containers ran. `lab up` checks first.
"""

from __future__ import annotations

import os
from pathlib import Path

#: inotify instances one lab container keeps open, measured on running lab containers: 4-8
#: (systemd as PID 1 3-6, dbus-daemon 1, systemd-logind 1; more with dockerd inside)
INOTIFY_PER_CONTAINER = 6
INOTIFY_LIMIT_FILE = Path("/proc/sys/fs/inotify/max_user_instances")


def inotify_problem(nodes: int, limit: int | None, in_use: int | None) -> str | None:
    """Why ``nodes`` more lab containers would not boot, or None (also when unknown)."""
    if limit is None or in_use is None:
        return None
    need = nodes * INOTIFY_PER_CONTAINER
    if in_use + need <= limit:
        return None
    return (f"--nodes {nodes}: the lab's systemd containers need about {need} inotify "
            f"instances of root ({INOTIFY_PER_CONTAINER} each), but fs.inotify."
            f"max_user_instances is {limit} and {in_use} are in use (other containers and "
            "services): systemd would hang in the containers beyond that, before sshd starts. "
            "Raise the limit (sysctl -w fs.inotify.max_user_instances=1024, or a file in "
            "/etc/sysctl.d) or use fewer --nodes.")


def inotify_limit(path: Path = INOTIFY_LIMIT_FILE) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def inotify_in_use(uid: int = 0, proc: Path = Path("/proc")) -> int | None:
    """inotify instances open by ``uid``'s processes; None when they cannot all be read
    (another user's /proc/PID/fd needs root)."""
    if os.geteuid() not in (0, uid):
        return None
    count = 0
    for pid_dir in proc.iterdir():
        if not pid_dir.name.isdigit():
            continue
        try:
            if pid_dir.stat().st_uid != uid:
                continue
            fds = list((pid_dir / "fd").iterdir())
        except OSError:  # the process ended meanwhile
            continue
        for fd in fds:
            try:
                if os.readlink(fd) == "anon_inode:inotify":
                    count += 1
            except OSError:
                continue
    return count


def container_problem(nodes: int) -> str | None:
    """Why this machine cannot boot ``nodes`` more lab containers now, or None."""
    return inotify_problem(nodes, inotify_limit(), inotify_in_use())
