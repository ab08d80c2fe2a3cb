"""The lab's systemd container image: Debian 12 built locally with debootstrap.

No registry is reachable from the machines this runs on, so the image is made from Debian
packages: ``debootstrap`` writes a root filesystem with every package installed, the host side
adjusts it (masked units, sshd settings, the first-boot setup unit), and ``docker build``
turns ``FROM scratch`` + ``ADD rootfs.tar /`` into an image. The same path serves amd64 and
arm64 (arm64 runs debootstrap's second stage under qemu-user-static through binfmt).

The image tag carries a key of its inputs (this recipe, the package list, the suite, the
arch), so a changed recipe builds a new image and an unchanged one is reused.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from provision.errors import ProvisionError, UsageError

SUITE = "bookworm"
MIRROR = os.environ.get("PROVISION_LAB_MIRROR", "http://deb.debian.org/debian")
IMAGE_REPO = "provision-lab"

PACKAGES = (
    "systemd", "systemd-sysv", "dbus", "python3", "python3-apt", "sudo", "openssh-server",
    "iproute2", "iptables", "procps", "kmod", "ca-certificates", "curl", "gnupg", "less",
    "cron",
)
MASKED_UNITS = (
    "getty.target", "console-getty.service", "systemd-udevd.service",
    "systemd-udev-trigger.service", "systemd-journald-audit.socket",
    "systemd-firstboot.service", "systemd-remount-fs.service",
    "sys-kernel-config.mount", "sys-kernel-debug.mount", "sys-kernel-tracing.mount",
)

DOCKERFILE = """\
FROM scratch
ADD rootfs.tar /
ENV container=docker
STOPSIGNAL SIGRTMIN+3
CMD ["/sbin/init"]
"""

# Runs once per boot before sshd: creates the lab user from /etc/provision-lab (bind-mounted
# by container.up), installs the authorized key and the pre-generated host keys.
SETUP_SCRIPT = """\
#!/bin/sh
# provision lab: per-node setup from /etc/provision-lab (user, key, sudo, host keys).
set -eu
SEED=/etc/provision-lab
. "$SEED/node.env"
if ! id "$LAB_USER" >/dev/null 2>&1; then
    useradd --create-home --shell /bin/bash "$LAB_USER"
fi
home=$(getent passwd "$LAB_USER" | cut -d: -f6)
install -d -m 0700 -o "$LAB_USER" -g "$LAB_USER" "$home/.ssh"
install -m 0600 -o "$LAB_USER" -g "$LAB_USER" "$SEED/authorized_keys" \\
    "$home/.ssh/authorized_keys"
printf '%s ALL=(ALL) NOPASSWD:ALL\\n' "$LAB_USER" > /etc/sudoers.d/90-provision-lab
chmod 0440 /etc/sudoers.d/90-provision-lab
for key in "$SEED"/ssh_host_*_key; do
    [ -e "$key" ] || continue
    install -m 0600 "$key" "/etc/ssh/$(basename "$key")"
    install -m 0644 "$key.pub" "/etc/ssh/$(basename "$key").pub"
done
"""

SETUP_UNIT = """\
[Unit]
Description=provision lab node setup (user, authorized key, SSH host keys)
Before=ssh.service
ConditionPathExists=/etc/provision-lab/node.env

[Service]
Type=oneshot
ExecStart=/usr/local/sbin/provision-lab-setup
RemainAfterExit=yes

[Install]
WantedBy=multi-user.target
"""

SSHD_CONF = """\
# provision lab: keys only, host keys from the lab (pre-recorded in its known_hosts)
HostKey /etc/ssh/ssh_host_ed25519_key
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin no
UseDNS no
"""


def image_key(arch: str) -> str:
    """A short hash of every input of the image (recipe, packages, masks, suite, arch)."""
    h = hashlib.sha256()
    for part in (DOCKERFILE, SETUP_SCRIPT, SETUP_UNIT, SSHD_CONF, " ".join(PACKAGES),
                 " ".join(MASKED_UNITS), SUITE, MIRROR, arch, "recipe-v1"):
        h.update(part.encode())
        h.update(b"\0")
    return h.hexdigest()[:12]


def image_tag(arch: str) -> str:
    return f"{IMAGE_REPO}:{SUITE}-{arch}-{image_key(arch)}"


def docker(*args: str, check: bool = True, capture: bool = True,
           env: dict[str, str] | None = None, timeout: float | None = None
           ) -> subprocess.CompletedProcess[str]:
    """Run the docker CLI; raise ProvisionError with its stderr on failure."""
    if shutil.which("docker") is None:
        raise UsageError("docker is not installed (apt-get install docker.io, or run "
                         "scripts/testenv.sh as root)")
    proc = subprocess.run(["docker", *args], capture_output=capture, text=True,
                          env=env, timeout=timeout, check=False)
    if check and proc.returncode != 0:
        err = (proc.stderr or proc.stdout or "").strip()
        raise ProvisionError(f"docker {args[0]} failed: {err}")
    return proc


def image_exists(tag: str) -> bool:
    return docker("image", "inspect", tag, check=False).returncode == 0


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "provision" / "lab"


@contextmanager
def _build_lock(arch: str) -> Iterator[None]:
    """One build per arch at a time (parallel test sessions share the docker daemon)."""
    d = cache_dir()
    d.mkdir(parents=True, exist_ok=True)
    with open(d / f"image-{arch}.lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _check_build_prereqs(arch: str) -> None:
    if os.geteuid() != 0:
        raise UsageError(
            "building the lab image needs root (debootstrap writes a root filesystem); run "
            "'provision lab up' once as root, or 'sudo scripts/testenv.sh' then retry")
    if shutil.which("debootstrap") is None:
        raise UsageError("debootstrap is not installed (apt-get install debootstrap)")
    problem = binfmt_problem(arch)
    if problem:
        raise UsageError(problem)


def binfmt_problem(arch: str) -> str | None:
    """Why arm64 binaries cannot run here as lab hosts need (None when they can): the
    qemu-aarch64 binfmt must be enabled, with the credentials flag (C) so that setuid
    programs such as sudo work inside the container."""
    if arch != "arm64" or os.uname().machine == "aarch64":
        return None
    reg = Path("/proc/sys/fs/binfmt_misc/qemu-aarch64")
    if not reg.exists() or "enabled" not in reg.read_text():
        return ("arm64 needs qemu-user-static with binfmt: apt-get install qemu-user-static "
                "binfmt-support; mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc; "
                "update-binfmts --enable qemu-aarch64 (sudo scripts/testenv.sh does this)")
    flags = next((ln.split(":", 1)[1].strip() for ln in reg.read_text().splitlines()
                  if ln.startswith("flags:")), "")
    if "C" not in flags:
        return ("the qemu-aarch64 binfmt lacks the credentials flag (C): sudo cannot work in "
                "arm64 containers; sudo scripts/testenv.sh registers it with flags POCF")
    return None


def customize_rootfs(root: Path) -> None:
    """Host-side edits of the debootstrapped tree (no chroot: works for any arch)."""
    etc = root / "etc"
    sysd = etc / "systemd" / "system"
    for unit in MASKED_UNITS:
        link = sysd / unit
        if link.exists() or link.is_symlink():
            link.unlink()
        link.symlink_to("/dev/null")
    # sshd must not start with the build's host keys: every node gets its own, pre-recorded
    for key in (etc / "ssh").glob("ssh_host_*"):
        key.unlink()
    (etc / "ssh" / "sshd_config.d").mkdir(exist_ok=True)
    (etc / "ssh" / "sshd_config.d" / "provision-lab.conf").write_text(SSHD_CONF)
    script = root / "usr" / "local" / "sbin" / "provision-lab-setup"
    script.parent.mkdir(parents=True, exist_ok=True)
    script.write_text(SETUP_SCRIPT)
    script.chmod(0o755)
    (sysd / "provision-lab-setup.service").write_text(SETUP_UNIT)
    wants = sysd / "multi-user.target.wants"
    wants.mkdir(exist_ok=True)
    link = wants / "provision-lab-setup.service"
    if not link.is_symlink():
        link.symlink_to("/etc/systemd/system/provision-lab-setup.service")
    (etc / "provision-lab").mkdir(exist_ok=True)
    (root / "etc" / "machine-id").write_text("")  # systemd makes one per container
    for junk in (root / "var" / "cache" / "apt" / "archives").glob("*.deb"):
        junk.unlink()
    (etc / "apt" / "sources.list").write_text(
        f"deb {MIRROR} {SUITE} main\n"
        f"deb {MIRROR} {SUITE}-updates main\n"
        f"deb http://deb.debian.org/debian-security {SUITE}-security main\n")


def build(arch: str, *, log: Path | None = None, deb_cache: Path | None = None) -> str:
    """Build the image for ``arch`` now (even when cached); return its tag."""
    _check_build_prereqs(arch)
    tag = image_tag(arch)
    work = Path(tempfile.mkdtemp(prefix=f"provision-lab-image-{arch}-"))
    logf = open(log or work / "build.log", "a")  # noqa: SIM115 - closed in finally
    try:
        root = work / "rootfs"
        cmd = ["debootstrap", f"--arch={arch}", "--variant=minbase",
               f"--include={','.join(PACKAGES)}"]
        if deb_cache is not None:
            deb_cache.mkdir(parents=True, exist_ok=True)
            cmd.append(f"--cache-dir={deb_cache}")
        cmd += [SUITE, str(root), MIRROR]
        _run(cmd, logf, f"debootstrap ({arch})")
        customize_rootfs(root)
        ctx = work / "context"
        ctx.mkdir()
        _run(["tar", "-C", str(root), "--numeric-owner", "--one-file-system", "-cf",
              str(ctx / "rootfs.tar"), "."], logf, "tar of the root filesystem")
        remove_tree(root)
        (ctx / "Dockerfile").write_text(DOCKERFILE)
        env = dict(os.environ, DOCKER_BUILDKIT="0")
        _run(["docker", "build", "--platform", f"linux/{arch}", "--label",
              f"provision.lab.key={image_key(arch)}", "-t", tag, str(ctx)], logf,
             "docker build", env=env)
        return tag
    finally:
        logf.close()
        remove_tree(work)


def _mounts_under(path: Path) -> list[str]:
    prefix = str(path.resolve()) + "/"
    found = []
    with open("/proc/self/mounts") as fh:
        for line in fh:
            target = line.split()[1].replace("\\040", " ")
            if target.startswith(prefix):
                found.append(target)
    return found


def remove_tree(path: Path) -> None:
    """Remove a build directory, first unmounting what debootstrap may have left mounted
    (proc, sys, dev binds) after a failure; never deletes through a mount point."""
    if not path.exists():
        return
    for target in sorted(_mounts_under(path), key=len, reverse=True):
        subprocess.run(["umount", "-l", target], capture_output=True, check=False)
    if _mounts_under(path):
        raise ProvisionError(f"{path}: still has mounts under it; not removing it")
    shutil.rmtree(path, ignore_errors=True)


def _run(cmd: list[str], logf: object, what: str, env: dict[str, str] | None = None) -> None:
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          env=env, check=False)
    logf.write(f"$ {' '.join(cmd)}\n{proc.stdout}\n")  # type: ignore[attr-defined]
    if proc.returncode != 0:
        tail = "\n".join(proc.stdout.strip().splitlines()[-15:])
        raise ProvisionError(f"building the lab image: {what} failed "
                             f"(exit {proc.returncode}):\n{tail}")


def ensure(arch: str, *, progress: object = None) -> tuple[str, float | None]:
    """Return (tag, seconds spent building or None when it was cached)."""
    tag = image_tag(arch)
    if image_exists(tag):
        return tag, None
    with _build_lock(arch):
        if image_exists(tag):  # another process built it while we waited
            return tag, None
        if callable(progress):
            progress(f"building the lab image {tag} (debootstrap: a few minutes, once)")
        start = time.monotonic()
        build(arch, deb_cache=cache_dir() / "debs" / arch)
        prune_old(arch)
        return tag, time.monotonic() - start


def prune_old(arch: str) -> list[str]:
    """Remove lab images of ``arch`` built from an older recipe (docker refuses to remove
    one that a container still uses; those stay)."""
    keep = image_tag(arch)
    proc = docker("images", "--format", "{{.Repository}}:{{.Tag}}", IMAGE_REPO, check=False)
    removed = []
    for tag in proc.stdout.split():
        if (tag != keep and tag.startswith(f"{IMAGE_REPO}:{SUITE}-{arch}-")
                and docker("image", "rm", tag, check=False).returncode == 0):
            removed.append(tag)
    return removed
