"""`provision etcd fetch` on the controller: the directory it writes into and the files it wrote.

Rules: the destination is checked before any host is contacted (not a system directory, not a
symbolic link, a directory or creatable, writable) and created only after every check passed;
nothing is written through a symbolic link (the destination, a host directory, a snapshot
file); only the files this run fetched are checked and set to 0600 -- whatever else is in the
directory keeps its mode.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from provision.errors import UsageError
from provision.etcd import naming, paths, sidecar


def check_dest(dest: str | os.PathLike[str]) -> Path:
    """The absolute destination (symbolic links not resolved); UsageError naming --dest."""
    text = os.path.abspath(os.path.expanduser(os.fspath(dest)))
    path = Path(text)
    if text in paths.SYSTEM_DIRS:
        raise UsageError(f"--dest {text}: a system directory; give a directory of its own "
                         "(e.g. ./etcd-snapshots); nothing was written")
    if path.is_symlink():
        raise UsageError(f"--dest {text}: is a symbolic link; give the real directory "
                         "(nothing is written through a link); nothing was written")
    existing = path
    while not existing.exists() and not existing.is_symlink():
        existing = existing.parent
    if not existing.is_dir():
        raise UsageError(f"--dest {text}: {existing} exists and is not a directory; nothing "
                         "was written")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise UsageError(f"--dest {text}: {existing} is not writable; nothing was written")
    return path


def is_snapshot_file(name: str) -> bool:
    """A snapshot or sidecar name (what fetch writes)."""
    return naming.parse(name[:-5] + ".db" if name.endswith(".json") else name) is not None


def check_host_dirs(dest: Path, hosts: list[str]) -> None:
    """No host directory under ``dest`` (nor a snapshot file in it) is a symbolic link."""
    for host in hosts:
        if host in ("", ".", "..") or "/" in host:
            raise UsageError(f"--dest: host name {host!r} cannot name a directory under {dest}")
        hdir = dest / host
        if hdir.is_symlink() or (hdir.exists() and not hdir.is_dir()):
            raise UsageError(f"--dest: {hdir} is a symbolic link or not a directory: "
                             "refusing to write snapshots through it; nothing was written")
        links = sorted(f.name for f in hdir.iterdir() if f.is_symlink()
                       and is_snapshot_file(f.name)) if hdir.is_dir() else []
        if links:
            raise UsageError(f"--dest: {hdir / links[0]} is a symbolic link where a snapshot "
                             "would be written; nothing was written")


def make_dest(dest: Path) -> None:
    try:
        dest.mkdir(parents=True, exist_ok=True, mode=0o700)
    except OSError as exc:
        raise UsageError(f"--dest {dest}: cannot create it: {exc.strerror or exc}") from exc


@contextlib.contextmanager
def private_umask() -> Iterator[None]:
    """Files and directories created meanwhile (by Ansible's fetch) are 0600/0700."""
    old = os.umask(0o077)
    try:
        yield
    finally:
        os.umask(old)


def check_fetched(dest: Path, reports: dict[str, dict[str, Any]]) -> tuple[list[str], list[str]]:
    """SHA-256 and size of each snapshot this run fetched against its sidecar; those files
    (and only those) set to 0600. Returns (good snapshot paths, problems)."""
    good: list[str] = []
    bad: list[str] = []
    for host, report in sorted(reports.items()):
        for name in report.get("fetched") or []:
            db = dest / host / str(name)
            if not is_snapshot_file(db.name) or not db.name.endswith(".db"):
                bad.append(f"{db}: not a snapshot name; not checked")
                continue
            files = (db, db.with_suffix(".json"))
            odd = [f for f in files if f.is_symlink() or not f.is_file()]
            if odd:
                bad.append(f"{odd[0]}: missing, or not a regular file; not checked")
                continue
            for f in files:
                os.chmod(f, 0o600)
            try:
                sidecar.verify_file(db, sidecar.load(files[1]))
                good.append(str(db))
            except sidecar.SidecarError as exc:
                bad.append(str(exc))
    return good, bad
