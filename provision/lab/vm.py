"""The qemu VM backend of `provision lab` (see ``backend.py`` for the interface).

One VM = one qemu-system process (daemonized) with:

- a qcow2 overlay on the cached base image (``vmimage``) or on a cloud image the user passed
  with ``--image``; ``--disk 20G`` enlarges the overlay, leaving unallocated space after
  partition 1 (what the cloud console does when a boot volume is resized);
- a seed disk as second drive: for the lab's own image an ext4 disk read by the baked
  ``provision-seed.service``; for a cloud image a cloud-init NoCloud seed (``cloud-localds``).
  Either installs the user (NOPASSWD sudo), its key and the pre-generated SSH host keys;
- user-mode networking, the guest's port 22 forwarded on ``127.0.0.1:<ssh_port>``;
- KVM only when the CPU really offers it (vmx/svm flag and kvm_intel/kvm_amd loaded), TCG
  (``-accel tcg,thread=multi -cpu max``) otherwise;
- a QMP socket (events, power button) and a guest-agent channel (clean reboots);
- the serial console appended to ``<state_dir>/serial.log``.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from provision.errors import ProvisionError, UsageError
from provision.lab import vmimage
from provision.lab.backend import NodeRecord, NodeSpec

QEMU = {"amd64": "qemu-system-x86_64", "arm64": "qemu-system-aarch64"}
QEMU_PACKAGE = {"amd64": "qemu-system-x86", "arm64": "qemu-system-arm"}
AARCH64_FIRMWARE = Path("/usr/share/AAVMF/AAVMF_CODE.fd")  # Debian qemu-efi-aarch64
CLOUD_IMAGE_SUFFIXES = (".img", ".qcow2", ".raw")
REBOOT_TIMEOUT_S = 180.0
STOP_TIMEOUT_S = 20.0

# Files this backend creates in the node's state_dir (down removes exactly these).
OVERLAY, SEED, PIDFILE, SERIAL, ARGS, BOOTED = (
    "disk.qcow2", "seed.img", "qemu.pid", "serial.log", "qemu.json", "booted_at")
QMP_SOCK, QGA_SOCK = "qmp.sock", "qga.sock"
ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]|\x1b\[K|\r")


# ---------------------------------------------------------------- pure planning

def kvm_usable(cpuinfo: str, dev_rw: bool, loaded: set[str]) -> bool:
    """KVM only when the CPU offers it for real: the vmx/svm flag, a usable /dev/kvm and the
    hardware module (a nested software KVM like kvm_pvm shows /dev/kvm without the flag)."""
    flags = set()
    for line in cpuinfo.splitlines():
        if line.startswith("flags"):
            flags.update(line.split(":", 1)[1].split())
    return dev_rw and bool(flags & {"vmx", "svm"}) and bool(loaded & {"kvm_intel", "kvm_amd"})


def accel_args(kvm: bool) -> list[str]:
    # la57=off: 4-level paging; 5-level page walks only cost time under TCG
    return ["-accel", "kvm", "-cpu", "host"] if kvm else ["-accel", "tcg,thread=multi",
                                                           "-cpu", "max,la57=off"]


def plan_qemu_args(*, arch: str, kvm: bool, state_dir: Path, sock_dir: Path, ssh_port: int,
                   kernel: Path | None, initrd: Path | None, memory_mib: int, cpus: int,
                   seed_format: str = "raw") -> list[str]:
    """The qemu command line of one lab VM (pure; ``up`` runs it)."""
    args = [QEMU[arch], "-name", state_dir.name, *accel_args(kvm),
            "-machine", "q35" if arch == "amd64" else "virt",
            "-m", str(memory_mib), "-smp", str(cpus)]
    console = "ttyS0" if arch == "amd64" else "ttyAMA0"
    if kernel is not None and initrd is not None:
        args += ["-kernel", str(kernel), "-initrd", str(initrd), "-append",
                 f"root=/dev/vda1 rw console={console} net.ifnames=0 panic=10 "
                 "systemd.show_status=error"]
    elif arch == "arm64":
        args += ["-bios", str(AARCH64_FIRMWARE)]
    args += [
        "-drive", f"file={state_dir / OVERLAY},if=virtio,format=qcow2,cache=unsafe,discard=unmap",
        "-drive", f"file={state_dir / SEED},if=virtio,format={seed_format},readonly=on",
        "-netdev", f"user,id=n0,hostfwd=tcp:127.0.0.1:{ssh_port}-:22",
        "-device", "virtio-net-pci,netdev=n0",
        "-device", "virtio-rng-pci",
        "-chardev", f"socket,id=qga0,path={sock_dir / QGA_SOCK},server=on,wait=off",
        "-device", "virtio-serial",
        "-device", "virtserialport,chardev=qga0,name=org.qemu.guest_agent.0",
        "-qmp", f"unix:{sock_dir / QMP_SOCK},server=on,wait=off",
        "-chardev", f"file,id=ser0,path={state_dir / SERIAL},append=on",
        "-serial", "chardev:ser0",
        "-display", "none", "-daemonize", "-pidfile", str(state_dir / PIDFILE),
    ]
    return args


def cloud_init_user_data(name: str, user: str, pubkey: str, host_keys: dict[str, str]) -> str:
    """NoCloud user-data: the user with NOPASSWD sudo and key, and exactly these host keys.

    ``host_keys`` maps a type ("ed25519") to ``(private, public)`` text joined by a NUL.
    """
    ssh_keys: dict[str, str] = {}
    for kind, both in host_keys.items():
        private, public = both.split("\0", 1)
        ssh_keys[f"{kind}_private"] = private
        ssh_keys[f"{kind}_public"] = public.strip()
    doc = {
        "hostname": name,
        "users": [{"name": user, "sudo": "ALL=(ALL) NOPASSWD:ALL", "shell": "/bin/bash",
                   "lock_passwd": True, "ssh_authorized_keys": [pubkey.strip()]}],
        "ssh_pwauth": False,
        "ssh_deletekeys": True,
        "ssh_genkeytypes": [],
        "ssh_keys": ssh_keys,
        "package_update": False,
    }
    return "#cloud-config\n" + json.dumps(doc, indent=2) + "\n"


#: RAM above a mode's minimum so the guest's MemTotal (kernel and firmware reserve some)
#: still meets it.
MEMORY_HEADROOM_MIB = 512


def default_resources(mode: str, control_plane: bool) -> tuple[int, int]:
    """(cpus, memory MiB) that pass doctor's CPU and memory checks for ``mode`` and role."""
    from provision.doctor.checks import MINIMUMS

    cpus, memory = MINIMUMS[(mode, "control_plane" if control_plane else "worker")]
    return cpus, memory // 2**20 + MEMORY_HEADROOM_MIB


def vm_resources(cpus: int | None = None, memory_mib: int | None = None,
                 default: tuple[int, int] = (1, 2048)) -> tuple[int, int]:
    """(memory MiB, cpus): the flags (--memory, --cpus), else PROVISION_LAB_VM_MEMORY /
    PROVISION_LAB_VM_CPUS, else ``default`` (``default_resources`` of the mode and role).
    Under TCG on a busy 2-core host a second vCPU adds lock-holder preemption (soft lockups
    seen in the guest): set PROVISION_LAB_VM_CPUS=1 there when doctor's CPU check may fail."""
    mem = memory_mib or int(os.environ.get("PROVISION_LAB_VM_MEMORY", str(default[1])))
    n = cpus or int(os.environ.get("PROVISION_LAB_VM_CPUS", str(default[0])))
    return mem, n


# ---------------------------------------------------------------- side effects

def use_kvm() -> bool:
    forced = os.environ.get("PROVISION_LAB_ACCEL", "").lower()
    if forced in ("kvm", "tcg"):
        return forced == "kvm"
    try:
        cpuinfo = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    loaded = {m for m in ("kvm_intel", "kvm_amd") if Path(f"/sys/module/{m}").exists()}
    return kvm_usable(cpuinfo, os.access("/dev/kvm", os.R_OK | os.W_OK), loaded)


def _require_qemu(arch: str) -> str:
    exe = shutil.which(QEMU[arch])
    if not exe:
        raise UsageError(f"--kind vm --arch {arch} needs {QEMU[arch]} (Debian package "
                         f"{QEMU_PACKAGE[arch]}); on this machine use --kind container"
                         + (" --arch arm64 (qemu-user-static)" if arch == "arm64" else ""))
    return exe


def ensure_image(arch: str, image: str | None) -> str:
    """The base disk of new VMs: the user's cloud image (checked) or the cached lab image
    (built on first use, about 2 minutes; then instant). Returns the base disk's path."""
    if arch not in QEMU:
        raise UsageError(f"--arch {arch}: VMs support {', '.join(QEMU)}")
    _require_qemu(arch)
    if image:
        path = Path(image).expanduser().resolve()
        if not path.is_file():
            raise UsageError(f"--image {image}: no such file")
        if path.suffix not in CLOUD_IMAGE_SUFFIXES:
            raise UsageError(f"--image {image}: expected a cloud disk image "
                             f"({', '.join(CLOUD_IMAGE_SUFFIXES)})")
        vmimage.image_info(path)
        if arch == "arm64" and not AARCH64_FIRMWARE.is_file():
            raise UsageError(f"--image {image} --arch arm64 needs UEFI firmware "
                             f"{AARCH64_FIRMWARE} (Debian package qemu-efi-aarch64)")
        return str(path)
    from provision import output

    recipe = vmimage.plan_recipe(arch)
    if vmimage.cached(recipe) is None:
        output.echo(f"Building the lab VM image for {arch} (debootstrap; about 2 minutes, "
                    f"cached in {vmimage.cache_dir()})")
    d = vmimage.build(recipe, log=lambda m: output.echo(f"  image: {m}"))
    return str(d / "base.qcow2")


def _sock_dir(state_dir: Path) -> Path:
    """Unix socket paths are limited to 107 bytes: use the state dir when short enough."""
    if len(str(state_dir / QMP_SOCK)) < 100:
        return state_dir
    return Path(tempfile.mkdtemp(prefix="provision-vm-"))


def _make_lab_seed(spec: NodeSpec, out: Path) -> None:
    with tempfile.TemporaryDirectory(prefix="provision-seed-") as tmp:
        d = Path(tmp)
        (d / "hostname").write_text(spec.name + "\n")
        (d / "user").write_text(spec.user + "\n")
        (d / "authorized_keys").write_text(spec.pubkey.strip() + "\n")
        for kind, private in spec.host_keys.items():
            dest = d / f"ssh_host_{kind}_key"
            shutil.copyfile(private, dest)
            dest.chmod(0o600)
            (d / f"{dest.name}.pub").write_text(_public_key(Path(private)) + "\n")
        _run(["mkfs.ext4", "-q", "-F", "-L", vmimage.SEED_LABEL, "-O", "^has_journal",
              "-d", str(d), str(out), "4M"], "seed disk", spec.name)
    out.chmod(0o600)


def _make_cloud_init_seed(spec: NodeSpec, out: Path) -> None:
    if not shutil.which("cloud-localds"):
        raise UsageError("--image needs cloud-localds (Debian package cloud-image-utils) to "
                         "write the cloud-init NoCloud seed")
    keys = {kind: Path(p).read_text() + "\0" + _public_key(Path(p))
            for kind, p in spec.host_keys.items()}
    with tempfile.TemporaryDirectory(prefix="provision-seed-") as tmp:
        d = Path(tmp)
        (d / "user-data").write_text(cloud_init_user_data(spec.name, spec.user, spec.pubkey,
                                                          keys))
        (d / "meta-data").write_text(f"instance-id: {spec.name}-{int(time.time())}\n"
                                     f"local-hostname: {spec.name}\n")
        _run(["cloud-localds", str(out), str(d / "user-data"), str(d / "meta-data")],
             "cloud-init seed", spec.name)
    out.chmod(0o600)


def _public_key(private: Path) -> str:
    pub = Path(f"{private}.pub")
    if pub.is_file():
        return " ".join(pub.read_text().split()[:2])
    res = _run(["ssh-keygen", "-y", "-f", str(private)], "read host key", private.name)
    return res.stdout.strip()


def _run(cmd: list[str], step: str, host: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PATH": os.environ.get("PATH", "") + ":/usr/sbin:/sbin"}
    res = subprocess.run(cmd, text=True, capture_output=True, check=False, env=env)
    if res.returncode != 0:
        raise ProvisionError(f"{host}: {step} failed ({cmd[0]} exit {res.returncode}): "
                             f"{(res.stderr or res.stdout).strip()[-800:]}")
    return res


def up(spec: NodeSpec) -> NodeRecord:
    """Create the overlay and seed, start qemu daemonized; return without waiting for SSH."""
    exe = _require_qemu(spec.arch)
    disk_bytes = vmimage.parse_size(spec.disk) if spec.disk else None
    base = Path(ensure_image(spec.arch, spec.image))
    info = vmimage.image_info(base)
    base_size = int(info["virtual-size"])  # type: ignore[call-overload]
    if disk_bytes is not None and disk_bytes < base_size:
        raise UsageError(f"{spec.name}: --disk {spec.disk} is smaller than the image "
                         f"({base_size / 2**30:.1f} GiB); disks only grow")
    sd = spec.state_dir
    sd.mkdir(parents=True, exist_ok=True)
    old = _pid(sd)
    if old is not None:
        raise ProvisionError(f"{spec.name}: a VM already runs from {sd} (qemu pid {old})")
    for f in (OVERLAY, SEED, PIDFILE, SERIAL, BOOTED):
        (sd / f).unlink(missing_ok=True)
    _run(["qemu-img", "create", "-q", "-f", "qcow2", "-F", str(info["format"]), "-b", str(base),
          str(sd / OVERLAY)], "create overlay", spec.name)
    if disk_bytes is not None and disk_bytes > base_size:
        _run(["qemu-img", "resize", "-q", str(sd / OVERLAY), str(disk_bytes)], "resize disk",
             spec.name)
    if spec.image:
        _make_cloud_init_seed(spec, sd / SEED)
        kernel = initrd = None
    else:
        _make_lab_seed(spec, sd / SEED)
        kernel, initrd = base.parent / "vmlinuz", base.parent / "initrd.img"
    sock_dir = _sock_dir(sd)
    kvm = use_kvm()
    mem, cpus = vm_resources(spec.cpus, spec.memory_mib)
    args = plan_qemu_args(arch=spec.arch, kvm=kvm, state_dir=sd, sock_dir=sock_dir,
                          ssh_port=spec.ssh_port, kernel=kernel, initrd=initrd,
                          memory_mib=mem, cpus=cpus)
    args[0] = exe
    (sd / ARGS).write_text(json.dumps(args) + "\n")
    rec = NodeRecord(name=spec.name, kind="vm", arch=spec.arch, ssh_port=spec.ssh_port,
                     ident=str(sd / PIDFILE),
                     extra={"state_dir": str(sd), "sock_dir": str(sock_dir), "base": str(base),
                            "accel": "kvm" if kvm else "tcg", "user_image": bool(spec.image),
                            "disk_bytes": disk_bytes or base_size, "memory_mib": mem,
                            "cpus": cpus, "serial_log": str(sd / SERIAL)})
    _start(rec, args)
    return rec


def _start(rec: NodeRecord, args: list[str]) -> None:
    sd = Path(rec.extra["state_dir"])
    res = subprocess.run(args, text=True, capture_output=True, check=False)
    if res.returncode != 0 or _pid(sd) is None:
        raise ProvisionError(f"{rec.name}: qemu did not start (exit {res.returncode}): "
                             f"{res.stderr.strip()[-800:]}\n{log_tail(rec)}")
    (sd / BOOTED).write_text(f"{time.time()}\n")


def _pid(state_dir: Path) -> int | None:
    """The pid of this node's qemu if it runs (checked against its command line)."""
    try:
        pid = int((state_dir / PIDFILE).read_text().strip())
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    except (OSError, ValueError):
        return None
    return pid if str(state_dir / OVERLAY) in cmdline else None


def _state_dir(rec: NodeRecord) -> Path:
    return Path(rec.extra.get("state_dir") or Path(rec.ident).parent)


def log_tail(rec: NodeRecord, lines: int = 30) -> str:
    """The last lines of the serial console, for error messages."""
    path = _state_dir(rec) / SERIAL
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return f"(no serial log at {path})"
    clean = (ANSI.sub("", ln).strip() for ln in text.splitlines())
    tail = [ln for ln in clean if ln][-lines:]
    return f"last {len(tail)} lines of {path}:\n" + "\n".join(tail)


def status(rec: NodeRecord) -> dict[str, Any]:
    sd = _state_dir(rec)
    if _pid(sd) is None:
        return {"running": False, "uptime_s": None}
    try:
        booted = float((sd / BOOTED).read_text())
    except (OSError, ValueError):
        return {"running": True, "uptime_s": None}
    return {"running": True, "uptime_s": round(time.time() - booted, 1)}


def down(rec: NodeRecord) -> None:
    """Stop qemu and remove the overlay, seed, sockets, pid file and log (idempotent)."""
    sd = _state_dir(rec)
    pid = _pid(sd)
    if pid is not None:
        _kill(pid)
    sock_dir = Path(rec.extra.get("sock_dir") or sd)
    for f in (OVERLAY, SEED, PIDFILE, SERIAL, ARGS, BOOTED):
        (sd / f).unlink(missing_ok=True)
    for f in (QMP_SOCK, QGA_SOCK):
        (sock_dir / f).unlink(missing_ok=True)
    if sock_dir != sd and sock_dir.name.startswith("provision-vm-"):
        with contextlib.suppress(OSError):
            sock_dir.rmdir()


def cleanup(lab_dir: Path) -> list[int]:
    """Stop qemu processes left running from ``lab_dir`` (e.g. after its state file was
    lost): only processes whose command line names a disk under ``lab_dir``. Returns pids."""
    marker = f"file={lab_dir.resolve()}/"
    killed = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            argv = (proc / "cmdline").read_bytes().decode(errors="replace").split("\0")
        except OSError:
            continue
        if argv and Path(argv[0]).name.startswith("qemu-system") and any(
                a.startswith(marker) for a in argv):
            _kill(int(proc.name))
            killed.append(int(proc.name))
    return killed


def _kill(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    if not _wait_gone(pid, 10):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        _wait_gone(pid, 10)


def _wait_gone(pid: int, timeout: float) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if not Path(f"/proc/{pid}").exists():
            return True
        with contextlib.suppress(OSError):
            stat = Path(f"/proc/{pid}/stat").read_text()
            if stat.rsplit(")", 1)[1].split()[0] == "Z":
                return True
        time.sleep(0.1)
    return False


# ---------------------------------------------------------------- reboot (QMP + guest agent)

class _Qmp:
    """A minimal QMP client: commands and events over the node's unix socket."""

    def __init__(self, path: Path, timeout: float = 10.0) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.connect(str(path))
        self.buf = b""
        self.events: list[dict[str, Any]] = []
        self._read()  # greeting
        self.execute("qmp_capabilities")

    def _read(self) -> dict[str, Any]:
        while b"\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("QMP socket closed")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return json.loads(line)

    def execute(self, command: str, **arguments: Any) -> Any:
        msg: dict[str, Any] = {"execute": command}
        if arguments:
            msg["arguments"] = arguments
        self.sock.sendall(json.dumps(msg).encode() + b"\n")
        while True:
            reply = self._read()
            if "event" in reply:
                self.events.append(reply)
                continue
            if "error" in reply:
                raise ProvisionError(f"QMP {command}: {reply['error'].get('desc')}")
            return reply.get("return")

    def wait_event(self, names: set[str], timeout: float) -> str | None:
        end = time.monotonic() + timeout
        for ev in self.events:
            if ev["event"] in names:
                return ev["event"]
        while time.monotonic() < end:
            self.sock.settimeout(max(0.1, end - time.monotonic()))
            try:
                ev = self._read()
            except TimeoutError:
                return None
            except ConnectionError:
                return "CLOSED"
            if ev.get("event") in names:
                return ev["event"]
        return None

    def close(self) -> None:
        self.sock.close()


def _guest_agent_command(path: Path, mode: str, timeout: float = 8.0) -> bool:
    """Ask the guest agent for a clean ``reboot`` or ``powerdown``; False when no agent
    answers."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(timeout)
            s.connect(str(path))
            token = int(time.time()) % 1_000_000
            s.sendall(json.dumps({"execute": "guest-sync", "arguments": {"id": token}}).encode()
                      + b"\n")
            buf = b""
            while f'"return": {token}'.encode() not in buf:
                chunk = s.recv(4096)
                if not chunk:
                    return False
                buf += chunk
            s.sendall(json.dumps({"execute": "guest-shutdown", "arguments": {"mode": mode}}
                                 ).encode() + b"\n")
            return True
    except OSError:
        return False


def stop(rec: NodeRecord, timeout: float = REBOOT_TIMEOUT_S) -> None:
    """Shut the guest down cleanly (guest agent, else the ACPI power button) and wait for
    qemu to exit; the overlay stays, so a test can e.g. ``qemu-img resize`` it and
    ``start`` again (the disk-growth case)."""
    sd = _state_dir(rec)
    pid = _pid(sd)
    if pid is None:
        return
    sock_dir = Path(rec.extra.get("sock_dir") or sd)
    if not _guest_agent_command(sock_dir / QGA_SOCK, "powerdown"):
        qmp = _Qmp(sock_dir / QMP_SOCK)
        try:
            qmp.execute("system_powerdown")
        finally:
            qmp.close()
    if not _wait_gone(pid, timeout):
        _kill(pid)
    (sd / PIDFILE).unlink(missing_ok=True)


def start(rec: NodeRecord) -> None:
    """Start a stopped VM again with the same overlay, seed, port and arguments."""
    sd = _state_dir(rec)
    if _pid(sd) is not None:
        return
    _start(rec, json.loads((sd / ARGS).read_text()))


def reboot(rec: NodeRecord) -> None:
    """Reboot the guest cleanly and return once it went down (the SSH port stays).

    With the guest agent (baked in the lab image): ``guest-shutdown mode=reboot`` (a normal
    ``shutdown -r``), then qemu's RESET event. Without one (a cloud image): the ACPI power
    button, wait for qemu to exit after the guest shut down, and start qemu again with the
    same overlay and arguments.
    """
    sd = _state_dir(rec)
    pid = _pid(sd)
    if pid is None:
        raise ProvisionError(f"{rec.name}: the VM is not running\n{log_tail(rec)}")
    sock_dir = Path(rec.extra.get("sock_dir") or sd)
    qmp = _Qmp(sock_dir / QMP_SOCK)
    try:
        if _guest_agent_command(sock_dir / QGA_SOCK, "reboot"):
            if qmp.wait_event({"RESET"}, REBOOT_TIMEOUT_S) == "RESET":
                (sd / BOOTED).write_text(f"{time.time()}\n")
                return
            raise ProvisionError(f"{rec.name}: the guest did not reboot within "
                                 f"{REBOOT_TIMEOUT_S:.0f} s\n{log_tail(rec)}")
        qmp.execute("system_powerdown")
    finally:
        qmp.close()
    if not _wait_gone(pid, REBOOT_TIMEOUT_S):
        _kill(pid)
    args = json.loads((sd / ARGS).read_text())
    _start(rec, args)
