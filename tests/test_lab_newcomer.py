"""Off the demo path: `lab ssh` with one quoted command, VM defaults that pass doctor's own
checks for the chosen mode, `--cpus/--memory`, doctor's disk check counting the space
bootstrap grows into, and singular wording. Fast: pure functions plus one real sshd."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from provision.doctor import checks as c
from provision.doctor.model import PASS, WARN, HostSpec
from provision.errors import UsageError
from provision.lab import manager, vm


@pytest.mark.parametrize(("words", "remote"), [
    ([], None),
    (["ps aux | grep apt"], "ps aux | grep apt"),  # one word: a shell command line, as ssh
    (["uname", "-m"], "uname -m"),
    (["sh", "-c", "echo $HOME"], "sh -c 'echo $HOME'"),  # several: each word as given
])
def test_lab_ssh_remote_command_is_like_ssh(words, remote):
    assert manager.remote_command(words) == remote


@pytest.mark.sshd
def test_one_quoted_pipeline_runs_on_the_remote_shell(tmp_path):
    """The argument `lab ssh` hands to OpenSSH, against a real sshd: the pipe runs there."""
    from sshd_fixtures import SSHD, start_sshd

    if not Path(SSHD).exists():
        pytest.skip("needs Debian's openssh-server")
    with start_sshd(tmp_path / "sshd") as server:
        argv = ["ssh", "-i", str(server.user_key), "-p", str(server.port),
                "-o", f"UserKnownHostsFile={server.known_hosts}", "-o", "BatchMode=yes",
                "-o", "StrictHostKeyChecking=yes", "--", f"{server.user}@{server.address}",
                manager.remote_command(["echo provision-apt | tr a-z A-Z | grep -c APT"])]
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0 and proc.stdout.strip() == "1", proc.stderr


@pytest.mark.parametrize(("mode", "control_plane"), [
    ("kubeadm", True), ("kubeadm", False), ("minikube", True)])
def test_vm_defaults_pass_doctors_cpu_and_memory_checks(mode, control_plane, monkeypatch):
    monkeypatch.delenv("PROVISION_LAB_VM_CPUS", raising=False)
    monkeypatch.delenv("PROVISION_LAB_VM_MEMORY", raising=False)
    plan = manager.make_plan(nodes=1 if mode == "minikube" else 2, mode=mode, kind="vm")
    name = plan.control_plane_names[0] if control_plane else plan.worker_names[0]
    cpus, memory_mib = manager.node_resources(plan, name)
    assert plan.disk == manager.DEFAULT_VM_DISK
    # what the guest reports: the kernel and firmware keep ~6 % of a small VM's RAM
    mem_total_kib = int(memory_mib * 1024 * 0.94)
    spec = HostSpec("lab", mode=mode, control_plane=control_plane)
    sections = {"nproc": str(cpus), "meminfo": f"MemTotal: {mem_total_kib} kB\n"}
    assert c.check_cpu(spec, sections).status == PASS
    assert c.check_memory(spec, sections).status == PASS


def test_cpus_and_memory_flags(monkeypatch):
    monkeypatch.setenv("PROVISION_LAB_VM_CPUS", "3")
    plan = manager.make_plan(kind="vm", cpus=4, memory="6G")
    assert manager.node_resources(plan, "lab-1") == (4, 6144)
    assert manager.node_resources(manager.make_plan(kind="vm", memory="3072M"),
                                  "lab-1") == (3, 3072)  # the environment, then the mode
    assert manager.node_resources(manager.make_plan(), "lab-1") == (None, None)
    with pytest.raises(UsageError) as err:
        manager.make_plan(cpus=2, memory="4G")
    assert "--cpus applies to --kind vm only" in str(err.value)
    assert "--memory applies to --kind vm only" in str(err.value)
    for bad in ("lots", "256M", "1T"):
        with pytest.raises(UsageError, match=f"--memory {bad}"):
            manager.make_plan(kind="vm", memory=bad)
    with pytest.raises(UsageError, match="--cpus 0"):
        manager.make_plan(kind="vm", cpus=0)
    assert vm.vm_resources(None, None, (2, 2560)) == (2560, 3)


DF = ("Filesystem 1-blocks Used Available Capacity Mounted on\n"
      "/dev/vda1 4123000000 1900000000 2000000000 48% /\n"
      "/dev/vda1 4123000000 1900000000 2000000000 48% /var/lib\n")
# the lab VM: a 4 GiB root partition on a 30 GiB overlay
LAB_VM_DISK = ("source=/dev/vda1\npartition=vda1\ndisk=vda\ndisk_size=62914560\n"
               "part vda1 2048 8386560")


def test_disk_check_counts_the_space_bootstrap_grows_into():
    spec = HostSpec("lab-1")
    [disk] = c.check_disk(spec, {"df": DF, "rootdisk": LAB_VM_DISK})
    assert disk.status == PASS, disk.message
    assert "more once bootstrap grows the root partition" in disk.message
    assert c.check_unallocated(spec, {"rootdisk": LAB_VM_DISK}).status == WARN
    [alone] = c.check_disk(spec, {"df": DF})  # nothing to grow into: 2 GB free is too little
    assert alone.status == "FAIL"


def test_validate_says_one_host_not_one_hosts(tmp_path, capsys, monkeypatch):
    from provision.cli import main

    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    (tmp_path / "key").write_text("k")
    (tmp_path / "key").chmod(0o600)  # validation refuses a key others can read
    (tmp_path / "hosts.yml").write_text(
        "all:\n  vars:\n    provision_mode: minikube\n    ansible_user: ubuntu\n"
        f"    ansible_ssh_private_key_file: {tmp_path / 'key'}\n"
        "  children:\n    control_plane:\n      hosts:\n        vm1: {ansible_host: 10.0.0.1}\n")
    with pytest.raises(SystemExit) as done:
        main(["-i", str(tmp_path / "hosts.yml"), "validate"])
    assert done.value.code == 0
    out = capsys.readouterr().out
    assert "valid: 1 host, mode minikube, 1 control plane, 0 workers" in out


REPO = Path(__file__).resolve().parent.parent
FAKE_PROVISION = """#!/bin/sh
# a stand-in for .venv/bin/provision: logs its arguments; a kubeadm container lab is up
echo "$*" >> "$CALLS"
case "$*" in
  *--json*bootstrap*) if [ -n "$FAKE_UNREACHABLE" ]; then
            echo '{"ok": false, "exit_code": 3, "hosts": {"lab-1": {"changed": 0}},
            "errors": [{"host": "lab-1", "task": "Gathering Facts",
            "message": "Timeout (32s) waiting for privilege escalation prompt"}],
            "log": "/x/stdout"}'; exit 3; fi
            echo '{"ok": true, "exit_code": 0, "hosts": {"lab-1": {"changed": 0}},
            "errors": [], "log": "/x/stdout"}' ;;
  *--json*) echo '{"exit_code": 0, "mode": "kubeadm", "kind": "container", "arch": "amd64",
            "hosts": {"lab-1": {"changed": 0}}}' ;;
esac
"""


def _demo(tmp_path, **env):
    import os
    import sys

    fake = tmp_path / "provision"
    fake.write_text(FAKE_PROVISION)
    fake.chmod(0o755)
    calls = tmp_path / "calls"
    base = {k: v for k, v in os.environ.items() if not k.startswith("DEMO_")}
    proc = subprocess.run(["bash", str(REPO / "scripts/demo.sh")], capture_output=True,
                          text=True, timeout=120, check=False,
                          env={**base, "PROVISION": str(fake), "PYTHON": sys.executable,
                               "CALLS": str(calls), **env})
    return proc, calls.read_text().splitlines() if calls.exists() else []


def test_simulated_demo_refuses_a_running_lab_of_another_mode(tmp_path):
    """make demo with DEMO_MODE=minikube while a kubeadm lab is up (a stand-in provision
    reports it): exit 2 naming both, nothing bootstrapped."""
    proc, calls = _demo(tmp_path, DEMO_MODE="minikube")
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "lab in kubeadm mode is already up, but DEMO_MODE=minikube" in proc.stderr
    assert "lab down" in proc.stderr
    assert not [c for c in calls if "bootstrap" in c]


def test_simulated_demo_adapts_to_the_running_lab_when_the_mode_is_not_given(tmp_path):
    proc, calls = _demo(tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Reusing the lab that is up (container, amd64, kubeadm mode" in proc.stdout
    assert "minikube" not in proc.stdout.split("Summary")[0]
    assert "-i lab bootstrap --components base,containerd" in calls
    assert not [c for c in calls if c.startswith("lab up")]


def test_simulated_demo_does_not_call_an_unreachable_second_run_idempotent(tmp_path):
    """The second bootstrap of make demo fails (a stand-in provision answers as the arm64
    demo's second run did: unreachable, changed 0): the demo says idempotence is NOT proven,
    with the error and the log, and exits with the run's code instead of "changed=0"."""
    proc, _ = _demo(tmp_path, FAKE_UNREACHABLE="1")
    assert proc.returncode == 3, proc.stdout + proc.stderr
    assert "idempotence NOT proven: the second run did not succeed (exit 3)" in proc.stdout
    assert "lab-1: Gathering Facts: Timeout (32s) waiting for privilege escalation" in proc.stdout
    assert "changed per host" not in proc.stdout
    assert "Summary" not in proc.stdout


def test_demo_installs_only_what_it_uses():
    def packages(**env):
        import os

        out = subprocess.run(["sh", str(REPO / "scripts/testenv.sh"), "packages", "demo"],
                             capture_output=True, text=True, check=True,
                             env={**os.environ, **env}).stdout.split()
        return set(out)

    container = packages(DEMO_KIND="container", DEMO_ARCH="amd64")
    assert container == {"debootstrap", "openssh-client", "docker.io", "iptables"}
    assert packages(DEMO_ARCH="arm64") - container == {"qemu-user-static", "binfmt-support"}
    assert "qemu-system-x86" in packages(DEMO_KIND="vm")
    assert "docker.io" not in packages(DEMO_KIND="vm")
    everything = set(subprocess.run(["sh", str(REPO / "scripts/testenv.sh"), "packages"],
                                    capture_output=True, text=True, check=True).stdout.split())
    assert {"pebble", "lego", "etcd-server"} <= everything - container


def test_ssh_wait_scales_with_hosts_per_cpu_unless_given():
    """The SSH wait of `lab up` (pure): one host's wait up to as many hosts as CPUs, then
    proportionally longer (16 containers on 2 cores outlasted the fixed 180 s); --ssh-timeout
    wins."""
    assert manager.ssh_timeout("container", "amd64", 1, cpus=2) == 180
    assert manager.ssh_timeout("container", "amd64", 2, cpus=2) == 180
    assert manager.ssh_timeout("container", "amd64", 16, cpus=2) == 180 * 8
    assert manager.ssh_timeout("container", "amd64", 16, cpus=32) == 180
    assert manager.ssh_timeout("vm", "amd64", 3, cpus=1) == 600 * 3
    assert manager.ssh_timeout("container", "amd64", 16, cpus=2, given=60) == 60
    with pytest.raises(UsageError, match="--ssh-timeout 5: must be between 10 and 86400"):
        manager.make_plan(ssh_timeout=5)


@pytest.mark.parametrize(("flags", "nodes", "expected"), [
    ([], 4, manager.SSH_TIMEOUT[("container", "amd64")] * 2.0),  # 4 hosts on 2 CPUs
    (["--ssh-timeout", "45"], 4, 45.0),
])
def test_lab_up_waits_for_ssh_as_long_as_the_flag_or_the_scaled_default_simulated(
        tmp_path, monkeypatch, flags, nodes, expected):
    """Simulated (a stand-in backend starts nothing and SSH is not contacted): `lab up`
    hands the wait of --ssh-timeout, else the hosts-per-CPU scaled default, to every host's
    SSH wait; `lab down` then removes every file."""
    import types

    from provision.cli import main
    from provision.lab import hostlimits
    from provision.lab.backend import NodeRecord

    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))
    monkeypatch.setattr(manager.os, "cpu_count", lambda: 2)
    stub = types.SimpleNamespace(
        ensure_image=lambda arch, image, progress=None: "stand-in-image",
        up=lambda spec: NodeRecord(name=spec.name, kind="container", arch=spec.arch,
                                   ssh_port=spec.ssh_port, ident=f"stand-in-{spec.name}"),
        down=lambda rec: None)
    monkeypatch.setattr(manager, "backend", lambda kind: stub)
    monkeypatch.setattr(manager.shutil, "which", lambda name: None)  # cleanup: no docker
    monkeypatch.setattr(hostlimits, "container_problem", lambda nodes: None)
    waits: dict[str, float] = {}

    def wait_ssh(rec, user, timeout):
        waits[rec.name] = timeout
        return 0.0

    monkeypatch.setattr(manager, "wait_ssh", wait_ssh)
    with pytest.raises(SystemExit) as done:
        main(["lab", "up", "--nodes", str(nodes), *flags])
    assert done.value.code == 0
    assert waits == {f"lab-{i}": expected for i in range(1, nodes + 1)}
    with pytest.raises(SystemExit) as done:
        main(["lab", "down"])
    assert done.value.code == 0
    assert list((tmp_path / "provision").rglob("*")) == []


def test_inotify_room_for_the_lab_containers():
    """Pure: root's inotify instances (shared by every systemd container) must cover
    the new containers; unknown numbers (not root) check nothing."""
    from provision.lab import hostlimits

    assert hostlimits.inotify_problem(8, 128, 60) is None  # 8 x 6 more fit
    problem = hostlimits.inotify_problem(16, 128, 60)
    assert problem is not None
    assert "--nodes 16" in problem and "max_user_instances is 128" in problem
    assert "60 are in use" in problem
    assert "sysctl -w fs.inotify.max_user_instances=1024" in problem
    assert hostlimits.inotify_problem(16, None, 60) is None
    assert hostlimits.inotify_problem(16, 128, None) is None


def test_inotify_in_use_counts_inotify_descriptors_of_the_user(tmp_path):
    """inotify_in_use on a stand-in /proc tree (simulated: fd links made by the test)."""
    import os

    from provision.lab import hostlimits

    for pid, targets in (("10", ["anon_inode:inotify", "anon_inode:inotify", "/dev/null"]),
                         ("11", ["anon_inode:[eventfd]", "anon_inode:inotify"])):
        fd = tmp_path / pid / "fd"
        fd.mkdir(parents=True)
        for i, target in enumerate(targets):
            os.symlink(target, fd / str(i))
    (tmp_path / "self").mkdir()
    (tmp_path / "sys").mkdir()
    assert hostlimits.inotify_in_use(os.geteuid(), proc=tmp_path) == 3
    assert hostlimits.inotify_in_use(os.geteuid() + 1, proc=tmp_path) in (0, None)
    limit = tmp_path / "max_user_instances"
    limit.write_text("128\n")
    assert hostlimits.inotify_limit(limit) == 128
    assert hostlimits.inotify_limit(tmp_path / "missing") is None


def test_lab_up_refuses_when_root_inotify_instances_would_run_out_simulated(
        tmp_path, monkeypatch, capsys):
    """Simulated limits (the /proc readers return what a busy machine had): `lab up --nodes
    16` exits 2 naming the sysctl, before any image, container or file is made."""
    from provision.cli import main
    from provision.lab import container, hostlimits

    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))
    monkeypatch.setattr(hostlimits, "inotify_limit", lambda: 128)
    monkeypatch.setattr(hostlimits, "inotify_in_use", lambda: 60)

    def no_image(*args, **kwargs):
        raise AssertionError("an image was looked at")

    monkeypatch.setattr(container, "ensure_image", no_image)
    with pytest.raises(SystemExit) as done:
        main(["lab", "up", "--nodes", "16"])
    assert done.value.code == 2
    err = capsys.readouterr().err
    assert "fs.inotify.max_user_instances is 128 and 60 are in use" in err
    assert list((tmp_path / "provision").rglob("*")) == []
