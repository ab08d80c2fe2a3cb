"""`provision lab` with systemd containers: real docker containers, real sshd, real SSH.

The slow test starts three hosts, checks them through the lab inventory and `lab ssh`,
reboots one, and asserts that `lab down` leaves no container, network, volume, port
listener or file behind.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from lab_fixtures import lab_leftovers, lab_unavailable, port_is_listening, run_cli

from provision.errors import UsageError
from provision.lab import keys, manager, state
from provision.lab.backend import NodeRecord


@pytest.mark.parametrize(("args", "message"), [
    (["--nodes", "1", "--control-planes", "2"], "--control-planes 2 is more than --nodes 1"),
    (["--mode", "minikube", "--nodes", "2"], "--mode minikube runs on one host"),
    (["--nodes", "0"], "--nodes 0: must be between 1 and"),
    (["--control-planes", "0"], "--control-planes 0: at least 1"),
    (["--disk", "20G"], "--disk applies to --kind vm only"),
    (["--kind", "vm", "--disk", "twenty"], "--disk twenty: expected a size"),
    (["--kind", "vm", "--image", "/nonexistent/ubuntu.img"], "--image /nonexistent"),
    (["--arch", "sparc"], "sparc"),
    (["--ssh-timeout", "5"], "--ssh-timeout 5: must be between 10 and 86400 seconds"),
])
def test_lab_up_bad_flags_exit_2_and_touch_nothing(tmp_path: Path, args: list[str],
                                                   message: str) -> None:
    env = {"XDG_STATE_HOME": str(tmp_path), "PATH": "/usr/bin:/bin"}
    proc = run_cli("lab", "up", *args, env=env, timeout=60)
    assert proc.returncode == 2, proc.stderr
    assert message in proc.stderr
    assert not (tmp_path / "provision").exists(), "a rejected `lab up` created files"


@pytest.mark.container
def test_lab_up_unknown_container_image_exit_2_and_touch_nothing(tmp_path: Path) -> None:
    if shutil.which("docker") is None:
        pytest.skip("docker is not installed")
    env = {"XDG_STATE_HOME": str(tmp_path), "PATH": "/usr/bin:/bin"}
    proc = run_cli("lab", "up", "--image", "provision-no-such-image:1", env=env, timeout=60)
    assert proc.returncode == 2, proc.stderr
    assert "--image provision-no-such-image:1: no such local docker image" in proc.stderr
    assert list((tmp_path / "provision").rglob("*")) == []


def test_vm_kind_without_backend_is_a_clear_usage_error(monkeypatch: pytest.MonkeyPatch
                                                        ) -> None:
    monkeypatch.setitem(sys.modules, "provision.lab.vm", None)  # as if vm.py were absent
    with pytest.raises(UsageError, match="the vm backend is not available"):
        manager.backend("vm")


def test_lab_commands_without_a_lab_exit_2(tmp_path: Path) -> None:
    env = {"XDG_STATE_HOME": str(tmp_path), "PATH": "/usr/bin:/bin"}
    for args in (["status"], ["reboot", "lab-1"], ["ssh", "lab-1", "--", "true"]):
        proc = run_cli("lab", *args, env=env, timeout=60)
        assert proc.returncode == 2, (args, proc.stderr)
        assert "no lab is up" in proc.stderr
    down = run_cli("lab", "down", env=env, timeout=60)
    assert down.returncode == 0 and "no lab was up" in down.stdout


def test_inventory_data_checks_host_keys(monkeypatch: pytest.MonkeyPatch, tmp_path: Path
                                         ) -> None:
    """The inventory names the lab key, its known_hosts, and never disables checking."""
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))
    st = state.LabState(kind="container", arch="amd64", mode="kubeadm", user="provision",
                        control_planes=["lab-1"], workers=["lab-2", "lab-3"],
                        nodes=[NodeRecord(f"lab-{i}", "container", "amd64", 40000 + i)
                               for i in (1, 2, 3)])
    hosts, all_vars = manager.inventory_data(st)
    groups = hosts["all"]["children"]
    assert list(groups["control_plane"]["hosts"]) == ["lab-1"]
    assert groups["workers"]["hosts"]["lab-3"] == {"ansible_host": "127.0.0.1",
                                                    "ansible_port": 40003}
    kh = str(tmp_path / "provision" / "lab" / "known_hosts")
    assert all_vars["ssh_known_hosts_file"] == kh
    assert f"UserKnownHostsFile={kh}" in all_vars["ansible_ssh_common_args"]
    assert "StrictHostKeyChecking=yes" in all_vars["ansible_ssh_common_args"]
    assert all_vars["provision_mode"] == "kubeadm"
    assert all_vars["ansible_user"] == "provision"


def test_an_emulated_arch_lab_inventory_carries_the_docker_options_that_work(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """arm64 containers on an amd64 machine run under qemu-user: the lab's inventory sets
    the daemon options tests/test_bootstrap_arm64.py proves (iptables/ip6tables off, no
    default bridge) and no image check; native containers keep docker's defaults. (The full
    `make demo DEMO_ARCH=arm64`, about 30 min, is not run here.)"""
    import platform

    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))
    monkeypatch.setattr(platform, "machine", lambda: "x86_64")

    def lab(arch: str, kind: str = "container") -> dict:
        st = state.LabState(kind=kind, arch=arch, mode="minikube", user="provision",
                            control_planes=["lab-1"],
                            nodes=[NodeRecord("lab-1", kind, arch, 40001)])
        return manager.inventory_data(st)[1]

    arm = lab("arm64")
    assert arm["docker_daemon_options"] == {"iptables": False, "ip6tables": False,
                                            "bridge": "none"}
    assert arm["docker_verify_image"] == ""
    assert arm["ansible_ssh_timeout"] == 120  # SSH, PAM and sudo run emulated as well
    for native in (lab("amd64"), lab("arm64", kind="vm")):  # a VM runs its own kernel
        assert "docker_daemon_options" not in native and "docker_verify_image" not in native
        assert "ansible_ssh_timeout" not in native
    monkeypatch.setattr(platform, "machine", lambda: "aarch64")  # an arm64 workstation
    assert "docker_daemon_options" not in lab("arm64")
    from provision.validate import load_inventory, validate

    monkeypatch.setattr(platform, "machine", lambda: "x86_64")
    inv_dir = manager.write_inventory(state.LabState(
        kind="container", arch="arm64", mode="minikube", user="provision",
        control_planes=["lab-1"], nodes=[NodeRecord("lab-1", "container", "arm64", 40001)]))
    keys_dir = tmp_path / "provision" / "lab"
    (keys_dir / "id_ed25519").write_text("k")
    (keys_dir / "id_ed25519").chmod(0o600)
    errors, _ = validate(load_inventory(inv_dir))
    assert not [e for e in errors if "docker_" in e or "timeout" in e], errors


_listening = port_is_listening


def _doctor_built() -> bool:
    path = Path(__file__).resolve().parent.parent / "provision" / "commands" / "doctor.py"
    return path.exists() and "not_built(" not in path.read_text()


@pytest.mark.container
@pytest.mark.slow
def test_lab_up_three_nodes_doctor_ssh_reboot_down(tmp_path: Path,
                                                   lab_image: object) -> None:
    reason = lab_unavailable("container", "amd64")
    if reason:
        pytest.skip(reason)
    lab_image("amd64")  # type: ignore[operator]
    env = {"XDG_STATE_HOME": str(tmp_path), "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}
    lab_dir = tmp_path / "provision" / "lab"
    ports: dict[str, int] = {}
    volumes: list[str] = []
    try:
        up = run_cli("--json", "lab", "up", "--nodes", "3", env=env)
        assert up.returncode == 0, up.stderr
        result = json.loads(up.stdout)
        ports = {h: v["ssh_port"] for h, v in result["hosts"].items()}
        assert sorted(ports) == ["lab-1", "lab-2", "lab-3"]

        # the inventory `-i lab` resolves to
        from provision.inventory import load_inventory

        inv = load_inventory(lab_dir / "inventory")
        assert [h.name for h in inv.control_plane] == ["lab-1"]
        assert [h.name for h in inv.workers] == ["lab-2", "lab-3"]
        assert {h.name: h.port for h in inv.hosts.values()} == ports
        assert inv.hosts["lab-1"].known_hosts_file == lab_dir / "known_hosts"
        assert (lab_dir / "id_ed25519").stat().st_mode & 0o777 == 0o600

        # container names carry the host name; no --privileged
        from provision.lab import container

        lid = state.lab_id(lab_dir)
        for name in ports:
            info = json.loads(subprocess.run(
                ["docker", "inspect", container.container_name(lid, name)],
                capture_output=True, text=True, check=True).stdout)[0]
            assert name in info["Name"]
            assert info["HostConfig"]["Privileged"] is False

        if _doctor_built():  # PASS for reachability, sudo, OS and arch on every host
            # offline lab: the download hosts would FAIL; this test is about the lab hosts
            doc = run_cli("-i", "lab", "--json", "doctor", "--skip-network-checks", env=env)
            assert doc.returncode == 0, doc.stdout + doc.stderr
            status_of = {(c["host"], c["check"]): c["status"]
                         for c in json.loads(doc.stdout)["checks"]}
            for name in ports:
                for check in ("ssh", "sudo", "os", "arch"):
                    assert status_of[(name, check)] == "PASS", (name, check, doc.stdout)
        # reachability, hostname, passwordless sudo and systemd through `lab ssh`
        for name in ports:
            proc = run_cli("lab", "ssh", name, "--", "sh", "-c",
                           "hostname; sudo -n id -u; systemctl is-system-running --wait",
                           env=env)
            assert proc.returncode in (0, 1), proc.stderr  # degraded is reported as 1
            lines = proc.stdout.split()
            assert lines[0] == name and lines[1] == "0"
            assert lines[2] in ("running", "degraded"), proc.stdout
        assert run_cli("lab", "ssh", "lab-2", "--", "false", env=env).returncode == 1
        assert run_cli("lab", "ssh", "lab-2", "--", "sh", "-c", "exit 7",
                       env=env).returncode == 7

        # the host key is checked: a known_hosts with another key is refused
        bad = tmp_path / "other_known_hosts"
        other = keys.generate_ed25519(tmp_path / "other_key", "x")
        bad.write_text(f"[127.0.0.1]:{ports['lab-1']} {' '.join(other.split()[:2])}\n")
        refused = subprocess.run(
            ["ssh", "-i", str(lab_dir / "id_ed25519"), "-p", str(ports["lab-1"]),
             "-o", f"UserKnownHostsFile={bad}", "-o", "StrictHostKeyChecking=yes",
             "-o", "BatchMode=yes", "provision@127.0.0.1", "true"],
            capture_output=True, text=True, timeout=60)
        assert refused.returncode == 255
        assert "REMOTE HOST IDENTIFICATION HAS CHANGED" in refused.stderr

        status = json.loads(run_cli("--json", "lab", "status", env=env).stdout)
        assert status["hosts"]["lab-3"]["running"] is True
        assert status["hosts"]["lab-3"]["ssh_port"] == ports["lab-3"]
        boot_id = run_cli("lab", "ssh", "lab-1", "--", "cat",
                          "/proc/sys/kernel/random/boot_id", env=env).stdout
        before = run_cli("lab", "ssh", "lab-1", "--", "systemctl", "show", "-p",
                         "ActiveEnterTimestampMonotonic", "--value", "sshd", env=env).stdout
        reboot = run_cli("lab", "reboot", "lab-1", env=env)
        assert reboot.returncode == 0, reboot.stderr
        after = run_cli("lab", "ssh", "lab-1", "--", "systemctl", "show", "-p",
                        "ActiveEnterTimestampMonotonic", "--value", "sshd", env=env)
        assert after.returncode == 0 and after.stdout != before  # sshd started anew
        assert boot_id  # a container restart keeps the kernel's boot id: not a real reboot
        saved = json.loads((lab_dir / "lab.json").read_text())
        volumes = [v for n in saved["nodes"] for v in n["extra"]["volumes"]]
        assert len(volumes) == 6  # /var/lib/docker and /var/lib/containerd per host
    finally:
        down = run_cli("lab", "down", env=env)
    assert down.returncode == 0, down.stderr
    assert lab_leftovers(tmp_path) == []
    left = subprocess.run(["docker", "volume", "ls", "-q"], capture_output=True, text=True,
                          check=True).stdout.split()
    assert not set(volumes) & set(left), "lab down left anonymous volumes"
    for port in ports.values():
        assert not _listening(port), f"port {port} still listening after lab down"
    assert not lab_dir.exists()
