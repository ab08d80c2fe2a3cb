"""The simulator's Job update rule end to end, in process: the simulated API server refuses
an update of a batch/v1 Job whose pod template changed and the simulated kubectl prints the
real error text and exits 1 - the failure an ingress-nginx upgrade (v1.11.3 -> v1.12.1, a new
kube-webhook-certgen image in the admission Job) meets with a plain `kubectl apply`. Real HTTP
to the simulated API server on 127.0.0.1; what is simulated is Kubernetes itself."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from simulator.fixtures import nodeless_api, sim_kubectl

TESTS = Path(__file__).resolve().parent
DATA = TESTS / "data" / "addons"
OLD = DATA / "ingress-nginx-controller-v1.11.3-cloud.yaml"
NEW = DATA / "ingress-nginx-controller-v1.12.1-cloud.yaml"


@pytest.fixture
def kubeconfig(tmp_path: Path) -> Iterator[Path]:
    with nodeless_api(tmp_path, deployment_ready_seconds=0.0,
                      job_complete_seconds=0.0) as (_, path):
        yield path


def kubectl(kubeconfig: Path, *args: str) -> subprocess.CompletedProcess:
    return sim_kubectl("1.31.2", kubeconfig, *args)


def test_simulated_kubectl_apply_of_a_changed_job_template_fails(kubeconfig: Path) -> None:
    """Applying the v1.12.1 manifest over v1.11.3 fails on the admission Job with kubectl's
    text for the API server's 422 (the other objects are still configured, like kubectl
    does); after deleting the finished Job the same apply succeeds, and again is a no-op."""
    first = kubectl(kubeconfig, "apply", "-f", str(OLD))
    assert first.returncode == 0, first.stderr
    assert "job.batch/ingress-nginx-admission-create created" in first.stdout
    job = kubectl(kubeconfig, "get", "job", "ingress-nginx-admission-create", "-n",
                  "ingress-nginx", "-o", "jsonpath={.status.succeeded}")
    assert job.stdout == "1", job

    upgrade = kubectl(kubeconfig, "apply", "-f", str(NEW))
    assert upgrade.returncode == 1, upgrade
    assert upgrade.stderr.startswith(
        'The Job "ingress-nginx-admission-create" is invalid: spec.template: Invalid value: '
        "core.PodTemplateSpec{"), upgrade.stderr
    assert upgrade.stderr.rstrip().endswith(": field is immutable"), upgrade.stderr
    assert "kube-webhook-certgen:v1.5.2" in upgrade.stderr
    assert "deployment.apps/ingress-nginx-controller configured" in upgrade.stdout
    image = kubectl(kubeconfig, "get", "job", "ingress-nginx-admission-create", "-n",
                    "ingress-nginx", "-o", "jsonpath={.spec.template.spec.containers[0].image}")
    assert image.stdout == "registry.k8s.io/ingress-nginx/kube-webhook-certgen:v1.4.4"

    gone = kubectl(kubeconfig, "delete", "job", "ingress-nginx-admission-create", "-n",
                   "ingress-nginx")
    assert gone.returncode == 0, gone.stderr
    again = kubectl(kubeconfig, "apply", "-f", str(NEW))
    assert again.returncode == 0, again.stderr
    assert "job.batch/ingress-nginx-admission-create created" in again.stdout
    same = kubectl(kubeconfig, "apply", "-f", str(NEW))
    assert same.returncode == 0 and "configured" not in same.stdout, same
