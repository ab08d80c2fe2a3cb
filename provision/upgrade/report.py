"""Running a read-only discovery playbook and getting its report back (side effects: one
playbook run, a copy of the report in the run directory).

Shared by ``provision upgrade`` (kubeadm and minikube mode) and ``provision status`` so that
no command module imports another. The kubeadm discovery (``playbooks/upgrade-discover.yml``)
returns its report with ``set_stats`` under ``discovery`` (read by
``provision.runner.run_report``); the minikube discovery (``roles/minikube``'s discover.yml)
still writes ``discovery.json`` into the directory its ``report_var`` names.
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

import click

from provision.errors import UsageError

REPORT = "discovery"  # the key of the report in the play's set_stats data


def run_report_playbook(inv: Any, verbosity: int, playbook: str, report_var: str | None,
                        extravars: dict[str, Any] | None = None, *,
                        command: str = "upgrade discover",
                        accept_failed: bool = False, limit: str | None = None,
                        check: bool = False) -> tuple[Any, Path, Any]:
    """Run a read-only playbook that reports what it found: with ``report_var`` None through
    ``set_stats`` (key ``discovery``), else as ``discovery.json`` in the directory named by the
    extra var ``report_var``. Keeps a copy in the run dir. Returns (data or None, copy path,
    RunResult). ``accept_failed``: return a report despite failed or unreachable hosts too
    (`provision status` shows what it got). ``limit``/``check``: passed to the run (the
    discovery playbooks read the same under Ansible's check mode)."""
    from provision.paths import runs_dir
    from provision.runner import run_playbook, run_report

    report_dir: Path | None = None
    extra = dict(extravars or {})
    if report_var is not None:
        base = runs_dir()
        base.mkdir(parents=True, exist_ok=True)
        report_dir = Path(tempfile.mkdtemp(prefix="upgrade-discovery-", dir=base))
        extra = {report_var: str(report_dir), **extra}
    try:
        result = run_playbook(command=command, playbook=playbook, limit=limit, check=check,
                              inventory=inv, verbosity=verbosity, quiet=verbosity == 0,
                              extravars=extra)
        saved = result.run_dir / "discovery.json"
        if not (result.ok or accept_failed):
            return None, saved, result
        if report_dir is None:
            data = run_report(result).get(REPORT)
        else:
            report = report_dir / "discovery.json"
            data = json.loads(report.read_text()) if report.exists() else None
        if not isinstance(data, dict):
            return None, saved, result
        saved.write_text(json.dumps(data, indent=2))
        return data, saved, result
    finally:
        if report_dir is not None:
            shutil.rmtree(report_dir, ignore_errors=True)


def confirm(yes: bool) -> bool:
    """--yes, or the user's answer on a terminal; no terminal and no --yes: exit 2."""
    if yes:
        return True
    if not sys.stdin.isatty():
        raise UsageError("provision upgrade: no terminal to confirm on; pass --yes to upgrade "
                         "(or --plan to only print the plan); nothing was done")
    return click.confirm("Upgrade the cluster now?", default=False)
