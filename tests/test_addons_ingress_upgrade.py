"""Upgrading ingress-nginx by running the add-on again with a newer ingress_nginx_version,
against the Kubernetes simulator on a real lab host (simulated API server and kubectl; real
Ansible, SSH and files). The simulator refuses, like the real API server, an update of a Job
whose pod template changes (spec.template is immutable), so the upgrade succeeds only because
roles/ingress_nginx/tasks/jobs.yml deletes the finished admission Job first. It runs at the
default Kubernetes minor of new clusters and at the newest (slow): ids like [1.35], [1.37].

The release pair is the upgrade provision's users make: from v1.11.3 (the release provision
pinned before, what existing clusters run) to the pinned release (provision/pins.py, v1.15.1),
both from reduced copies of the real manifests. The pinned release's admission Jobs carry
ttlSecondsAfterFinished: 0, which the role drops when rendering (the simulator, like the
TTL-after-finished controller, would delete such a Job once completed and every re-run would
create it again), so the new Job is kept like v1.11.3's."""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import pytest
import yaml
from lab_fixtures import kubernetes_minors
from test_addons_roles import DATA, FIXTURE_DIR, addon_vars, kubectl_json, sh, simulated_cluster

from provision import pins
from provision.runner import run_playbook

OLD, NEW = "v1.11.3", pins.BY_COMPONENT["ingress-nginx controller"].version
NEW_CERTGEN = "v1.6.9"  # kube-webhook-certgen of the pinned release's admission Jobs
JOB = "ingress-nginx-admission-create"
KUBECTL = "kubectl --kubeconfig /etc/kubernetes/admin.conf"


def fixture(version: str) -> str:
    return f"ingress-nginx-controller-{version}-cloud.yaml"


def run(lab: Any, version: str, **extra: Any) -> Any:
    """playbooks/addons.yml with only ingress-nginx, NodePort mode (no MetalLB needed) and the
    role's smoke test (one request through the simulated ingress, webhook in the path)."""
    return run_playbook(command="test-addons-ingress-upgrade", playbook="addons.yml",
                        inventory=lab.inventory, quiet=True, extravars=addon_vars(
                            provision_components=["ingress"],
                            ingress_nginx_service_mode="NodePort",
                            ingress_nginx_smoke_test=True, ingress_nginx_version=version,
                            ingress_nginx_manifest_url=f"file://{FIXTURE_DIR}/{fixture(version)}",
                            **extra))


def images(lab: Any, host: str) -> dict[str, str]:
    def image(kind: str, name: str) -> str:
        obj = kubectl_json(lab, host, "get", kind, name, "-n", "ingress-nginx")
        return obj["spec"]["template"]["spec"]["containers"][0]["image"].rsplit(":", 1)[1]

    return {"controller": image("deployment", "ingress-nginx-controller"),
            "job": image("job", JOB)}


def reaped(k8s_sim: Any) -> list[dict]:
    """The (simulated) TTL-after-finished controller's deletions of the admission Job."""
    return [c for c in k8s_sim.calls("job-ttl-delete")
            if c["namespace"] == "ingress-nginx" and c["name"] == JOB]


@pytest.mark.container
@pytest.mark.slow
@pytest.mark.timeout(3600)  # four playbook runs through SSH; minutes on a loaded 2-CPU host
@pytest.mark.parametrize("minor", kubernetes_minors())
def test_simulated_ingress_nginx_upgrade_replaces_the_finished_admission_job(
        minor: int, sim_lab_node: Any, k8s_sim: Any) -> None:
    """Simulated: install v1.11.3, then run the role with the pinned release (new controller
    and kube-webhook-certgen images). A plain kubectl apply of the new Job is refused
    ("field is immutable"); while the old Job still runs the role waits, then stops before
    applying anything and names the Job; once it has completed the role deletes it (a change)
    and the apply creates it again: the controller and the Job carry the new release's
    images, the Job without the release's ttlSecondsAfterFinished: 0 (so it is kept, not
    deleted once completed), the wait and the smoke request through the ingress pass, and a
    further run reports changed=0."""
    lab, host = simulated_cluster(sim_lab_node, minor)
    for version in (OLD, NEW):  # simulated_cluster copies the pinned release's manifest too
        data = base64.b64encode((DATA / fixture(version)).read_bytes()).decode()
        sh(lab, host, f"echo {data} | base64 -d > {FIXTURE_DIR}/{fixture(version)}")

    first = run(lab, OLD)
    assert first.ok, f"{first.errors}\n{first.log_path.read_text()[-5000:]}"
    assert images(lab, host) == {"controller": OLD, "job": "v1.4.4"}

    # the rule bites: the new release's Job applied with plain kubectl over the old one
    [new_job] = [d for d in yaml.safe_load_all((DATA / fixture(NEW)).read_text())
                 if d and d["kind"] == "Job"]
    doc = base64.b64encode(json.dumps(new_job).encode()).decode()
    plain = sh(lab, host, f"echo {doc} | base64 -d > /root/new-job.json && "
                          f"{KUBECTL} apply -f /root/new-job.json", check=False)
    assert plain.returncode == 1, plain
    assert f'The Job "{JOB}" is invalid: spec.template: Invalid value:' in plain.stderr
    assert "field is immutable" in plain.stderr

    # a Job that has not completed is waited for (bounded), then the run stops, naming it
    k8s_sim.settings(job_complete_seconds=3600.0)
    started = time.monotonic()
    running = run(lab, NEW, ingress_nginx_job_wait_timeout=3)
    assert not running.ok
    [failure] = running.failures
    assert failure.task == "Stop on a Job that did not complete", failure
    assert f"ingress-nginx/{JOB}" in failure.message and "immutable" in failure.message
    assert images(lab, host) == {"controller": OLD, "job": "v1.4.4"}, "applied before stopping"

    k8s_sim.settings(job_complete_seconds=1.0)
    upgrade = run(lab, NEW)
    upgrade_seconds = time.monotonic() - started
    assert upgrade.ok, f"{upgrade.errors}\n{upgrade.log_path.read_text()[-5000:]}"
    deleted = [e for e in upgrade.events if e["task"] ==
               "Delete the finished Jobs whose pod template changes" and e["changed"]]
    assert deleted, "the finished Job was not deleted"
    assert images(lab, host) == {"controller": NEW, "job": NEW_CERTGEN}
    # the release's TTL of 0 was dropped: the completed Job stays (nothing reaped it)
    job = kubectl_json(lab, host, "get", "job", JOB, "-n", "ingress-nginx")
    assert job["status"].get("succeeded") == 1, job["status"]
    assert "ttlSecondsAfterFinished" not in job["spec"], job["spec"]
    assert reaped(k8s_sim) == [], reaped(k8s_sim)
    served = [c for c in k8s_sim.calls("ingress-request") if c["code"] == 200]
    assert len(served) >= 2 and served[-1]["backend"] == "provision-smoke/echo", served

    again = run(lab, NEW)
    assert again.ok, f"{again.errors}\n{again.log_path.read_text()[-5000:]}"
    assert again.hosts[host]["changed"] == 0, [e for e in again.events if e["changed"]]
    assert reaped(k8s_sim) == [], reaped(k8s_sim)
    print(json.dumps({"ingress_upgrade_seconds": round(upgrade_seconds, 1),
                      "ingress_rerun_seconds": round(again.elapsed, 1)}))
