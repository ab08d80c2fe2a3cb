"""Live progress for playbook runs, fed by ansible-runner events.

On a terminal: one status line redrawn in place and refreshed by a ticker thread, so the
elapsed time keeps moving while a long task runs: elapsed, the position (step K/M when the
command has named steps: bootstrap's components, an upgrade hop's journal steps; otherwise
play K/M when the playbook has several plays), task N/M within the play (M from
:mod:`provision.plan`: exact, or "≤M" when includes make it an upper bound), the task's own
time, per-host state for multi-host runs, and the totals. Otherwise: plain lines, one per
task plus one per changed/failed host, and a "still running" line (with the task's position)
now and then, so CI logs and pipes stay readable. A play or task whose
hosts all skip it is not printed. Output goes to stderr in --json mode (stdout is for the JSON).

Counts follow Ansible's own recap (``ok`` includes ``changed``) and are replaced by the recap
itself when it arrives, so the "done" line and the per-host summary always agree.
"""

from __future__ import annotations

import shutil
import sys
import threading
import time
from collections.abc import Callable
from typing import Any, TextIO

from provision import output
from provision.plan import PlayPlan

#: Ansible's recap keys -> ours (the per-host summary uses the same names).
RECAP_KEYS = {"ok": "ok", "changed": "changed", "failures": "failed", "dark": "unreachable",
              "skipped": "skipped"}
COUNT_NAMES = ("ok", "changed", "failed", "unreachable", "skipped")
#: Roles -> the bootstrap step (component) they belong to.
ROLE_STEPS = {"base": "base", "docker": "docker", "containerd": "containerd",
              "kubernetes_packages": "cluster", "kubeadm_control_plane": "cluster",
              "kubeadm_worker": "cluster", "cni": "cluster", "minikube": "cluster",
              "metallb": "metallb", "ingress_nginx": "ingress", "gateway_api": "ingress",
              "cert_manager": "cert-manager"}
ADDON_STEPS = ("metallb", "ingress", "cert-manager")
#: Seconds a task runs before a pending (so far all-skipped) play/task header is printed.
SHOW_AFTER = 2.0
#: Without a terminal: a "still running" line every this many seconds of one task.
HEARTBEAT = 30.0
RUNNING = "running"
META = ("meta", "ansible.builtin.meta", "ansible.legacy.meta")


def step_for_role(role: str, steps: list[str]) -> str | None:
    """``"ingress_nginx"`` -> ``"ingress"`` (or ``"addons"`` when only that is selected)."""
    step = ROLE_STEPS.get(role)
    if step in ADDON_STEPS and step not in steps and "addons" in steps:
        return "addons"
    return step if step in steps else None


def skip_unselected(steps: list[str]) -> Callable[[str], bool]:
    """For :func:`provision.plan.playbook_plan`: the roles of steps that were not selected."""
    return lambda role: bool(steps) and role in ROLE_STEPS and step_for_role(role, steps) is None


def task_position(n: int, plan: PlayPlan | None) -> str:
    """``3, PlayPlan(tasks=4, exact=True)`` -> ``"3/4"``; a bound -> ``"3/≤40"``; past the
    plan (a loop over an include) or without one -> ``"3"``."""
    if plan is None or plan.tasks < n or plan.tasks == 0:
        return str(n)
    return f"{n}/{'' if plan.exact else '≤'}{plan.tasks}"


def host_states(states: dict[str, str], width: int = 60, *, single: bool = False) -> str:
    """``{"cp1": "ok", "w1": "running"}`` -> ``"cp1 ok, w1 running"``; many hosts -> tallies.
    One host is shown only when ``single`` (a run of several hosts: a serial batch of one)."""
    if not states or (len(states) == 1 and not single):
        return ""
    text = ", ".join(f"{h} {s}" for h, s in states.items())
    if len(text) <= width:
        return text
    tally: dict[str, list[str]] = {}
    for h, s in states.items():
        tally.setdefault(s, []).append(h)
    parts = []
    for s, hosts in tally.items():
        parts.append(f"{len(hosts)} {s}" + (f" ({', '.join(hosts[:2])}…)"
                                             if s in (RUNNING, "failed") else ""))
    return ", ".join(parts)



def write_status_line(stream: TextIO, text: str) -> None:
    """Redraw the one live status line: cut to the terminal's width, then written over the
    previous one (carriage return, clear to end of line)."""
    width = shutil.get_terminal_size((100, 24)).columns
    if len(text) > width - 1:
        text = text[:width - 2] + "…"
    stream.write("\r\033[K" + text)
    stream.flush()

class Progress:
    def __init__(self, *, quiet: bool = False, verbosity: int = 0,
                 stream: TextIO | None = None, steps: list[str] | None = None,
                 plan: list[PlayPlan] | None = None, tick: float = 0.5,
                 event_lines: bool = True) -> None:
        self.stream = stream or (sys.stderr if output.JSON_MODE else sys.stdout)
        self.quiet = quiet
        self.verbosity = verbosity
        self.tty = self.stream.isatty()
        self.steps = list(steps or [])
        self.step = ""
        self.plan: list[PlayPlan] = list(plan or [])
        self.play_index = -1  # into self.plan; -1 before the first play or when not found
        self.play_task_no = 0  # tasks announced in the current play (serial batch)
        self.batch = 1  # serial batch of the current play
        self.batch_done: dict[str, str] = {}  # hosts of the play's earlier batches
        self._play_id = ""
        #: Printed before the position on the status line (an upgrade's "hop 1/2").
        self.prefix = ""
        #: False: only the status line and "still running" lines (the caller prints its own
        #: report: status, upgrade --plan, kubeconfig, an upgrade's journal lines).
        self.event_lines = event_lines
        self.tick = tick
        self.hosts: dict[str, dict[str, int]] = {}
        self.states: dict[str, str] = {}  # host -> its state in the current task
        self.play = ""
        self.task = ""
        self.task_no = 0
        self.task_started = time.monotonic()
        self.started = time.monotonic()
        self.interrupted = False
        self._pending_play: str | None = None
        self._pending_task: str | None = None
        self._last_beat = 0.0
        self._lock = threading.RLock()
        self._live = False
        self._stop = threading.Event()
        self._ticker: threading.Thread | None = None

    @property
    def counts(self) -> dict[str, int]:
        """Totals over all hosts, as the "done" line shows them."""
        return {k: sum(h[k] for h in self.hosts.values()) for k in COUNT_NAMES}

    # -- lifecycle -------------------------------------------------------------------
    def start(self, command: str) -> None:
        self.started = time.monotonic()
        if self.event_lines:
            self._line(f"provision {command}: starting")
        if not self.quiet:
            self._stop.clear()
            self._ticker = threading.Thread(target=self._tick_loop, name="progress",
                                            daemon=True)
            self._ticker.start()

    def stop(self) -> None:
        self._stop.set()
        if self._ticker is not None:
            self._ticker.join(timeout=5)
            self._ticker = None
        with self._lock:
            self._clear_status()
            c = self.counts
            verb = "interrupted after" if self.interrupted else "done in"
            if not self.event_lines:  # the caller prints its own summary
                return
            self._line(f"{verb} {self.elapsed():.1f}s: ok={c['ok']} changed={c['changed']} "
                       f"failed={c['failed']} unreachable={c['unreachable']} "
                       f"skipped={c['skipped']}")

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def where(self) -> dict[str, Any]:
        """Where the run is now: for an interrupted run's summary."""
        with self._lock:
            return {"play": self.play, "task": self.task, "task_number": self.task_no,
                    "play_number": self.play_index + 1 if self.play_index >= 0 else None,
                    "task_in_play": self.position() or None,
                    "step": self.step or None,
                    "hosts": sorted(h for h, s in self.states.items() if s == RUNNING)}

    # -- events ----------------------------------------------------------------------
    def on_event(self, kind: str, data: dict[str, Any]) -> None:
        with self._lock:
            if kind == "playbook_on_play_start":
                # a serial play starts again (a copy, with a new uuid) for each batch
                play_id = str(data.get("play") or "")
                if play_id and play_id == self._play_id:
                    self.batch += 1
                    self.batch_done.update({h: s if s in ("failed", "unreachable") else "done"
                                            for h, s in self.states.items()})
                else:
                    self.batch, self.batch_done = 1, {}
                    self.play = str(data.get("play") or "")
                    self._play_start()
                self._play_id = play_id
                self.play_task_no = 0
                self.task = ""
                where = [f"play {self.play_index + 1}/{len(self.plan)}"] if (
                    len(self.plan) > 1 and self.current_play() is not None) else []
                where += [f"batch {self.batch}"] if self.batch > 1 else []
                self._pending_play = self.play + (f" ({', '.join(where)})" if where else "")
                self._pending_task = None
                self.states = {}
            elif kind in ("playbook_on_task_start", "playbook_on_handler_task_start"):
                if str(data.get("resolved_action") or data.get("task_action")) not in META:
                    self._task_start(data)  # flush_handlers & co. are no work to count
            elif kind == "runner_on_start":
                host = str(data.get("host") or "?")
                self.states[host] = RUNNING
                self._count(host)
            elif kind == "playbook_on_stats":
                self._recap(data)
            elif kind.startswith("runner_on_"):
                self._host_result(kind, data)
            self._status()

    def _play_start(self) -> None:
        """Find the play in the plan (from the current one on: a serial play starts again
        for each batch) and restart the play's task count."""
        start = max(self.play_index, 0)
        for i in range(start, len(self.plan)):
            if self.plan[i].name == self.play:
                self.play_index = i
                return
        self.play_index = min(self.play_index + 1, len(self.plan)) if self.plan else -1

    def current_play(self) -> PlayPlan | None:
        if 0 <= self.play_index < len(self.plan) and self.plan[self.play_index].name == self.play:
            return self.plan[self.play_index]
        return None

    def position(self) -> str:
        """The task's place in its play: ``"3/4"``, ``"3/≤40"`` or ``"3"`` ("" before any)."""
        return task_position(self.play_task_no, self.current_play()) if self.play_task_no else ""

    def _task_start(self, data: dict[str, Any]) -> None:
        self.task = str(data.get("task") or "")
        role = str(data.get("role") or "")
        self.task_no += 1
        self.play_task_no += 1
        self.task_started = time.monotonic()
        self._last_beat = self.task_started
        step = step_for_role(role, self.steps) if role else None
        if step:
            self.step = step
        label = f"{role} : {self.task}" if role and not self.task.startswith(role) else self.task
        position = task_position(self.play_task_no, self.current_play())
        self._pending_task = label + (f" (task {position})" if "/" in position else "")
        self.states = {h: "waiting" for h, s in self.states.items()
                       if s not in ("failed", "unreachable")}

    def _count(self, host: str) -> dict[str, int]:
        return self.hosts.setdefault(host, dict.fromkeys(COUNT_NAMES, 0))

    def _host_result(self, kind: str, data: dict[str, Any]) -> None:
        host = str(data.get("host") or "?")
        res = data.get("res") if isinstance(data.get("res"), dict) else {}
        counts = self._count(host)
        if kind == "runner_on_ok":
            state = "changed" if res.get("changed") else "ok"
            counts["ok"] += 1
            counts["changed"] += state == "changed"
        elif kind == "runner_on_failed":
            ignored = bool(data.get("ignore_errors"))
            state = "ignored" if ignored else "failed"
            counts["ok" if ignored else "failed"] += 1
        elif kind == "runner_on_unreachable":
            state = "unreachable"
            counts["unreachable"] = 1
        elif kind == "runner_on_skipped":
            state = "skipped"
            counts["skipped"] += 1
        else:
            return
        self.states[host] = state
        if state != "skipped":
            self._show_pending()
        if self.event_lines and (state in ("changed", "failed", "unreachable")
                                 or self.verbosity >= 1):
            self._line(f"    {state}: {host} [{self.task}]")

    def _recap(self, data: dict[str, Any]) -> None:
        """Ansible's final recap is the truth: take its numbers per host."""
        hosts: dict[str, dict[str, int]] = {}
        for key, name in RECAP_KEYS.items():
            for host, n in (data.get(key) or {}).items():
                hosts.setdefault(host, dict.fromkeys(COUNT_NAMES, 0))[name] = int(n)
        for h in hosts.values():
            h["unreachable"] = 1 if h["unreachable"] else 0
        if hosts:
            self.hosts = hosts

    # -- drawing ---------------------------------------------------------------------
    def _show_pending(self) -> None:
        """Print the play/task headers held back until something in them did not skip."""
        if not self.event_lines:
            self._pending_play = self._pending_task = None
            return
        if self._pending_play is not None:
            play, self._pending_play = self._pending_play, None
            self._line(f"PLAY {play}")
        if self._pending_task is not None:
            task, self._pending_task = self._pending_task, None
            if not self.tty:
                self._line(f"  TASK {task}")

    def _tick_loop(self) -> None:
        while not self._stop.wait(self.tick):
            with self._lock:
                running = time.monotonic() - self.task_started
                if self.task and running >= SHOW_AFTER and RUNNING in self.states.values():
                    self._show_pending()
                if self.tty:
                    self._status()
                elif self.task and running >= HEARTBEAT and \
                        time.monotonic() - self._last_beat >= HEARTBEAT:
                    self._last_beat = time.monotonic()
                    hosts = [h for h, s in self.states.items() if s == RUNNING]
                    at = f"task {self.position()} " if self.position() else ""
                    self._line(f"  ... still running after {running:.0f}s: {at}{self.task}"
                               + (f" on {', '.join(hosts)}" if hosts else ""))

    def status_text(self) -> str:
        c = self.counts
        parts = [f"[{self.elapsed():6.1f}s]"]
        if self.prefix:
            parts.append(f"{self.prefix} ·")
        if self.step and self.step in self.steps:
            parts.append(f"step {self.steps.index(self.step) + 1}/{len(self.steps)} "
                         f"{self.step} ·")
        elif len(self.plan) > 1 and self.current_play() is not None:
            parts.append(f"play {self.play_index + 1}/{len(self.plan)}"
                         + (f" batch {self.batch}" if self.batch > 1 else "") + " ·")
        if self.play_task_no:
            parts.append(f"task {self.position()} "
                         f"({time.monotonic() - self.task_started:.0f}s):")
        parts.append(self.task[:50] or self.play[:40] or "starting ansible-playbook")
        hosts = host_states({**self.batch_done, **self.states}, single=len(self.hosts) > 1)
        if hosts:
            parts.append(f"| {hosts}")
        parts.append(f"| ok={c['ok']} changed={c['changed']} failed={c['failed']}"
                     + (f" unreachable={c['unreachable']}" if c["unreachable"] else ""))
        return " ".join(parts)

    def _status(self) -> None:
        if self.quiet or not self.tty:
            return
        write_status_line(self.stream, self.status_text())
        self._live = True

    def _clear_status(self) -> None:
        if self.tty and self._live and not self.quiet:
            self.stream.write("\r\033[K")
            self.stream.flush()
        self._live = False

    def say(self, text: str, echo: Callable[[str], None]) -> None:
        """Print ``text`` with the caller's ``echo`` without tearing the status line (the
        next tick redraws it)."""
        with self._lock:
            self._clear_status()
            echo(text)

    def _line(self, text: str) -> None:
        if self.quiet:
            return
        with self._lock:
            self._clear_status()
            self.stream.write(f"[{self.elapsed():6.1f}s] {text}\n")
            self.stream.flush()

