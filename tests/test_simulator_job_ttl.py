"""The simulator's TTL-after-finished controller: a finished batch/v1 Job with
``spec.ttlSecondsAfterFinished`` is deleted once the TTL has passed (0: as soon as it finished),
as the real controller does - what upstream ingress-nginx's admission Jobs (TTL 0 from v1.12)
meet on a real cluster, so a role that kept the TTL would re-create them on every run. Pure rule
tests plus one end-to-end run in process: real HTTP to the simulated API server on 127.0.0.1 and
the simulated kubectl; what is simulated is Kubernetes itself."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from simulator import rules
from simulator.fixtures import nodeless_api, sim_kubectl
from simulator.server import SimServer


@pytest.mark.parametrize(("spec", "now", "finished_at", "expired"), [
    ({}, 100.0, 10.0, False),                                  # no TTL: kept forever
    ({"ttlSecondsAfterFinished": 0}, 10.0, 10.0, True),        # 0: deleted once finished
    ({"ttlSecondsAfterFinished": 0}, 10.0, None, False),       # still running
    ({"ttlSecondsAfterFinished": 30}, 39.9, 10.0, False),      # before finish + TTL
    ({"ttlSecondsAfterFinished": 30}, 40.0, 10.0, True),       # at finish + TTL
    ({"ttlSecondsAfterFinished": -1}, 99.0, 10.0, False),      # refused by the API server
    ({"ttlSecondsAfterFinished": True}, 99.0, 10.0, False),    # not an integer
    ({"ttlSecondsAfterFinished": "0"}, 99.0, 10.0, False),
])
def test_job_ttl_rule(spec: dict, now: float, finished_at: float | None, expired: bool) -> None:
    assert rules.job_ttl_expired({"spec": spec}, now, finished_at) is expired


@pytest.fixture
def sim(tmp_path: Path) -> Iterator[tuple[SimServer, Path]]:
    with nodeless_api(tmp_path, job_complete_seconds=0.0) as api:
        yield api


def kubectl(kubeconfig: Path, *args: str) -> subprocess.CompletedProcess:
    return sim_kubectl("1.35.1", kubeconfig, *args)


JOB = """\
---
apiVersion: batch/v1
kind: Job
metadata: {{name: {name}, namespace: ingress-nginx}}
spec:
{ttl}  template:
    spec:
      restartPolicy: OnFailure
      containers:
      - {{name: create, image: "registry.k8s.io/ingress-nginx/kube-webhook-certgen:v1.6.5"}}
"""


def test_finished_jobs_with_a_ttl_are_deleted_simulated(sim: tuple[SimServer, Path],
                                                        tmp_path: Path) -> None:
    """Simulated API server: of three finished Jobs, the one with ttlSecondsAfterFinished: 0 is
    gone (kubectl get answers NotFound) and logged as job-ttl-delete; the one without a TTL and
    the one with a TTL of an hour stay; applying the TTL-0 Job again creates it again."""
    server, kubeconfig = sim
    manifest = tmp_path / "jobs.yaml"
    manifest.write_text(
        "apiVersion: v1\nkind: Namespace\nmetadata: {name: ingress-nginx}\n"
        + JOB.format(name="admission-create", ttl="  ttlSecondsAfterFinished: 0\n")
        + JOB.format(name="kept", ttl="")
        + JOB.format(name="hour", ttl="  ttlSecondsAfterFinished: 3600\n"))
    applied = kubectl(kubeconfig, "apply", "-f", str(manifest))
    assert applied.returncode == 0, applied.stderr
    assert "job.batch/admission-create created" in applied.stdout

    gone = kubectl(kubeconfig, "-n", "ingress-nginx", "get", "job", "admission-create")
    assert gone.returncode == 1 and "NotFound" in gone.stderr, (gone.stdout, gone.stderr)
    for name in ("kept", "hour"):
        got = kubectl(kubeconfig, "-n", "ingress-nginx", "get", "job", name, "-o",
                      "jsonpath={.status.succeeded} {.status.completionTime}")
        assert got.returncode == 0, got.stderr
        succeeded, completion = got.stdout.split()
        assert succeeded == "1" and completion.endswith("Z"), got.stdout
    deleted = [c for c in server.cluster.calls if c["op"] == "job-ttl-delete"]
    assert [(c["namespace"], c["name"]) for c in deleted] == [("ingress-nginx",
                                                                "admission-create")]

    again = kubectl(kubeconfig, "apply", "-f", str(manifest))
    assert again.returncode == 0, again.stderr
    assert "job.batch/admission-create created" in again.stdout  # a re-run is not changed=0
    assert "job.batch/kept unchanged" in again.stdout
