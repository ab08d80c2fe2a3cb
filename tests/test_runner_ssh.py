"""The run-wide SSH and fact settings of provision.runner proved EFFECTIVE against a real sshd
(Debian's /usr/sbin/sshd on a loopback port, LogLevel VERBOSE): not what ansible.cfg says,
what the server saw.

- multiplexing: a run of several tasks in two plays logs in once per host (the ControlPersist
  master in the run's own control dir); the per-host strict host key options are still used;
- pipelining: no module file is transferred (no sftp/scp subsystem request at the server, no
  PUT and no remote ansible-tmp dir in the -vvv log);
- facts: gathered once per run (the second play's gathering is served by the cache), cached as
  JSON in ``<run_dir>/artifacts/run/fact_cache`` and not reused by the next run.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

from provision.runner import FACTS_DIR, run_playbook

PLAY = Path(__file__).parent / "playbooks" / "runner-ssh.yml"

pytestmark = pytest.mark.sshd


def run_against(server: Any, tmp_path: Path, name: str, verbosity: int = 0) -> Any:
    from sshd_fixtures import write_inventory

    inv = write_inventory(tmp_path / f"inv-{name}", {
        "h1": server.host_vars(ansible_python_interpreter=sys.executable)})
    result = run_playbook(command=f"ssh-{name}", playbook=str(PLAY), inventory=inv / "hosts.yml",
                          quiet=True, verbosity=verbosity)
    assert result.ok, (result.errors, result.log_path.read_text()[-3000:])
    return result


def logins(server: Any) -> int:
    return server.log().count("Accepted publickey for")


def setup_runs(result: Any) -> int:
    """How many times the setup module ran (gathering), from the run's events."""
    count = 0
    for path in (result.run_dir / "artifacts" / "run" / "job_events").glob("*.json"):
        ev = json.loads(path.read_text())
        data = ev.get("event_data") or {}
        if ev.get("event") == "runner_on_ok" and data.get("task_action") in (
                "ansible.builtin.gather_facts", "gather_facts", "ansible.builtin.setup",
                "setup"):
            count += 1
    return count


def cached_facts(run_dir: Path, host: str) -> str:
    """The text of the host's file in the run's jsonfile cache (ansible-core names it
    ``<serialization prefix>_<host>``, e.g. ``s1_h1``)."""
    files = [p for p in (run_dir / FACTS_DIR).iterdir()
             if p.name == host or p.name.endswith(f"_{host}")]
    assert len(files) == 1, f"no single fact file for {host}: {files}"
    return files[0].read_text()


@pytest.fixture
def sshd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    from sshd_fixtures import SSHD, start_sshd

    if not Path(SSHD).exists():
        pytest.skip("needs Debian's openssh-server")
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    with start_sshd(tmp_path / "sshd") as server:
        yield server


def test_one_ssh_login_per_host_per_run_no_file_transfer_facts_once(sshd: Any,
                                                                  tmp_path: Path) -> None:
    """Six module runs in two plays (gathering, command, stat, ping, command, command) reach
    the host over ONE SSH login: the ControlPersist master of this run. With -vvv the log
    shows the master options and the run's control dir, the host's strict checking options,
    and no file transfer (pipelining): no PUT, no remote temp dir, no sftp/scp at the server.
    Both plays ask for facts; setup runs once per run (the second play uses the run's
    fact cache); the next run logs in anew and gathers again into its own dir."""
    first = run_against(sshd, tmp_path, "mux", verbosity=3)
    assert logins(sshd) == 1, f"{logins(sshd)} SSH logins for one run:\n{sshd.log()[-3000:]}"
    log = first.log_path.read_text()
    assert "ControlPersist=60s" in log and "ControlMaster=auto" in log
    assert "StrictHostKeyChecking=yes" in log and str(sshd.known_hosts) in log
    assert "ControlPath=" in log and ("/cp/" in log or "provision-cp-" in log)
    assert " PUT " not in log and "ansible-tmp-" not in log, "modules were transferred"
    server_log = sshd.log()
    assert "subsystem request for sftp" not in server_log
    assert "scp" not in server_log
    assert setup_runs(first) == 1
    assert "ansible_hostname" in cached_facts(first.run_dir, "h1")
    # the next run is a new login (a master never outlives its run) with its own facts
    second = run_against(sshd, tmp_path, "again")
    assert logins(sshd) == 2
    assert second.run_dir != first.run_dir
    assert setup_runs(second) == 1, "the second run reused another run's facts"
    assert "ansible_hostname" in cached_facts(second.run_dir, "h1")


def test_every_hosts_master_is_stopped_when_the_run_ends(tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """Three hosts (three real sshd): the run's three ControlPersist masters are all stopped
    when the run ends (the stops are started together, provision.runner
    _stop_control_masters): each server logs its one login's disconnect, without waiting for
    ControlPersist's 60 s, and the run's control dir is gone."""
    import contextlib
    import time

    from sshd_fixtures import SSHD, start_sshd, write_inventory

    if not Path(SSHD).exists():
        pytest.skip("needs Debian's openssh-server")
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    with contextlib.ExitStack() as stack:
        servers = [stack.enter_context(start_sshd(tmp_path / f"sshd{i}")) for i in range(3)]
        inv = write_inventory(tmp_path / "inv", {
            f"h{i}": s.host_vars(ansible_python_interpreter=sys.executable)
            for i, s in enumerate(servers)})
        result = run_playbook(command="ssh-stop", playbook=str(PLAY),
                              inventory=inv / "hosts.yml", quiet=True)
        assert result.ok, (result.errors, result.log_path.read_text()[-3000:])
        assert not (result.run_dir / "cp").exists()
        deadline = time.monotonic() + 15  # sshd writes its log line after the client left
        while time.monotonic() < deadline and not all(
                "Disconnected from user" in s.log() for s in servers):
            time.sleep(0.1)
        for s in servers:
            assert logins(s) == 1, s.log()[-2000:]
            assert "Disconnected from user" in s.log(), f"master still up:\n{s.log()[-2000:]}"
