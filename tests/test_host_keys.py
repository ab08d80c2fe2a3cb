"""SSH host keys: one known_hosts file for doctor and Ansible, no trust shared between runs
through a ControlPersist master, no silent opt-out, no private key readable by others.

The sshd tests run Debian's real OpenSSH server on loopback (tests/sshd_fixtures.py) and real
playbook runs through provision.runner; the validation tests run the real CLI in-process on
inventories that point at a loopback listener nothing may connect to.
"""

from __future__ import annotations

import json
import shlex
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from sshd_fixtures import keygen, needs_sshd, start_sshd

from provision.cli import main
from provision.connection import (
    ConnectionSpec,
    ansible_ssh_args,
    insecure_settings,
    ssh_options,
)
from provision.runner import run_playbook

PLAYS = Path(__file__).parent / "playbooks"
REPO = Path(__file__).resolve().parent.parent


def run_cli(args: list[str], capsys) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exc:
        main(args)
    out, err = capsys.readouterr()
    return int(exc.value.code or 0), out, err


# --- the ssh arguments provision gives Ansible ---------------------------------------------

def ssh_effective(args: str, *more: str) -> dict[str, str]:
    """What OpenSSH itself makes of ``args`` (``ssh -G``: nothing is contacted)."""
    out = subprocess.run(["ssh", "-G", *shlex.split(args), *more, "-p", "2222", "h.example"],
                         capture_output=True, text=True, check=True, timeout=30).stdout
    found: dict[str, str] = {}
    for line in out.splitlines():
        key, _, value = line.partition(" ")
        found.setdefault(key, value)
    return found


@pytest.mark.skipif(not shutil.which("ssh"), reason="needs OpenSSH's ssh client")
def test_ssh_args_check_the_known_hosts_file_first_and_cannot_be_overridden(tmp_path):
    """The per-host ansible_ssh_args put strict checking against ssh_known_hosts_file first on
    ssh's command line; OpenSSH keeps the first value, so an inventory's later
    ``-o StrictHostKeyChecking=no`` (or ansible_host_key_checking: false, which Ansible adds
    after ssh_args) changes nothing. A path with a space and a % survives quoting."""
    known = tmp_path / "dir with space" / "known_hosts%h"
    spec = ConnectionSpec("h1", "h.example", 2222, "u", None, known)
    args = ansible_ssh_args(spec)
    got = ssh_effective(args, "-o", "StrictHostKeyChecking=no", "-o",
                        "UserKnownHostsFile=/dev/null")
    assert got["stricthostkeychecking"] == "true"
    assert got["userknownhostsfile"] == str(known)
    assert got["globalknownhostsfile"] == "/dev/null"
    assert got["controlpersist"] == "60"  # ansible.cfg's ssh_args are kept
    # opted out (provision_insecure_ssh_host_keys + a setting that turns checking off):
    loose = ansible_ssh_args(ConnectionSpec("h1", "h.example", 2222, "u", None, known,
                                            check_host_key=False))
    assert ssh_effective(loose, "-o", "StrictHostKeyChecking=no")[
        "stricthostkeychecking"] == "false"


@pytest.mark.parametrize(("vars_", "keys"), [
    ({"ansible_ssh_common_args": "-o StrictHostKeyChecking=no"}, ["ansible_ssh_common_args"]),
    ({"ansible_ssh_common_args": "-oStrictHostKeyChecking=No"}, ["ansible_ssh_common_args"]),
    ({"ansible_ssh_extra_args": "-o 'StrictHostKeyChecking accept-new'"},
     ["ansible_ssh_extra_args"]),
    ({"ansible_ssh_common_args": "-o UserKnownHostsFile=/dev/null"},
     ["ansible_ssh_common_args"]),
    ({"ansible_ssh_host_key_checking": False}, ["ansible_ssh_host_key_checking"]),
    ({"ansible_host_key_checking": "no"}, ["ansible_host_key_checking"]),
    ({"ansible_ssh_common_args": "-o StrictHostKeyChecking=yes -o ServerAliveInterval=5"}, []),
    ({"ansible_host_key_checking": True}, []),
])
def test_insecure_settings_are_recognised(vars_, keys):
    assert [k for k, _ in insecure_settings(vars_)] == keys


def test_ssh_options_parses_every_spelling():
    assert ssh_options("-o A=1 -oB=2 -o 'C 3' -o\tD=4 -v") == [
        ("a", "1"), ("b", "2"), ("c", "3"), ("d", "4")]


# --- validation: refused before anything is contacted ---------------------------------------

@pytest.fixture()
def listener():
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(4)
    sock.setblocking(False)
    yield sock
    try:
        conn, _ = sock.accept()
    except BlockingIOError:
        pass
    else:
        conn.close()
        raise AssertionError("a host was contacted")
    finally:
        sock.close()


def inventory(tmp_path: Path, port: int, host_vars: dict, all_vars: dict | None = None) -> Path:
    inv = tmp_path / "inv"
    inv.mkdir(exist_ok=True)
    key = tmp_path / "id_test"
    if not key.exists():
        key.write_text("not a real key\n")
        key.chmod(0o600)
    hv = {"ansible_host": "127.0.0.1", "ansible_port": port, "ansible_user": "u",
          "ansible_ssh_private_key_file": str(key), **host_vars}
    data = {"all": {"children": {"control_plane": {"hosts": {"cp1": hv}}}}}
    if all_vars:
        data["all"]["vars"] = all_vars
    (inv / "hosts.yml").write_text(yaml.safe_dump(data))
    return inv


@pytest.mark.parametrize(("host_vars", "key", "what"), [
    ({"ansible_ssh_common_args": "-o StrictHostKeyChecking=no"}, "ansible_ssh_common_args",
     "StrictHostKeyChecking=no accepts any host keys"),
    ({"ansible_ssh_extra_args": "-o StrictHostKeyChecking=accept-new"},
     "ansible_ssh_extra_args", "StrictHostKeyChecking=accept-new accepts new host keys"),
    ({"ansible_ssh_common_args": "-o UserKnownHostsFile=/dev/null"}, "ansible_ssh_common_args",
     "UserKnownHostsFile=/dev/null forgets every host key"),
    ({"ansible_host_key_checking": False}, "ansible_host_key_checking",
     "False turns SSH host key checking off"),
    ({"ansible_ssh_host_key_checking": "false"}, "ansible_ssh_host_key_checking",
     "false turns SSH host key checking off"),
])
@pytest.mark.parametrize("opt_in", [None, False, "yes"])
def test_turning_host_key_checking_off_is_refused_without_the_opt_in(
        tmp_path, capsys, listener, host_vars, key, what, opt_in):
    extra = {} if opt_in is None else {"provision_insecure_ssh_host_keys": opt_in}
    inv = inventory(tmp_path, listener.getsockname()[1], {**host_vars, **extra})
    code, _out, err = run_cli(["-i", str(inv), "validate"], capsys)
    assert code == 2, err
    assert f"{inv / 'hosts.yml'}" in err and "host cp1" in err and f"{key}: {what}" in err
    assert "provision_insecure_ssh_host_keys: true" in err and "Traceback" not in err


def test_the_opt_in_is_accepted_and_warned_about(tmp_path, capsys, listener):
    inv = inventory(tmp_path, listener.getsockname()[1], {
        "ansible_ssh_common_args": "-o StrictHostKeyChecking=no",
        "provision_insecure_ssh_host_keys": True})
    code, _out, err = run_cli(["-i", str(inv), "validate"], capsys)
    assert code == 0, err
    assert "host cp1: SSH host keys are NOT checked (provision_insecure_ssh_host_keys: true)" \
        in err


def test_a_known_hosts_file_in_the_ssh_args_must_be_ssh_known_hosts_file(
        tmp_path, capsys, listener):
    """doctor checks ssh_known_hosts_file; a different UserKnownHostsFile for Ansible is the
    'doctor says PASS, bootstrap fails' split, so it is refused; the same file is fine."""
    port = listener.getsockname()[1]
    kh = tmp_path / "kh"
    inv = inventory(tmp_path, port, {"ansible_ssh_common_args": f"-o UserKnownHostsFile={kh}"})
    code, _out, err = run_cli(["-i", str(inv), "validate"], capsys)
    assert code == 2
    assert (f"ansible_ssh_common_args: UserKnownHostsFile={kh} is not the file doctor checks "
            f"({Path('~/.ssh/known_hosts').expanduser()}): set ssh_known_hosts_file: {kh}") in err
    inv = inventory(tmp_path, port, {"ansible_ssh_common_args": f"-o UserKnownHostsFile={kh}",
                                     "ssh_known_hosts_file": str(kh)})
    assert run_cli(["-i", str(inv), "validate"], capsys)[0] == 0


def test_a_known_hosts_path_that_would_break_the_ssh_option_is_refused(
        tmp_path, capsys, listener):
    inv = inventory(tmp_path, listener.getsockname()[1],
                    {"ssh_known_hosts_file": '/tmp/kh" -o ProxyCommand=x'})
    code, _out, err = run_cli(["-i", str(inv), "validate"], capsys)
    assert code == 2 and "host cp1: ssh_known_hosts_file:" in err and "not a usable path" in err


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660])
def test_a_private_key_readable_by_others_is_refused_with_the_chmod(
        tmp_path, capsys, listener, mode):
    key = tmp_path / "my key"
    key.write_text("-----BEGIN OPENSSH PRIVATE KEY-----\n")
    key.chmod(mode)
    inv = inventory(tmp_path, listener.getsockname()[1],
                    {"ansible_ssh_private_key_file": str(key)})
    code, _out, err = run_cli(["-i", str(inv), "validate"], capsys)
    assert code == 2, err
    assert (f"host cp1: ansible_ssh_private_key_file: {key} is readable by group or others "
            f"(mode {oct(mode)[2:]})") in err
    assert f"Run: chmod 600 '{key}'" in err
    assert key.stat().st_mode & 0o777 == mode  # nothing is chmod-ed by provision


def test_doctor_refuses_the_same_inventories_before_connecting(tmp_path, capsys, listener):
    inv = inventory(tmp_path, listener.getsockname()[1],
                    {"ansible_ssh_common_args": "-o StrictHostKeyChecking=no"})
    code, _out, err = run_cli(["-i", str(inv), "doctor"], capsys)
    assert code == 2 and "StrictHostKeyChecking=no" in err


# --- against a real sshd --------------------------------------------------------------------

def write_inv(path: Path, host_vars: dict) -> Path:
    path.write_text(yaml.safe_dump({"all": {"children": {"control_plane": {"hosts": {
        "h1": host_vars}}}}}))
    return path


def run_ok_play(inv: Path, tmp_path: Path, name: str):
    return run_playbook(command=name, playbook=str(PLAYS / "runner-ok.yml"), inventory=inv,
                        quiet=True, extravars={"marker_path": str(tmp_path / f"m-{name}")})


def doctor_cli(inv: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "provision", "-i", str(inv), "--json", "doctor",
                           "--skip-network-checks"], capture_output=True, text=True, cwd=REPO,
                          timeout=180)


def control_dir_of(run) -> str:
    """The ControlPersist dir the run gave Ansible (from ansible-runner's command artifact)."""
    command = json.loads((run.run_dir / "artifacts" / "run" / "command").read_text())
    return command["env"]["ANSIBLE_SSH_CONTROL_PATH_DIR"]


def processes_mentioning(text: str) -> list[str]:
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            args = cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if text in args:
            found.append(args)
    return found


@pytest.mark.sshd
@needs_sshd
def test_no_ssh_master_lets_a_run_with_a_wrong_key_through(tmp_path, monkeypatch):
    """The issue's sequence against a real sshd: a run that did not check the host key
    (opted out, StrictHostKeyChecking=no), then one with the right key, then at once a run whose
    known_hosts holds a WRONG key for that host:port. Before, the last run reused the first
    runs' ControlPersist master in ~/.ansible/cp (keyed on host/port/user only) and succeeded;
    now each run has its own control dir, so it fails as unreachable with a host key error,
    and no master of an earlier run is left behind."""
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    with start_sshd(tmp_path / "sshd") as server:
        right = tmp_path / "known_hosts_right"
        right.write_text(server.known_hosts_line())
        wrong = tmp_path / "known_hosts_wrong"
        other = keygen(tmp_path / "other_host_key")
        wrong.write_text(f"{server.known_hosts_name} {' '.join(other.split()[:2])}\n")
        empty = tmp_path / "known_hosts_empty"
        empty.write_text("")
        base = server.host_vars(ansible_python_interpreter=sys.executable)

        loose = run_ok_play(write_inv(tmp_path / "loose.yml", {
            **base, "ssh_known_hosts_file": str(empty),
            "ansible_ssh_common_args": "-o StrictHostKeyChecking=no",
            "provision_insecure_ssh_host_keys": True}), tmp_path, "loose")
        assert loose.exit_code == 0, loose.errors
        assert "SSH host keys are NOT checked for h1" in loose.log_path.read_text()
        good = run_ok_play(write_inv(tmp_path / "good.yml", {
            **base, "ssh_known_hosts_file": str(right)}), tmp_path, "good")
        assert good.exit_code == 0, good.errors
        bad = run_ok_play(write_inv(tmp_path / "bad.yml", {
            **base, "ssh_known_hosts_file": str(wrong)}), tmp_path, "bad")
        assert bad.exit_code == 3, bad.errors
        assert bad.unreachable_hosts == ["h1"]
        assert "Host key verification failed" in bad.failures[0].message
        assert "REMOTE HOST IDENTIFICATION HAS CHANGED" in bad.failures[0].message
        dirs = {control_dir_of(run) for run in (loose, good, bad)}
        assert len(dirs) == 3  # one private control dir per run
        for cp in dirs:
            assert not Path(cp).exists()
            assert not processes_mentioning(cp)  # the run's ssh master was stopped
        assert wrong.read_text().count("\n") == 1 and empty.read_text() == ""  # nothing added


@pytest.mark.sshd
@needs_sshd
def test_ssh_known_hosts_file_alone_decides_for_doctor_and_for_ansible(tmp_path, monkeypatch):
    """The known_hosts file is given only as ssh_known_hosts_file (no ssh args): with the right
    key doctor passes the SSH check and a real playbook run succeeds; with a wrong key there
    doctor fails the SSH check and the playbook run is unreachable, even though
    ~/.ssh/known_hosts (HOME points at a dir whose known_hosts has the RIGHT key) would have
    let it through."""
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    with start_sshd(tmp_path / "sshd") as server:
        (home / ".ssh" / "known_hosts").write_text(server.known_hosts_line())
        monkeypatch.setenv("HOME", str(home))
        right = tmp_path / "kh_right"
        right.write_text(server.known_hosts_line())
        wrong = tmp_path / "kh_wrong"
        other = keygen(tmp_path / "other_host_key")
        wrong.write_text(f"{server.known_hosts_name} {' '.join(other.split()[:2])}\n")
        base = server.host_vars(ansible_python_interpreter=sys.executable)
        for known, doctor_ok, play_code in ((right, True, 0), (wrong, False, 3)):
            inv = write_inv(tmp_path / f"inv-{known.name}.yml",
                            {**base, "ssh_known_hosts_file": str(known)})
            doc = doctor_cli(inv)
            ssh_row = next(c for c in json.loads(doc.stdout)["checks"] if c["check"] == "ssh")
            assert (ssh_row["status"] == "PASS") is doctor_ok, ssh_row
            assert str(known) in ssh_row["message"]
            result = run_ok_play(inv, tmp_path, known.name)
            assert result.exit_code == play_code, result.errors
            if play_code:
                assert "Host key verification failed" in result.failures[0].message


@pytest.mark.sshd
@needs_sshd
def test_doctor_with_the_opt_in_warns_instead_of_passing(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    with start_sshd(tmp_path / "sshd") as server:
        server.known_hosts.write_text("")
        inv = write_inv(tmp_path / "inv.yml", server.host_vars(
            ansible_ssh_common_args="-o StrictHostKeyChecking=no",
            provision_insecure_ssh_host_keys=True))
        doc = doctor_cli(inv)
        ssh_row = next(c for c in json.loads(doc.stdout)["checks"] if c["check"] == "ssh")
        assert ssh_row["status"] == "WARN" and "host key NOT verified" in ssh_row["message"]
        assert "SSH host keys are NOT checked" in doc.stderr
        assert server.known_hosts.read_text() == ""


def test_lab_style_inventory_stays_valid(tmp_path, capsys, listener):
    """What `lab up` writes (UserKnownHostsFile = ssh_known_hosts_file, strict) is accepted."""
    kh = tmp_path / "lab" / "known_hosts"
    inv = inventory(tmp_path, listener.getsockname()[1], {}, all_vars={
        "ssh_known_hosts_file": str(kh),
        "ansible_ssh_common_args": f"-o UserKnownHostsFile={kh} -o StrictHostKeyChecking=yes"})
    code, _out, err = run_cli(["-i", str(inv), "validate"], capsys)
    assert code == 0, err



@pytest.mark.parametrize("option", ["ControlPath=/tmp/shared-%C", "ControlMaster=no"])
def test_a_control_socket_of_its_own_is_refused(tmp_path, capsys, listener, option):
    """provision gives each run a private control dir; an inventory ControlPath would share
    masters between runs again."""
    inv = inventory(tmp_path, listener.getsockname()[1],
                    {"ansible_ssh_extra_args": f"-o {option}"})
    code, _out, err = run_cli(["-i", str(inv), "validate"], capsys)
    assert code == 2
    name = option.split("=")[0].lower()
    assert f"host cp1: ansible_ssh_extra_args: {name} is set by provision" in err


def test_paramiko_connection_with_its_own_known_hosts_file_is_refused(tmp_path, capsys, listener):
    inv = inventory(tmp_path, listener.getsockname()[1], {
        "ansible_connection": "paramiko", "ssh_known_hosts_file": str(tmp_path / "kh")})
    code, _out, err = run_cli(["-i", str(inv), "validate"], capsys)
    assert code == 2
    assert "host cp1: ansible_connection: paramiko: Ansible's paramiko connection ignores " \
        "ssh_known_hosts_file" in err
