"""run_report: the one way back from Ansible (set_stats -> ansible-runner's artifact_data).

A real playbook over two local-connection hosts returns per-host data (merged across hosts),
a second task's keys (merged into the same dict) and a value carrying a secret
(masked like every event)."""
from __future__ import annotations

import io
import sys
from pathlib import Path

import yaml

from provision.progress import Progress
from provision.runner import run_playbook, run_report

PLAYS = Path(__file__).parent / "playbooks"


def test_set_stats_data_comes_back_merged_and_redacted(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    host = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}
    inv = tmp_path / "hosts.yml"
    inv.write_text(yaml.safe_dump({"all": {"children": {"control_plane": {"hosts": {
        "cp1": {**host, "size": 10}, "cp2": {**host, "size": 20}}}}}}))
    result = run_playbook(command="report", playbook=str(PLAYS / "run-report.yml"),
                          inventory=inv, progress=Progress(stream=io.StringIO()),
                          extravars={"registry_password": "hunter2-canary"})
    assert result.ok, result.errors
    report = run_report(result)
    assert report["sizes"] == {"cp1": {"bytes": 10}, "cp2": {"bytes": 20}}
    assert report["seen"] == {"cp1": True, "cp2": True}  # two tasks, one dict
    assert "hunter2-canary" not in report["note"] and report["note"].startswith("token ")


def test_no_stats_means_an_empty_report(tmp_path):
    from provision.runner import RunResult
    empty = RunResult(command="x", run_dir=tmp_path, status="failed", rc=1)
    assert run_report(empty) == {}
    odd = RunResult(command="x", run_dir=tmp_path, status="successful", rc=0,
                    stats_data={"provision": ["not", "a", "dict"]})
    assert run_report(odd) == {}
