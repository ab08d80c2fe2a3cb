"""Run tests/playbooks/progress/sleepy.yml through run_playbook as `bootstrap` would (or
PLAYBOOK as COMMAND, a command without named steps), with the live display on this process's
stdout; used by tests/test_progress_pty.py under a real pty.

usage: python tests/progress_driver.py INVENTORY SLEEP_SECONDS [COMMAND PLAYBOOK]
Exits with the run's exit code (130 when interrupted), after printing the summary.
"""

from __future__ import annotations

import sys
from pathlib import Path

from provision.commands._common import print_summary
from provision.runner import run_playbook


def main() -> int:
    inventory, sleep = sys.argv[1], int(sys.argv[2])
    here = Path(__file__).parent / "playbooks" / "progress"
    if len(sys.argv) > 3:
        result = run_playbook(command=sys.argv[3], playbook=str(here / sys.argv[4]),
                              inventory=inventory, extravars={"sleep_seconds": sleep})
    else:
        result = run_playbook(command="bootstrap", playbook=str(here / "sleepy.yml"),
                              inventory=inventory,
                              extravars={"provision_components": ["base", "docker"],
                                         "sleep_seconds": sleep})
    print_summary(result)
    print(f"RUN_DIR {result.run_dir}")
    return result.exit_code


if __name__ == "__main__":
    sys.exit(main())
