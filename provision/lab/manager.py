"""Orchestration of `provision lab`: validate the plan, start nodes through a backend,
wait until SSH answers with the pre-recorded host key, write the lab inventory, and tear
everything down again. Backends: ``provision.lab.container`` and ``provision.lab.vm``.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import os
import shlex
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import yaml

from provision import paths
from provision.errors import EXIT_UNREACHABLE, ProvisionError, UsageError
from provision.lab import keys, state
from provision.lab.backend import ARCHES, KINDS, NodeRecord, NodeSpec
from provision.safeload import ascii_int
from provision.stepdisplay import StepDisplay

MODES = ("kubeadm", "minikube")
#: Root disk of a lab VM when --disk is not given: enough for doctor's disk check (20 GB
#: free) once bootstrap has grown the partition; a qcow2 overlay only takes what is written.
DEFAULT_VM_DISK = "30G"
DEFAULT_USER = "provision"
MAX_NODES = 16  # benchmarks/upgrade_sim.py runs 1 control plane + 10 workers
# seconds until SSH must answer ONE host, by kind and arch (arm64 containers run under
# emulation); `lab up` scales this by hosts per CPU (see ssh_timeout) unless --ssh-timeout
SSH_TIMEOUT = {("container", "amd64"): 180, ("container", "arm64"): 900,
               ("vm", "amd64"): 600, ("vm", "arm64"): 1800}
SSH_TIMEOUT_RANGE = (10, 86400)  # --ssh-timeout bounds, seconds

Progress = Callable[[str], None]
#: The named steps of `lab up`, as its display shows them (step K/3).
UP_STEPS = ("image", "start", "ssh")


def _hosts(n: int) -> str:
    return f"{n} host" + ("" if n == 1 else "s")


@dataclass(frozen=True)
class LabPlan:
    """What `lab up` will create; built and checked before anything starts."""

    nodes: int
    control_planes: int
    mode: str
    arch: str
    kind: str
    image: str | None
    disk: str | None
    user: str = DEFAULT_USER
    cpus: int | None = None  # vm only: --cpus (None: what the mode needs)
    memory_mib: int | None = None  # vm only: --memory (None: what the mode needs)
    ssh_timeout: int | None = None  # --ssh-timeout (None: ssh_timeout()'s scaled default)

    @property
    def names(self) -> list[str]:
        return [f"lab-{i}" for i in range(1, self.nodes + 1)]

    @property
    def control_plane_names(self) -> list[str]:
        return self.names[: self.control_planes]

    @property
    def worker_names(self) -> list[str]:
        return self.names[self.control_planes:]


def make_plan(*, nodes: int = 1, control_planes: int = 1, mode: str = "kubeadm",
              arch: str = "amd64", kind: str = "container", image: str | None = None,
              disk: str | None = None, cpus: int | None = None,
              memory: str | None = None, ssh_timeout: int | None = None) -> LabPlan:
    """Check the flags of `lab up` (pure; raises UsageError naming the flag). A VM without
    --disk gets ``vm.DEFAULT_DISK``; CPUs and memory default to what the mode needs."""
    problems: list[str] = []
    memory_mib = None
    for flag, given in (("--cpus", cpus), ("--memory", memory)):
        if given is not None and kind != "vm":
            problems.append(f"{flag} applies to --kind vm only (containers share the "
                            "machine's CPUs and memory)")
    low, high = SSH_TIMEOUT_RANGE
    if ssh_timeout is not None and not low <= ssh_timeout <= high:
        problems.append(f"--ssh-timeout {ssh_timeout}: must be between {low} and {high} "
                        "seconds")
    if cpus is not None and not 1 <= cpus <= 64:
        problems.append(f"--cpus {cpus}: must be between 1 and 64")
    if memory is not None and kind == "vm":
        if not _valid_size(memory) or memory[-1].upper() == "T":
            problems.append(f"--memory {memory}: expected a size like 4G or 3072M")
        else:
            memory_mib = int(memory[:-1]) * (1024 if memory[-1].upper() == "G" else 1)
            if memory_mib < 512:
                problems.append(f"--memory {memory}: at least 512M")
    if kind not in KINDS:
        problems.append(f"--kind {kind}: must be one of {', '.join(KINDS)}")
    if arch not in ARCHES:
        problems.append(f"--arch {arch}: must be one of {', '.join(ARCHES)}")
    if mode not in MODES:
        problems.append(f"--mode {mode}: must be one of {', '.join(MODES)}")
    if not 1 <= nodes <= MAX_NODES:
        problems.append(f"--nodes {nodes}: must be between 1 and {MAX_NODES}")
    if control_planes < 1:
        problems.append(f"--control-planes {control_planes}: at least 1 control plane")
    elif control_planes > nodes:
        problems.append(f"--control-planes {control_planes} is more than --nodes {nodes}")
    if mode == "minikube" and nodes != 1:
        problems.append(f"--mode minikube runs on one host: use --nodes 1 (got {nodes})")
    if disk is not None:
        if kind != "vm":
            problems.append("--disk applies to --kind vm only (containers have no disks)")
        elif not _valid_size(disk):
            problems.append(f"--disk {disk}: expected a size like 20G or 8192M")
    if image is not None and kind == "vm" and not Path(image).expanduser().is_file():
        problems.append(f"--image {image}: no such file (a cloud image .img/.qcow2)")
    if problems:
        raise UsageError("\n".join(problems))
    if kind == "vm" and disk is None:
        disk = DEFAULT_VM_DISK
    return LabPlan(nodes=nodes, control_planes=control_planes, mode=mode, arch=arch,
                   kind=kind, image=image, disk=disk, cpus=cpus, memory_mib=memory_mib,
                   ssh_timeout=ssh_timeout)


def ssh_timeout(kind: str, arch: str, nodes: int, cpus: int | None = None,
                given: int | None = None) -> float:
    """Seconds `lab up` waits for SSH on ``nodes`` hosts (pure): ``given`` (--ssh-timeout)
    when set, else the one-host wait of ``SSH_TIMEOUT`` times hosts per CPU (at least 1x).
    The hosts boot at once on the machine's CPUs: on 2 cores, 16 containers took longer than
    one container's 180 s (systemd, sshd and the first logins of all of them)."""
    if given is not None:
        return float(given)
    base = SSH_TIMEOUT.get((kind, arch), 600)
    return base * max(1.0, nodes / max(1, cpus or os.cpu_count() or 1))


def node_resources(plan: LabPlan, name: str) -> tuple[int | None, int | None]:
    """(cpus, memory MiB) of one VM: the flags, else PROVISION_LAB_VM_CPUS/_MEMORY, else what
    doctor requires for the mode and the node's role. Containers: (None, None)."""
    if plan.kind != "vm":
        return None, None
    from provision.lab.vm import default_resources, vm_resources

    default = default_resources(plan.mode, name in plan.control_plane_names)
    memory_mib, cpus = vm_resources(plan.cpus, plan.memory_mib, default)
    return cpus, memory_mib


def _valid_size(text: str) -> bool:
    number = ascii_int(text[:-1])  # bounded: no 5000-digit int, no Unicode digits
    return number is not None and number > 0 and text[-1:].upper() in ("M", "G", "T")


def backend(kind: str) -> ModuleType:
    """The backend module of ``kind``; a clear exit-2 error when it is not available."""
    if kind not in KINDS:
        raise UsageError(f"--kind {kind}: must be one of {', '.join(KINDS)}")
    try:
        return importlib.import_module(f"provision.lab.{kind}")
    except ModuleNotFoundError as exc:
        if exc.name == f"provision.lab.{kind}":
            raise UsageError(f"--kind {kind}: the {kind} backend is not available in this "
                             "version of provision (use --kind container)") from exc
        raise


# ---------------------------------------------------------------- paths of one lab

def key_path() -> Path:
    return paths.lab_dir() / "id_ed25519"


def known_hosts_path() -> Path:
    return paths.lab_dir() / "known_hosts"


def node_dir(name: str) -> Path:
    return paths.lab_dir() / "nodes" / name


def free_port(taken: set[int]) -> int:
    """A free TCP port on 127.0.0.1 (the kernel picks; never one already handed out)."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        if port not in taken:
            taken.add(port)
            return port
    raise ProvisionError("no free TCP port on 127.0.0.1")


# ---------------------------------------------------------------- inventory

def inventory_data(st: state.LabState) -> tuple[dict[str, Any], dict[str, Any]]:
    """(hosts.yml, group_vars/all.yml) of the lab (pure)."""
    by_name = {n.name: n for n in st.nodes}

    def hosts(names: list[str]) -> dict[str, Any]:
        return {n: {"ansible_host": by_name[n].address, "ansible_port": by_name[n].ssh_port}
                for n in names if n in by_name}

    hosts_yml = {"all": {"children": {
        "control_plane": {"hosts": hosts(st.control_planes)},
        "workers": {"hosts": hosts(st.workers)},
    }}}
    kh = str(known_hosts_path())
    all_yml = {
        "provision_mode": st.mode,
        "ansible_user": st.user,
        "ansible_ssh_private_key_file": str(key_path()),
        "ansible_python_interpreter": "/usr/bin/python3",
        "ssh_known_hosts_file": kh,
        "ansible_ssh_common_args": f"-o UserKnownHostsFile={kh} -o StrictHostKeyChecking=yes"
                                   " -o IdentitiesOnly=yes",
    }
    if st.mode == "kubeadm":  # lab hosts have no spare addresses for a MetalLB pool
        all_yml["ingress_nginx_service_mode"] = "NodePort"
    if emulated(st):
        all_yml.update(EMULATED_VARS)
    return hosts_yml, all_yml


# qemu-user (an arm64 container on an amd64 machine) passes no netlink netfilter through, so
# iptables-nft and dockerd's NAT setup fail there ("Failed to initialize nft: Protocol not
# supported"): the emulated dockerd runs only without its iptables rules and default bridge
# (as tests/test_bootstrap_arm64.py proves), and it cannot run containers (no image check).
# Every SSH login and sudo there runs under emulation too (sshd, PAM, sudo, python): on a loaded
# 2-core machine `make demo DEMO_ARCH=arm64`'s second bootstrap failed its first task with
# "Timeout (32s) waiting for privilege escalation prompt" (pam_systemd alone waited 25 s for
# logind), so the connection timeout (ansible.cfg: 30 s) is raised for these hosts.
EMULATED_VARS: dict[str, Any] = {
    "docker_daemon_options": {"iptables": False, "ip6tables": False, "bridge": "none"},
    "docker_verify_image": "",
    "ansible_ssh_timeout": 120,
}


def emulated(st: state.LabState) -> bool:
    """Lab hosts whose binaries run under qemu-user: containers of another architecture."""
    import platform

    native = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}
    return st.kind == "container" and st.arch != native.get(platform.machine().lower(), "")


def write_inventory(st: state.LabState) -> Path:
    inv = paths.lab_inventory_dir()
    (inv / "group_vars").mkdir(parents=True, exist_ok=True)
    hosts_yml, all_yml = inventory_data(st)
    header = "# Written by `provision lab up`; removed by `provision lab down`.\n"
    (inv / "hosts.yml").write_text(header + yaml.safe_dump(hosts_yml, sort_keys=False))
    (inv / "group_vars" / "all.yml").write_text(
        header + yaml.safe_dump(all_yml, sort_keys=False))
    return inv


# ---------------------------------------------------------------- SSH

def ssh_client(rec: NodeRecord, user: str, timeout: float = 10) -> Any:
    """A paramiko client connected to ``rec`` with the lab key; host key checked against
    the lab's known_hosts (RejectPolicy: an unknown or changed key fails)."""
    import paramiko

    client = paramiko.SSHClient()
    client.load_host_keys(str(known_hosts_path()))
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
    client.connect(rec.address, port=rec.ssh_port, username=user,
                   key_filename=str(key_path()), look_for_keys=False, allow_agent=False,
                   timeout=timeout, banner_timeout=timeout, auth_timeout=timeout)
    return client


def _banner(address: str, port: int, timeout: float) -> bool:
    """True when an SSH server greets on the port (docker's proxy accepts connections
    before sshd inside is ready; paramiko would log a traceback for each such try)."""
    try:
        with socket.create_connection((address, port), timeout=timeout) as s:
            s.settimeout(timeout)
            return s.recv(4).startswith(b"SSH-")
    except OSError:
        return False


def wait_ssh(rec: NodeRecord, user: str, timeout: float) -> float:
    """Wait until ``rec`` answers SSH with its recorded host key and runs ``sudo -n true``;
    return the seconds waited. Each try gets generous time under emulation (arm64 sshd
    re-executes itself per connection, seconds on a loaded machine)."""
    step = 30.0 if rec.arch == "arm64" and os.uname().machine != "aarch64" else 10.0
    import paramiko

    logging.getLogger("paramiko").setLevel(logging.CRITICAL)
    start = time.monotonic()
    last = "no answer"
    while True:
        try:
            if not _banner(rec.address, rec.ssh_port, step):
                raise OSError("no SSH banner yet")
            client = ssh_client(rec, user, timeout=step)
            try:
                _, out, _ = client.exec_command("sudo -n true", timeout=step * 2)
                if out.channel.recv_exit_status() == 0:
                    return time.monotonic() - start
                last = "sudo -n true failed"
            finally:
                client.close()
        except paramiko.BadHostKeyException as exc:
            raise ProvisionError(f"{rec.name}: SSH host key does not match the lab's "
                                 f"known_hosts ({known_hosts_path()}): {exc}") from exc
        except (OSError, EOFError, paramiko.SSHException) as exc:
            last = f"{type(exc).__name__}: {exc}"
        if time.monotonic() - start > timeout:
            raise ProvisionError(
                f"{rec.name}: SSH on 127.0.0.1:{rec.ssh_port} did not answer within "
                f"{timeout:.0f}s (last error: {last}){_console_tail(rec)}",
                exit_code=EXIT_UNREACHABLE)
        time.sleep(0.3)


def _console_tail(rec: NodeRecord) -> str:
    """Why a node did not come up: the end of a VM's serial console, a container's systemd
    state ('' when there is nothing to say)."""
    try:
        tail = backend(rec.kind).log_tail(rec)
    except Exception:  # noqa: BLE001 - the tail is a courtesy; the timeout is the error
        return ""
    if not tail:
        return ""
    return f"\nlast lines of the serial console:\n{tail}" if rec.kind == "vm" else f"\n{tail}"


def _wait_all(recs: list[NodeRecord], user: str, timeout: float,
              on_host: Callable[[str, str], None] | None = None) -> dict[str, float]:
    results: dict[str, float] = {}
    errors: dict[str, Exception] = {}
    tell = on_host or (lambda _name, _state: None)

    def one(rec: NodeRecord) -> None:
        tell(rec.name, "waiting")
        try:
            results[rec.name] = wait_ssh(rec, user, timeout)
            tell(rec.name, "ready")
        except Exception as exc:  # noqa: BLE001 - reported below, per host
            errors[rec.name] = exc
            tell(rec.name, "failed")

    threads = [threading.Thread(target=one, args=(r,)) for r in recs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise ProvisionError("\n".join(str(e) for e in errors.values()),
                             exit_code=max(getattr(e, "exit_code", 1) for e in errors.values()))
    return results


# ---------------------------------------------------------------- commands

def up(plan: LabPlan, progress: Progress = print, display: StepDisplay | None = None
       ) -> tuple[state.LabState, dict[str, Any]]:
    """Start the lab of ``plan``; return its state and timings (seconds). When a node fails
    to start or answer, what was started stays recorded for `lab down` (and for a look).
    With ``display``, each of ``UP_STEPS`` is announced there and the SSH wait shows each
    host's state."""
    be = backend(plan.kind)
    try:
        with state.locked():
            try:
                return _up(plan, be, progress, display)
            except ProvisionError as exc:
                if state.load() is not None and not isinstance(exc, UsageError):
                    raise ProvisionError(
                        f"{exc}\n(what was started is recorded: inspect it with 'provision "
                        "lab status', remove it with 'provision lab down')",
                        exit_code=exc.exit_code) from exc
                raise
    finally:
        if state.load() is None:  # nothing was started (bad image, no docker): no files left
            (paths.lab_dir() / ".lock").unlink(missing_ok=True)
            _rmdir_if_empty(paths.lab_dir())


def _up(plan: LabPlan, be: ModuleType, progress: Progress, display: StepDisplay | None
        ) -> tuple[state.LabState, dict[str, Any]]:
    def phase(step: str, text: str) -> None:
        if display is not None:
            display.begin(step, text)
        elif step == "ssh":
            progress(text)

    current = state.load()
    if current is not None and current.nodes:
        raise UsageError(f"a lab is already up ({', '.join(n.name for n in current.nodes)}"
                         f" in {paths.lab_dir()}): run 'provision lab down' first")
    if plan.kind == "container":
        from provision.lab.hostlimits import container_problem

        problem = container_problem(plan.nodes)
        if problem:
            raise UsageError(problem)
    lab = paths.lab_dir()
    lab.chmod(0o700)
    timings: dict[str, Any] = {}
    start = time.monotonic()
    kwargs = {"progress": progress} if plan.kind == "container" else {}
    phase("image", f"the {plan.arch} {plan.kind} image")
    image = be.ensure_image(plan.arch, plan.image, **kwargs)
    timings["image_s"] = round(time.monotonic() - start, 2)
    st = state.LabState(kind=plan.kind, arch=plan.arch, mode=plan.mode, user=plan.user,
                        control_planes=plan.control_plane_names,
                        workers=plan.worker_names, image=image, lab_id=state.lab_id())
    state.save(st)
    key, pub = keys.ensure_user_key(lab)
    taken: set[int] = set()
    specs: list[NodeSpec] = []
    known: list[str] = []
    for name in plan.names:
        ndir = node_dir(name)
        ndir.mkdir(parents=True, exist_ok=True, mode=0o700)
        host_keys = keys.make_host_keys(ndir, name)
        cpus, memory_mib = node_resources(plan, name)
        spec = NodeSpec(name=name, kind=plan.kind, arch=plan.arch, image=plan.image,
                        disk=plan.disk, ssh_port=free_port(taken), user=plan.user,
                        pubkey=pub, host_keys=host_keys, state_dir=ndir, cpus=cpus,
                        memory_mib=memory_mib)
        specs.append(spec)
        known += keys.known_hosts_lines("127.0.0.1", spec.ssh_port, host_keys)
    keys.write_known_hosts(known_hosts_path(), known)
    start = time.monotonic()
    phase("start", f"{_hosts(len(specs))} ({plan.kind}, {plan.arch})")
    for spec in specs:
        progress(f"starting {spec.name} ({plan.kind}, {plan.arch}, SSH on "
                 f"127.0.0.1:{spec.ssh_port})")
        st.nodes.append(be.up(spec))
        state.save(st)  # so `down` cleans up even if a later node fails
    timings["start_s"] = round(time.monotonic() - start, 2)
    phase("ssh", f"waiting for SSH on {_hosts(len(specs))}")
    waited = _wait_all(st.nodes, plan.user,
                       ssh_timeout(plan.kind, plan.arch, len(st.nodes), given=plan.ssh_timeout),
                       display.host if display is not None else None)
    timings["ssh_wait_s"] = {k: round(v, 2) for k, v in waited.items()}
    timings["ready_s"] = round(time.monotonic() - start, 2)
    write_inventory(st)
    return st, timings


def down(progress: Progress = print) -> list[str]:
    """Remove every node, network, key, known_hosts, inventory and state file of the lab;
    return the names of the removed nodes. Safe to run when nothing is up."""
    lab = paths.lab_dir()
    if not lab.exists():
        return []
    removed: list[str] = []
    with state.locked():
        st = state.load(on_corrupt=lambda m: progress(
            f"warning: {m}; removing what is labelled with this lab instead"))
        if st is not None:
            for rec in st.nodes:
                progress(f"removing {rec.name}")
                backend(rec.kind).down(rec)
                removed.append(rec.name)
        from provision.lab import container

        container.cleanup(lab)
        vm = _optional_backend("vm")
        if vm is not None and hasattr(vm, "cleanup"):
            vm.cleanup(lab)
        shutil.rmtree(paths.lab_inventory_dir(), ignore_errors=True)
        shutil.rmtree(lab / "nodes", ignore_errors=True)
        for f in (known_hosts_path(), key_path(), Path(f"{key_path()}.pub"),
                  state.state_file()):
            f.unlink(missing_ok=True)
        (lab / ".lock").unlink(missing_ok=True)
    _rmdir_if_empty(lab)
    return removed


def _optional_backend(kind: str) -> ModuleType | None:
    try:
        return backend(kind)
    except UsageError:
        return None


def _rmdir_if_empty(path: Path) -> None:
    with contextlib.suppress(OSError):  # something not ours is in there: leave it
        path.rmdir()


def require_state() -> state.LabState:
    st = state.load()
    if st is None or not st.nodes:
        raise UsageError(f"no lab is up (no {state.state_file()}): run 'provision lab up'")
    return st


def require_node(st: state.LabState, name: str) -> NodeRecord:
    rec = st.node(name)
    if rec is None:
        raise UsageError(f"{name}: no such lab host (hosts: "
                         f"{', '.join(n.name for n in st.nodes)})")
    return rec


def status() -> list[dict[str, Any]]:
    st = require_state()
    rows = []
    for rec in st.nodes:
        info = backend(rec.kind).status(rec)
        group = "control_plane" if rec.name in st.control_planes else "workers"
        rows.append({"name": rec.name, "kind": rec.kind, "arch": rec.arch, "group": group,
                     "address": rec.address, "ssh_port": rec.ssh_port, "ident": rec.ident,
                     "running": bool(info.get("running")), "uptime_s": info.get("uptime_s")})
    return rows


def reboot(name: str, progress: Progress = print) -> float:
    """Reboot one node and wait for SSH; return seconds until SSH answered again."""
    st = require_state()
    rec = require_node(st, name)
    start = time.monotonic()
    progress(f"rebooting {name}")
    backend(rec.kind).reboot(rec)
    wait_ssh(rec, st.user, ssh_timeout(rec.kind, rec.arch, 1))
    return time.monotonic() - start


def ssh_argv(name: str, command: list[str]) -> list[str]:
    """The OpenSSH command line for `lab ssh` (host key checked, lab key only)."""
    st = require_state()
    rec = require_node(st, name)
    if shutil.which("ssh") is None:
        raise UsageError("ssh is not installed (apt-get install openssh-client)")
    argv = ["ssh", "-i", str(key_path()), "-p", str(rec.ssh_port),
            "-o", f"UserKnownHostsFile={known_hosts_path()}",
            "-o", "StrictHostKeyChecking=yes", "-o", "IdentitiesOnly=yes",
            "-o", "LogLevel=ERROR", "--", f"{st.user}@{rec.address}"]
    remote = remote_command(command)
    if remote:
        argv.append(remote)
    return argv


def remote_command(command: list[str]) -> str | None:
    """What the remote shell runs, as with ``ssh``: one word is a shell command line
    (``'ps aux | grep apt'``); several words are quoted so the remote shell sees them as given
    (``sh -c 'echo $HOME'``)."""
    if not command:
        return None
    if len(command) == 1:
        return command[0]
    return shlex.join(command)


def ssh(name: str, command: list[str]) -> int:
    """Run ``command`` on the node (its exit code), or an interactive shell."""
    argv = ssh_argv(name, command)
    if not command:
        os.execvp(argv[0], argv)
    return subprocess.run(argv, check=False).returncode
