"""`provision init` (issue 19): NAME=ADDR[:PORT] and [IPv6]:PORT, --port, --known-hosts, and
the interactive flow under a real pseudo-terminal (pexpect): each answer is checked as it is
given and asked again when bad, the answers given so far are kept, the key default is offered
only when that file exists, and the Kubernetes version is asked."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
import yaml

from provision.addresses import split_endpoint
from provision.cli import main

REPO = Path(__file__).resolve().parent.parent


def run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exc:
        main(args)
    out, err = capsys.readouterr()
    return int(exc.value.code or 0), out, err


def _key(tmp_path: Path) -> Path:
    key = tmp_path / "id_test"
    key.write_text("dummy key file")
    key.chmod(0o600)
    return key


def test_endpoints_with_ports_and_ipv6() -> None:
    assert split_endpoint("10.0.0.5") == ("10.0.0.5", None)
    assert split_endpoint("127.0.0.1:32769") == ("127.0.0.1", 32769)
    assert split_endpoint("vm1.example.org:2222") == ("vm1.example.org", 2222)
    assert split_endpoint("[fd00::5]:2222") == ("fd00::5", 2222)
    assert split_endpoint("[fd00::5]") == ("fd00::5", None)
    assert split_endpoint("fd00::5") == ("fd00::5", None)
    for bad, says in [("127.0.0.1:0", "1-65535"), ("h:22x", "1-65535"),
                      ("[fd00::5", "[IPv6 address]"), ("[10.0.0.1]:22", "[IPv6 address]"),
                      ("fd00::zz", "not an IPv6"), ("bad host", "not a DNS name"),
                      ("[fd00::5]x", "[IPv6 address]:PORT")]:
        with pytest.raises(ValueError, match=says.replace("[", r"\[")):
            split_endpoint(bad)


def test_init_writes_host_ports_ipv6_port_and_known_hosts(tmp_path: Path,
                                                          capsys: pytest.CaptureFixture) -> None:
    key, known = _key(tmp_path), tmp_path / "known_hosts"
    known.write_text("")
    code, out, err = run(["init", "--dir", str(tmp_path), "--name", "p",
                          "--control-plane", "cp1=[fd00::10]:2222",
                          "--worker", "w1=10.0.0.11", "--worker", "w2=w2.example.org:2200",
                          "--user", "ubuntu", "--key", str(key), "--port", "2022",
                          "--known-hosts", str(known)], capsys)
    assert code == 0, err
    hosts = yaml.safe_load((tmp_path / "p" / "hosts.yml").read_text())["all"]["children"]
    assert hosts["control_plane"]["hosts"] == {"cp1": {"ansible_host": "fd00::10",
                                                       "ansible_port": 2222}}
    assert hosts["workers"]["hosts"] == {
        "w1": {"ansible_host": "10.0.0.11"},
        "w2": {"ansible_host": "w2.example.org", "ansible_port": 2200}}
    gvars = yaml.safe_load((tmp_path / "p" / "group_vars" / "all.yml").read_text())
    assert gvars["ansible_port"] == 2022 and gvars["ssh_known_hosts_file"] == str(known)
    from provision.inventory import load_inventory

    inv = load_inventory(tmp_path / "p")
    assert [(h.address, h.port) for h in inv.hosts.values()] == [
        ("fd00::10", 2222), ("10.0.0.11", 2022), ("w2.example.org", 2200)]


@pytest.mark.parametrize(("spec", "says"), [
    ("vm1=127.0.0.1:70000", "port '70000' is not a number 1-65535"),
    ("vm1=[fd00::1", "expected [IPv6 address]"),
    ("fd00::1", "an IPv6 address needs a name"),
    ("vm:1=10.0.0.1", "host name 'vm:1'"),
    ("a=10.0.0.1,a=10.0.0.2", "host 'a' is given twice"),
])
def test_init_refuses_bad_addresses_naming_the_flag(spec: str, says: str, tmp_path: Path,
                                                   capsys: pytest.CaptureFixture) -> None:
    code, _, err = run(["init", "--dir", str(tmp_path), "--name", "x", "--control-plane", spec],
                       capsys)
    assert code == 2 and "--control-plane" in err and says in err, err
    assert not (tmp_path / "x").exists()


def test_an_ansible_host_with_a_port_is_refused_by_validation(
        tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    inv = tmp_path / "hosts.yml"
    inv.write_text("all:\n  children:\n    control_plane:\n      hosts:\n        vm1:\n"
                   "          ansible_host: 127.0.0.1:32769\n")
    code, _, err = run(["-i", str(inv), "validate"], capsys)
    assert code == 2 and "ansible_host" in err and "a port goes in ansible_port" in err, err


def test_interactive_init_re_asks_bad_answers_and_keeps_the_good_ones(tmp_path: Path) -> None:
    """A real pty: every question, a bad answer to most of them, then good ones."""
    pexpect = pytest.importorskip("pexpect")
    key = _key(tmp_path)
    env = {**os.environ, "HOME": str(tmp_path / "home"), "PYTHONPATH": str(REPO),
           "TERM": "dumb", "XDG_STATE_HOME": str(tmp_path / "state")}
    (tmp_path / "home").mkdir()  # no ~/.ssh/id_*: no key default is offered
    child = pexpect.spawn(sys.executable, ["-m", "provision", "init", "--dir", str(tmp_path),
                                           "--name", "t"], env=env, cwd=str(REPO),
                          encoding="utf-8", timeout=60)
    steps = [
        ("Control-plane hosts", "vm1=127.0.0.1:99999", "1-65535"),
        ("Control-plane hosts", "vm1=127.0.0.1:32769", None),
        ("Worker hosts", "", None),
        ("SSH user", "root", "non-root"),
        ("SSH user", "", None),  # the default, ubuntu
        ("SSH port", "", None),
        ("SSH private key: ", str(tmp_path / "nope"), "no such file"),
        ("SSH private key: ", str(key), None),
        ("Mode", "", None),  # one host: minikube
        ("Kubernetes version", "v1.31", "malformed version"),
        ("Kubernetes version", "1.30", None),
    ]
    for question, answer, complaint in steps:
        child.expect(question)
        child.sendline(answer)
        if complaint:
            child.expect(complaint)
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0, child.before
    hosts = yaml.safe_load((tmp_path / "t" / "hosts.yml").read_text())
    assert hosts["all"]["children"]["control_plane"]["hosts"] == {
        "vm1": {"ansible_host": "127.0.0.1", "ansible_port": 32769}}
    gvars = yaml.safe_load((tmp_path / "t" / "group_vars" / "all.yml").read_text())
    assert (gvars["ansible_user"], gvars["ansible_ssh_private_key_file"],
            gvars["provision_mode"], gvars["kubernetes_version"]) == (
        "ubuntu", str(key), "minikube", "1.30")
    assert "ansible_port" not in gvars  # 22, the default
