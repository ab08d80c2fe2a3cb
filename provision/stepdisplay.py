"""The live display of a command that runs no playbook but has named steps (``lab up``).

Each step prints "step K/M name: what" once; on a terminal a status line below ticks with the
elapsed time, the step's own time and each host's state; without one, a "still in step" line
now and then (:mod:`provision.progress` does the same for playbook runs).
"""

from __future__ import annotations

import sys
import threading
import time
from typing import TextIO

from provision.progress import HEARTBEAT, host_states, write_status_line


class StepDisplay:
    """The named steps of a command that runs no playbook (``lab up``: image, start, ssh).

    Each step prints "step K/M name: what" once; on a terminal a status line below ticks
    with the elapsed time, the step's own time and each host's state (multi-host runs);
    without one, a "still in step" line now and then. Lines go to stderr (stdout carries the
    command's result)."""

    def __init__(self, steps: list[str], *, stream: TextIO | None = None,
                 tick: float = 0.5) -> None:
        self.steps = list(steps)
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.tick = tick
        self.step = ""
        self.states: dict[str, str] = {}
        self.started = self.step_started = self._last_beat = time.monotonic()
        self._lock = threading.RLock()
        self._live = False
        self._stop = threading.Event()
        self._ticker: threading.Thread | None = None

    def __enter__(self) -> StepDisplay:
        self.started = time.monotonic()
        self._ticker = threading.Thread(target=self._tick_loop, name="steps", daemon=True)
        self._ticker.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._ticker is not None:
            self._ticker.join(timeout=5)
        with self._lock:
            self._clear()

    def position(self) -> str:
        if self.step not in self.steps:
            return self.step
        return f"step {self.steps.index(self.step) + 1}/{len(self.steps)} {self.step}"

    def begin(self, step: str, text: str = "") -> None:
        with self._lock:
            self.step = step
            self.step_started = self._last_beat = time.monotonic()
            self.say(f"{self.position()}" + (f": {text}" if text else ""))

    def host(self, name: str, state: str) -> None:
        with self._lock:
            self.states[name] = state
            self._draw()

    def say(self, text: str) -> None:
        with self._lock:
            self._clear()
            self.stream.write(f"[{time.monotonic() - self.started:6.1f}s] {text}\n")
            self.stream.flush()
            self._draw()

    def status_text(self) -> str:
        now = time.monotonic()
        text = (f"[{now - self.started:6.1f}s] {self.position()} "
                f"({now - self.step_started:.0f}s)")
        hosts = host_states(self.states, single=True)
        return text + (f" | {hosts}" if hosts else "")

    def _tick_loop(self) -> None:
        while not self._stop.wait(self.tick):
            with self._lock:
                if self.tty:
                    self._draw()
                elif self.step and time.monotonic() - self._last_beat >= HEARTBEAT:
                    self._last_beat = time.monotonic()
                    self.say(f"  ... still in {self.position()} after "
                             f"{time.monotonic() - self.step_started:.0f}s"
                             + (f" ({host_states(self.states, single=True)})"
                                if self.states else ""))

    def _draw(self) -> None:
        if not self.tty or not self.step:
            return
        write_status_line(self.stream, self.status_text())
        self._live = True

    def _clear(self) -> None:
        if self._live:
            self.stream.write("\r\033[K")
            self.stream.flush()
        self._live = False
