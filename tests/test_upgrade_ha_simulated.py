"""`provision upgrade` of a simulated HA kubeadm cluster with workers upgraded two at a time.

The two code paths the single-control-plane scenarios of `test_upgrade_simulated.py` never
reach: a second control plane (`kubeadm upgrade node` after the first one's `upgrade apply`,
one control plane at a time) and `--batch 2` (both workers drained and upgraded together).
The harness (`UpgradeLab`: lab hosts, the simulator's signed per-minor repositories, a real
etcd 3.5 on the first control plane for the pre-hop snapshot) is the one of that file.

Two control planes: kubeadm (and the simulator, which enforces its join rules) accepts a
second control plane joined through a `controlPlaneEndpoint`; like the HA scenario of
`test_cluster_kubeadm.py` the endpoint is the first control plane's address (no load
balancer). Two is the cheapest HA shape: a third would add a host and a serial
`upgrade node` without reaching another code path.

Real: the CLI, Ansible over SSH to four Debian 12 systemd containers, apt/dpkg, systemd, the
journal on the first control plane, etcd and its verified snapshot. Simulated: kubeadm,
kubelet and kubectl (the simulator's programs and API server).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from test_upgrade_simulated import JOURNAL, UpgradeLab

pytestmark = [pytest.mark.container, pytest.mark.etcd]

FROM, TO = "1.30.6", "1.31.3"


@pytest.fixture
def ha_lab(lab_cluster: Any, k8s_sim: Any, tmp_path: Path):
    lab = lab_cluster(control_planes=2, workers=2)
    proc = lab.ssh(lab.hosts[0], "hostname -I")
    assert proc.returncode == 0, proc.stderr
    address = proc.stdout.split()[0]  # the node network, as in the HA bootstrap test
    ul = UpgradeLab(lab, k8s_sim, tmp_path, minor=30,
                    control_plane_endpoint=f"{address}:6443")
    yield ul
    ul.close()


def cordon_timeline(calls: list[dict]) -> list[frozenset[str]]:
    """The set of cordoned nodes after each cordon/uncordon in the simulator's call log."""
    cordoned: set[str] = set()
    out: list[frozenset[str]] = []
    for c in calls:
        if c["result"] != "ok" or c["op"] not in ("cordon", "uncordon"):
            continue
        (cordoned.add if c["op"] == "cordon" else cordoned.discard)(c["node"])
        out.append(frozenset(cordoned))
    return out


def first_index(records: list[dict], **match: Any) -> int:
    for i, r in enumerate(records):
        if all(r[k] == v for k, v in match.items()):
            return i
    raise AssertionError(f"no journal record {match}")


@pytest.mark.slow
@pytest.mark.timeout(3600)
def test_upgrade_ha_two_control_planes_batch_of_two_workers_simulated(ha_lab: Any) -> None:
    """Simulated HA cluster (2 control planes + 2 workers) at 1.30, `provision upgrade --to
    1.31 --batch 2 --yes`: one verified etcd snapshot before the hop, exactly one `kubeadm
    upgrade apply` (on the first control plane), `kubeadm upgrade node` on the second control
    plane (after the apply, before any worker) and on both workers, the two workers drained
    in one batch (never more than two nodes, never a control plane and a worker cordoned at
    once), every node Ready at 1.31.3, packages held, lock released; a re-run has nothing to
    do."""
    ul = ha_lab
    sim = ul.sim
    hosts = ul.lab.hosts
    cp1, cp2, w1, w2 = hosts
    state = sim.state()
    assert sorted(state["components"]["kube-apiserver"]) == [cp1, cp2], state["components"]
    for cp in (cp1, cp2):
        assert "node-role.kubernetes.io/control-plane" in state["nodes"][cp]["labels"]
    for w in (w1, w2):
        assert "node-role.kubernetes.io/control-plane" not in state["nodes"][w]["labels"]

    rc, obj, err = ul.cli("--to", "1.31", "--batch", "2", "--plan")
    assert rc == 0, err
    (hop,) = obj["plan"]["hops"]
    assert (hop["kind"], hop["from"], hop["to"]) == ("minor", FROM, TO), hop
    assert ul.applies() == [], "--plan changed the cluster"
    calls_before = len(sim.calls())

    started = time.monotonic()
    rc, obj, err = ul.cli("--to", "1.31", "--batch", "2", "--yes")
    took = time.monotonic() - started
    assert rc == 0, f"{obj.get('errors')}\n{err[-4000:]}"
    print(f"HA hop, 2 control planes + 2 workers, --batch 2: {took:.0f}s; cluster setup "
          f"{ul.cluster_seconds:.0f}s; nodes {obj['hops'][0]['nodes']}", file=sys.stderr)
    assert [h["ok"] for h in obj["hops"]] == [True]
    for line in (f"Running kubeadm upgrade apply v{TO} on {cp1}",
                 f"Running kubeadm upgrade node on {cp2}",
                 f"Running kubeadm upgrade node on {w1}", f"Draining {w2}"):
        assert line in err, (line, err[-3000:])

    # the end state: every node Ready at 1.31.3 and uncordoned, every component (both
    # kube-apiservers) at 1.31.3, packages exact and held on all four hosts, lock released
    ul.assert_at(TO)
    ul.assert_applies_one_minor_each([FROM, TO])

    # the simulator's call log: one apply on cp1, upgrade node on cp2 then the workers
    calls = sim.calls()[calls_before:]
    applies = [c for c in calls if c["op"] == "kubeadm-upgrade-apply"]
    assert [(c["node"], c["result"]) for c in applies] == [(cp1, "ok")], applies
    nodes_up = [c for c in calls if c["op"] == "kubeadm-upgrade-node"]
    assert all(c["result"] == "ok" and c["version"].lstrip("v") == TO for c in nodes_up), nodes_up
    assert [c["node"] for c in nodes_up][0] == cp2, nodes_up
    assert sorted(c["node"] for c in nodes_up) == sorted([cp2, w1, w2]), nodes_up
    assert [c["control_plane"] for c in nodes_up if c["node"] == cp2] == [True]
    apply_at = applies[0]["time"]
    cp2_up = next(c["time"] for c in nodes_up if c["node"] == cp2)
    worker_cordons = [c["time"] for c in calls if c["op"] == "cordon" and c["node"] in (w1, w2)]
    assert len(worker_cordons) == 2, worker_cordons
    assert apply_at < cp2_up < min(worker_cordons), (apply_at, cp2_up, worker_cordons)

    # cordons: each node once; both workers cordoned together; never more than two nodes,
    # never a control plane together with a worker (control planes one at a time, first)
    timeline = cordon_timeline(calls)
    assert sorted(c["node"] for c in calls if c["op"] == "cordon") == sorted(hosts)
    assert frozenset({w1, w2}) in timeline, timeline
    for cordoned in timeline:
        assert len(cordoned) <= 2, timeline
        assert not (cordoned & {cp1, cp2} and cordoned & {w1, w2}), timeline
        assert not {cp1, cp2} <= cordoned, timeline
    assert timeline[-1] == frozenset(), timeline

    # the journal: the hop's shape, every step done once, in the runbook's order
    journal = ul.journal()
    (jhop,) = journal["hops"]
    assert jhop["control_planes"] == [cp1, cp2], jhop
    assert jhop["batches"] == [[w1, w2]], jhop
    recs = journal["steps"]
    assert not [r for r in recs if r["status"] == "failed"], recs
    done = [(r["step"], r["node"]) for r in recs if r["status"] == "done"]
    assert len(done) == len(set(done)) == 1 + 4 * 6 + 1, done
    assert [n for s, n in done if s == "upgrade-apply"] == [cp1]
    assert sorted(n for s, n in done if s == "upgrade-node") == sorted([cp2, w1, w2])
    snap_done = first_index(recs, step="snapshot", status="done")
    assert snap_done < first_index(recs, step="upgrade-apply", status="started")
    apply_done = first_index(recs, step="upgrade-apply", status="done")
    cp2_first = first_index(recs, node=cp2)
    cp2_uncordon = first_index(recs, step="uncordon", node=cp2, status="done")
    cp1_uncordon = first_index(recs, step="uncordon", node=cp1, status="done")
    assert apply_done < cp1_uncordon < cp2_first, "cp2 started before cp1 was finished"
    workers_first = min(first_index(recs, node=w) for w in (w1, w2))
    assert cp2_uncordon < workers_first, "a worker started before cp2 was finished"
    # one batch: each step is started on both workers before the next step starts on either
    order = ["drain", "kubeadm-install", "upgrade-node", "kubelet-install", "kubelet-restart",
             "uncordon"]
    for step, nxt in zip(order, order[1:], strict=False):
        both_done = max(first_index(recs, step=step, node=w, status="done") for w in (w1, w2))
        next_started = min(first_index(recs, step=nxt, node=w, status="started")
                           for w in (w1, w2))
        assert both_done < next_started, (step, nxt)
    assert first_index(recs, step="verify", status="done") == len(recs) - 1

    # the pre-hop snapshot: tagged for the hop, and it passes the backup tool's checks
    # (size and SHA-256 against its sidecar, etcdutl snapshot status, revision)
    snaps = ul.snapshots()
    assert [s.rsplit("-", 1)[-1] for s in snaps] == [f"upgrade.to.{TO}.db"], snaps
    check = json.loads(ul.ssh(cp1, f"sudo -n /usr/local/sbin/etcd-backup restore {snaps[0]} "
                                   "--data-dir /var/tmp/ha-restore-check --check"))
    assert check["ok"] and check["checked"] and len(check["sha256"]) == 64, check
    assert ul.lab.ssh(cp1, "sudo -n test -e /var/tmp/ha-restore-check").returncode == 1
    assert ul.ssh(cp1, f"sudo -n stat -c '%a' {JOURNAL}").split() == ["600"]

    # a second run: nothing to do, nothing touched
    calls_before = len(sim.calls())
    rc, obj, err = ul.cli("--to", "1.31", "--yes")
    assert rc == 0 and obj["plan"]["nothing_to_do"], err[-3000:]
    again = sim.calls()[calls_before:]
    assert not [c for c in again if c["op"] in ("kubeadm-upgrade-apply", "kubeadm-upgrade-node",
                                                "cordon", "package-install")], again
    ul.assert_at(TO)
