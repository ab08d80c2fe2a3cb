"""The add-on roles (metallb, ingress_nginx, cert_manager) and playbooks/addons.yml: structure
and style, bad input refused before anything is touched, and a run against the Kubernetes
simulator on a real lab host (simulated API server + simulated kubectl; real Ansible, SSH,
files and systemd) in the right order with the waits in place, then a second run with no
change. The lab tests run at the default Kubernetes minor of new clusters (the schema's) and at
the newest minor provision supports (slow, make test-all): ids like [1.35] and [1.37]."""

from __future__ import annotations

import base64
import hashlib
import json
import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from lab_fixtures import default_minor, kubernetes_minors
from simulator import rules
from simulator.fixtures import lab_sh
from test_simulator_lab import INIT_CONFIG

from provision import pins
from provision.runner import run_playbook

REPO = Path(__file__).resolve().parent.parent
TESTS = REPO / "tests"
ROLES = ("metallb", "ingress_nginx", "cert_manager")
DATA = TESTS / "data" / "addons"
# reduced copies of the pinned releases (provision/pins.py); cert-manager's is of v1.16.2 (the
# v1.21.1 release asset could not be obtained here), so the tests install that version
FIXTURES = {"metallb": "metallb-native-v0.16.1.yaml",
            "ingress_nginx": "ingress-nginx-controller-v1.15.1-cloud.yaml",
            "cert_manager": "cert-manager-v1.16.2.yaml"}
FIXTURE_VERSIONS = {"cert_manager_version": "v1.16.2"}


def task_files(role: str) -> list[Path]:
    return sorted((REPO / "roles" / role / "tasks").glob("*.yml"))


def tasks_of(path: Path) -> list[dict]:
    """Every task of a task file, blocks flattened."""
    out: list[dict] = []

    def walk(items: list[dict] | None) -> None:
        for t in items or []:
            out.append(t)
            for key in ("block", "rescue", "always"):
                walk(t.get(key))

    walk(yaml.safe_load(path.read_text()))
    return out


MODULE_KEYS = {"name", "when", "register", "vars", "loop", "loop_control", "changed_when",
               "failed_when", "until", "retries", "delay", "no_log", "check_mode", "tags",
               "become", "notify", "block", "rescue", "always", "environment", "listen",
               "ignore_errors", "run_once", "delegate_to"}


# --- structure and style ------------------------------------------------------------------

@pytest.mark.parametrize("role", ROLES)
def test_tasks_are_named_and_use_fqcn(role: str) -> None:
    for path in task_files(role):
        for task in tasks_of(path):
            assert task.get("name"), f"{path}: a task has no name: {task}"
            modules = [k for k in task if k not in MODULE_KEYS]
            if "block" in task:
                continue
            assert len(modules) == 1, f"{path}: {task['name']}: modules {modules}"
            assert modules[0].startswith("ansible.builtin."), \
                f"{path}: {task['name']}: {modules[0]} is not a FQCN builtin module"


@pytest.mark.parametrize("role", ROLES)
def test_retries_live_in_one_place(role: str) -> None:
    """Retrying is the job of tasks/apply.yml (and, for ingress-nginx, the smoke test's
    address lookup and request); no other task retries, and every retry loop takes its
    count and delay from the role's variables."""
    allowed = {"apply.yml"} | ({"smoke.yml"} if role == "ingress_nginx" else set())
    for path in task_files(role):
        for task in tasks_of(path):
            if "ansible.builtin.get_url" in task:
                # a download retries a flaky network (issue 15), never a 4xx or a checksum
                assert "status_code" in str(task.get("until")), f"{path}: {task['name']}"
                continue
            if "retries" in task or "until" in task:
                assert path.name in allowed, f"{path}: {task['name']} retries"
                assert "{{" in str(task["retries"]) and "{{" in str(task["delay"]), \
                    f"{path}: {task['name']}: retries/delay must come from variables"


def test_applies_parse_kubectl_output_for_changes() -> None:
    for role in ROLES:
        [task] = tasks_of(REPO / "roles" / role / "tasks" / "apply.yml")
        assert task["ansible.builtin.command"]["argv"][0] == "kubectl"
        assert "apply" in task["ansible.builtin.command"]["argv"]
        assert "unchanged" in task["changed_when"], f"{role}: changed_when ignores 'unchanged'"


def test_cloudflare_token_tasks_are_no_log() -> None:
    """Every task that renders or applies the Cloudflare token Secret has no_log; the token
    variable is no_log in the argument spec; the rendered file is 0600."""
    seen = 0
    for path in task_files("cert_manager"):
        for task in tasks_of(path):
            text = json.dumps(task)
            if "cloudflare" in text.lower() and "include_tasks" not in text and \
                    "ansible.builtin.assert" not in task:
                assert task.get("no_log") is True, f"{path}: {task['name']} lacks no_log"
                seen += 1
            if task.get("vars", {}).get("_cert_manager_apply_secret"):
                seen += 1
    assert seen >= 2
    [apply_task] = tasks_of(REPO / "roles/cert_manager/tasks/apply.yml")
    assert "_cert_manager_apply_secret" in str(apply_task["no_log"])
    spec = yaml.safe_load((REPO / "roles/cert_manager/meta/argument_specs.yml").read_text())
    assert spec["argument_specs"]["main"]["options"]["cert_manager_cloudflare_api_token"][
        "no_log"] is True
    render = tasks_of(REPO / "roles/cert_manager/tasks/render.yml")
    assert all(t["ansible.builtin.template"]["mode"] == "0600" for t in render)


def test_readmes_state_the_supported_releases_and_the_oci_steps() -> None:
    metallb = (REPO / "roles/metallb/README.md").read_text()
    assert "v0.13 and later" in metallb and "memberlist" in metallb
    assert "secondary private IP" in metallb and "ignores ARP" in metallb
    assert "Assign Secondary Private IP Address" in metallb
    assert "allow-shared-ip" in metallb
    assert "hostNetwork" in (REPO / "roles/ingress_nginx/README.md").read_text()
    assert "no_log" in (REPO / "roles/cert_manager/README.md").read_text()


def test_addons_playbook_order_and_component_names() -> None:
    [play] = yaml.safe_load((REPO / "playbooks/addons.yml").read_text())
    assert play["hosts"] == "control_plane[0]"
    includes = [t for t in play["tasks"] if "ansible.builtin.include_role" in t]
    roles = [t["ansible.builtin.include_role"]["name"] for t in includes]
    # ingress_nginx or gateway_api by ingress_controller (tests/test_gateway_api.py)
    assert roles == ["metallb", "ingress_nginx", "gateway_api", "cert_manager"]
    whens = " ".join(str(t["when"]) for t in includes)
    for name in ("'metallb'", "'ingress'", "'cert-manager'"):
        assert name in whens


def test_addons_playbook_syntax(tmp_path: Path) -> None:
    inv = tmp_path / "hosts.yml"
    inv.write_text("all:\n  children:\n    control_plane:\n      hosts:\n        cp1: {}\n")
    proc = subprocess.run([str(Path(sys.executable).parent / "ansible-playbook"),
                           "--syntax-check", "-i", str(inv), str(REPO / "playbooks/addons.yml")],
                          cwd=REPO, capture_output=True, text=True,
                          env={"ANSIBLE_CONFIG": str(REPO / "ansible.cfg"),
                               "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.slow
def test_ansible_lint_production_profile() -> None:
    lint = Path(sys.executable).parent / "ansible-lint"
    if not lint.exists():
        pytest.skip("ansible-lint is not installed in this environment")
    paths = [f"roles/{r}" for r in ROLES] + ["playbooks/addons.yml"]
    proc = subprocess.run([str(lint), "--profile", "production", "--offline", "--nocolor",
                           *paths], cwd=REPO, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]


# --- bad input is refused before anything is touched ---------------------------------------

BAD: dict[str, tuple[dict[str, Any], str]] = {
    "metallb-pre-crd-release": ({"metallb_version": "v0.12.1"},
                                "releases before v0.13 are configured by a ConfigMap"),
    "metallb-duplicate-pool": ({"metallb_addresses": ["10.0.0.200/29"],
                                "metallb_pools": [{"name": "default",
                                                   "addresses": ["10.0.1.0/29"]}]},
                               "every pool needs a unique name"),
    "metallb-bad-advertise": ({"metallb_pools": [{"name": "p", "addresses": ["10.0.1.0/29"],
                                                  "advertise": "arp"}]},
                              "advertise is l2, bgp or both"),
    "metallb-bgp-without-peers": ({"metallb_pools": [{"name": "p", "addresses": ["10.0.1.0/29"],
                                                      "advertise": "bgp"}]},
                                  "metallb_bgp_peers is empty"),
    "ingress-bad-mode": ({"ingress_nginx_service_mode": "HostPort"},
                         "must be LoadBalancer, NodePort or hostNetwork"),
    "ingress-bad-default-secret": ({"ingress_nginx_default_tls_secret": "default-tls"},
                                   'is "namespace/name"'),
    "cert-acme-without-email": ({"cert_manager_cluster_issuers": [{"name": "le", "type": "acme"}]},
                                "needs email (or acme_email)"),
    "cert-unknown-solver": ({"acme_email": "a@example.org", "cert_manager_cluster_issuers": [
        {"name": "le", "type": "acme", "solver": "route53"}]}, "solver is http01 or cloudflare"),
    "cert-cloudflare-without-token": ({"acme_email": "a@example.org",
                                       "cert_manager_cluster_issuers": [
                                           {"name": "le", "type": "acme",
                                            "solver": "cloudflare"}]},
                                      "cert_manager_cloudflare_api_token is empty"),
    "cert-default-cert-unknown-issuer": ({"cert_manager_cluster_issuers": [
        {"name": "lab", "type": "ca"}], "cert_manager_default_certificate": {
        "issuer": "nope", "dns_names": ["a.example.org"]}},
        "needs issuer (one of cert_manager_cluster_issuers)"),
}


def _local_inventory(tmp_path: Path, cases: dict[str, dict[str, Any]]) -> Path:
    hosts = {name: {"ansible_connection": "local", "ansible_python_interpreter": sys.executable,
                    **values} for name, values in cases.items()}
    inv = tmp_path / "hosts.yml"
    inv.write_text(yaml.safe_dump({"all": {"hosts": hosts}}))
    return inv


def test_bad_settings_fail_in_the_checks_with_the_key_named(tmp_path: Path) -> None:
    cases = {name: values for name, (values, _) in BAD.items()}
    cases["all-good"] = {"metallb_addresses": ["10.0.0.200-10.0.0.210"],
                         "acme_email": "a@example.org",
                         "cert_manager_cluster_issuers": [{"name": "le", "type": "acme"}]}
    result = run_playbook(command="test-addons-check", playbook=str(
        TESTS / "playbooks/addons-check.yml"), inventory=_local_inventory(tmp_path, cases),
        quiet=True)
    by_host = {f.host: f for f in result.failures}
    for name, (_, expect) in BAD.items():
        assert name in by_host, f"{name}: was not refused"
        assert expect in by_host[name].message, f"{name}: {by_host[name].message}"
        assert by_host[name].task.startswith("Check "), by_host[name].task
    assert "all-good" not in by_host and result.hosts["all-good"]["failed"] == 0


@pytest.mark.parametrize(("role", "bad"), [
    ("metallb", {"metallb_pools": "10.0.0.0/24"}),
    ("ingress_nginx", {"ingress_nginx_service_mode": "ClusterIP"}),
    ("cert_manager", {"cert_manager_cluster_issuers": {"name": "x"}}),
])
def test_argument_specs_refuse_wrong_types_before_any_task(tmp_path: Path, role: str,
                                                           bad: dict[str, Any]) -> None:
    inv = _local_inventory(tmp_path, {"h": {
        "addons_role": role, f"{role}_manifest_dir": str(tmp_path / "m"), **bad}})
    result = run_playbook(command="test-addons-argspec",
                          playbook=str(TESTS / "playbooks/addons-argspec.yml"), inventory=inv,
                          quiet=True)
    [failure] = result.failures
    assert "Validating arguments against arg spec" in failure.task, failure.task
    assert next(iter(bad)) in failure.message
    assert not (tmp_path / "m").exists(), "the role did something before refusing its input"


# --- the roles against the simulator on a real lab host ---------------------------------------

FIXTURE_DIR = "/root/addons-fixtures"


def sh(lab: Any, host: str, script: str, check: bool = True) -> subprocess.CompletedProcess:
    return lab_sh(lab, host, script, check)


def init_config(release: str) -> str:
    """The `kubeadm init --config` text of tests/test_simulator_lab.py at `release`."""
    assert "kubernetesVersion: v1.31.2\n" in INIT_CONFIG
    return INIT_CONFIG.replace("kubernetesVersion: v1.31.2\n", f"kubernetesVersion: v{release}\n")


def simulated_cluster(sim_lab_node: Any, minor: int | None = None) -> tuple[Any, str]:
    """A lab host with kubectl/kubeadm/kubelet from the simulator's signed apt repo and
    `kubeadm init` (the sim_lab_node fixture) at the newest patch of 1.`minor` (default: the
    minor new clusters get, lab_fixtures.default_minor); the fixture manifests copied to the
    host (nothing can be downloaded here). Returns (lab, host)."""
    release = rules.RELEASES[default_minor() if minor is None else minor][-1]
    node = sim_lab_node(require_cni=False, require_cri=False, deployment_ready_seconds=4.0)
    node.bootstrap(init_config(release), release)
    # one node runs everything (like kubeadm_control_plane_schedulable without workers)
    node.sh("k='kubectl --kubeconfig /etc/kubernetes/admin.conf'; n=$(hostname | tr A-Z a-z); "
            "for i in $(seq 60); do $k get node $n >/dev/null 2>&1 && break; sleep 1; done; "
            "$k taint nodes $n node-role.kubernetes.io/control-plane:NoSchedule- >/dev/null")
    for name in FIXTURES.values():
        data = base64.b64encode((DATA / name).read_bytes()).decode()
        node.sh(f"mkdir -p {FIXTURE_DIR} && echo {data} | base64 -d > {FIXTURE_DIR}/{name}")
    return node.lab, node.host


def addon_vars(fixture_dir: str = FIXTURE_DIR, **extra: Any) -> dict[str, Any]:
    """The add-on variables for the simulated tests, the manifests read from ``fixture_dir``
    (where the copies of DATA are on the host: FIXTURE_DIR on a lab host, str(DATA) for a run
    on this machine); each manifest's checksum is the sha256 of the fixture its URL names, so
    the roles' checksum verification runs too."""
    values = _addon_values(fixture_dir, **extra)
    for role in ROLES:
        url = str(values[f"{role}_manifest_url"])
        if f"{role}_manifest_checksum" not in values and url.startswith(f"file://{fixture_dir}/"):
            digest = hashlib.sha256((DATA / url.rsplit("/", 1)[1]).read_bytes()).hexdigest()
            values[f"{role}_manifest_checksum"] = f"sha256:{digest}"
    return values


def _addon_values(fixture_dir: str, **extra: Any) -> dict[str, Any]:
    return {
        **FIXTURE_VERSIONS,
        "metallb_manifest_url": f"file://{fixture_dir}/{FIXTURES['metallb']}",
        "ingress_nginx_manifest_url": f"file://{fixture_dir}/{FIXTURES['ingress_nginx']}",
        "cert_manager_manifest_url": f"file://{fixture_dir}/{FIXTURES['cert_manager']}",
        "metallb_addresses": ["172.30.0.200-172.30.0.210"],
        "metallb_services": [{"name": "dns", "namespace": "kube-system",
                              "selector": {"k8s-app": "kube-dns"}, "address": "172.30.0.201",
                              "ports": [{"name": "dns-udp", "port": 53, "protocol": "UDP"},
                                        {"name": "dns-tcp", "port": 53, "protocol": "TCP"}]}],
        "ingress_nginx_load_balancer_ip": "172.30.0.200",
        "ingress_nginx_default_tls_secret": "ingress-nginx/default-tls",
        "acme_email": "ops@example.org",
        "cert_manager_cloudflare_api_token": "sim-cloudflare-token",
        "cert_manager_cluster_issuers": [
            {"name": "lab-ca", "type": "ca"},
            {"name": "letsencrypt-staging", "type": "acme", "server": "staging"},
            {"name": "letsencrypt-dns", "type": "acme", "server": "production",
             "solver": "cloudflare", "dns_zones": ["example.org"]}],
        "cert_manager_default_certificate": {"issuer": "lab-ca",
                                             "dns_names": ["lab.example.test"]},
        "ingress_nginx_smoke_test": False,
        # the simulator answers in seconds: short retry delays keep the test quick
        "metallb_apply_delay": 1, "ingress_nginx_delay": 1, "cert_manager_apply_delay": 1,
        "metallb_wait_timeout": 60, "ingress_nginx_wait_timeout": 60,
        "cert_manager_wait_timeout": 60,
        **extra,
    }


# the lab inventory says NodePort (one VM, no spare address); these tests use MetalLB's
LB_SMOKE = {"ingress_nginx_service_mode": "LoadBalancer", "ingress_nginx_smoke_test": True}


def kubectl_json(lab: Any, host: str, *args: str) -> dict:
    proc = sh(lab, host, "kubectl --kubeconfig /etc/kubernetes/admin.conf " +
              " ".join(shlex.quote(a) for a in args) + " -o json")
    return json.loads(proc.stdout)


def names(lab: Any, host: str, *args: str) -> set[str]:
    return {i["metadata"]["name"] for i in kubectl_json(lab, host, "get", *args)["items"]}


def ordered_tasks(result: Any) -> list[str]:
    seen: list[str] = []
    for e in result.events:
        if e["event"] == "runner_on_ok" and e["task"] and e["task"] not in seen:
            seen.append(e["task"])
    return seen


@pytest.mark.container
@pytest.mark.slow
@pytest.mark.timeout(3600)  # two playbook runs through SSH; minutes on a loaded 2-CPU host
@pytest.mark.parametrize("minor", kubernetes_minors())
def test_simulated_addons_in_order_with_waits_then_no_change(minor: int, sim_lab_node: Any,
                                                             k8s_sim: Any) -> None:
    """Simulated Kubernetes on a real lab host: playbooks/addons.yml installs MetalLB,
    ingress-nginx and cert-manager from the (reduced, local) release manifests; the simulator
    refuses custom resources before their CRDs and Ingresses/pools while a webhook's
    Deployment is not Available, so the run succeeds only with the waits in place. The
    simulated MetalLB controller assigns the Service addresses and the smoke test's request is
    answered through the simulated ingress on the node. The second run reports changed=0."""
    lab, host = simulated_cluster(sim_lab_node, minor)
    started = time.monotonic()
    first = run_playbook(command="test-addons", playbook="addons.yml", inventory=lab.inventory,
                         extravars=addon_vars(**LB_SMOKE), quiet=True)
    first_seconds = time.monotonic() - started
    assert first.ok, f"{first.errors}\n{first.log_path.read_text()[-5000:]}"
    assert first.hosts[host]["changed"] > 0
    tasks = ordered_tasks(first)

    def pos(fragment: str) -> int:
        hits = [i for i, t in enumerate(tasks) if fragment in t]
        assert hits, f"no task like {fragment!r} ran: {tasks}"
        return hits[0]

    # order: each add-on is installed, waited for, then configured; MetalLB before ingress
    # (its address), ingress before cert-manager (HTTP-01 through it)
    assert pos(f"Apply metallb-native-{pins.BY_COMPONENT['MetalLB'].version}.yaml") < \
        pos("Wait for the MetalLB controller Deployment") < pos("Apply metallb-config.yaml") < \
        pos("Apply ingress-nginx.yaml") < \
        pos("Wait until Available, deployment/ingress-nginx-controller") < \
        pos(f"Apply cert-manager-{FIXTURE_VERSIONS['cert_manager_version']}.yaml") < \
        pos("Wait for the cert-manager Deployments") < pos("Apply cluster-issuers.yaml") < \
        pos("Apply default-certificate.yaml")

    assert names(lab, host, "ipaddresspools", "-n", "metallb-system") == {"default"}
    assert names(lab, host, "l2advertisements", "-n", "metallb-system") == {"l2"}
    svcs = kubectl_json(lab, host, "get", "services", "-n", "kube-system")["items"]
    shared = {s["metadata"]["name"]: s["metadata"].get("annotations", {}) for s in svcs
              if s["metadata"]["name"].startswith("dns-")}
    assert set(shared) == {"dns-tcp", "dns-udp"}
    assert {a["metallb.io/allow-shared-ip"] for a in shared.values()} == \
        {"kube-system-dns"}
    ctl = kubectl_json(lab, host, "get", "service", "ingress-nginx-controller", "-n",
                       "ingress-nginx")
    assert ctl["spec"]["type"] == "LoadBalancer"
    # the simulated MetalLB controller gave the requested addresses; TCP+UDP DNS share one
    assert ctl["status"]["loadBalancer"]["ingress"] == [{"ip": "172.30.0.200"}]
    assert {s["metadata"]["name"]: s["status"]["loadBalancer"]["ingress"][0]["ip"]
            for s in svcs if s["metadata"]["name"].startswith("dns-")} == {
        "dns-tcp": "172.30.0.201", "dns-udp": "172.30.0.201"}
    # the smoke test's one request went through the (simulated) ingress to the echo pods
    served = [c for c in k8s_sim.calls("ingress-request") if c["code"] == 200]
    assert served and served[0]["host"] == "smoke.provision.test", k8s_sim.calls(
        "ingress-request")
    assert served[0]["backend"] == "provision-smoke/echo" and served[0]["node"] == host
    assert "provision-smoke" not in names(lab, host, "namespaces")
    assert names(lab, host, "clusterissuers") == {"lab-ca-selfsigned", "lab-ca",
                                                 "letsencrypt-staging", "letsencrypt-dns"}
    assert names(lab, host, "certificates", "-n", "ingress-nginx") == {"default-tls"}
    assert "cloudflare-api-token" in names(lab, host, "secrets", "-n", "cert-manager")
    mode = sh(lab, host, "stat -c %a /etc/kubernetes/provision/addons/cert-manager/"
                         "cloudflare-secret.yaml").stdout.strip()
    assert mode == "600"
    assert "sim-cloudflare-token" not in first.log_path.read_text()

    second = run_playbook(command="test-addons", playbook="addons.yml", inventory=lab.inventory,
                          extravars=addon_vars(**LB_SMOKE), quiet=True)
    assert second.ok, f"{second.errors}\n{second.log_path.read_text()[-5000:]}"
    assert second.hosts[host]["changed"] == 0, [e for e in second.events if e["changed"]]
    print(json.dumps({"addons_first_run_seconds": round(first_seconds, 1),
                      "addons_second_run_seconds": round(second.elapsed, 1)}))


@pytest.mark.container
@pytest.mark.slow
@pytest.mark.timeout(3600)  # two playbook runs through SSH; minutes on a loaded 2-CPU host
@pytest.mark.parametrize("minor", kubernetes_minors())
def test_simulated_apply_retries_until_the_webhook_answers(minor: int, sim_lab_node: Any,
                                                           k8s_sim: Any) -> None:
    """Simulated: right after the MetalLB manifest is applied (no wait), the pool apply is
    refused by the webhook whose Deployment is not Available yet; tasks/apply.yml - the one
    place that retries - tries again until it is accepted. An error a retry cannot fix (a
    missing file) fails at once."""
    lab, host = simulated_cluster(sim_lab_node, minor)
    # long enough that the playbook starts while the webhook still does not answer (the
    # Deployment counts as Available this many seconds after its creation)
    k8s_sim.settings(deployment_ready_seconds=120.0)
    sh(lab, host, "kubectl --kubeconfig /etc/kubernetes/admin.conf apply -f "
                  f"{FIXTURE_DIR}/{FIXTURES['metallb']} >/dev/null")
    early = sh(lab, host, "mkdir -p /root/early && cat > /root/early/pool.yaml <<'EOF'\n"
                          "apiVersion: metallb.io/v1beta1\nkind: IPAddressPool\nmetadata:\n"
                          "  name: probe\n  namespace: metallb-system\nspec:\n"
                          "  addresses: [172.30.0.250/32]\nEOF\nkubectl --kubeconfig "
                          "/etc/kubernetes/admin.conf apply -f /root/early/pool.yaml", check=False)
    assert early.returncode != 0 and "failed calling webhook" in early.stderr, early
    result = run_playbook(command="test-addons-apply",
                          playbook=str(TESTS / "playbooks/addons-apply.yml"),
                          inventory=lab.inventory,
                          extravars=addon_vars(metallb_apply_retries=240), quiet=True)
    log = result.log_path.read_text()
    assert result.ok, f"{result.errors}\n{log[-5000:]}"
    assert "FAILED - RETRYING" in log and "Apply metallb-config.yaml" in log, log[-3000:]
    assert names(lab, host, "ipaddresspools", "-n", "metallb-system") == {"default"}
    # not retried: an error no later attempt can fix
    bad = run_playbook(command="test-addons-apply",
                       playbook=str(TESTS / "playbooks/addons-apply.yml"),
                       inventory=lab.inventory,
                       extravars=addon_vars(addons_apply_file="/root/early/missing.yaml"),
                       quiet=True)
    assert not bad.ok
    [failure] = bad.failures
    assert failure.task == "Apply missing.yaml", failure
    assert "does not exist" in failure.message
    assert "RETRYING" not in bad.log_path.read_text()


@pytest.mark.container
@pytest.mark.slow
@pytest.mark.timeout(3600)  # two playbook runs through SSH; minutes on a loaded 2-CPU host
@pytest.mark.parametrize("minor", kubernetes_minors())
def test_simulated_smoke_test_cleans_up_when_the_request_fails(minor: int, sim_lab_node: Any,
                                                               k8s_sim: Any) -> None:
    """Simulated: the smoke request goes to an address where no ingress answers
    (127.0.0.1; the simulated ingress listens on the MetalLB address), so it cannot be
    answered; the role must fail at that step, name it, and remove the echo resources."""
    lab, host = simulated_cluster(sim_lab_node, minor)
    result = run_playbook(command="test-addons", playbook="addons.yml", inventory=lab.inventory,
                          extravars=addon_vars(provision_components=["metallb", "ingress"],
                                               **LB_SMOKE,
                                               ingress_nginx_smoke_address="127.0.0.1",
                                               ingress_nginx_retries=2),
                          quiet=True)
    assert not result.ok
    [failure] = result.failures
    assert failure.task == "Send one request through the ingress", failure
    assert names(lab, host, "deployments", "-n", "provision-smoke") == set()
    assert names(lab, host, "ingresses", "-n", "provision-smoke") == set()
    assert "provision-smoke" not in names(lab, host, "namespaces")
    # the smoke Ingress did pass the admission webhook once the controller was Available
    assert any(e["task"] == "Apply smoke.yaml" and e["event"] == "runner_on_ok"
               for e in result.events)


@pytest.mark.container
@pytest.mark.slow
@pytest.mark.timeout(3600)
@pytest.mark.parametrize("minor", kubernetes_minors())
def test_simulated_smoke_test_through_a_node_port(minor: int, sim_lab_node: Any,
                                                  k8s_sim: Any) -> None:
    """Simulated, NodePort mode (the lab's default: one VM, no spare address): the smoke
    test finds the controller pod's hostIP and its one request through nodePort 30080 is
    answered by the simulated ingress on the node; the echo resources are removed. The
    re-run finds the role's add-on stamp current: changed=0, the install include (with the
    smoke test, the role's proof) skipped, no request sent."""
    lab, host = simulated_cluster(sim_lab_node, minor)
    extra = addon_vars(provision_components=["ingress"], ingress_nginx_service_mode="NodePort",
                       ingress_nginx_smoke_test=True)
    result = run_playbook(command="test-addons", playbook="addons.yml", inventory=lab.inventory,
                          extravars=extra, quiet=True)
    assert result.ok, f"{result.errors}\n{result.log_path.read_text()[-5000:]}"
    served = [c for c in k8s_sim.calls("ingress-request") if c["code"] == 200]
    assert served and served[0]["backend"] == "provision-smoke/echo", k8s_sim.calls(
        "ingress-request")
    ctl = kubectl_json(lab, host, "get", "service", "ingress-nginx-controller", "-n",
                       "ingress-nginx")
    assert ctl["spec"]["type"] == "NodePort"
    assert {p["name"]: p.get("nodePort") for p in ctl["spec"]["ports"]}["http"] == 30080
    assert "provision-smoke" not in names(lab, host, "namespaces")

    requests = len(k8s_sim.calls("ingress-request"))
    again = run_playbook(command="test-addons", playbook="addons.yml", inventory=lab.inventory,
                         extravars=extra, quiet=True)
    assert again.ok, f"{again.errors}\n{again.log_path.read_text()[-5000:]}"
    assert again.hosts[host]["changed"] == 0, [e for e in again.events if e["changed"]]
    install = {e["event"] for e in again.events
               if e["task"] == "Install, wait for and smoke-test ingress-nginx"}
    assert "runner_on_skipped" in install and "playbook_on_include" not in install, install
    assert len(k8s_sim.calls("ingress-request")) == requests


def test_fixture_manifests_are_marked_as_reduced_copies() -> None:
    for name in FIXTURES.values():
        head = (DATA / name).read_text().split("\n", 1)[0]
        assert head.startswith("# A reduced copy of"), name
