"""Read a task's per-host results back from an ansible-runner run directory.

ansible-runner writes every event, with the module's full result (``event_data.res``), to
``<run_dir>/artifacts/<ident>/job_events/<counter>-<uuid>.json``. ``RunResult.events`` keeps
only a summary, so commands that need a task's output (``certs check``) read it from there.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from provision.runner import IDENT


def task_results(run_dir: Path, task: str, ident: str = IDENT) -> dict[str, dict[str, Any]]:
    """``{host: res}`` of the ``runner_on_ok`` events of the task named ``task``."""
    events_dir = Path(run_dir) / "artifacts" / ident / "job_events"
    found: list[tuple[int, str, dict[str, Any]]] = []
    if not events_dir.is_dir():
        return {}
    for path in events_dir.glob("*.json"):
        try:
            event = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        data = event.get("event_data") or {}
        if event.get("event") != "runner_on_ok" or data.get("task") != task:
            continue
        res = data.get("res")
        if isinstance(res, dict) and data.get("host"):
            found.append((int(event.get("counter") or 0), str(data["host"]), res))
    return {host: res for _, host, res in sorted(found, key=lambda x: x[0])}
