"""The upgrade runbook: named steps in order, shared by the plan table, the journal and the
execution (like kubeone's upgrade tasks and kubeadm's phases: one name everywhere).

A hop runs ``snapshot`` once, then every control-plane node one at a time (the first one runs
``upgrade-apply``, the others ``upgrade-node``), then the workers in batches, then ``verify``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from provision.safeload import ascii_int

SNAPSHOT = "snapshot"
KUBEADM_INSTALL = "kubeadm-install"
UPGRADE_APPLY = "upgrade-apply"
UPGRADE_NODE = "upgrade-node"
DRAIN = "drain"
KUBELET_INSTALL = "kubelet-install"
KUBELET_RESTART = "kubelet-restart"
UNCORDON = "uncordon"
VERIFY = "verify"


@dataclass(frozen=True)
class StepInfo:
    name: str
    doing: str  # the progress line ("Draining {node}")
    failed: str  # the error prefix ("failed to drain {node}")
    scope: str  # "cluster" (once per hop, on the first control-plane node) or "node"


STEPS: dict[str, StepInfo] = {s.name: s for s in (
    StepInfo(SNAPSHOT, "Taking a verified etcd snapshot on {node}",
             "failed to take the etcd snapshot on {node}", "cluster"),
    StepInfo(KUBEADM_INSTALL, "Installing kubeadm {version} on {node}",
             "failed to install kubeadm {version} on {node}", "node"),
    StepInfo(UPGRADE_APPLY, "Running kubeadm upgrade apply v{version} on {node}",
             "kubeadm upgrade apply v{version} failed on {node}", "node"),
    StepInfo(UPGRADE_NODE, "Running kubeadm upgrade node on {node}",
             "kubeadm upgrade node failed on {node}", "node"),
    StepInfo(DRAIN, "Draining {node}", "failed to drain {node}", "node"),
    StepInfo(KUBELET_INSTALL, "Installing kubelet and kubectl {version} on {node}",
             "failed to install kubelet and kubectl {version} on {node}", "node"),
    StepInfo(KUBELET_RESTART, "Restarting kubelet on {node} and waiting until it is Ready",
             "kubelet on {node} did not come back Ready at {version}", "node"),
    StepInfo(UNCORDON, "Uncordoning {node}", "failed to uncordon {node}", "node"),
    StepInfo(VERIFY, "Verifying every component reports {version}",
             "components do not all report {version}", "cluster"),
)}
STEP_NAMES: tuple[str, ...] = tuple(STEPS)

# Per node, in order. kubeadm's documented procedure: on control-plane nodes kubeadm is
# upgraded and applied before the drain; workers are drained first.
FIRST_CONTROL_PLANE = (KUBEADM_INSTALL, UPGRADE_APPLY, DRAIN, KUBELET_INSTALL, KUBELET_RESTART,
                       UNCORDON)
OTHER_CONTROL_PLANE = (KUBEADM_INSTALL, UPGRADE_NODE, DRAIN, KUBELET_INSTALL, KUBELET_RESTART,
                       UNCORDON)
WORKER = (DRAIN, KUBEADM_INSTALL, UPGRADE_NODE, KUBELET_INSTALL, KUBELET_RESTART, UNCORDON)


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


def node_steps(role: str, *, first: bool) -> tuple[str, ...]:
    """The step names one node runs in a minor (or patch) hop."""
    if role == "control-plane":
        return FIRST_CONTROL_PLANE if first else OTHER_CONTROL_PLANE
    return WORKER


def expand(hop: int, *, control_planes: Sequence[str], batches: Sequence[Sequence[str]],
           apply: bool, snapshot: bool, snapshot_node: str) -> list[Step]:
    """Every step of one hop, in execution order.

    ``apply`` is False for a level hop (the control plane is already at the version: every
    node runs ``upgrade-node``). Within a worker batch each step runs on all the batch's nodes
    before the next step, the order Ansible's ``serial`` gives.
    """
    out: list[Step] = []
    if snapshot:
        out.append(Step(hop, SNAPSHOT, snapshot_node))
    for i, node in enumerate(control_planes):
        for name in node_steps("control-plane", first=apply and i == 0):
            out.append(Step(hop, name, node))
    for batch in batches:
        for name in WORKER:
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
