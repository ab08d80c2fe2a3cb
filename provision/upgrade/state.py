"""The discovered cluster state and the upgrade journal (dataclasses; pure apart from the
explicit ``load_journal``/``save_journal`` helpers).

The journal records the plan's hops, the runbook's node sequences it was started with and, per
hop, which steps finished on which node. A re-run continues from the first unfinished step of
the journal's own sequences (a step added to the table later does not change it); a finished
``upgrade-apply`` is never run again, and the discovered API server version counts as proof
that one finished even when the journal missed it (the controller died between the apply and
the journal write).
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from provision.errors import UsageError
from provision.upgrade import steps
from provision.upgrade.steps import RUNBOOK, RUNBOOK_V1, Runbook, Step, TableError
from provision.versions import Release, format_release, parse_release

ROLES = ("control-plane", "worker")
HOP_KINDS = ("level", "minor", "patch")
STATUSES = ("started", "done", "failed")
#: 2: the journal records the runbook's node sequences ("runbook"). A format 1 journal has
#: none and resumes with steps.RUNBOOK_V1, the sequences every format 1 journal ran with.
JOURNAL_FORMAT = 2
READABLE_FORMATS = (1, 2)


class StateError(UsageError):
    """A state or journal document is malformed: one message per problem, exit 2."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


@dataclass(frozen=True)
class Packages:
    """Installed package versions on one host (None: not installed)."""

    kubeadm: Release | None = None
    kubelet: Release | None = None
    kubectl: Release | None = None


@dataclass(frozen=True)
class Node:
    name: str
    role: str  # "control-plane" | "worker"
    kubelet: Release  # what the node reports (status.nodeInfo.kubeletVersion)
    packages: Packages = Packages()
    api_server: Release | None = None  # this control-plane node's kube-apiserver image tag


@dataclass(frozen=True)
class ClusterState:
    api_server: Release  # the cluster version (kubeadm-config kubernetesVersion)
    nodes: tuple[Node, ...]
    journal: Journal | None = None

    @property
    def control_planes(self) -> tuple[Node, ...]:
        return tuple(n for n in self.nodes if n.role == "control-plane")

    @property
    def workers(self) -> tuple[Node, ...]:
        return tuple(n for n in self.nodes if n.role == "worker")

    @property
    def first_control_plane(self) -> Node:
        return self.control_planes[0]

    def apiservers(self) -> list[Release]:
        """Every kube-apiserver instance's version (the cluster version where unknown)."""
        return [n.api_server or self.api_server for n in self.control_planes]


@dataclass(frozen=True)
class Hop:
    """One hop of the plan: a minor (or patch) upgrade of the whole cluster, or a level hop
    that brings lagging nodes one minor up to the control plane."""

    index: int  # 1-based
    kind: str  # "minor" | "patch" | "level"
    from_version: Release
    to_version: Release
    control_planes: tuple[str, ...]
    batches: tuple[tuple[str, ...], ...]  # workers, in the groups drained together
    snapshot: str  # etcd snapshot tag taken before the hop ("" = none: level hops)
    verify_node: str  # the cluster's first control-plane node (snapshot, apply, verify)
    runbook: Runbook = RUNBOOK  # the node sequences (a journal's own: the ones it started with)

    @property
    def nodes(self) -> tuple[str, ...]:
        return self.control_planes + tuple(n for b in self.batches for n in b)

    @property
    def target(self) -> str:
        return format_release(self.to_version)

    def steps(self) -> list[Step]:
        return steps.expand(self.index, control_planes=self.control_planes,
                            batches=self.batches, apply=self.kind != "level",
                            snapshot=bool(self.snapshot), snapshot_node=self.verify_node,
                            runbook=self.runbook)


@dataclass
class StepRecord:
    hop: int
    step: str
    node: str
    status: str  # "started" | "done" | "failed"
    at: str = ""  # UTC timestamp, set by the execution
    error: str = ""


@dataclass
class Journal:
    target: Release
    hops: list[Hop]
    records: list[StepRecord] = field(default_factory=list)
    started: str = ""

    @property
    def runbook(self) -> Runbook:
        """The node sequences the journal was started with (its hops carry them)."""
        return self.hops[0].runbook if self.hops else RUNBOOK

    def latest(self) -> dict[Step, str]:
        """Every recorded step's latest status (later records win). An ``uncordon`` counts
        only when recorded after the node's last ``drain`` record of that hop: a failure
        handler's uncordon never lets a re-drained node skip its own uncordon."""
        out: dict[Step, str] = {}
        for r in self.records:
            step = Step(r.hop, r.step, r.node)
            out[step] = r.status
            if r.step == steps.DRAIN:
                out.pop(Step(r.hop, steps.UNCORDON, r.node), None)
        return out

    def status(self, step: Step) -> str | None:
        """The latest recorded status of a step, None if never started."""
        return self.latest().get(step)

    def record(self, step: Step, status: str, *, at: str = "", error: str = "") -> None:
        if status not in STATUSES:
            raise ValueError(f"status {status!r}: expected one of {', '.join(STATUSES)}")
        self.records.append(StepRecord(step.hop, step.name, step.node, status, at, error))

    def planned_steps(self) -> list[Step]:
        return [s for hop in self.hops for s in hop.steps()]

    def hop(self, index: int) -> Hop:
        return next(h for h in self.hops if h.index == index)

    def is_done(self, step: Step, state: ClusterState | None = None,
                latest: Mapping[Step, str] | None = None) -> bool:
        """Done in the journal; an ``upgrade-apply`` is also done when the discovered API
        server already runs the hop's version (never apply twice)."""
        if (self.latest() if latest is None else latest).get(step) == "done":
            return True
        if step.name == steps.UPGRADE_APPLY and state is not None:
            return state.api_server >= self.hop(step.hop).to_version
        return False

    def remaining(self, state: ClusterState | None = None) -> list[Step]:
        latest = self.latest()
        return [s for s in self.planned_steps() if not self.is_done(s, state, latest)]

    def first_unfinished(self, state: ClusterState | None = None) -> Step | None:
        """Where a re-run continues: the first planned step that has not finished."""
        left = self.remaining(state)
        return left[0] if left else None

    @property
    def finished(self) -> bool:
        return self.first_unfinished() is None

    def possibly_cordoned(self) -> list[str]:
        """Nodes a drain was started on whose uncordon has not finished: what a failure
        handler uncordons, and what a resume reports (never leave a node we drained)."""
        latest = self.latest()
        out = []
        for hop in self.hops:
            for node in hop.nodes:
                drained = latest.get(Step(hop.index, steps.DRAIN, node)) is not None
                if drained and latest.get(Step(hop.index, steps.UNCORDON, node)) != "done":
                    out.append(node)
        return out


# --------------------------------------------------------------------------------------------
# JSON (the --state file and the journal file)
# --------------------------------------------------------------------------------------------


class _Reader:
    """Collects problems as 'SOURCE: key: message' instead of stopping at the first."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.problems: list[str] = []

    def bad(self, key: str, message: str) -> None:
        self.problems.append(f"{self.source}: {key}: {message}")

    def release(self, data: Mapping[str, Any], key: str, where: str,
                optional: bool = False) -> Release | None:
        value = data.get(key)
        if value is None and optional:
            return None
        parsed = parse_release(value)
        if parsed is None:
            self.bad(f"{where}{key}", f"{value!r} is not an exact Kubernetes version "
                     "(expected e.g. 1.31.2, v1.31.2 or 1.31.2-1.1)")
        return parsed

    def mapping(self, value: Any, key: str) -> Mapping[str, Any]:
        if not isinstance(value, Mapping):
            self.bad(key, f"expected an object, got {type(value).__name__}")
            return {}
        return value

    def sequence(self, value: Any, key: str) -> Sequence[Any]:
        if not isinstance(value, list):
            self.bad(key, f"expected a list, got {type(value).__name__}")
            return []
        return value

    def done(self) -> None:
        if self.problems:
            raise StateError(self.problems)


def _node(r: _Reader, data: Mapping[str, Any], where: str) -> Node | None:
    name, role = data.get("name"), data.get("role")
    if not isinstance(name, str) or not name:
        r.bad(f"{where}name", "a node needs a name")
    if role not in ROLES:
        r.bad(f"{where}role", f"{role!r}: expected one of {', '.join(ROLES)}")
    kubelet = r.release(data, "kubelet", where)
    pk = r.mapping(data.get("packages", {}), f"{where}packages")
    packages = Packages(*(r.release(pk, p, f"{where}packages.", optional=True)
                          for p in ("kubeadm", "kubelet", "kubectl")))
    api = r.release(data, "api_server", where, optional=True)
    if api is not None and role == "worker":
        r.bad(f"{where}api_server", "only control-plane nodes run kube-apiserver")
    if kubelet is None or not isinstance(name, str) or role not in ROLES:
        return None
    return Node(name, role, kubelet, packages, api)


def state_from_dict(data: Any, source: str = "state") -> ClusterState:
    """Build a ClusterState from its JSON form (see docs/upgrade.md); StateError on problems."""
    r = _Reader(source)
    top = r.mapping(data, "(top level)")
    api = r.release(top, "api_server", "")
    nodes = [_node(r, r.mapping(n, f"nodes[{i}]"), f"nodes[{i}].")
             for i, n in enumerate(r.sequence(top.get("nodes"), "nodes"))]
    names = [n.name for n in nodes if n]
    for name in sorted({n for n in names if names.count(n) > 1}):
        r.bad("nodes", f"node {name!r} is listed twice")
    if names and not any(n and n.role == "control-plane" for n in nodes):
        r.bad("nodes", "no control-plane node: a kubeadm cluster has at least one")
    if not names and not r.problems:
        r.bad("nodes", "no nodes")
    journal = None
    if top.get("journal") is not None:
        journal = _journal(r, r.mapping(top["journal"], "journal"), "journal.")
    r.done()
    assert api is not None
    return ClusterState(api, tuple(n for n in nodes if n), journal)


def _hop(r: _Reader, data: Mapping[str, Any], where: str,
         runbook: Runbook = RUNBOOK) -> Hop | None:
    kind, index = data.get("kind"), data.get("index")
    if kind not in HOP_KINDS:
        r.bad(f"{where}kind", f"{kind!r}: expected one of {', '.join(HOP_KINDS)}")
    if not isinstance(index, int) or isinstance(index, bool) or index < 1:
        r.bad(f"{where}index", f"{index!r}: expected a hop number from 1")
    frm, to = r.release(data, "from", where), r.release(data, "to", where)
    cps = r.sequence(data.get("control_planes", []), f"{where}control_planes")
    batches = [tuple(r.sequence(b, f"{where}batches[{i}]"))
               for i, b in enumerate(r.sequence(data.get("batches", []), f"{where}batches"))]
    verify = data.get("verify_node")
    if not isinstance(verify, str) or not verify:
        r.bad(f"{where}verify_node", "the first control-plane node's name is needed")
    if kind not in HOP_KINDS or frm is None or to is None or not isinstance(index, int):
        return None
    return Hop(index, kind, frm, to, tuple(cps), tuple(batches), str(data.get("snapshot", "")),
               str(verify), runbook)


def _runbook(r: _Reader, data: Mapping[str, Any], where: str) -> Runbook:
    """The journal's node sequences: its own "runbook" (format 2) or RUNBOOK_V1 (format 1).
    A journal whose sequences name a step this provision does not have is refused, naming it
    (finish it with the provision that started it, or set the journal aside)."""
    fmt = data.get("format", 1)
    if fmt not in READABLE_FORMATS or isinstance(fmt, bool):
        newer = isinstance(fmt, int) and not isinstance(fmt, bool) and fmt > JOURNAL_FORMAT
        r.bad(f"{where}format", f"{fmt!r}: this provision reads journal formats "
              f"{', '.join(map(str, READABLE_FORMATS))}"
              + ("; the journal was written by a newer provision: resume it with that one"
                 if newer else ""))
        return RUNBOOK
    if fmt == 1:
        return RUNBOOK_V1
    raw = data.get("runbook")
    if not isinstance(raw, Mapping):
        r.bad(f"{where}runbook", "missing: a format 2 journal records its step sequences")
        return RUNBOOK
    try:
        return steps.parse_runbook(raw, steps.STEPS, f"{where}runbook")
    except TableError as exc:
        r.problems.append(f"{r.source}: {exc}: the upgrade was started with a step this "
                          "provision does not have; finish it with the provision that started "
                          "it, or move the journal aside to plan afresh")
        return RUNBOOK


def _journal(r: _Reader, data: Mapping[str, Any], where: str) -> Journal | None:
    runbook = _runbook(r, data, where)
    target = r.release(data, "target", where)
    hops = [_hop(r, r.mapping(h, f"{where}hops[{i}]"), f"{where}hops[{i}].", runbook)
            for i, h in enumerate(r.sequence(data.get("hops"), f"{where}hops"))]
    records = []
    indexes = {h.index for h in hops if h}
    for i, rec in enumerate(r.sequence(data.get("steps", []), f"{where}steps")):
        rec = r.mapping(rec, f"{where}steps[{i}]")
        if rec.get("hop") not in indexes:
            r.bad(f"{where}steps[{i}].hop", f"{rec.get('hop')!r}: not a hop of this journal")
        if not isinstance(rec.get("node"), str) or not rec.get("node"):
            r.bad(f"{where}steps[{i}].node", "the node the step ran on is needed")
        if rec.get("step") not in steps.STEPS:
            r.bad(f"{where}steps[{i}].step", f"{rec.get('step')!r}: expected one of "
                  f"{', '.join(steps.STEP_NAMES)}")
        if rec.get("status") not in STATUSES:
            r.bad(f"{where}steps[{i}].status", f"{rec.get('status')!r}: expected one of "
                  f"{', '.join(STATUSES)}")
        records.append(StepRecord(rec.get("hop", 0), str(rec.get("step")),
                                  str(rec.get("node", "")), str(rec.get("status")),
                                  str(rec.get("at", "")), str(rec.get("error", ""))))
    if target is None or None in hops:
        return None
    return Journal(target, [h for h in hops if h], records, str(data.get("started", "")))


def hop_to_dict(hop: Hop) -> dict[str, Any]:
    return {"index": hop.index, "kind": hop.kind, "from": format_release(hop.from_version),
            "to": format_release(hop.to_version), "control_planes": list(hop.control_planes),
            "batches": [list(b) for b in hop.batches], "snapshot": hop.snapshot,
            "verify_node": hop.verify_node}


def journal_to_dict(journal: Journal) -> dict[str, Any]:
    """The journal as JSON, always in the current format (a format 1 journal that is resumed
    is written back as format 2 with the sequences it was started with)."""
    return {"format": JOURNAL_FORMAT, "target": format_release(journal.target),
            "started": journal.started, "runbook": journal.runbook.as_dict(),
            "hops": [hop_to_dict(h) for h in journal.hops],
            "steps": [vars(r).copy() for r in journal.records]}


def journal_from_dict(data: Any, source: str = "journal") -> Journal:
    r = _Reader(source)
    journal = _journal(r, r.mapping(data, "(top level)"), "")
    r.done()
    assert journal is not None
    return journal


def load_journal(path: str | Path) -> Journal | None:
    """The journal at ``path``, None when there is none; StateError when it is unreadable."""
    from provision.safeload import InputError, loads_json, read_text

    p = Path(path)
    if not p.exists():
        return None
    try:
        data = loads_json(read_text(p, "upgrade journal"), str(p))
    except InputError as exc:
        raise StateError([f"{p}: cannot read the upgrade journal: {exc}"]) from None
    return journal_from_dict(data, str(p))


def save_journal(journal: Journal, path: str | Path) -> None:
    """Write the journal atomically (a crash leaves the old or the new file, never half)."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".upgrade-journal-", dir=p.parent)
    try:
        with os.fdopen(fd, "w") as fh:
            json.dump(journal_to_dict(journal), fh, indent=2)
            fh.write("\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, p)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
