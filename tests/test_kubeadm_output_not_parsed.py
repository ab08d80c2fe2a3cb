"""The roles never depend on kubeadm's console text, which differs by release (kubeadm 1.32
moved `upgrade apply` to phases and changed its lines: cmd/kubeadm/app/cmd/phases/upgrade/
apply/preflight.go). Every kubeadm command's result is read from its exit code and from the
API (versions, nodes, ConfigMaps), so a registered kubeadm result's stdout/stderr is never
searched or matched in a condition."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent


def _tasks(node):
    if isinstance(node, list):
        for item in node:
            yield from _tasks(item)
    elif isinstance(node, dict):
        yield node
        for key in ("block", "rescue", "always"):
            yield from _tasks(node.get(key))


def _strings(node):
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for v in node.values():
            yield from _strings(v)
    elif isinstance(node, list):
        for v in node:
            yield from _strings(v)


def parses_output(task: dict, register: str) -> bool:
    """Does ``task`` look into the console text of the registered result ``register``?"""
    pattern = re.compile(
        rf"{register}\.(stdout|stderr)\w*\s*(\||is|not)?\s*(search|regex|match|"
        rf"regex_search|regex_findall)|['\"][^'\"]+['\"]\s+(not\s+)?in\s+{register}\.std")
    return any(pattern.search(text) for text in _strings(
        {k: v for k, v in task.items() if k != "register"}))


def test_the_check_finds_a_task_reading_kubeadm_output() -> None:
    assert parses_output({"when": "'SUCCESS' in _r.stdout"}, "_r")
    assert parses_output({"failed_when": "_r.stderr is search('FATAL')"}, "_r")
    assert not parses_output({"when": "_r.rc != 0"}, "_r")


def test_no_role_matches_kubeadm_console_text() -> None:
    offenders = []
    for path in sorted(ROOT.glob("roles/*/tasks/*.yml")):
        tasks = list(_tasks(yaml.safe_load(path.read_text()) or []))
        kubeadm_results = set()
        for t in tasks:
            cmd = t.get("ansible.builtin.command") or t.get("ansible.builtin.shell") or {}
            argv = [str(a) for a in (cmd.get("argv", []) if isinstance(cmd, dict) else [])]
            if not argv:
                argv = str(cmd.get("cmd", "") if isinstance(cmd, dict) else cmd).split()
            runs_kubeadm = bool(argv) and (argv[0] == "kubeadm" or (
                argv[0] == "timeout" and "kubeadm" in argv[1:5]))
            if runs_kubeadm and t.get("register"):
                kubeadm_results.add(t["register"])
        offenders += [f"{path.relative_to(ROOT)}: {t.get('name')}: {reg}"
                      for t in tasks for reg in kubeadm_results if parses_output(t, reg)]
    assert offenders == [], offenders
