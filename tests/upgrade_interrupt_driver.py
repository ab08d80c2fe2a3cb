"""Run `provision -i INVENTORY upgrade --to 1.32 --yes` as a user would (provision.cli.main),
for tests/test_progress_pty.py under a real pty. Simulated: the discovery (a report of a
healthy 1.31.3 cluster with 1.32.1 in the package repository) and the hop's playbook
(tests/playbooks/progress/sleepy.yml instead of playbooks/upgrade.yml, over a local
connection). Real: the command's code path, the playbook run, the terminal and the signal.

usage: python tests/upgrade_interrupt_driver.py INVENTORY SLEEP_SECONDS
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import provision.runner
from provision.cli import main
from provision.commands import upgrade
from provision.upgrade.discover import from_report

SLEEPY = Path(__file__).parent / "playbooks" / "progress" / "sleepy.yml"


def report() -> dict[str, Any]:
    sys.path.insert(0, str(Path(__file__).parent))
    from test_status import healthy

    rep = healthy()
    rep["repository"] = {"32": ["Package: kubeadm", "Version: 1.32.1-1.1"]}
    return rep


def run() -> None:
    inventory, sleep = sys.argv[1], int(sys.argv[2])
    real = provision.runner.run_playbook

    def hop(**kw: Any) -> Any:  # the hop's run: the sleepy playbook instead of upgrade.yml
        progress = kw["progress"]  # the upgrade's quiet journal display
        seen = progress.on_event

        def on_event(kind: str, data: dict[str, Any]) -> None:  # a marker for the test
            if kind == "playbook_on_task_start":
                print(f"DRIVER TASK {data.get('task')}", flush=True)
            seen(kind, data)

        progress.on_event = on_event
        return real(**{**kw, "playbook": str(SLEEPY),
                       "extravars": {"sleep_seconds": sleep}})

    provision.runner.run_playbook = hop  # execute.run imports it when it runs
    upgrade.discover = lambda *a, **kw: (from_report(report(), "simulated discovery"), None)
    main(["-i", inventory, "upgrade", "--to", "1.32", "--yes"])


if __name__ == "__main__":
    run()
