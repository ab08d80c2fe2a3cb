"""Live progress for playbook runs, fed by ansible-runner events.

On a terminal: one status line redrawn in place (play, task, ok/changed/failed/unreachable
counts, elapsed). Otherwise: plain lines, one per task plus one per changed/failed host, so CI
logs and pipes stay readable. Output goes to stderr in --json mode (stdout is for the JSON).
"""

from __future__ import annotations

import sys
import threading
import time
from typing import Any, TextIO

from provision import output


class Progress:
    def __init__(self, *, quiet: bool = False, verbosity: int = 0,
                 stream: TextIO | None = None) -> None:
        self.stream = stream or (sys.stderr if output.JSON_MODE else sys.stdout)
        self.quiet = quiet
        self.verbosity = verbosity
        self.tty = self.stream.isatty()
        self.counts = {"ok": 0, "changed": 0, "failed": 0, "unreachable": 0, "skipped": 0}
        self.play = ""
        self.task = ""
        self.started = time.monotonic()
        self._lock = threading.Lock()
        self._live = False

    # -- lifecycle -------------------------------------------------------------------
    def start(self, command: str) -> None:
        self.started = time.monotonic()
        self._line(f"provision {command}: starting")

    def stop(self) -> None:
        if self.tty and self._live and not self.quiet:
            self.stream.write("\r\033[K")
            self.stream.flush()
        self._live = False
        c = self.counts
        self._line(f"done in {self.elapsed():.1f}s: ok={c['ok']} changed={c['changed']} "
                   f"failed={c['failed']} unreachable={c['unreachable']} "
                   f"skipped={c['skipped']}")

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    # -- events ----------------------------------------------------------------------
    def on_event(self, kind: str, data: dict[str, Any]) -> None:
        with self._lock:
            if kind == "playbook_on_play_start":
                self.play = str(data.get("play") or "")
                self._line(f"PLAY {self.play}")
            elif kind == "playbook_on_task_start":
                self.task = str(data.get("task") or "")
                if not self.tty:
                    self._line(f"  TASK {self.task}")
            elif kind.startswith("runner_on_") or kind == "runner_item_on_failed":
                self._host_result(kind, data)
            self._status()

    def _host_result(self, kind: str, data: dict[str, Any]) -> None:
        host = data.get("host", "?")
        res = data.get("res") if isinstance(data.get("res"), dict) else {}
        if kind == "runner_on_ok":
            state = "changed" if res.get("changed") else "ok"
        elif kind == "runner_on_failed":
            state = "ignored" if data.get("ignore_errors") else "failed"
        elif kind == "runner_on_unreachable":
            state = "unreachable"
        elif kind == "runner_on_skipped":
            state = "skipped"
        else:
            return
        if state in self.counts:
            self.counts[state] += 1
        if state in ("changed", "failed", "unreachable") or self.verbosity >= 1:
            self._line(f"    {state}: {host} [{self.task}]")

    # -- drawing ---------------------------------------------------------------------
    def _line(self, text: str) -> None:
        if self.quiet:
            return
        stamp = f"[{self.elapsed():6.1f}s]"
        if self.tty and self._live:
            self.stream.write("\r\033[K")
            self._live = False
        self.stream.write(f"{stamp} {text}\n")
        self.stream.flush()

    def _status(self) -> None:
        if self.quiet or not self.tty:
            return
        c = self.counts
        text = (f"[{self.elapsed():6.1f}s] {self.play[:30]} | {self.task[:50]} | ok={c['ok']} "
                f"changed={c['changed']} failed={c['failed']} unreachable={c['unreachable']}")
        self.stream.write("\r\033[K" + text)
        self.stream.flush()
        self._live = True
