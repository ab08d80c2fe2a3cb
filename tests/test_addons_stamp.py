"""The add-on stamps of the metallb and ingress_nginx roles against the Kubernetes simulator on
a real lab host (simulated API server and kubectl; real Ansible, SSH and files).

A no-op run skips the manifest apply (and ingress-nginx's Job check) because each role's
add-on stamp (provision/addonstamp.py: its inputs and the objects it names) is current; drift
is still repaired: a deleted MetalLB controller and a deleted ingress-nginx controller are
applied again on the next run, and a missing stamp (as after an apply that failed half-way: the
stamp is written only after a full run) makes the role apply again.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from test_addons_roles import addon_vars, kubectl_json, sh, simulated_cluster

from provision.runner import RunResult, run_playbook

pytestmark = [pytest.mark.container, pytest.mark.slow]

COMPONENTS = ["metallb", "ingress"]
METALLB_APPLY = "Apply metallb-native-"
INGRESS_APPLY = "Apply ingress-nginx.yaml"
INGRESS_NS = "ingress-nginx"
INGRESS_STAMP = "provision-ingress-nginx-stamp"


def run(lab: Any) -> RunResult:
    result = run_playbook(command="test-addons-stamp", playbook="addons.yml",
                          inventory=lab.inventory, quiet=True,
                          extravars={**addon_vars(), "provision_components": COMPONENTS})
    assert result.ok, f"{result.errors}\n{result.log_path.read_text()[-5000:]}"
    return result


def ran(result: RunResult, fragment: str) -> bool:
    """Whether a task whose name contains ``fragment`` ran (not skipped) on some host."""
    return any(e["event"] in ("runner_on_ok", "runner_on_failed") and fragment in (e["task"] or "")
               for e in result.events)


def ingress_stamp(lab: Any, host: str) -> dict[str, str]:
    """The objects ingress-nginx's add-on stamp records (key -> "uid digest")."""
    cm = kubectl_json(lab, host, "get", "configmap", INGRESS_STAMP, "-n", INGRESS_NS)
    return json.loads(cm["data"]["objects"])


@pytest.mark.timeout(3600)  # four playbook runs through SSH; minutes on a loaded 2-CPU host
def test_simulated_addon_stamps_skip_the_apply_and_drift_is_repaired(sim_lab_node: Any,
                                                                     k8s_sim: Any) -> None:
    """First run applies and stamps; the second skips both applies with changed=0; after the
    MetalLB and ingress-nginx controller Deployments are deleted, the third run applies both
    again (the controllers are back); after the
    ingress stamp is deleted, the fourth run applies ingress-nginx again (and only it) and
    reports no change."""
    lab, host = simulated_cluster(sim_lab_node)
    first = run(lab)
    assert first.hosts[host]["changed"] > 0
    assert ran(first, METALLB_APPLY) and ran(first, INGRESS_APPLY)
    metallb_stamp = kubectl_json(lab, host, "get", "configmap", "provision-metallb-stamp", "-n",
                                 "metallb-system")  # the add-on stamp (tests/test_metallb_stamp.py)
    assert "Deployment/metallb-system/controller" in json.loads(metallb_stamp["data"]["objects"])
    assert f"Deployment/{INGRESS_NS}/ingress-nginx-controller" in ingress_stamp(lab, host)

    second = run(lab)
    assert second.hosts[host]["changed"] == 0, [e for e in second.events if e["changed"]]
    assert not ran(second, METALLB_APPLY) and not ran(second, INGRESS_APPLY)
    assert not ran(second, "Read those Jobs from the cluster")

    # drift: workloads deleted in the cluster
    sh(lab, host, "kubectl --kubeconfig /etc/kubernetes/admin.conf -n metallb-system "
                  "delete deployment controller")
    sh(lab, host, f"kubectl --kubeconfig /etc/kubernetes/admin.conf -n {INGRESS_NS} "
                  "delete deployment ingress-nginx-controller")
    third = run(lab)
    assert ran(third, METALLB_APPLY) and ran(third, INGRESS_APPLY)
    assert third.hosts[host]["changed"] > 0
    assert kubectl_json(lab, host, "get", "deployment", "controller", "-n",
                        "metallb-system")["metadata"]["name"] == "controller"
    assert kubectl_json(lab, host, "get", "deployment", "ingress-nginx-controller", "-n",
                        INGRESS_NS)["metadata"]["name"] == "ingress-nginx-controller"

    # no stamp (as after an apply that failed half-way) applies again
    sh(lab, host, f"kubectl --kubeconfig /etc/kubernetes/admin.conf -n {INGRESS_NS} delete "
                  f"configmap {INGRESS_STAMP}")
    fourth = run(lab)
    assert ran(fourth, INGRESS_APPLY) and not ran(fourth, METALLB_APPLY)
    assert fourth.hosts[host]["changed"] == 0, [e for e in fourth.events if e["changed"]]
    assert f"Deployment/{INGRESS_NS}/ingress-nginx-controller" in ingress_stamp(lab, host)
