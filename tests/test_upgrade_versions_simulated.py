"""`provision upgrade` from the Kubernetes minor new clusters get by default (the schema's
kubernetes_version default) to the newest minor provision supports, one minor per hop, on lab
hosts against the Kubernetes simulator (issue 16: 1.35 -> 1.36 -> 1.37 today).

Real and simulated parts are those of tests/test_upgrade_simulated.py (its UpgradeLab and
upgrade_lab fixture are reused): the CLI, Ansible over SSH, apt with the signed per-minor
repositories, dpkg holds, systemd and a real etcd 3.5 for the verified snapshots are real;
kubeadm, kubelet and kubectl are the simulator's programs, whose per-minor behaviour (etcd,
CoreDNS and pause images, the kubelet flags kubeadm writes) follows tests/simulator/rules.py.
"""

from __future__ import annotations

import sys
import time
from typing import Any

import pytest
from lab_fixtures import default_minor, newest_minor
from simulator import rules
from test_upgrade_simulated import (  # noqa: F401 - upgrade_lab is a pytest fixture
    manifest_etcd_tag,
    upgrade_lab,
)

pytestmark = [pytest.mark.container, pytest.mark.etcd]


def upgrade_chain() -> list[str]:
    """The releases one hop at a time from the default minor (or the one before the newest,
    should the default ever be the newest) to the newest: the newest patch of each minor in
    the simulated repositories, e.g. ["1.35.1", "1.36.1", "1.37.1"]."""
    source = min(default_minor(), newest_minor() - 1)
    return [rules.RELEASES[m][-1] for m in range(source, newest_minor() + 1)]


def test_upgrade_chain_starts_at_the_default_and_ends_at_the_newest() -> None:
    """The scenario below covers at least the default -> default+1 and newest-1 -> newest
    hops, with releases the simulator's repositories serve."""
    chain = upgrade_chain()
    minors = [int(v.split(".")[1]) for v in chain]
    assert minors[-1] == newest_minor() and len(chain) >= 2
    assert minors[0] == default_minor() or default_minor() == newest_minor()
    assert minors == list(range(minors[0], minors[-1] + 1))


@pytest.mark.slow
@pytest.mark.timeout(7200)
def test_upgrade_default_to_newest_minor_hops_simulated(upgrade_lab: Any) -> None:  # noqa: F811
    """Simulated cluster (1 control plane + 1 worker) created at the default minor (1.35)
    with the real cluster playbook, then `provision upgrade --to 1.<newest>` (1.37): `--plan`
    shows one hop per minor, each with its snapshot; the run upgrades every node (control plane
    first, the worker drained and uncordoned) to the newest patch, exactly one `kubeadm upgrade
    apply` per hop, one verified snapshot per hop, the control plane's etcd static pod at
    kubeadm's etcd for each minor (rules.ETCD), and the kubelet flags kubeadm leaves carry no
    --pod-infra-container-image (removed from the 1.35 kubelet); a re-run has nothing to do."""
    chain = upgrade_chain()
    source, target = (int(v.split(".")[1]) for v in (chain[0], chain[-1]))
    ul = upgrade_lab(workers=1, minor=source)
    cp, w1 = ul.lab.hosts
    ul.assert_at(chain[0])
    assert manifest_etcd_tag(ul) == rules.ETCD[source]

    rc, obj, err = ul.cli("--to", f"1.{target}", "--plan")
    assert rc == 0, err
    plan = obj["plan"]
    assert [(h["kind"], h["from"], h["to"]) for h in plan["hops"]] == [
        ("minor", a, b) for a, b in zip(chain, chain[1:], strict=False)]
    assert [h["snapshot"] for h in plan["hops"]] == [f"upgrade.to.{v}" for v in chain[1:]]
    assert ul.applies() == [] and ul.snapshots() == [], "--plan changed the cluster"

    started = time.monotonic()
    rc, obj, err = ul.cli("--to", f"1.{target}", "--yes")
    took = time.monotonic() - started
    assert rc == 0, f"{obj.get('errors')}\n{err[-4000:]}"
    print(f"{' -> '.join(chain)}, 2 nodes: {took:.0f}s; per hop: "
          f"{[(h['hop'], h['elapsed_s'], h['nodes']) for h in obj['hops']]}", file=sys.stderr)
    assert [h["ok"] for h in obj["hops"]] == [True] * (len(chain) - 1)
    ul.assert_at(chain[-1])
    ul.assert_applies_one_minor_each(chain)
    tags = [s.rsplit("-", 1)[-1] for s in ul.snapshots()]
    assert tags == [f"upgrade.to.{v}.db" for v in chain[1:]], tags
    assert manifest_etcd_tag(ul) == rules.ETCD[target]
    for host in (cp, w1):
        flags = ul.ssh(host, "sudo -n cat /var/lib/kubelet/kubeadm-flags.env")
        assert "--pod-infra-container-image" not in flags, (host, flags)
    journal = ul.journal()
    assert journal["target"] == chain[-1] and len(journal["hops"]) == len(chain) - 1
    assert not [s for s in journal["steps"] if s["status"] == "failed"]
    drains = [s["node"] for s in journal["steps"] if s["step"] == "drain"
              and s["status"] == "done" and s["hop"] == 1]
    assert drains == [cp, w1], drains

    rc, obj, err = ul.cli("--to", f"1.{target}", "--yes")
    assert rc == 0 and obj["plan"]["nothing_to_do"], err
    assert len([c for c in ul.applies() if c["result"] == "ok"]) == len(chain) - 1
