"""Base disk images for lab VMs, built locally from Debian packages and cached by input hash.

The recipe (``plan_recipe``) is pure data; ``build`` turns it into, in one cache directory:

``base.qcow2``   a partitioned disk like a cloud image: an MBR with root (ext4) on partition 1
                 and nothing after it, so ``growpart /dev/vda 1`` is real once the overlay is
                 enlarged; no bootloader (the VM boots with ``-kernel``/``-initrd``)
``vmlinuz``, ``initrd.img``  copied out of the root filesystem
``image.json``   the recipe and the build time

No loop mount and no network besides the Debian mirror: ``debootstrap`` builds the root,
``mkfs.ext4 -d ROOT`` makes the filesystem in a file, the MBR is written here (``write_mbr``)
and the filesystem copied at the partition offset, then ``qemu-img convert`` makes the qcow2.

Per-VM things (user, authorized key, SSH host keys, hostname) are NOT baked: the image carries
``provision-seed.service``, a oneshot unit ordered before ``ssh.service`` that installs them from
a small seed disk (``make_seed``) attached as the second drive.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import struct
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from provision.errors import ProvisionError, UsageError

RECIPE_VERSION = 1  # bump when the build steps below change in a way the inputs do not show
SUITE = "bookworm"
MIRROR = os.environ.get("PROVISION_LAB_MIRROR", "http://deb.debian.org/debian")
SECURITY_MIRROR = "http://deb.debian.org/debian-security"
SEED_LABEL = "provseed"
SECTOR = 512
PART_START = 2048  # sectors: partition 1 starts at 1 MiB, like cloud images
ROOT_SIZE = "4G"  # size of partition 1 (the default disk is 1 MiB bigger)
SWAP_MIB = 256  # /swapfile, enabled in fstab so "swap off" is testable

KERNEL_PACKAGES = {"amd64": "linux-image-cloud-amd64", "arm64": "linux-image-arm64"}

# What a realistic (OCI-like Ubuntu) host has and the bootstrap VM tests need baked:
# growpart (cloud-guest-utils), iptables, e2fsprogs, the guest agent used for clean reboots.
# iptables-persistent/netfilter-persistent are deliberately NOT baked (tests install them).
BASE_PACKAGES = (
    "systemd", "systemd-sysv", "udev", "dbus", "openssh-server", "python3", "sudo", "iproute2",
    "ifupdown", "isc-dhcp-client", "ca-certificates", "kmod", "procps", "netbase",
    "cloud-guest-utils", "fdisk", "e2fsprogs", "iptables", "qemu-guest-agent", "less",
)

# Timers that would fight tests for the apt lock or waste TCG cycles; no console login
# (root is locked; the serial console is a log).
MASKED_UNITS = ("getty.target", "apt-daily.timer", "apt-daily-upgrade.timer", "e2scrub_all.timer",
                "e2scrub_reap.service", "fstrim.timer")

SEED_SCRIPT = r"""#!/bin/sh
# Installs the lab user, its key, the SSH host keys and the hostname from the seed disk
# (label provseed) before ssh.service starts. Runs on every boot; idempotent.
set -eu
dev=""
i=0
while [ $i -lt 600 ]; do
    # blkid probes the disks itself: no need to wait for udev's by-label links
    dev=$(blkid -L provseed 2>/dev/null || true)
    [ -n "$dev" ] && break
    i=$((i + 1)); sleep 0.1
done
if [ -z "$dev" ]; then
    echo "provision-seed: no seed disk (label provseed); generating an ed25519 host key" >&2
    [ -e /etc/ssh/ssh_host_ed25519_key ] || ssh-keygen -q -t ed25519 -N "" \
        -f /etc/ssh/ssh_host_ed25519_key
    exit 0
fi
mnt=/run/provision-seed
mkdir -p "$mnt"
mount -o ro "$dev" "$mnt"
trap 'umount "$mnt"' EXIT
name=$(cat "$mnt/hostname")
echo "$name" > /etc/hostname
hostname "$name"
grep -q " $name\$" /etc/hosts || echo "127.0.1.1 $name" >> /etc/hosts
user=$(cat "$mnt/user")
id -u "$user" >/dev/null 2>&1 || useradd -m -s /bin/bash -G sudo "$user"
home=$(getent passwd "$user" | cut -d: -f6)
install -d -m 0700 -o "$user" -g "$user" "$home/.ssh"
install -m 0600 -o "$user" -g "$user" "$mnt/authorized_keys" "$home/.ssh/authorized_keys"
printf '%s ALL=(ALL) NOPASSWD:ALL\n' "$user" > /etc/sudoers.d/90-provision-lab
chmod 0440 /etc/sudoers.d/90-provision-lab
for key in "$mnt"/ssh_host_*_key; do
    [ -e "$key" ] || continue
    install -m 0600 "$key" "/etc/ssh/$(basename "$key")"
    install -m 0644 "$key.pub" "/etc/ssh/$(basename "$key").pub"
done
echo "provision-seed: ready for $user@$name" > /dev/console || true
"""

SEED_UNIT = """[Unit]
Description=Install the lab user, key and SSH host keys from the seed disk
After=local-fs.target systemd-udev-trigger.service
Before=ssh.service systemd-user-sessions.service

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/usr/local/sbin/provision-seed

[Install]
WantedBy=multi-user.target
"""

FSTAB = """# <file system> <mount point> <type> <options> <dump> <pass>
/dev/vda1 / ext4 defaults,errors=remount-ro 0 1
/swapfile none swap sw 0 0
"""

INTERFACES = """source /etc/network/interfaces.d/*
auto lo
iface lo inet loopback
allow-hotplug eth0
iface eth0 inet dhcp
"""

SOURCES = f"""deb {MIRROR} {SUITE} main
deb {MIRROR} {SUITE}-updates main
deb {SECURITY_MIRROR} {SUITE}-security main
"""


@dataclass(frozen=True)
class Recipe:
    """Every input of a base image; its hash is the cache key."""

    arch: str
    suite: str = SUITE
    mirror: str = MIRROR
    packages: tuple[str, ...] = ()
    root_size: str = ROOT_SIZE
    swap_mib: int = SWAP_MIB
    files: dict[str, str] = field(default_factory=dict)
    masked: tuple[str, ...] = MASKED_UNITS
    version: int = RECIPE_VERSION

    def key(self) -> str:
        blob = json.dumps(asdict(self), sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:16]


def plan_recipe(arch: str, extra_packages: tuple[str, ...] = ()) -> Recipe:
    """The recipe of the lab's base image for ``arch`` (pure)."""
    if arch not in KERNEL_PACKAGES:
        raise UsageError(f"--arch {arch}: VM images exist for {', '.join(KERNEL_PACKAGES)}")
    packages = tuple(sorted({*BASE_PACKAGES, KERNEL_PACKAGES[arch], *extra_packages}))
    files = {
        "/usr/local/sbin/provision-seed": SEED_SCRIPT,
        "/etc/systemd/system/provision-seed.service": SEED_UNIT,
        "/etc/fstab": FSTAB,
        "/etc/network/interfaces": INTERFACES,
        "/etc/apt/sources.list": SOURCES,
        "/etc/hostname": "lab\n",
        "/etc/hosts": "127.0.0.1 localhost\n::1 localhost ip6-localhost ip6-loopback\n",
    }
    return Recipe(arch=arch, packages=packages, files=files)


def cache_dir() -> Path:
    """``$XDG_CACHE_HOME/provision/images`` (default ``~/.cache/provision/images``)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "provision" / "images"


def image_dir(recipe: Recipe) -> Path:
    return cache_dir() / f"vm-{recipe.arch}-{recipe.key()}"


def cached(recipe: Recipe) -> Path | None:
    """The finished image directory of ``recipe``, or None when it was not built yet."""
    d = image_dir(recipe)
    return d if (d / "image.json").is_file() else None


def parse_size(text: str) -> int:
    """``"20G"`` -> bytes (K, M, G, T suffixes, powers of 1024); UsageError otherwise."""
    units = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
    t = text.strip().upper().removesuffix("B").removesuffix("I")
    num, suffix = (t[:-1], t[-1]) if t and t[-1] in units else (t, "")
    from provision.patterns import is_ascii_digits  # isdigit() takes "２０"

    if not is_ascii_digits(num) or int(num) <= 0:
        raise UsageError(f"--disk {text!r}: expected a size like 20G or 4096M")
    return int(num) * units[suffix]


def write_mbr(disk: Path, start: int, sectors: int, ptype: int = 0x83) -> None:
    """Write an MBR partition table with one bootable partition (pure format, no tools)."""
    entry = struct.pack("<B3sB3sII", 0x80, b"\xfe\xff\xff", ptype, b"\xfe\xff\xff",
                        start, sectors)
    disk_id = struct.pack("<I", int.from_bytes(hashlib.sha256(disk.name.encode()).digest()[:4],
                                               "little"))
    mbr = bytearray(SECTOR)
    mbr[440:444] = disk_id
    mbr[446:462] = entry
    mbr[510:512] = b"\x55\xaa"
    with disk.open("r+b") as f:
        f.write(mbr)


def _run(cmd: list[str], step: str, **kw: object) -> subprocess.CompletedProcess[str]:
    res = subprocess.run(cmd, text=True, capture_output=True, check=False, **kw)  # type: ignore[call-overload]
    if res.returncode != 0:
        tail = "\n".join((res.stderr or res.stdout).strip().splitlines()[-15:])
        raise ProvisionError(f"VM image build failed at '{step}' ({cmd[0]} exit "
                             f"{res.returncode}):\n{tail}")
    return res


def _check_tools(arch: str) -> None:
    if os.geteuid() != 0:
        raise ProvisionError("building the lab VM image needs root (debootstrap); run as root or "
                             "pass --image with a cloud image you downloaded")
    needed = ["debootstrap", "mkfs.ext4", "mkswap", "qemu-img"]
    missing = [t for t in needed if not shutil.which(t, path=_sbin_path())]
    if missing:
        raise ProvisionError(f"missing tools for the VM image: {', '.join(missing)} (Debian "
                             "packages debootstrap, e2fsprogs, util-linux, qemu-utils)")


def _sbin_path() -> str:
    return os.environ.get("PATH", "") + ":/usr/sbin:/sbin"


def build(recipe: Recipe, log: Callable[[str], None] = lambda _m: None) -> Path:
    """Build the image of ``recipe`` into the cache unless present; return its directory.

    Concurrent callers (parallel tests) serialise on a lock file; the directory appears
    atomically (built under a temporary name, then renamed).
    """
    done = cached(recipe)
    if done:
        return done
    _check_tools(recipe.arch)
    cache = cache_dir()
    cache.mkdir(parents=True, exist_ok=True)
    target = image_dir(recipe)
    with open(cache / f".lock-{target.name}", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if cached(recipe):
            return target
        work = Path(tempfile.mkdtemp(prefix=f".build-{target.name}-", dir=cache))
        try:
            _build_into(recipe, work, log)
            if target.exists():
                shutil.rmtree(target)
            work.chmod(0o755)
            work.rename(target)
        finally:
            if work.exists():
                shutil.rmtree(work, ignore_errors=True)
    return target


def _build_into(recipe: Recipe, work: Path, log: Callable[[str], None]) -> None:
    env = {**os.environ, "PATH": _sbin_path(), "DEBIAN_FRONTEND": "noninteractive"}
    root = work / "root"
    debs = cache_dir() / "debs" / recipe.arch
    debs.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    log(f"debootstrap {recipe.suite} {recipe.arch} ({len(recipe.packages)} packages)")
    _run(["debootstrap", "--variant=minbase", f"--arch={recipe.arch}",
          f"--cache-dir={debs}", f"--include={','.join(recipe.packages)}",
          recipe.suite, str(root), recipe.mirror], "debootstrap", env=env)
    t_boot = time.monotonic()
    log("configuring the root filesystem")
    _configure_root(recipe, root, env)
    kernels = sorted((root / "boot").glob("vmlinuz-*"))
    initrds = sorted((root / "boot").glob("initrd.img-*"))
    if not kernels or not initrds:
        raise ProvisionError("VM image build failed: no kernel/initrd in /boot of the new root")
    shutil.copyfile(kernels[-1], work / "vmlinuz")
    shutil.copyfile(initrds[-1], work / "initrd.img")
    log("making the ext4 filesystem and the partitioned disk")
    rootfs = work / "rootfs.ext4"
    _run(["mkfs.ext4", "-q", "-F", "-L", "root", "-d", str(root), str(rootfs),
          recipe.root_size], "mkfs.ext4 -d", env=env)
    size = rootfs.stat().st_size
    raw = work / "disk.raw"
    with raw.open("wb") as f:
        f.truncate(PART_START * SECTOR + size)
    write_mbr(raw, PART_START, size // SECTOR)
    _run(["dd", f"if={rootfs}", f"of={raw}", "bs=4M", f"seek={PART_START * SECTOR}",
          "oflag=seek_bytes", "conv=sparse,notrunc", "status=none"], "dd rootfs", env=env)
    rootfs.unlink()
    _run(["qemu-img", "convert", "-f", "raw", "-O", "qcow2", str(raw), str(work / "base.qcow2")],
         "qemu-img convert", env=env)
    raw.unlink()
    shutil.rmtree(root)
    meta = {"recipe": asdict(recipe), "key": recipe.key(), "kernel": kernels[-1].name,
            "debootstrap_s": round(t_boot - t0, 1), "build_s": round(time.monotonic() - t0, 1),
            "built_at": time.time()}
    (work / "image.json").write_text(json.dumps(meta, indent=2) + "\n")


def _configure_root(recipe: Recipe, root: Path, env: dict[str, str]) -> None:
    for path, text in recipe.files.items():
        dest = root / path.lstrip("/")
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_text(text)
    (root / "usr/local/sbin/provision-seed").chmod(0o755)
    wants = root / "etc/systemd/system/multi-user.target.wants"
    wants.mkdir(parents=True, exist_ok=True)
    link = wants / "provision-seed.service"
    if not link.is_symlink():
        link.symlink_to("/etc/systemd/system/provision-seed.service")
    for unit in recipe.masked:
        m = root / "etc/systemd/system" / unit
        if not m.is_symlink():
            m.symlink_to("/dev/null")
    # Per-VM identity comes from the seed disk, never from the image.
    for key in (root / "etc/ssh").glob("ssh_host_*"):
        key.unlink()
    (root / "etc/machine-id").write_text("")
    dbus_id = root / "var/lib/dbus/machine-id"
    if dbus_id.exists() or dbus_id.is_symlink():
        dbus_id.unlink()
    _run(["chroot", str(root), "passwd", "-l", "root"], "lock root password", env=env)
    # A swap file without holes (mkfs.ext4 -d would store zero blocks sparsely).
    swap = root / "swapfile"
    chunk = b"\xff" * (1 << 20)
    with swap.open("wb") as f:
        for _ in range(recipe.swap_mib):
            f.write(chunk)
    swap.chmod(0o600)
    _run(["mkswap", str(swap)], "mkswap", env=env)
    shutil.rmtree(root / "var/cache/apt/archives", ignore_errors=True)
    (root / "var/cache/apt/archives/partial").mkdir(parents=True, exist_ok=True)


def image_info(path: Path) -> dict[str, object]:
    """``qemu-img info`` as a dict (format, virtual-size); UsageError for a bad file."""
    res = subprocess.run(["qemu-img", "info", "--output=json", str(path)], text=True,
                         capture_output=True, check=False)
    if res.returncode != 0:
        raise UsageError(f"--image {path}: not a disk image qemu can read: "
                         f"{res.stderr.strip()}")
    return json.loads(res.stdout)
