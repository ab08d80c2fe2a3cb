"""What roles report for the user reaches the command's own output (issue 15 / 19: the old
and new disk sizes were only in the log): a real playbook run on localhost, the summary and
the JSON (returned with set_stats); and each report the base role returns is the message of
its debug task."""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

import yaml

from provision.commands._common import print_summary
from provision.paths import ROLES_DIR
from provision.reports import reports_from_stats
from provision.runner import REPORT_KEY, RunResult, run_playbook, run_report

PLAYS = Path(__file__).parent / "playbooks"


def _returned_titles(tasks: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """(title, the task as text) of each set_stats task that returns a report."""
    found = []
    for t in tasks:
        expr = str(((t.get("ansible.builtin.set_stats") or {}).get("data") or {}).get(
            "provision", ""))
        m = re.search(r"\{'reports': \{'([^']+)': \{inventory_hostname: ", expr)
        if m:
            found.append((m.group(1), yaml.safe_dump(t)))
    return found


def test_each_returned_report_is_the_message_of_its_debug_task() -> None:
    """The base role returns the message its debug task printed (the log and the summary say
    the same), titled with that task's name."""
    titles = set()
    for path in sorted((ROLES_DIR / "base" / "tasks").glob("*.yml")):
        tasks = yaml.safe_load(path.read_text()) or []
        for title, text in _returned_titles(tasks):
            debug = [t for t in tasks if t.get("name") == title]
            assert debug and "ansible.builtin.debug" in debug[0], (path.name, title)
            assert re.search(rf"\b{debug[0].get('register')}\b", text), (path.name, title)
            titles.add(title)
    assert len(titles) == 3, titles  # disk rescan, root filesystem sizes, unreached rules


def test_reports_come_from_the_run_report_only(tmp_path) -> None:
    result = RunResult(command="x", run_dir=tmp_path, status="successful", rc=0,
                       stats_data={REPORT_KEY: {"other": 1, "reports": {
                           "Report the root filesystem sizes": {
                               "h2": ["root filesystem grown:\n old=1 bytes  new=2 bytes"],
                               "h1": ["x", " "]},
                           "Report rules": {"h1": "INPUT: 1 rule"}}}})
    assert reports_from_stats(run_report(result)) == [
        {"host": "h1", "task": "Report the root filesystem sizes", "message": "x"},
        {"host": "h2", "task": "Report the root filesystem sizes",
         "message": "root filesystem grown: old=1 bytes new=2 bytes"},
        {"host": "h1", "task": "Report rules", "message": "INPUT: 1 rule"}]
    assert reports_from_stats(run_report(RunResult(command="x", run_dir=tmp_path,
                                                   status="failed", rc=1))) == []
    assert reports_from_stats({"reports": ["not", "a", "dict"]}) == []


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
