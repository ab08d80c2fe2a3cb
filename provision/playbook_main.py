"""ansible-playbook as provision.runner starts it: Ansible's own entry point, the Jinja
plugins loaded before the workers are forked, and a quick exit.

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


def load_jinja_plugins_before_forks() -> None:
    """Load every filter and test plugin in ansible-playbook's own process at the start of each
    play, before the play's workers are forked, so they inherit them.

    Ansible forks one worker per host and task; a worker that templates a filter or a test
    first loads ALL filter (test) plugins on the configured paths (ansible-core 2.19,
    lib/ansible/plugins/loader.py: Jinja2Loader.get_with_context calls
    _ensure_non_collection_wrappers, which imports every plugin file and wraps each function,
    and returns at once when its cache is filled). In a worker that cache dies with the
    worker: every worker paid it again (a quarter of a no-op bootstrap gate worker's CPU on 16
    lab hosts). Filled once in the parent, it is inherited by every fork. The play's roles'
    plugin directories are known by then (roles are loaded with the playbook); a directory
    added later (include_role) clears the cache (PluginLoader.add_directory -> _clear_caches),
    and the loader fills it again where it is next needed, as without this."""
    from ansible.executor.task_queue_manager import TaskQueueManager
    from ansible.plugins.loader import filter_loader, test_loader

    run = TaskQueueManager.run

    def run_play(self: TaskQueueManager, play: object) -> int:
        for loader in (filter_loader, test_loader):
            ensure = getattr(loader, "_ensure_non_collection_wrappers", None)
            if ensure is None:  # another ansible-core: left to the workers
                continue
            try:
                ensure()
            except Exception:  # noqa: BLE001 - no half-filled cache: the workers load and report
                loader._cached_non_collection_wrappers = {}
        return run(self, play)

    TaskQueueManager.run = run_play  # type: ignore[method-assign]


def main() -> None:
    sys.argv = sys.argv[1:]  # [ansible-playbook, args...]: what Ansible's script sees
    from ansible.cli.playbook import main as playbook

    load_jinja_plugins_before_forks()

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
