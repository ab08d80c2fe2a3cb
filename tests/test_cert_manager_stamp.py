"""The cert_manager role's add-on stamp (provision/addonstamp.py), the whole role in real
Ansible (local connection) with the SIMULATED kubectl against the SIMULATED API server in
process (tests/simulator/httpapi.py started_cluster): what is simulated is Kubernetes and
cert-manager's Deployments becoming Available; the role's tasks, templates, filters and the
stamp's `kubectl get -f -` are real. Manifest: the reduced v1.16.2 copy in tests/data/addons
(tests/test_addons_roles.py FIXTURES).

A first run installs, waits for the three Deployments in one `kubectl wait`, applies the
issuers and the default certificate and records the stamp; the next run skips
tasks/install.yml (changed=0). A ClusterIssuer deleted in the cluster makes the next run say
why and put it back, and the run after is fast again; a new Cloudflare token (only its hash is
in the stamp's inputs: the Secret is never read back) takes the full path and updates the
Secret. The token shows up in no log and no stamp. Fast: a few Ansible runs, no lab host."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from addon_role_support import SKIPPED, AddonRole, AddonRun, addon_cluster, delete, get
from simulator.httpapi import SimApi
from test_addons_roles import DATA, addon_vars

NS = "cert-manager"
STAMP = "provision-cert-manager-stamp"
ISSUERS = "/apis/cert-manager.io/v1/clusterissuers"
INSTALL = "Install cert-manager and its issuers"
WHY = "Say why cert-manager and its issuers are installed"
TOKEN = "sim-cloudflare-token-1"


def cert_manager(tmp: Path, url: str) -> AddonRole:
    """The cert_manager role against the simulated cluster at ``url`` with the add-on tests'
    settings (tests/test_addons_roles.py addon_vars: a CA, an ACME staging and a Cloudflare
    DNS-01 issuer, a default certificate), the manifest read from tests/data/addons."""
    return AddonRole(tmp, url, "cert_manager", **addon_vars(
        str(DATA), cert_manager_manifest_dir=str(tmp / "cert-manager"),
        cert_manager_cloudflare_api_token=TOKEN, cert_manager_wait_timeout=30))


def run(role: AddonRole) -> AddonRun:
    """One run, whose log never shows the token."""
    result = role.run()
    assert "sim-cloudflare-token" not in result.log
    return result


def results(result: AddonRun, task: str) -> list[dict]:
    """The module results of ``task`` (ansible-runner's job events of the run)."""
    found = []
    for path in (result.run_dir / "artifacts").glob("*/job_events/*.json"):
        event = json.loads(path.read_text())
        data = event.get("event_data") or {}
        if event.get("event") == "runner_on_ok" and data.get("task") == task:
            found.append(data["res"])
    return found


def full(result: AddonRun, why: str) -> None:
    """The run took the full path, said ``why`` and changed something."""
    assert WHY in result.ran, result.log[-3000:]
    assert f"cert-manager v1.16.2: {why}" in result.log, result.log[-3000:]
    assert result.changed > 0


def fast(result: AddonRun) -> None:
    """The run read the stamp, skipped the install and changed nothing."""
    assert "Read the cert-manager stamp and the objects it names" in result.ran
    assert result.outcome(INSTALL) == SKIPPED and WHY not in result.ran
    assert result.changed == 0, [e for e in result.events if e["changed"]]


def token(api: SimApi) -> str:
    """The token in the Secret (the simulated API server keeps stringData as applied)."""
    secret = get(api, f"/api/v1/namespaces/{NS}/secrets/cloudflare-api-token")
    if "data" in secret:
        return base64.b64decode(secret["data"]["api-token"]).decode()
    return str(secret["stringData"]["api-token"])


@pytest.fixture
def cluster() -> Iterator[tuple[SimApi, str]]:
    with addon_cluster(namespaces=("kube-system", "ingress-nginx")) as (server, api):
        yield api, server.url


def test_simulated_cert_manager_stamp_fast_path_and_drift_repaired(
        cluster: tuple[SimApi, str], tmp_path: Path) -> None:
    """Full run (one `kubectl wait` for the three Deployments; the stamp names them, every
    ClusterIssuer, the CA's root Certificate and the default certificate, never the token
    Secret), then the fast path; a ClusterIssuer deleted -> the next run names it and puts it
    back, the run after is fast; a new Cloudflare token -> the full path updates the Secret."""
    api, url = cluster
    role = cert_manager(tmp_path, url)
    first = run(role)
    # a new cluster does not serve cert-manager's kinds yet: the read fails, the full path runs
    full(first, 'cluster not read: error: resource mapping not found for name: "lab-ca')
    [wait] = results(first, "Wait for the cert-manager Deployments to be Available")
    assert wait["cmd"][3:] == ["wait", "--for=condition=Available", "--timeout=30s",
                               "deployment/cert-manager", "deployment/cert-manager-cainjector",
                               "deployment/cert-manager-webhook"]
    assert "results" not in wait  # one call, no loop
    stamp = get(api, f"/api/v1/namespaces/{NS}/configmaps/{STAMP}")
    assert sorted(json.loads(stamp["data"]["objects"])) == [
        "Certificate/cert-manager/lab-ca-root", "Certificate/ingress-nginx/default-tls",
        "ClusterIssuer//lab-ca", "ClusterIssuer//lab-ca-selfsigned",
        "ClusterIssuer//letsencrypt-dns", "ClusterIssuer//letsencrypt-staging",
        f"Deployment/{NS}/cert-manager", f"Deployment/{NS}/cert-manager-cainjector",
        f"Deployment/{NS}/cert-manager-webhook"]
    assert "sim-cloudflare-token" not in json.dumps(stamp)
    assert token(api) == TOKEN
    fast(run(role))

    delete(api, f"{ISSUERS}/letsencrypt-staging")
    full(run(role), "ClusterIssuer//letsencrypt-staging missing")
    assert get(api, f"{ISSUERS}/letsencrypt-staging")["spec"]["acme"]["email"] == \
        "ops@example.org"
    fast(run(role))

    role.host["cert_manager_cloudflare_api_token"] = "sim-cloudflare-token-2"
    full(run(role), "inputs changed since the last full run")
    assert token(api) == "sim-cloudflare-token-2"
    fast(run(role))
