"""One way back from Ansible (issue 14 §5): Python reads what a play returns with set_stats
(provision.runner.run_report), never a role's task names or a report file the play copied to
the controller. Pure source checks: they fail when a module matches a task name again or a
role writes a report to localhost, outside the few places listed here with the reason."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parent.parent

#: (module, task name) still matched, and why.
TASK_NAMES_STILL_MATCHED: dict[tuple[str, str], str] = {}

#: file -> why a task there still runs on the controller (delegate_to: localhost).
CONTROLLER_TASKS = {
    "roles/kubeconfig_fetch/tasks/main.yml":
        "the admin kubeconfig (client key) goes to a private temp dir removed after the run: "
        "set_stats data is written into the run dir's job events",
    "roles/minikube/tasks/discover.yml":
        "minikube discovery report file, read by provision/upgrade/report.py (the kubeadm "
        "discovery returns its report with set_stats; this one is still to move)",
    "roles/ingress_nginx/tasks/outside.yml":
        "not a report: asks the ingress from this machine, the address a user would use",
    "roles/etcd_restore/tasks/distribute.yml":
        "not a report: the snapshot is staged in a private temp dir on this machine to be "
        "copied to every member",
    "playbooks/etcd-fetch.yml":
        "not a report: `etcd fetch` copies snapshots to the user's --dest on this machine",
}


def _task_files() -> list[Path]:
    return sorted([*REPO.glob("roles/*/tasks/**/*.yml"), *REPO.glob("roles/*/handlers/*.yml"),
                   *REPO.glob("playbooks/**/*.yml")])


def _tasks(items: Any) -> list[dict[str, Any]]:
    """Every task (and play) in a task file or playbook, blocks opened."""
    out: list[dict[str, Any]] = []
    for t in items if isinstance(items, list) else []:
        if isinstance(t, dict):
            out.append(t)
            for key in ("block", "rescue", "always", "tasks", "pre_tasks", "post_tasks",
                        "handlers"):
                out += _tasks(t.get(key))
    return out


def _task_names() -> set[str]:
    names = set()
    for path in _task_files():
        for t in _tasks(yaml.safe_load(path.read_text())):
            if isinstance(t.get("name"), str):
                names.add(t["name"])
    return names


def test_no_module_matches_a_role_task_name() -> None:
    names = _task_names()
    assert "Stop when bootstrap has not built a cluster" in names  # the scan sees the roles
    found = set()
    for path in sorted((REPO / "provision").rglob("*.py")):
        rel = str(path.relative_to(REPO))
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) \
                    and node.value in names:
                found.add((rel, node.value))
    assert found == set(TASK_NAMES_STILL_MATCHED), sorted(found ^ set(TASK_NAMES_STILL_MATCHED))


def test_no_role_writes_a_report_on_the_controller() -> None:
    found = set()
    for path in _task_files():
        for t in _tasks(yaml.safe_load(path.read_text())):
            if t.get("delegate_to") in ("localhost", "127.0.0.1"):
                found.add(str(path.relative_to(REPO)))
    assert found == set(CONTROLLER_TASKS), sorted(found ^ set(CONTROLLER_TASKS))
