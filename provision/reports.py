"""Messages a role reports to the user, taken from a run's events (pure).

Some facts a run finds belong in the command's own output, not only in the run's log: the old
and new size of a root filesystem the base role grew, a disk an online-resize rescan found
bigger, firewall rules that are never reached. The roles print them with a ``debug`` task; the
tasks named here are surfaced, per host, in the end-of-run summary and as ``reports`` in
``--json``. tests/test_reports.py checks that each name still exists in its role.
"""

from __future__ import annotations

from typing import Any

#: task name -> the role file it lives in (relative to roles/)
REPORTED_TASKS: dict[str, str] = {
    "Report a disk the rescan found bigger": "base/tasks/disk-grow.yml",
    "Report the root filesystem sizes": "base/tasks/disk-grow.yml",
    "Report rules after the final REJECT (never reached)": "base/tasks/firewall.yml",
}


def _messages(res: dict[str, Any]) -> list[str]:
    """The ``msg`` of a debug result, or of each item of a looped one (skipped items left out)."""
    if not isinstance(res.get("results"), list):  # a looped task's msg is "All items completed"
        return [res["msg"]] if isinstance(res.get("msg"), str) else []
    out = []
    for item in res.get("results") or []:
        if isinstance(item, dict) and not item.get("skipped") and isinstance(item.get("msg"),
                                                                               str):
            out.append(item["msg"])
    return out


def reports_from_event(kind: str, data: dict[str, Any]) -> list[dict[str, str]]:
    """``[{"host", "task", "message"}]`` for a finished reported task; [] for anything else."""
    task = str(data.get("task") or "")
    res = data.get("res")
    if kind != "runner_on_ok" or task not in REPORTED_TASKS or not isinstance(res, dict):
        return []
    host = str(data.get("host") or "?")
    return [{"host": host, "task": task, "message": " ".join(m.split())}
            for m in _messages(res) if m.strip()]
