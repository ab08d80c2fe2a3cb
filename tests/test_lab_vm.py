"""The qemu VM backend of `provision lab` (provision/lab/vm.py, vmimage.py).

Fast tests check the pure planning (qemu command line, KVM detection, sizes, MBR, cloud-init
user-data) and the seed disks with real tools (mkfs.ext4, cloud-localds, partx, debugfs, blkid).

The ``vm`` tests boot ONE real TCG VM through the CLI (`provision lab up --kind vm --disk 20G`)
and run several checks on it in order: SSH as the lab user with pre-recorded host keys,
sudo, a kernel module, swap, unallocated space after partition 1 (growpart), a real reboot
(`provision lab reboot`, new boot id, same port) and `provision lab down` leaving no qemu
process, overlay or port behind. The first run builds the base image (about 2-3 minutes).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from lab_fixtures import port_is_listening

from provision.errors import EXIT_USAGE, UsageError
from provision.lab import keys, vm, vmimage
from provision.lab.backend import NodeRecord, NodeSpec

# Slow, but part of `make test`: the lab's VMs and arm64 hosts must be shown in CI.
pytestmark = pytest.mark.in_make_test

HAVE_QEMU = shutil.which("qemu-system-x86_64") is not None and shutil.which("qemu-img")
REBOOT_BOUND_S = 660  # manager's 600 s SSH wait + the guest's shutdown
SBIN = os.environ.get("PATH", "") + ":/usr/sbin:/sbin"


def _tool(name: str) -> str:
    path = shutil.which(name, path=SBIN)
    if not path:
        pytest.skip(f"{name} is not installed")
    return path


# ---------------------------------------------------------------- planning (fast)

def test_qemu_args_use_tcg_and_forward_ssh_on_loopback_only(tmp_path: Path) -> None:
    args = vm.plan_qemu_args(arch="amd64", kvm=False, state_dir=tmp_path, sock_dir=tmp_path,
                             ssh_port=2299, kernel=tmp_path / "vmlinuz",
                             initrd=tmp_path / "initrd.img", memory_mib=2048, cpus=2)
    line = " ".join(args)
    assert args[0] == "qemu-system-x86_64"
    assert "-accel tcg,thread=multi -cpu max,la57=off" in line
    assert "hostfwd=tcp:127.0.0.1:2299-:22" in line
    assert "root=/dev/vda1" in line  # root on partition 1, like cloud images
    assert f"file={tmp_path / vm.OVERLAY},if=virtio,format=qcow2" in line
    assert "-no-reboot" not in args  # a guest reboot restarts the machine in the same qemu
    assert "-daemonize" in args and str(tmp_path / vm.PIDFILE) in args
    assert f"path={tmp_path / vm.SERIAL},append=on" in line
    kvm_args = vm.plan_qemu_args(arch="amd64", kvm=True, state_dir=tmp_path, sock_dir=tmp_path,
                                 ssh_port=2299, kernel=None, initrd=None, memory_mib=1024,
                                 cpus=1)
    assert "-accel kvm -cpu host" in " ".join(kvm_args) and "-kernel" not in kvm_args


def test_kvm_only_with_cpu_flag_and_hardware_module() -> None:
    intel = "processor : 0\nflags : fpu vme vmx sse2\n"
    nested_pvm = "processor : 0\nflags : fpu vme sse2 hypervisor\n"  # /dev/kvm from kvm_pvm
    assert vm.kvm_usable(intel, True, {"kvm_intel"})
    assert not vm.kvm_usable(nested_pvm, True, set())
    assert not vm.kvm_usable(intel, False, {"kvm_intel"})
    assert not vm.kvm_usable(intel, True, set())
    cpuinfo = Path("/proc/cpuinfo").read_text()
    has_flag = any(f in cpuinfo.split() for f in ("vmx", "svm"))
    if not has_flag and "PROVISION_LAB_ACCEL" not in os.environ:
        assert vm.use_kvm() is False


def test_parse_size() -> None:
    assert vmimage.parse_size("20G") == 20 * 2**30
    assert vmimage.parse_size("4096M") == 4 * 2**30
    assert vmimage.parse_size("20GiB") == 20 * 2**30
    for bad in ("", "G", "-1G", "twenty", "0"):
        with pytest.raises(UsageError):
            vmimage.parse_size(bad)


def test_recipe_key_is_stable_and_follows_inputs() -> None:
    a, b = vmimage.plan_recipe("amd64"), vmimage.plan_recipe("amd64")
    assert a.key() == b.key()
    assert vmimage.plan_recipe("amd64", ("docker.io",)).key() != a.key()
    assert vmimage.plan_recipe("arm64").key() != a.key()
    assert "linux-image-cloud-amd64" in a.packages and "cloud-guest-utils" in a.packages
    assert "iptables-persistent" not in a.packages  # installed by the bootstrap tests
    assert "/swapfile none swap" in a.files["/etc/fstab"]
    with pytest.raises(UsageError):
        vmimage.plan_recipe("riscv64")


def test_mbr_is_read_by_partx(tmp_path: Path) -> None:
    partx = _tool("partx")
    disk = tmp_path / "disk.raw"
    with disk.open("wb") as f:
        f.truncate(64 * 2**20)
    vmimage.write_mbr(disk, 2048, 30 * 2048)
    out = subprocess.run([partx, "-g", "-o", "NR,START,SECTORS,TYPE", str(disk)],
                         capture_output=True, text=True, check=True).stdout.split()
    assert out == ["1", "2048", str(30 * 2048), "0x83"]


def _spec(tmp_path: Path, image: str | None = None, disk: str | None = None) -> NodeSpec:
    pub = keys.generate_ed25519(tmp_path / "keys" / "id_ed25519", "test")
    host_keys = keys.make_host_keys(tmp_path / "keys", "lab-1")
    return NodeSpec(name="lab-1", kind="vm", arch="amd64", image=image, disk=disk,
                    ssh_port=2222, user="provision", pubkey=pub, host_keys=host_keys,
                    state_dir=tmp_path / "nodes" / "lab-1")


def test_lab_seed_disk_carries_user_key_and_host_keys(tmp_path: Path) -> None:
    debugfs, blkid = _tool("debugfs"), _tool("blkid")
    spec = _spec(tmp_path)
    seed = tmp_path / "seed.img"
    vm._make_lab_seed(spec, seed)
    assert seed.stat().st_mode & 0o777 == 0o600
    label = subprocess.run([blkid, "-o", "value", "-s", "LABEL", str(seed)],
                           capture_output=True, text=True, check=True).stdout.strip()
    assert label == vmimage.SEED_LABEL

    def cat(name: str) -> str:
        return subprocess.run([debugfs, "-R", f"cat /{name}", str(seed)], capture_output=True,
                              text=True, check=True).stdout

    assert cat("user").strip() == "provision"
    assert cat("authorized_keys").strip() == spec.pubkey.strip()
    assert cat("ssh_host_ed25519_key") == spec.host_keys["ed25519"].read_text()
    stat = subprocess.run([debugfs, "-R", "stat /ssh_host_ed25519_key", str(seed)],
                          capture_output=True, text=True, check=True).stdout
    assert "Mode:  0600" in stat


def test_cloud_init_seed_has_user_sudo_and_exact_host_keys(tmp_path: Path) -> None:
    _tool("cloud-localds")
    blkid = _tool("blkid")
    spec = _spec(tmp_path, image="ubuntu.img")
    private = spec.host_keys["ed25519"].read_text()
    text = vm.cloud_init_user_data("lab-1", "provision", spec.pubkey,
                                   {"ed25519": private + "\0" + keys.public_key(
                                       spec.host_keys["ed25519"])})
    assert text.startswith("#cloud-config\n")
    doc = yaml.safe_load(text)
    user = doc["users"][0]
    assert user["name"] == "provision" and user["sudo"] == "ALL=(ALL) NOPASSWD:ALL"
    assert user["ssh_authorized_keys"] == [spec.pubkey.strip()]
    assert doc["ssh_keys"]["ed25519_private"] == private
    assert doc["ssh_keys"]["ed25519_public"] == keys.public_key(spec.host_keys["ed25519"])
    assert doc["ssh_genkeytypes"] == [] and doc["ssh_pwauth"] is False
    seed = tmp_path / "cidata.img"
    vm._make_cloud_init_seed(spec, seed)
    label = subprocess.run([blkid, "-o", "value", "-s", "LABEL", str(seed)],
                           capture_output=True, text=True, check=True).stdout.strip()
    assert label.lower() == "cidata" and seed.stat().st_mode & 0o777 == 0o600


@pytest.mark.skipif(not HAVE_QEMU, reason="qemu-system-x86 / qemu-utils not installed")
def test_bad_image_and_disk_are_usage_errors_that_touch_nothing(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="no-such.img: no such file") as e:
        vm.ensure_image("amd64", str(tmp_path / "no-such.img"))
    assert e.value.exit_code == EXIT_USAGE
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(UsageError, match="notes.txt"):
        vm.ensure_image("amd64", str(tmp_path / "notes.txt"))
    tiny = tmp_path / "cloud.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(tiny), "2G"], check=True)
    spec = _spec(tmp_path, image=str(tiny), disk="1G")
    with pytest.raises(UsageError, match="lab-1: --disk 1G is smaller"):
        vm.up(spec)
    with pytest.raises(UsageError, match="--disk"):
        vm.up(_spec(tmp_path / "b", image=str(tiny), disk="lots"))
    assert not spec.state_dir.exists()


def test_status_and_down_of_a_vm_that_is_not_running(tmp_path: Path) -> None:
    sd = tmp_path / "lab-9"
    sd.mkdir()
    (sd / vm.PIDFILE).write_text(f"{os.getpid()}\n")  # a live pid that is not our qemu
    (sd / vm.OVERLAY).write_text("")
    rec = NodeRecord(name="lab-9", kind="vm", arch="amd64", ssh_port=1,
                     ident=str(sd / vm.PIDFILE), extra={"state_dir": str(sd)})
    assert vm.status(rec) == {"running": False, "uptime_s": None}
    vm.down(rec)  # must not signal the unrelated live pid (this test process)
    assert not (sd / vm.OVERLAY).exists() and not (sd / vm.PIDFILE).exists()
    vm.down(rec)  # idempotent


# ---------------------------------------------------------------- one real VM (slow)

def _provision(env: dict[str, str], *args: str, timeout: float = 900
               ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "provision", *args], env=env, text=True,
                          capture_output=True, timeout=timeout, check=False)


def _qemu_processes_using(path: Path) -> list[int]:
    pids = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().decode(errors="replace")
        except OSError:
            continue
        if "qemu-system" in cmdline and str(path) in cmdline:
            pids.append(int(proc.name))
    return pids


def _port_free(port: int) -> bool:
    """Nothing listens on the port any more (a TIME_WAIT left by the client does not count)."""
    return not port_is_listening(port)


class VmLab:
    def __init__(self, env: dict[str, str], state_dir: Path) -> None:
        self.env = env
        self.state_dir = state_dir

    def run(self, *args: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
        return _provision(self.env, *args, timeout=timeout)

    def ssh(self, command: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        res = self.run("lab", "ssh", "lab-1", "--", "sh", "-c", command, timeout=120)
        if check:
            assert res.returncode == 0, f"{command}: {res.returncode}\n{res.stdout}{res.stderr}"
        return res

    def node(self) -> dict:
        data = json.loads((self.state_dir / "provision" / "lab" / "lab.json").read_text())
        return next(n for n in data["nodes"] if n["name"] == "lab-1")


@pytest.fixture(scope="module")
def vm_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VmLab]:
    if not HAVE_QEMU:
        pytest.skip("qemu-system-x86 / qemu-utils not installed")
    if os.geteuid() != 0 and vmimage.cached(vmimage.plan_recipe("amd64")) is None:
        pytest.skip("building the VM image needs root (debootstrap)")
    state = tmp_path_factory.mktemp("vmlab")
    env = {**os.environ, "XDG_STATE_HOME": str(state)}
    lab = VmLab(env, state)
    res = lab.run("lab", "up", "--kind", "vm", "--disk", "20G", timeout=1200)
    try:
        assert res.returncode == 0, f"lab up failed:\n{res.stdout}\n{res.stderr}"
        yield lab
    finally:
        lab.run("lab", "down", timeout=300)


@pytest.mark.vm
@pytest.mark.slow
def test_vm_ssh_as_lab_user_with_sudo(vm_lab: VmLab) -> None:
    """SSH goes through the lab's known_hosts with StrictHostKeyChecking=yes: the guest's
    sshd uses exactly the pre-generated host keys, or this would fail."""
    res = vm_lab.ssh("echo $(id -un) $(hostname) $(sudo -n id -u) $(uname -m)")
    assert res.stdout.split() == ["provision", "lab-1", "0", "x86_64"]
    assert vm_lab.node()["extra"]["accel"] in ("tcg", "kvm")


@pytest.mark.vm
@pytest.mark.slow
def test_vm_loads_kernel_modules(vm_lab: VmLab) -> None:
    vm_lab.ssh("sudo modprobe br_netfilter")
    lsmod = vm_lab.ssh("lsmod").stdout
    assert any(line.split()[0] == "br_netfilter" for line in lsmod.splitlines()[1:])
    assert vm_lab.ssh("cat /proc/sys/net/bridge/bridge-nf-call-iptables").stdout.strip() in (
        "0", "1")


@pytest.mark.vm
@pytest.mark.slow
def test_vm_disk_has_unallocated_space_after_partition_1(vm_lab: VmLab) -> None:
    assert vm_lab.ssh("findmnt -no SOURCE /").stdout.strip() == "/dev/vda1"
    size = int(vm_lab.ssh("lsblk -bdno SIZE /dev/vda").stdout)
    assert size == 20 * 2**30
    part = int(vm_lab.ssh("lsblk -bdno SIZE /dev/vda1").stdout)
    assert part < size - 2**30
    res = vm_lab.ssh("sudo growpart --dry-run /dev/vda 1")
    assert "CHANGE: partition=1" in res.stdout, res.stdout + res.stderr


@pytest.mark.vm
@pytest.mark.slow
def test_vm_has_swap_in_fstab(vm_lab: VmLab) -> None:
    assert "/swapfile" in vm_lab.ssh("cat /proc/swaps").stdout
    assert "/swapfile none swap" in vm_lab.ssh("cat /etc/fstab").stdout


@pytest.mark.vm
@pytest.mark.slow
def test_vm_reboot_comes_back_on_the_same_port(vm_lab: VmLab) -> None:
    """A real guest reboot: new boot id, the non-persisted module is gone, same SSH port.

    The bound is a timeout, not a speed assertion (benchmarks/lab_vm.py measures): the
    manager's own SSH wait for VMs is 600 s, and under TCG on a shared 2-core runner with
    other tests running a reboot was seen to take over 180 s."""
    boot_id = vm_lab.ssh("cat /proc/sys/kernel/random/boot_id").stdout.strip()
    vm_lab.ssh("sudo modprobe br_netfilter && echo persisted | sudo tee /var/tmp/marker")
    port = vm_lab.node()["ssh_port"]
    res = vm_lab.run("lab", "reboot", "lab-1", timeout=REBOOT_BOUND_S)
    assert res.returncode == 0, res.stdout + res.stderr
    assert vm_lab.ssh("cat /proc/sys/kernel/random/boot_id").stdout.strip() != boot_id
    assert vm_lab.node()["ssh_port"] == port
    assert "br_netfilter" not in vm_lab.ssh("lsmod").stdout
    assert vm_lab.ssh("cat /var/tmp/marker").stdout.strip() == "persisted"
    assert "/swapfile" in vm_lab.ssh("cat /proc/swaps").stdout


@pytest.mark.vm
@pytest.mark.slow
def test_vm_down_leaves_no_process_overlay_or_port(vm_lab: VmLab) -> None:
    node = vm_lab.node()
    sd = Path(node["extra"]["state_dir"])
    overlay, port = sd / vm.OVERLAY, node["ssh_port"]
    assert overlay.exists() and _qemu_processes_using(overlay)
    res = vm_lab.run("lab", "down", timeout=300)
    assert res.returncode == 0, res.stdout + res.stderr
    assert _qemu_processes_using(overlay) == []
    assert not overlay.exists() and not (sd / vm.SEED).exists()
    assert not (sd / vm.PIDFILE).exists()
    assert _port_free(port)
    base = Path(node["extra"]["base"])
    assert base.exists()  # the cached base image stays for the next lab


@pytest.mark.skipif(not HAVE_QEMU, reason="qemu-system-x86 / qemu-utils not installed")
def test_cleanup_stops_only_qemu_of_this_lab(tmp_path: Path) -> None:
    """`lab down` calls vm.cleanup(lab_dir): a qemu left over from this lab is stopped, a
    qemu of another directory is not (real qemu processes, no guest booted: -machine none)."""
    procs = {}
    for name in ("mine", "other"):
        d = tmp_path / name / "nodes" / "lab-1"
        d.mkdir(parents=True)
        disk = d / vm.OVERLAY
        subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(disk), "64M"],
                       check=True)
        procs[name] = subprocess.Popen(
            ["qemu-system-x86_64", "-machine", "none", "-nodefaults", "-display", "none",
             "-S", "-drive", f"file={disk},if=none,format=qcow2,id=d0"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for p in procs.values():  # both are up before cleanup runs
            with pytest.raises(subprocess.TimeoutExpired):
                p.wait(timeout=1)
        killed = vm.cleanup(tmp_path / "mine")
        assert killed == [procs["mine"].pid]
        assert procs["mine"].wait(timeout=15) is not None
        assert procs["other"].poll() is None
    finally:
        for p in procs.values():
            p.kill()
            p.wait()


def test_log_tail_strips_console_escapes(tmp_path: Path) -> None:
    (tmp_path / vm.SERIAL).write_text(
        "[    1.0] Linux version 6.1\r\n\x1b[0;32m  OK  \x1b[0m] Started ssh.service\r\n"
        "\x1b[K\r\n[   9.0] EXT4-fs (vda1): mounted\r\n")
    rec = NodeRecord(name="lab-1", kind="vm", arch="amd64", ssh_port=1,
                     extra={"state_dir": str(tmp_path)})
    tail = vm.log_tail(rec, lines=2)
    assert tail.splitlines()[1:] == ["OK  ] Started ssh.service",
                                     "[   9.0] EXT4-fs (vda1): mounted"]
    assert "no serial log" in vm.log_tail(NodeRecord(
        name="x", kind="vm", arch="amd64", ssh_port=1, extra={"state_dir": str(tmp_path / "n")}))
