"""doctor and Ansible runs reach a host through a jump host (ProxyJump in
``ansible_ssh_common_args``) with one connection spec: the same known_hosts file
(``ssh_known_hosts_file``) and strict checking on both hops.

The lab test (marked sshd and slow: about 4 minutes on a busy machine) runs two real OpenSSH
servers inside a network namespace: the jump host on the namespace's veth address (reachable
from the test) and the target on the namespace's own loopback, which only a process inside the
namespace (the jump host's sshd) can reach. The fast tests check the spec and the ssh options
with ``ssh -G`` and the validation messages in-process.
"""

from __future__ import annotations

import json
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import sshd_fixtures
import yaml
from sshd_fixtures import free_port, keygen, needs_root, needs_sshd, netns_with_veth, start_sshd

from provision.cli import main
from provision.connection import (
    ConnectionSpec,
    JumpHost,
    ansible_ssh_args,
    connection_spec,
    parse_jump,
)
from provision.inventory import Host
from provision.runner import run_playbook

PLAYS = Path(__file__).parent / "playbooks"
REPO = Path(__file__).resolve().parent.parent


def test_proxyjump_becomes_part_of_the_connection_spec() -> None:
    host = Host("h1", vars={"ansible_host": "10.0.1.5", "ansible_user": "ubuntu",
                            "ansible_ssh_common_args": "-o ProxyJump=opc@bastion.example:2222"})
    spec = connection_spec(host)
    assert spec.jump == JumpHost("bastion.example", 2222, "opc")
    jump = spec.jump_spec()
    assert jump is not None and (jump.address, jump.port, jump.user) == (
        "bastion.example", 2222, "opc")
    assert jump.known_hosts_file == spec.known_hosts_file and jump.check_host_key
    # ssh's -J spelling, the first setting wins (as in ssh), ProxyJump=none means none
    assert connection_spec(Host("h", vars={"ansible_ssh_extra_args": "-J b1 -J b2"})).jump \
        == JumpHost("b1")
    assert connection_spec(Host("h", vars={
        "ansible_ssh_common_args": "-o ProxyJump=none -J b1"})).jump is None
    literal = connection_spec(Host("h", vars={
        "ansible_ssh_common_args": "-o 'ProxyCommand=nc -X connect -x proxy:3128 %h %p'"}))
    assert literal.jump is None and literal.proxy_command == "nc -X connect -x proxy:3128 %h %p"


@pytest.mark.parametrize(("value", "why"), [
    ("a@b1,c@b2", "more than one jump host"),
    ("-oProxyCommand=touch /tmp/x", "is not [user@]host[:port]"),
    ("user;id@bastion", "is not [user@]host[:port]"),
    ("bastion:70000", "port 70000 is not 1-65535"),
])
def test_a_jump_host_provision_cannot_use_is_named(value: str, why: str) -> None:
    problem = parse_jump(value)
    assert isinstance(problem, str) and why in problem


def ssh_effective(args: list[str]) -> dict[str, str]:
    """What OpenSSH makes of the arguments (``ssh -G``: nothing is contacted)."""
    out = subprocess.run(["ssh", "-G", *args, "target.example"], capture_output=True,
                         text=True, check=True).stdout
    return dict(line.split(" ", 1) for line in out.splitlines() if " " in line)


@pytest.mark.skipif(not shutil.which("ssh"), reason="needs OpenSSH's ssh client")
def test_the_jump_hop_is_checked_against_the_same_known_hosts_file(tmp_path: Path) -> None:
    """ansible_ssh_args carries a ProxyCommand (ahead of the inventory's ProxyJump, so it
    wins) whose ssh checks the jump host strictly against ssh_known_hosts_file, with the
    host's key; OpenSSH's own ProxyJump would use ~/.ssh/known_hosts."""
    known = tmp_path / "known hosts %d"
    spec = ConnectionSpec("h1", "10.0.1.5", 22, "ubuntu", tmp_path / "id", known,
                          jump=JumpHost("bastion.example", 2222, "opc"))
    words = shlex.split(ansible_ssh_args(spec))
    effective = ssh_effective([*words, "-o", "ProxyJump=elsewhere"])
    assert "proxyjump" not in effective  # the first proxy setting wins
    # ssh -G prints ProxyCommand unexpanded: expand %% as the outer ssh does when it runs it
    inner = shlex.split(effective["proxycommand"].replace("%%", "%"))
    assert inner[-1] == "bastion.example" and inner[inner.index("-p") + 1] == "2222"
    assert inner[inner.index("-l") + 1] == "opc"
    assert inner[inner.index("-i") + 1] == str(tmp_path / "id")
    # the inner ssh, as ProxyCommand would run it (%h/%p expanded by the outer ssh)
    inner_effective = ssh_effective(inner[:inner.index("-W")])
    assert inner_effective["stricthostkeychecking"] == "true"
    assert inner_effective["userknownhostsfile"] == str(known)
    assert inner_effective["globalknownhostsfile"] == "/dev/null"


def run_cli(args: list[str], capsys) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exc:
        main(args)
    out, err = capsys.readouterr()
    return int(exc.value.code or 0), out, err


def test_an_unusable_jump_host_is_refused_before_contact(tmp_path: Path, capsys) -> None:
    inv = tmp_path / "inv.yml"
    inv.write_text(yaml.safe_dump({"all": {"children": {"control_plane": {"hosts": {"cp1": {
        "ansible_host": "10.0.1.5",
        "ansible_ssh_common_args": "-o ProxyJump=opc@b1,opc@b2"}}}}}}))
    code, _, err = run_cli(["-i", str(inv), "doctor"], capsys)
    assert code == 2
    assert (f"error: {inv}:7: host cp1: ansible_ssh_common_args: ProxyJump: more than one "
            "jump host: provision supports one (ProxyJump=user@bastion)") in err.splitlines()


# --- two real sshds: the target only reachable through the jump host -------------------------

def doctor_cli(inv: Path) -> tuple[dict, str]:
    done = subprocess.run([sys.executable, "-m", "provision", "-i", str(inv), "--json",
                           "doctor", "--skip-network-checks", "--timeout", "5"],
                          capture_output=True, text=True, cwd=REPO, timeout=180)
    return json.loads(done.stdout), done.stderr


def bootstrap_cli(inv: Path) -> dict:
    """`provision bootstrap --components base --check`: the real command, in check mode."""
    done = subprocess.run([sys.executable, "-m", "provision", "-i", str(inv), "--json",
                           "bootstrap", "--components", "base", "--check"],
                          capture_output=True, text=True, cwd=REPO, timeout=900)
    return json.loads(done.stdout)


def ssh_row(report: dict) -> dict:
    return next(c for c in report["checks"] if c["check"] == "ssh")


def banner_inside(netns: str):
    """sshd_fixtures' banner wait, from inside ``netns`` (the target is not reachable from
    the test's own namespace: that is the point)."""
    probe = ("import socket,sys; s=socket.create_connection((sys.argv[1], int(sys.argv[2])), "
             "timeout=0.5); sys.exit(0 if s.recv(64).startswith(b'SSH-') else 1)")

    def wait(address: str, port: int, proc, deadline: float, log: Path) -> None:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"sshd exited: {log.read_text()[-2000:]}")
            if subprocess.run(["ip", "netns", "exec", netns, sys.executable, "-c", probe,
                               address, str(port)], capture_output=True).returncode == 0:
                return
            time.sleep(0.1)
        raise RuntimeError(f"sshd on {address}:{port} in {netns} did not answer")
    return wait


def known_line(name: str, public_key: str) -> str:
    return f"{name} {' '.join(public_key.split()[:2])}\n"


@pytest.mark.sshd
@pytest.mark.slow
@needs_sshd
@needs_root
def test_doctor_and_ansible_pass_through_the_jump_host_and_refuse_a_wrong_key_on_either_hop(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two real sshds in a network namespace: the jump host on its veth address, the target
    on the namespace's own loopback (a free port of ours, so nothing answers there directly).
    doctor (paramiko through a direct-tcpip channel), a real playbook run and `provision
    bootstrap --components base --check` (ssh with the ProxyCommand provision derives) pass
    through the jump host; with a wrong key for either hop in ssh_known_hosts_file all refuse,
    and neither doctor nor a run reaches the target directly."""
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    with netns_with_veth("jump") as ns, \
            start_sshd(tmp_path / "jump", address=ns.ns_ip, port=22, netns=ns.name) as jump:
        monkeypatch.setattr(sshd_fixtures, "_wait_for_banner", banner_inside(ns.name))
        with start_sshd(tmp_path / "target", address="127.0.0.1", port=free_port(),
                        netns=ns.name) as target:
            run_lab(tmp_path, ns, jump, target)


def run_lab(tmp_path: Path, ns, jump, target) -> None:
    # one user key for both hops (the jump is reached with the host's key)
    with (jump.directory / "authorized_keys").open("a") as keys:
        keys.write(Path(f"{target.user_key}.pub").read_text())
    other = keygen(tmp_path / "other_host_key", comment="impostor")
    right = {"jump": known_line(jump.known_hosts_name, jump.host_public_key),
             "target": known_line(target.known_hosts_name, target.host_public_key)}
    wrong = {"jump": known_line(jump.known_hosts_name, other),
             "target": known_line(target.known_hosts_name, other)}

    def inventory(name: str, known: str, via_jump: bool = True) -> Path:
        kh = tmp_path / f"known_hosts_{name}"
        kh.write_text(known)
        host = target.host_vars(ansible_python_interpreter=sys.executable,
                                ssh_known_hosts_file=str(kh))
        if via_jump:
            host["ansible_ssh_common_args"] = f"-o ProxyJump={jump.user}@{ns.ns_ip}"
        path = tmp_path / f"{name}.yml"
        path.write_text(yaml.safe_dump({"all": {"children": {"control_plane": {
            "hosts": {"h1": host}}}}}))
        return path

    def play(inv: Path, name: str):
        return run_playbook(command=f"jump-{name}", playbook=str(PLAYS / "runner-ok.yml"),
                            inventory=inv, quiet=True,
                            extravars={"marker_path": str(tmp_path / f"m-{name}")})

    # the target is not reachable without the jump host
    direct = inventory("direct", right["jump"] + right["target"], via_jump=False)
    report, _ = doctor_cli(direct)
    assert ssh_row(report)["status"] == "FAIL" and report["exit_code"] == 3
    assert play(direct, "direct").unreachable_hosts == ["h1"]

    good = inventory("good", right["jump"] + right["target"])
    report, err = doctor_cli(good)
    row = ssh_row(report)
    assert row["status"] == "PASS", (row, err)
    assert f"via jump host {jump.user}@{ns.ns_ip}" in row["message"]
    result = play(good, "good")
    assert result.exit_code == 0, result.errors
    assert (tmp_path / "m-good").read_text() == "hello\n"
    boot = bootstrap_cli(good)
    assert boot["exit_code"] == 0 and boot["hosts"]["h1"]["ok"] > 0, boot

    for hop in ("jump", "target"):
        known = (wrong[hop] + right["target"]) if hop == "jump" else (
            right["jump"] + wrong[hop])
        inv = inventory(f"wrong-{hop}", known)
        row = ssh_row(doctor_cli(inv)[0])
        assert row["status"] == "FAIL", row
        assert "host key changed" in row["message"]
        assert row["message"].startswith(f"jump host {jump.user}@{ns.ns_ip}: ") is (
            hop == "jump"), row
        result = play(inv, f"wrong-{hop}")
        assert result.exit_code == 3 and result.unreachable_hosts == ["h1"], result.errors
        if hop == "target":
            assert "Host key verification failed" in result.failures[0].message
        # (the jump hop's ssh runs as ProxyCommand, whose stderr OpenSSH sends to /dev/null
        # with ControlMaster: Ansible only sees the connection closed)
        assert not (tmp_path / f"m-wrong-{hop}").exists()
        boot = bootstrap_cli(inv)
        assert boot["exit_code"] == 3 and boot["hosts"]["h1"]["unreachable"] == 1, boot
    assert "impostor" not in (tmp_path / "known_hosts_good").read_text()  # nothing added
