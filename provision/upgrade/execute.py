"""Executing a plan: one run of ``playbooks/upgrade.yml`` per hop, journalled.

The pure part (``hop_vars``) turns a hop, the journal and the discovery into the playbook's
extra vars: which steps each node has left (in the journal's own step order) and which the
journal (or the cluster: a finished ``upgrade apply``) already has done. The side-effect part
(``run``) runs the hops in order, follows the journal the playbook writes on the first
control-plane node (recognised by the journal tool's output, not by a task name: one progress
line per step and node), keeps the controller's copy of the journal in the run directory and
in the state directory, and stops at the first failed hop.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from provision.progress import Progress
from provision.upgrade import steps
from provision.upgrade.discover import Discovery, lock_id
from provision.upgrade.state import (
    ClusterState,
    Hop,
    Journal,
    hop_to_dict,
    journal_from_dict,
    journal_to_dict,
)
from provision.versions import format_release

#: The journal tool's output starts with this (roles/kubeadm_upgrade/files/upgrade-journal.py).
JOURNAL_OUTPUT = '{"provision_upgrade_journal": '
CLUSTER_STEPS = steps.CLUSTER_STEPS


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def header(journal: Journal) -> dict[str, Any]:
    data = journal_to_dict(journal)
    data.pop("steps")
    return data


def done_steps(journal: Journal, hop: Hop, state: ClusterState | None) -> list[str]:
    latest = journal.latest()
    return [f"{s.name}|{s.node}" for s in hop.steps() if journal.is_done(s, state, latest)]


def hop_vars(journal: Journal, hop: Hop, d: Discovery, state: ClusterState | None,
             *, last: bool, tool_installed: bool = False) -> dict[str, Any]:
    """The extra vars of ``playbooks/upgrade.yml`` for one hop (pure): per host the node steps
    left to run and the cluster steps left, in the order of the journal's own runbook.
    ``tool_installed``: an earlier hop of this run installed the journal tool (the later hops
    skip its install: two round trips per hop)."""
    latest = journal.latest()
    per_host: dict[str, list[str]] = {}
    cluster: list[str] = []
    for s in hop.steps():
        if journal.is_done(s, state, latest):
            continue
        if s.name in CLUSTER_STEPS:
            cluster.append(s.name)
        else:
            per_host.setdefault(d.host(s.node), []).append(s.name)
    workers = [d.host(n) for b in hop.batches for n in b]
    return {
        "kubeadm_upgrade_hop": hop_to_dict(hop),
        "kubeadm_upgrade_header": header(journal),
        "kubeadm_upgrade_lock_id": lock_id(journal),
        "kubeadm_upgrade_first_cp": d.host(hop.verify_node),
        "kubeadm_upgrade_cp_hosts": [d.host(n) for n in hop.control_planes],
        "kubeadm_upgrade_worker_hosts": workers,
        "kubeadm_upgrade_serial": len(hop.batches[0]) if hop.batches else 1,
        "kubeadm_upgrade_node_names": {h: n for n, h in d.hosts.items()},
        "kubeadm_upgrade_steps": per_host,
        "kubeadm_upgrade_cluster_steps": cluster,
        "kubeadm_upgrade_done": done_steps(journal, hop, state),
        "kubeadm_upgrade_last_hop": last,
        "kubeadm_upgrade_lock_replace": d.finished_lock in d.locks.values()
        and d.finished_lock != lock_id(journal),
        "kubeadm_upgrade_journal_tool_installed": tool_installed,
    }


@dataclass
class HopResult:
    index: int
    to: str
    ok: bool
    seconds: float
    skipped: bool = False
    run_dir: str = ""
    errors: list[dict[str, Any]] = field(default_factory=list)
    nodes: dict[str, float] = field(default_factory=dict)  # node -> seconds of its steps
    #: Set when Ctrl-C/SIGTERM stopped the hop's run: where it was (runner.RunResult's).
    interrupted: dict[str, Any] | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"hop": self.index, "to": self.to, "ok": self.ok, "skipped": self.skipped,
                "elapsed_s": round(self.seconds, 1), "run_dir": self.run_dir,
                "nodes": {n: round(s, 1) for n, s in self.nodes.items()},
                "errors": self.errors,
                **({"interrupted": self.interrupted} if self.interrupted else {})}


def _seconds(at: str) -> float:
    return datetime.strptime(at, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp()


def node_times(journal: Journal, hop: int) -> dict[str, float]:
    """Per node: seconds from its first step's start to its last record in this hop."""
    spans: dict[str, list[float]] = {}
    for r in journal.records:
        if r.hop == hop and r.at and r.step not in CLUSTER_STEPS:
            spans.setdefault(r.node, []).append(_seconds(r.at))
    return {n: max(v) - min(v) for n, v in spans.items()}


class JournalProgress(Progress):
    """Progress that prints one line per journalled step ("step K/M" of the hop's steps when
    the hop is given) and keeps the journal copies. On a terminal the status line ticks below
    them: "hop H/N · step K/M drain w-1 · task n/M (Ts): ... | per-host state"."""

    def __init__(self, journal: Journal, copies: list[Path], echo: Callable[[str], None],
                 verbosity: int = 0, *, hop: Hop | None = None, hops: int = 0,
                 quiet: bool = False) -> None:
        names = [step_label(s) for s in hop.steps()] if hop is not None else []
        super().__init__(quiet=quiet, verbosity=verbosity, steps=names)
        self.event_lines = False  # one line per journalled step, printed here
        if hop is not None and hops > 1:
            self.prefix = f"hop {hop.index}/{hops}"
        self.journal = replace(journal, records=list(journal.records))  # records seen so far
        self.copies = copies
        self.echo = echo

    def on_event(self, kind: str, data: dict[str, Any]) -> None:
        super().on_event(kind, data)
        if kind != "runner_on_ok":
            return
        res = data.get("res") if isinstance(data.get("res"), dict) else {}
        stdout = res.get("stdout")
        if not isinstance(stdout, str) or not stdout.startswith(JOURNAL_OUTPUT):
            return
        try:
            doc = json.loads(stdout)["journal"]
            journal = journal_from_dict(doc, "journal record")
        except (ValueError, KeyError, TypeError):
            return
        seen = len(self.journal.records)
        if len(journal.records) <= seen:
            return  # an older copy (concurrent writers): nothing new
        self.journal = journal
        write_copies(journal, self.copies)
        for rec in journal.records[seen:]:
            self.show(journal, rec)

    def show(self, journal: Journal, rec: Any) -> None:
        hop = journal.hop(rec.hop)
        step = steps.Step(rec.hop, rec.step, rec.node)
        label = step_label(step)
        at = (f" (step {self.steps.index(label) + 1}/{len(self.steps)})"
              if label in self.steps else "")
        if rec.status == "started":
            self.step = label
            self.say(f"[hop {rec.hop} -> {hop.target}] {step.describe(hop.target)}{at}",
                     self.echo)
        elif rec.status == "failed":
            self.say(f"[hop {rec.hop} -> {hop.target}] FAILED{at}: {step.error(hop.target)}: "
                     f"{rec.error}", self.echo)


def step_label(step: steps.Step) -> str:
    """A journal step as the status line names it: ``"drain w-1"``."""
    return f"{step.name} {step.node}"


def write_copies(journal: Journal, paths: list[Path]) -> None:
    text = json.dumps(journal_to_dict(journal), indent=2) + "\n"
    for p in paths:
        p.parent.mkdir(parents=True, exist_ok=True)
        tmp = p.with_name(p.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
        os.replace(tmp, p)


def run(inventory: Any, journal: Journal, d: Discovery, *, say: Callable[[str], None],
        copy: Path, verbosity: int = 0, extravars: dict[str, Any] | None = None
        ) -> tuple[Journal, list[HopResult]]:
    """Run the journal's unfinished hops in order; stop at the first failed one."""
    from provision.runner import run_playbook

    results: list[HopResult] = []
    state: ClusterState | None = d.state
    last = journal.hops[-1].index if journal.hops else 0
    installed = False  # the journal tool, by a hop of this run
    for hop in journal.hops:
        left = [s for s in hop.steps() if not journal.is_done(s, state)]
        if not left:
            results.append(HopResult(hop.index, hop.target, True, 0.0, skipped=True))
            continue
        say(f"Hop {hop.index} ({hop.kind}): {format_release(hop.from_version)} -> "
            f"{hop.target} on {', '.join(hop.nodes)}")
        progress = JournalProgress(journal, [copy], say, verbosity, hop=hop,
                                   hops=len(journal.hops))
        started = time.monotonic()
        result = run_playbook(command="upgrade", playbook="upgrade.yml", inventory=inventory,
                              extravars={**(extravars or {}),
                                         **hop_vars(journal, hop, d, state,
                                                    last=hop.index == last,
                                                    tool_installed=installed)},
                              verbosity=verbosity, progress=progress)
        journal = progress.journal
        write_copies(journal, [result.run_dir / "upgrade-journal.json"])
        took = time.monotonic() - started
        results.append(HopResult(hop.index, hop.target, result.ok, took,
                                 run_dir=str(result.run_dir), errors=result.errors,
                                 nodes=node_times(journal, hop.index),
                                 interrupted=result.interrupted))
        if not result.ok:
            break
        installed = True  # a hop that finished installed the tool first
        say(f"Hop {hop.index} done in {took:.1f}s")
        state = None  # later hops: the journal alone says what is done
    return journal, results
