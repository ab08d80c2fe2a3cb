"""What roles report for the user reaches the command's own output (issue 15 / 19: the old
and new disk sizes were only in the log): a real playbook run on localhost, the summary and
the JSON; and every reported task name still exists in its role file."""

from __future__ import annotations

import sys
from pathlib import Path

import yaml

from provision.commands._common import print_summary
from provision.paths import ROLES_DIR
from provision.reports import REPORTED_TASKS, reports_from_event
from provision.runner import run_playbook

PLAYS = Path(__file__).parent / "playbooks"


def test_reported_tasks_exist_in_their_roles() -> None:
    for name, where in REPORTED_TASKS.items():
        tasks = yaml.safe_load((ROLES_DIR / where).read_text())
        found = [t for t in tasks if t.get("name") == name]
        assert found, f"{name!r} not in roles/{where}"
        assert "ansible.builtin.debug" in found[0], f"{name!r} is not a debug task"


def test_only_finished_reported_tasks_count() -> None:
    ok = {"task": "Report the root filesystem sizes", "host": "h1",
          "res": {"msg": "root filesystem grown:\n old=1 bytes  new=2 bytes"}}
    assert reports_from_event("runner_on_ok", ok) == [
        {"host": "h1", "task": "Report the root filesystem sizes",
         "message": "root filesystem grown: old=1 bytes new=2 bytes"}]
    assert reports_from_event("runner_on_skipped", ok) == []
    assert reports_from_event("runner_on_ok", {**ok, "task": "Other"}) == []


def test_reports_reach_summary_and_json(tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    inv = tmp_path / "hosts.yml"
    inv.write_text("all:\n  hosts:\n    local1:\n      ansible_connection: local\n"
                   f"      ansible_python_interpreter: {sys.executable}\n")
    result = run_playbook(command="report-test", playbook=str(PLAYS / "runner-report.yml"),
                          inventory=inv, quiet=True)
    assert result.ok
    assert result.reports == [
        {"host": "local1", "task": "Report the root filesystem sizes",
         "message": "root filesystem grown: /dev/sda1 ext4 old=4000000000 bytes (3.73 GiB) "
                    "new=8000000000 bytes (7.45 GiB)"},
        {"host": "local1", "task": "Report rules after the final REJECT (never reached)",
         "message": "INPUT: 1 rule(s) after the REJECT"}]
    assert result.to_json()["reports"] == result.reports
    print_summary(result)
    out = capsys.readouterr().out
    assert "local1: root filesystem grown: /dev/sda1 ext4 old=4000000000 bytes" in out
    assert "local1: INPUT: 1 rule(s) after the REJECT" in out
    assert "only in the log" not in out
