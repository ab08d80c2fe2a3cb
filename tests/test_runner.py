"""The runner against a real (tiny) playbook on localhost, connection local."""

from __future__ import annotations

import io
import json
import os
import stat
import sys
from pathlib import Path

import pytest

from provision.commands._common import print_summary
from provision.errors import EXIT_FAILED, EXIT_OK
from provision.progress import Progress
from provision.runner import prune_runs, run_playbook

PLAYS = Path(__file__).parent / "playbooks"


@pytest.fixture()
def local_inventory(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    inv = tmp_path / "hosts.yml"
    inv.write_text(
        "all:\n  children:\n    control_plane:\n      hosts:\n        local1:\n"
        f"          ansible_connection: local\n          ansible_python_interpreter: "
        f"{sys.executable}\n")
    return inv


def test_runner_runs_a_real_playbook_and_reports_progress_and_stats(local_inventory, tmp_path):
    marker = tmp_path / "marker"
    stream = io.StringIO()
    result = run_playbook(command="runner-test", playbook=str(PLAYS / "runner-ok.yml"),
                          inventory=local_inventory, progress=Progress(stream=stream),
                          extravars={"marker_path": str(marker), "marker_text": "s3cret"})
    assert result.exit_code == EXIT_OK and result.ok
    assert marker.read_text() == "s3cret\n"
    assert result.hosts == {"local1": {"ok": 2, "changed": 1, "failed": 0, "unreachable": 0,
                                       "skipped": 0}}
    text = stream.getvalue()
    assert "PLAY A tiny real play for the runner tests" in text
    assert "TASK Write a marker file" in text and "TASK Read it back" in text
    assert "changed: local1 [Write a marker file]" in text
    # the "done" line and the per-host recap count the same way (Ansible's: ok includes changed)
    assert "done in" in text.splitlines()[-1]
    assert "ok=2 changed=1 failed=0 unreachable=0 skipped=0" in text.splitlines()[-1]
    kinds = [e["event"] for e in result.events]
    assert kinds.count("playbook_on_task_start") == 2 and "playbook_on_stats" in kinds
    # artifacts: private run dir under XDG_STATE_HOME, 0700, full log, summary, no extravars
    run_dir = result.run_dir
    assert run_dir.parent == tmp_path / "state" / "provision" / "runs"
    assert run_dir.name.endswith("-runner-test")
    assert stat.S_IMODE(run_dir.stat().st_mode) == 0o700
    log = result.log_path.read_text()
    assert "Write a marker file" in log
    assert "\x1b[" not in log  # plain text: no colour codes in the log file
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["ok"] is True and summary["hosts"]["local1"]["changed"] == 1
    assert not (run_dir / "env" / "extravars").exists()
    assert "s3cret" not in "".join(p.read_text(errors="ignore") for p in run_dir.rglob("*")
                                   if p.is_file() and p.name in ("extravars", "envvars"))
    # idempotence measured the same way every role test does it: second run changes nothing
    again = run_playbook(command="runner-test", playbook=str(PLAYS / "runner-ok.yml"),
                         inventory=local_inventory, quiet=True,
                         extravars={"marker_path": str(marker), "marker_text": "s3cret"})
    assert again.hosts["local1"]["changed"] == 0


def test_runner_failure_summary_names_host_task_error_and_log(local_inventory, capsys):
    result = run_playbook(command="runner-fail", playbook=str(PLAYS / "runner-fail.yml"),
                          inventory=local_inventory, quiet=True)
    assert result.exit_code == EXIT_FAILED and not result.ok
    assert result.hosts["local1"]["failed"] == 1
    [failure] = result.failures
    assert failure.host == "local1"
    assert failure.task == "Fail with a message on stderr"
    assert "disk is full on purpose" in failure.message
    print_summary(result)
    out = capsys.readouterr().out
    assert "local1: failed at task 'Fail with a message on stderr'" in out
    assert "stderr: disk is full on purpose" in out
    assert f"Full log: {result.log_path}" in out
    log = result.log_path.read_text()
    assert "disk is full on purpose" in log and "\x1b[" not in log


def test_unreachable_host_gives_exit_3(tmp_path, monkeypatch):
    import socket

    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    with socket.socket() as s:  # a port with nothing listening
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    inv = tmp_path / "hosts.yml"
    inv.write_text("all:\n  hosts:\n    ghost:\n      ansible_host: 127.0.0.1\n"
                   f"      ansible_port: {port}\n      ansible_user: nobody\n")
    result = run_playbook(command="unreach", playbook=str(PLAYS / "runner-ok.yml"),
                          inventory=inv, quiet=True, extravars={"marker_path": "/nonexistent"})
    assert result.exit_code == 3
    assert result.unreachable_hosts == ["ghost"]
    assert result.failures[0].unreachable and result.failures[0].host == "ghost"


def test_run_dirs_keep_the_last_twenty(tmp_path):
    for i in range(25):
        (tmp_path / f"20260101T0000{i:02d}Z-x").mkdir()
    removed = prune_runs(tmp_path, 20)
    assert len(removed) == 5
    left = sorted(p.name for p in tmp_path.iterdir())
    assert len(left) == 20 and left[0] == "20260101T000005Z-x"


@pytest.mark.sshd
def test_runner_checks_ssh_host_keys(tmp_path, monkeypatch):
    """ansible-runner turns host key checking off by default; provision turns it back on.
    Against a real sshd: an unknown host key makes the host unreachable, the right one works."""
    pytest.importorskip("paramiko")
    from sshd_fixtures import SSHD, start_sshd

    if not Path(SSHD).exists():
        pytest.skip("needs Debian's openssh-server")
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    with start_sshd(tmp_path / "sshd") as server:
        for known, expect in (("", 3), (server.known_hosts_line(), 0)):
            known_hosts = tmp_path / "known_hosts"
            known_hosts.write_text(known)
            host_vars = server.host_vars(
                ssh_known_hosts_file=str(known_hosts), ansible_python_interpreter=sys.executable,
                ansible_ssh_common_args=f"-o UserKnownHostsFile={known_hosts}")
            inv = tmp_path / "hosts.yml"
            inv.write_text(json.dumps({"all": {"hosts": {"h1": host_vars}}}))
            result = run_playbook(command="hostkey", playbook=str(PLAYS / "runner-ok.yml"),
                                  inventory=inv, quiet=True,
                                  extravars={"marker_path": str(tmp_path / "m")})
            assert result.exit_code == expect, result.errors
            if expect == 3:
                assert "Host key verification failed" in result.failures[0].message


def test_ansible_cfg_as_ansible_reads_it_checks_host_keys_and_retries_dropped_ssh():
    """What ansible-core itself reads from the project's ansible.cfg (``ansible-config dump``),
    not the file's text: SSH host keys are checked and a dropped connection is retried."""
    import shutil
    import subprocess

    cfg = Path(__file__).resolve().parent.parent / "ansible.cfg"
    tool = shutil.which("ansible-config", path=str(Path(sys.executable).parent)) or "ansible-config"
    out = subprocess.run([tool, "dump", "--only-changed", "-t", "connection"],
                         env={**os.environ, "ANSIBLE_CONFIG": str(cfg)}, capture_output=True,
                         text=True, check=True, timeout=120).stdout
    ssh = out.split("\nssh:\n", 1)[1]
    assert f"host_key_checking({cfg}) = True" in ssh
    assert f"reconnection_retries({cfg}) = 3" in ssh
    assert "StrictHostKeyChecking=no" not in out and "UserKnownHostsFile=/dev/null" not in out


def test_control_dir_is_private_and_short_enough_for_a_socket(tmp_path):
    """<run_dir>/cp when that path fits a unix socket name, else a private temp dir."""
    from provision.runner import MAX_CONTROL_DIR_LEN, _control_dir

    short = tmp_path / "r"
    short.mkdir()
    long_dir = tmp_path / ("x" * 80)
    long_dir.mkdir()
    for run_dir in (short, long_dir):
        cp = _control_dir(run_dir)
        assert len(str(cp)) <= MAX_CONTROL_DIR_LEN and stat.S_IMODE(cp.stat().st_mode) == 0o700
        assert not any(cp.iterdir())
        if len(str(run_dir / "cp")) <= MAX_CONTROL_DIR_LEN:
            assert cp == run_dir / "cp"
        else:
            assert cp.name.startswith("provision-cp-")
            cp.rmdir()
