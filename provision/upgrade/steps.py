"""The upgrade runbook: named steps in order, shared by the plan table, the journal and the
execution (like kubeone's upgrade tasks and kubeadm's phases: one name everywhere).

The steps, their retries and delays, progress lines and error prefixes and the per-node
sequences are ONE table, ``roles/kubeadm_upgrade/vars/main.yml`` (``kubeadm_upgrade_runbook``),
read here and by the role's ``run_step.yml``. A hop runs ``snapshot`` once, then every
control-plane node one at a time (the first one runs ``upgrade-apply``, the others
``upgrade-node``), then the workers in batches, then ``verify``. A journal keeps the node
sequences it was started with (``Runbook``), so a step added to the table never changes how an
upgrade already in progress resumes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from provision.safeload import ascii_int

TABLE = Path(__file__).resolve().parents[2] / "roles" / "kubeadm_upgrade" / "vars" / "main.yml"
TABLE_KEY = "kubeadm_upgrade_runbook"
SEQUENCES = ("first_control_plane", "other_control_plane", "worker")
SCOPES = ("cluster", "node")

SNAPSHOT = "snapshot"
KUBEADM_INSTALL = "kubeadm-install"
UPGRADE_APPLY = "upgrade-apply"
UPGRADE_NODE = "upgrade-node"
DRAIN = "drain"
KUBELET_INSTALL = "kubelet-install"
KUBELET_RESTART = "kubelet-restart"
UNCORDON = "uncordon"
VERIFY = "verify"
#: Steps the execution itself relies on by name (the cluster steps, the drain and uncordon of
#: the failure handling, the apply that is never repeated): the table must have them.
REQUIRED = (SNAPSHOT, UPGRADE_APPLY, UPGRADE_NODE, DRAIN, UNCORDON, VERIFY)


@dataclass(frozen=True)
class StepInfo:
    name: str
    doing: str  # the progress line ("Draining {node}")
    failed: str  # the error prefix ("failed to drain {node}")
    scope: str  # "cluster" (once per hop, on the first control-plane node) or "node"
    retries: int = 0  # further attempts after a failed one (run_step.yml)
    delay: int = 0  # seconds before the first retry, doubled before each further one


@dataclass(frozen=True)
class Runbook:
    """The node sequences of a hop: what a journal records and resumes with."""

    first_control_plane: tuple[str, ...]
    other_control_plane: tuple[str, ...]
    worker: tuple[str, ...]

    def as_dict(self) -> dict[str, list[str]]:
        return {k: list(getattr(self, k)) for k in SEQUENCES}


class TableError(ValueError):
    """The runbook table is malformed (a defect of this checkout, named by file and key)."""


def parse_table(data: Any, source: str = str(TABLE)) -> tuple[dict[str, StepInfo], Runbook]:
    """The runbook table (the YAML document) -> (steps by name, the node sequences)."""
    top = data.get(TABLE_KEY) if isinstance(data, Mapping) else None
    if not isinstance(top, Mapping) or not isinstance(top.get("steps"), Mapping):
        raise TableError(f"{source}: {TABLE_KEY}.steps: missing")
    out: dict[str, StepInfo] = {}
    for name, row in top["steps"].items():
        where = f"{source}: {TABLE_KEY}.steps.{name}"
        if not isinstance(row, Mapping):
            raise TableError(f"{where}: expected a mapping")
        if row.get("scope") not in SCOPES:
            raise TableError(f"{where}.scope: {row.get('scope')!r}: expected cluster or node")
        for key in ("retries", "delay"):
            if not isinstance(row.get(key), int) or isinstance(row.get(key), bool) \
                    or row[key] < 0:
                raise TableError(f"{where}.{key}: {row.get(key)!r}: expected a number >= 0")
        for key in ("doing", "failed"):
            if not isinstance(row.get(key), str) or not row[key]:
                raise TableError(f"{where}.{key}: expected a text")
        out[str(name)] = StepInfo(str(name), row["doing"], row["failed"], row["scope"],
                                  row["retries"], row["delay"])
    for name in REQUIRED:
        if name not in out:
            raise TableError(f"{source}: {TABLE_KEY}.steps: the step {name!r} is missing")
    runbook = parse_runbook(top, out, f"{source}: {TABLE_KEY}")
    return out, runbook


def parse_runbook(data: Mapping[str, Any], known: Mapping[str, StepInfo],
                  where: str) -> Runbook:
    """The node sequences of ``data`` (the table or a journal's ``runbook``); every name a node
    step of ``known``. TableError naming ``where`` and the key otherwise."""
    seqs: dict[str, tuple[str, ...]] = {}
    for key in SEQUENCES:
        value = data.get(key)
        if not isinstance(value, list) or not value:
            raise TableError(f"{where}.{key}: expected a list of step names")
        for name in value:
            if name not in known:
                raise TableError(f"{where}.{key}: {name!r} is not a step of this provision "
                                 f"(known: {', '.join(known)})")
            if known[name].scope != "node":
                raise TableError(f"{where}.{key}: {name!r} is a cluster step")
        seqs[key] = tuple(value)
    return Runbook(**seqs)


@lru_cache(maxsize=1)
def load_table() -> tuple[dict[str, StepInfo], Runbook]:
    import yaml

    return parse_table(yaml.safe_load(TABLE.read_text()))


STEPS: dict[str, StepInfo] = load_table()[0]
STEP_NAMES: tuple[str, ...] = tuple(STEPS)
RUNBOOK: Runbook = load_table()[1]
CLUSTER_STEPS: tuple[str, ...] = tuple(n for n, s in STEPS.items() if s.scope == "cluster")

#: The node sequences every journal of format 1 was started with (format 1 did not record
#: them): frozen here, never edited, so such a journal resumes as it was planned.
RUNBOOK_V1 = Runbook(
    first_control_plane=(KUBEADM_INSTALL, UPGRADE_APPLY, DRAIN, KUBELET_INSTALL,
                         KUBELET_RESTART, UNCORDON),
    other_control_plane=(KUBEADM_INSTALL, UPGRADE_NODE, DRAIN, KUBELET_INSTALL,
                         KUBELET_RESTART, UNCORDON),
    worker=(DRAIN, KUBEADM_INSTALL, UPGRADE_NODE, KUBELET_INSTALL, KUBELET_RESTART, UNCORDON))

# Per node, in order (the current table's sequences).
FIRST_CONTROL_PLANE = RUNBOOK.first_control_plane
OTHER_CONTROL_PLANE = RUNBOOK.other_control_plane
WORKER = RUNBOOK.worker


@dataclass(frozen=True, order=True)
class Step:
    """One planned step: which hop (1-based), which step, on which node."""

    hop: int
    name: str
    node: str

    def describe(self, version: str = "") -> str:
        return STEPS[self.name].doing.format(node=self.node, version=version)

    def error(self, version: str = "") -> str:
        return STEPS[self.name].failed.format(node=self.node, version=version)


def node_steps(role: str, *, first: bool, runbook: Runbook = RUNBOOK) -> tuple[str, ...]:
    """The step names one node runs in a minor (or patch) hop."""
    if role == "control-plane":
        return runbook.first_control_plane if first else runbook.other_control_plane
    return runbook.worker


def expand(hop: int, *, control_planes: Sequence[str], batches: Sequence[Sequence[str]],
           apply: bool, snapshot: bool, snapshot_node: str,
           runbook: Runbook = RUNBOOK) -> list[Step]:
    """Every step of one hop, in execution order.

    ``apply`` is False for a level hop (the control plane is already at the version: every
    node runs ``upgrade-node``). Within a worker batch each step runs on all the batch's nodes
    before the next step, the order Ansible's ``serial`` gives.
    """
    out: list[Step] = []
    if snapshot:
        out.append(Step(hop, SNAPSHOT, snapshot_node))
    for i, node in enumerate(control_planes):
        for name in node_steps("control-plane", first=apply and i == 0, runbook=runbook):
            out.append(Step(hop, name, node))
    for batch in batches:
        for name in runbook.worker:
            out.extend(Step(hop, name, node) for node in batch)
    out.append(Step(hop, VERIFY, snapshot_node))
    return out


@dataclass(frozen=True)
class Batch:
    """Workers upgraded at a time: a count (``--batch 2``) or a percentage (``--batch 25%``)."""

    count: int = 1
    percent: int | None = None

    def size(self, workers: int) -> int:
        """Like Ansible's ``serial``: a percentage rounds down, but never below one node."""
        if self.percent is not None:
            return max(1, workers * self.percent // 100)
        return self.count

    def __str__(self) -> str:
        return f"{self.percent}%" if self.percent is not None else str(self.count)


def parse_batch(text: str) -> Batch:
    """'1', '3' or '25%' -> Batch; anything else raises ValueError with the reason."""
    value = text  # no strip: ' 2' is refused like '２'
    number = ascii_int(value[:-1] if value.endswith("%") else value)
    if number is None:
        raise ValueError(f"--batch {text[:40]!r}: expected a number of workers (e.g. 2) or a "
                         "percentage of them (e.g. 25%)")
    if value.endswith("%"):
        if not 1 <= number <= 100:
            raise ValueError(f"--batch {text!r}: a percentage must be between 1% and 100%")
        return Batch(percent=number)
    if number < 1:
        raise ValueError(f"--batch {text!r}: at least one worker at a time")
    return Batch(count=number)


def worker_batches(workers: Sequence[str], batch: Batch) -> list[list[str]]:
    """Split workers (in inventory order) into the batches that are drained together."""
    size = batch.size(len(workers))
    return [list(workers[i:i + size]) for i in range(0, len(workers), size)]
