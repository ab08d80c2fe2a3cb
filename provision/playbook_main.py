"""ansible-playbook as provision.runner starts it: Ansible's own entry point, then a quick exit.

``python -P -m provision.playbook_main ANSIBLE_PLAYBOOK ARGS...`` (``-P``: the working
directory, the run's dir, is not put on ``sys.path``) runs
``ansible.cli.playbook.main`` (what the ``ansible-playbook`` script runs) with ``sys.argv`` =
``[ANSIBLE_PLAYBOOK, ARGS...]``, so Ansible sees the same program and arguments. When it
returns, the exit handlers run (Ansible's temporary-directory cleanup, logging's flush and
close, multiprocessing's worker joins: everything ``atexit`` holds), stdout and stderr are
flushed, and the process ends with Ansible's exit code through ``os._exit``: the interpreter's
own teardown, which frees every object of the run one by one and took 0.1-0.15 s of each run
on the lab machine (``playbook_exit`` in benchmarks/cli.py), is skipped. Nothing is written then:
every file Ansible and ansible-runner's callback write is closed by then (the callback writes
each event with its own open/close), and what is still buffered is flushed above.

Not imported by provision itself (a process of its own; it imports Ansible only).
"""

from __future__ import annotations

import atexit
import contextlib
import os
import sys


def exit_code(code: object) -> int:
    """The status ``sys.exit(code)`` would end the process with."""
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    print(code, file=sys.stderr)
    return 1


def main() -> None:
    sys.argv = sys.argv[1:]  # [ansible-playbook, args...]: what Ansible's script sees
    from ansible.cli.playbook import main as playbook

    try:
        playbook()  # ends with sys.exit(Ansible's exit code)
        code = 0
    except SystemExit as stop:
        code = exit_code(stop.code)
    except KeyboardInterrupt:
        code = 130
    atexit._run_exitfuncs()  # noqa: SLF001 - the handlers interpreter shutdown would run
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # a closed or broken stream
            stream.flush()
    os._exit(code)


if __name__ == "__main__":
    main()
