"""Ctrl-C during a playbook run: stop cleanly, say where, and how to resume.

ansible-runner stops its child when a cancel callback returns True. Left alone it installs
its own SIGINT/SIGTERM handlers for that and never restores the previous ones; here the
handlers live only for one run (:func:`interrupt_guard`). The resume command is built from the
global options and the bootstrap step the run was in (``--from-step``).
"""

from __future__ import annotations

import shlex
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any


@contextmanager
def interrupt_guard() -> Iterator[Callable[[], bool] | None]:
    """Yield a cancel callback that turns True after SIGINT/SIGTERM; restore the previous
    handlers afterwards. Off the main thread (no signals there) yield None."""
    if threading.current_thread() is not threading.main_thread():
        yield None
        return
    hit = threading.Event()

    def handler(signum: int, frame: Any) -> None:
        hit.set()

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield hit.is_set
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def resume_command(command: str, steps: list[str], step: str | None,
                   options: Any | None = None) -> str | None:
    """``provision -i lab bootstrap --components base,docker,cluster --from-step docker`` for
    a bootstrap interrupted in its ``docker`` step; None when there is no step to resume at."""
    if command != "bootstrap" or not step or step not in steps:
        return None
    words = ["provision"]
    if options is not None:
        if getattr(options, "inventory", None):
            words += ["-i", str(options.inventory)]
        if getattr(options, "limit", None):
            words += ["--limit", str(options.limit)]
        if getattr(options, "check", False):
            words.append("--check")
    words += ["bootstrap", "--components", ",".join(steps), "--from-step", step]
    return shlex.join(words)


def current_options() -> Any | None:
    """The global options of the running click command, if any."""
    try:
        import click

        from provision.context import Options
    except ImportError:  # pragma: no cover - click is a dependency
        return None
    ctx = click.get_current_context(silent=True)
    return ctx.find_object(Options) if ctx is not None else None
