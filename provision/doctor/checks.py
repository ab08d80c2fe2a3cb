"""Pure checks: the probe's sections (see probe.py) of one host -> PASS / WARN / FAIL results.

Host resources here (sudo, OS, arch, CPU, memory, disks, swap, clock, cgroup); ports, firewall,
HTTPS and MetalLB in netchecks.py. Nothing here touches the network or the local machine;
tests feed recorded outputs.
"""

from __future__ import annotations

import datetime
import re

from provision.doctor.model import FAIL, PASS, WARN, CheckResult, HostSpec
from provision.doctor.netchecks import check_firewall, check_ports, check_urls
from provision.pins import KUBERNETES_EOL, eol_message
from provision.versions import parse_version

GIB = 1024**3
GB = 1000**3
DISK_WARN_BYTES = 20 * GB  # docker images filled a 47 GB OCI boot volume in practice
DISK_FAIL_BYTES = 5 * GB
UNALLOCATED_WARN_BYTES = 1 * GIB

# Minimums per mode and role.
# kubeadm: https://kubernetes.io/docs/setup/production-environment/tools/kubeadm/install-kubeadm/
#   "2 GB or more of RAM per machine", "2 CPUs or more for control plane machines"; kubeadm's
#   own preflight errors below 2 CPUs / 1700 MB on a control-plane node. Workers: 1 CPU, 1 GiB.
# minikube: https://minikube.sigs.k8s.io/docs/start/ "2 CPUs or more, 2GB of free memory".
MINIMUMS: dict[tuple[str, str], tuple[int, int]] = {  # (mode, role) -> (cpus, memory bytes)
    ("kubeadm", "control_plane"): (2, 2 * GIB),
    ("kubeadm", "worker"): (1, 1 * GIB),
    ("minikube", "control_plane"): (2, 2 * GIB),
    ("minikube", "worker"): (2, 2 * GIB),
}
# MemTotal is below the installed RAM (kernel, firmware reservations): a 2 GiB VM reports
# about 1.9 GiB. Below 90 % of the minimum is a FAIL, between 90 and 100 % a WARN.
MEMORY_SLACK = 0.9

SUPPORTED_OS = {("ubuntu", "20.04"), ("ubuntu", "22.04"), ("ubuntu", "24.04"), ("debian", "12")}
SUPPORTED_ARCH = {"aarch64": "arm64", "arm64": "arm64", "x86_64": "amd64", "amd64": "amd64"}


def _kv(text: str, sep: str = "=") -> dict[str, str]:
    out: dict[str, str] = {}
    for line in text.splitlines():
        if sep in line:
            k, v = line.split(sep, 1)
            out[k.strip()] = v.strip().strip('"')
    return out


def _size(n: float) -> str:
    return f"{n / GIB:.1f} GiB"


# --- single checks -------------------------------------------------------------------------


def check_sudo(spec: HostSpec, s: dict[str, str]) -> CheckResult:
    text = s.get("sudo", "").strip()
    user = s.get("id", "").splitlines()[0] if s.get("id") else "?"
    if text == "root":
        if spec.mode == "minikube":
            return CheckResult(spec.name, "sudo", WARN,
                               "connected as root: minikube refuses the docker driver as root "
                               "(DRV_AS_ROOT); use a non-root ansible_user with sudo")
        return CheckResult(spec.name, "sudo", PASS, "connected as root (no sudo needed)")
    rc = re.search(r"rc=(\d+)\s*$", text)
    if rc and rc.group(1) == "0":
        return CheckResult(spec.name, "sudo", PASS, f"passwordless sudo works for {user}")
    detail = re.sub(r"\s*rc=\d+\s*$", "", text).strip() or "no output"
    if rc and rc.group(1) == "127":
        detail = "sudo is not installed"
    return CheckResult(spec.name, "sudo", FAIL,
                       f"'sudo -n true' failed for {user} ({detail}); allow passwordless sudo: "
                       f"echo '{user} ALL=(ALL) NOPASSWD:ALL' > /etc/sudoers.d/{user}")


def check_os(spec: HostSpec, s: dict[str, str]) -> CheckResult:
    rel = _kv(s.get("os_release", ""))
    os_id, version = rel.get("ID", "").lower(), rel.get("VERSION_ID", "")
    pretty = rel.get("PRETTY_NAME") or f"{os_id} {version}".strip() or "unknown"
    if (os_id, version) in SUPPORTED_OS:
        return CheckResult(spec.name, "os", PASS, pretty)
    family = {os_id, *rel.get("ID_LIKE", "").lower().split()}
    if family & {"debian", "ubuntu"}:
        return CheckResult(spec.name, "os", WARN,
                           f"{pretty}: not tested (supported: Ubuntu 20.04/22.04/24.04, "
                           "Debian 12); the apt-based roles may still work")
    return CheckResult(spec.name, "os", FAIL,
                       f"{pretty}: unsupported (supported: Ubuntu 20.04/22.04/24.04, Debian 12)")


def check_arch(spec: HostSpec, s: dict[str, str]) -> CheckResult:
    machine = s.get("arch", "").strip()
    if machine in SUPPORTED_ARCH:
        return CheckResult(spec.name, "arch", PASS, f"{machine} ({SUPPORTED_ARCH[machine]})")
    return CheckResult(spec.name, "arch", FAIL,
                       f"{machine or 'unknown'}: unsupported (aarch64 or x86_64)")


def meminfo_bytes(text: str) -> dict[str, int]:
    out = {}
    for line in text.splitlines():
        m = re.match(r"(\w+):\s+(\d+)\s*kB", line)
        if m:
            out[m.group(1)] = int(m.group(2)) * 1024
    return out


def check_cpu(spec: HostSpec, s: dict[str, str]) -> CheckResult:
    need, _ = MINIMUMS[(spec.mode, spec.role)]
    try:
        cpus = int(s.get("nproc", "").strip())
    except ValueError:
        return CheckResult(spec.name, "cpu", WARN, "cannot read the CPU count")
    text = f"{cpus} CPU(s); {spec.mode} {spec.role.replace('_', ' ')} needs {need}"
    return CheckResult(spec.name, "cpu", PASS if cpus >= need else FAIL, text)


def check_memory(spec: HostSpec, s: dict[str, str]) -> CheckResult:
    _, need = MINIMUMS[(spec.mode, spec.role)]
    total = meminfo_bytes(s.get("meminfo", "")).get("MemTotal")
    if total is None:
        return CheckResult(spec.name, "memory", WARN, "cannot read /proc/meminfo")
    text = f"{_size(total)}; {spec.mode} {spec.role.replace('_', ' ')} needs {_size(need)}"
    if total >= need:
        return CheckResult(spec.name, "memory", PASS, text)
    if total >= need * MEMORY_SLACK:
        return CheckResult(spec.name, "memory", WARN, text + " (just below: kernel reserve?)")
    return CheckResult(spec.name, "memory", FAIL, text)


def parse_df(text: str) -> dict[str, tuple[str, int, int]]:
    """``df -P -B1`` -> {mount point: (filesystem, size, available bytes)}."""
    out = {}
    for line in text.splitlines()[1:]:
        parts = line.split()
        if len(parts) >= 6 and parts[1].isdigit() and parts[3].isdigit():
            out[parts[5]] = (parts[0], int(parts[1]), int(parts[3]))
    return out


def check_disk(spec: HostSpec, s: dict[str, str]) -> list[CheckResult]:
    df = parse_df(s.get("df", ""))
    if not df:
        return [CheckResult(spec.name, "disk", WARN, "cannot read free disk space (df)")]
    results = []
    seen: set[str] = set()
    root_fs = df["/"][0] if "/" in df else None
    growable = (_unallocated(s) or (0, ""))[0]
    rescan = pending_rescan(s)
    if rescan is not None and "partition" in _kv(s.get("rootdisk", "")):
        growable += rescan[2] - rescan[1]  # resized online: bootstrap rescans, then grows
    for mount in ("/", "/var/lib"):
        if mount not in df:
            continue
        fs, size, avail = df[mount]
        name = f"disk {mount}"
        if fs in seen and mount != "/":  # same filesystem as /: reported once
            continue
        seen.add(fs)
        text = f"{avail / GB:.1f} GB free of {size / GB:.1f} GB on {mount} ({fs})"
        if fs == root_fs and growable >= UNALLOCATED_WARN_BYTES:  # bootstrap grows / first
            avail += growable
            text += (f", {growable / GB:.1f} GB more once bootstrap grows the root partition "
                     "into the unallocated space")
        if avail < DISK_FAIL_BYTES:
            results.append(CheckResult(spec.name, name, FAIL, text + "; images will not fit"))
        elif avail < DISK_WARN_BYTES:
            results.append(CheckResult(
                spec.name, name, WARN,
                text + "; below 20 GB: container images filled a 47 GB OCI boot volume in "
                       "practice (grow the volume or set docker_data_root)"))
        else:
            results.append(CheckResult(spec.name, name, PASS, text))
    return results


def _unallocated(s: dict[str, str]) -> tuple[int, str] | None:
    """(bytes after the root partition that growpart can take, "/dev/vda1 on /dev/vda");
    None when the partition table cannot be read; (0, what) when / is not on a partition."""
    text = s.get("rootdisk", "")
    info = _kv(text)
    if "partition" not in info:
        return 0, info.get("whole_device") or info.get("source") or "unknown"
    parts = []
    for line in text.splitlines():
        bits = line.split()
        if len(bits) == 4 and bits[0] == "part" and bits[2].isdigit() and bits[3].isdigit():
            parts.append((bits[1], int(bits[2]), int(bits[3])))
    root = next((p for p in parts if p[0] == info["partition"]), None)
    try:
        disk_size = int(info["disk_size"])
    except (KeyError, ValueError):
        root = None
    if root is None:
        return None
    end = root[1] + root[2]
    following = [p[1] for p in parts if p[1] >= end]
    limit = min(following) if following else disk_size
    return max(0, limit - end) * 512, f"/dev/{info['partition']} on /dev/{info.get('disk', '?')}"


def pending_rescan(s: dict[str, str]) -> tuple[str, int, int] | None:
    """(disk, bytes the kernel knows, bytes the disk reports) when a SCSI root disk reports
    more than the kernel knows: the volume was resized online and not rescanned yet (the
    probe reads the disk's own size with READ CAPACITY; it never rescans). None otherwise."""
    info = _kv(s.get("rootdisk", ""))
    try:
        known, device = int(info["disk_size"]) * 512, int(info["device_bytes"])
    except (KeyError, ValueError):
        return None
    if device - known < UNALLOCATED_WARN_BYTES:
        return None
    return info.get("disk", "?"), known, device


def check_unallocated(spec: HostSpec, s: dict[str, str]) -> CheckResult:
    found = _unallocated(s)
    if found is None:
        return CheckResult(spec.name, "disk unallocated", WARN, "cannot read the partition table")
    free, where = found
    if "partition" not in _kv(s.get("rootdisk", "")):
        return CheckResult(spec.name, "disk unallocated", PASS,
                           f"root filesystem is not on a partition ({where}): nothing to grow")
    rescan = pending_rescan(s)
    if rescan is not None:
        disk, known, device = rescan
        return CheckResult(spec.name, "disk unallocated", WARN,
                           f"/dev/{disk} reports {_size(device)} but the kernel still knows "
                           f"{_size(known)} (resized online, not rescanned yet): "
                           f"{_size(device - known + free)} to grow into once rescanned; "
                           "provision bootstrap rescans the disk (echo 1 > "
                           f"/sys/class/block/{disk}/device/rescan) and grows the partition "
                           "and the filesystem")
    if free >= UNALLOCATED_WARN_BYTES:
        return CheckResult(spec.name, "disk unallocated", WARN,
                           f"{_size(free)} unallocated after the root partition {where} "
                           "(the volume was resized?): provision bootstrap grows the partition "
                           "and the filesystem")
    return CheckResult(spec.name, "disk unallocated", PASS,
                       f"root partition {where} fills the disk")


def check_swap(spec: HostSpec, s: dict[str, str]) -> CheckResult:
    lines = [ln for ln in s.get("swaps", "").splitlines()[1:] if ln.strip()]
    if not lines:
        return CheckResult(spec.name, "swap", PASS, "swap is off")
    devices = ", ".join(ln.split()[0] for ln in lines)
    if spec.mode == "kubeadm":
        return CheckResult(spec.name, "swap", WARN,
                           f"swap is on ({devices}): kubelet needs it off; provision bootstrap "
                           "turns it off (swapoff and /etc/fstab)")
    return CheckResult(spec.name, "swap", PASS, f"swap is on ({devices}); fine for minikube")


def check_clock(spec: HostSpec, s: dict[str, str]) -> CheckResult:
    text = s.get("timedatectl", "")
    first = text.splitlines()[0].strip() if text else ""
    if first == "yes":
        return CheckResult(spec.name, "clock", PASS, "NTP synchronized")
    if first == "no":
        return CheckResult(spec.name, "clock", WARN,
                           "clock not NTP-synchronized: certificates and etcd need a correct "
                           "clock (enable systemd-timesyncd or chrony)")
    return CheckResult(spec.name, "clock", WARN,
                       f"cannot tell if the clock is synchronized (timedatectl: {first or '?'})")


def check_cgroup(spec: HostSpec, s: dict[str, str]) -> CheckResult:
    fs = s.get("cgroup", "").strip()
    if fs == "cgroup2fs":
        return CheckResult(spec.name, "cgroup", PASS, "cgroup v2")
    if fs in ("tmpfs", "cgroupfs"):
        return CheckResult(spec.name, "cgroup", WARN,
                           "cgroup v1: in maintenance mode since Kubernetes 1.31; boot with "
                           "systemd.unified_cgroup_hierarchy=1 for v2")
    return CheckResult(spec.name, "cgroup", WARN, f"cannot tell the cgroup version ({fs or '?'})")


def run_checks(spec: HostSpec, sections: dict[str, str]) -> list[CheckResult]:
    """All per-host checks over one host's probe sections, in display order."""
    results = [check_sudo(spec, sections), check_os(spec, sections),
               check_arch(spec, sections), check_cpu(spec, sections),
               check_memory(spec, sections)]
    results += check_disk(spec, sections)
    results.append(check_unallocated(spec, sections))
    results += [check_swap(spec, sections), check_clock(spec, sections),
                check_cgroup(spec, sections), check_ports(spec, sections)]
    results += check_firewall(spec, sections)
    results += check_urls(spec, sections)
    return results


def check_kubernetes_support(host: str, version: object,
                             today: datetime.date) -> CheckResult | None:
    """WARN (never FAIL) when the requested Kubernetes minor is past its upstream end of life
    (dates and source: provision/pins.py); None for a value validation has not accepted."""
    parsed = parse_version(version) if isinstance(version, str) else None
    if parsed is None:
        return None
    warning = eol_message(str(version), parsed[1], today)
    if warning:
        return CheckResult(host, "kubernetes version", WARN, warning)
    eol = KUBERNETES_EOL.get(parsed[1])
    until = f"supported upstream until {eol.isoformat()}" if eol else \
        "no upstream end-of-life date declared (provision/pins.py)"
    return CheckResult(host, "kubernetes version", PASS, f"Kubernetes {version}: {until}")
