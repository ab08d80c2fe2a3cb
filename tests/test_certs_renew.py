"""`provision certs renew`: the kubeadm_certs role, its node tool and the command.

Real here: the node tool (bash, openssl, pgrep, mv) run on this machine against a real kubeadm
PKI made with `cryptography`; Ansible over SSH to Debian 12 systemd lab containers; the
cluster bootstrapped by the real playbooks/cluster.yml; the files kubeadm writes and the
certificates it renews (real X.509, re-signed by the cluster CA).
Simulated (tests whose names say so): kubeadm, kubelet and kubectl are the simulator's
programs. The simulated kubelet runs one host process per static pod (argv[0] =
kube-apiserver, etcd, ...), stops it when its manifest leaves /etc/kubernetes/manifests and
starts a new one when it comes back; with ``api_needs_apiserver_pod="endpoint"`` the API is
down while the endpoint node's kube-apiserver manifest is out.
"""

from __future__ import annotations

import base64
import json
import shlex
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from pki_fixtures import make_kubeadm_pki, resign

from provision.certs import pki

REPO = Path(__file__).resolve().parent.parent
ROLE = REPO / "roles" / "kubeadm_certs"
TOOL = ROLE / "files" / "provision-kubeadm-certs-renew"


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "provision", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=300, check=False,
                          stdin=subprocess.DEVNULL)


def tool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(TOOL), *args], capture_output=True, text=True, timeout=120,
                          check=False)


# --- the node tool on this machine -------------------------------------------------------------

def test_tool_status_lists_the_renewable_certs_and_says_when_due(tmp_path: Path) -> None:
    """Real PKI, real openssl: days left per certificate; due under --before-days; the CAs and
    kubelet.conf (not renewed by kubeadm) are not listed."""
    make_kubeadm_pki(tmp_path, validity={"apiserver": timedelta(days=10),
                                         "admin.conf": timedelta(days=-2)})
    kdir = str(tmp_path / "etc/kubernetes")
    proc = tool("--dir", kdir, "status")
    assert proc.returncode == 0, proc.stderr
    rows = dict(line.split("\t")[:2] for line in proc.stdout.splitlines()[:-1])
    assert set(rows) == {c.name for c in pki.PKI_CERTS} - {
        "ca", "etcd-ca", "front-proxy-ca", "kubelet.conf"}
    # whole days, truncated like `certs check` (the fixture's end dates are whole seconds)
    assert rows["apiserver"] in ("9", "10") and rows["admin.conf"] in ("-1", "-2")
    assert rows["scheduler.conf"] in ("364", "365")
    assert proc.stdout.splitlines()[-1] == "due: yes"

    make_kubeadm_pki(tmp_path, validity={"apiserver": timedelta(days=45)})
    assert tool("--dir", kdir, "status").stdout.splitlines()[-1] == "due: no"
    assert tool("--dir", kdir, "--before-days", "46", "status").stdout.splitlines()[-1] \
        == "due: yes"
    assert tool("--dir", kdir, "--force", "status").stdout.splitlines()[-1] == "due: yes"


def test_tool_refuses_bad_arguments() -> None:
    for args in (["status", "renew"], ["--before-days", "x", "status"], ["bogus"], []):
        proc = tool(*args)
        assert proc.returncode == 2, (args, proc.stdout, proc.stderr)
        assert proc.stderr.startswith("provision-kubeadm-certs-renew: ")


def test_tool_restart_moves_the_manifests_back_when_a_pod_does_not_stop(tmp_path: Path) -> None:
    """A process named like a static pod that no kubelet stops: `restart` gives up after
    --stop-timeout, exits 1 naming it, and every manifest is back in place; manifests of
    other static pods (kube-vip, ...) are never moved."""
    kdir = tmp_path / "k8s"
    (kdir / "manifests").mkdir(parents=True)
    name = f"provision-test-pod-{tmp_path.name[-8:]}"
    (kdir / "manifests" / f"{name}.yaml").write_text("kind: Pod\n")
    (kdir / "manifests" / "other.yaml").write_text("kind: Pod\n")
    proc = subprocess.Popen(["bash", "-c", f"exec -a {name} sleep 60"])
    try:
        time.sleep(0.3)
        res = tool("--dir", str(kdir), "--stop-timeout", "2", "--components",
                   f"{name},kube-scheduler", "restart")
    finally:
        proc.kill()
        proc.wait()
    assert res.returncode == 1, res.stdout + res.stderr
    assert f"moving {name} out of" in res.stdout  # kube-scheduler has no manifest here
    assert f"still running 2s after their manifests were moved out: {name}" in res.stderr
    assert sorted(p.name for p in (kdir / "manifests").iterdir()) == sorted(
        [f"{name}.yaml", "other.yaml"])
    assert not (kdir / "provision-certs-renew.manifests").exists()


# --- the command's input checks ----------------------------------------------------------------

def _inventory(tmp_path: Path) -> Path:
    inv = tmp_path / "hosts.yml"
    inv.write_text("all:\n  children:\n    control_plane:\n      hosts:\n        cp1:\n"
                   "          ansible_connection: local\n")
    return inv


def test_certs_renew_asks_first_and_refuses_bad_input(tmp_path: Path) -> None:
    """Without a terminal and without --yes it refuses (exit 2) before any contact; bad
    input names the problem; nothing is run."""
    env = {"XDG_STATE_HOME": str(tmp_path / "state"), "PATH": "/usr/bin:/bin"}
    inv = str(_inventory(tmp_path))
    proc = cli("-i", inv, "certs", "renew", env=env)
    assert proc.returncode == 2 and "add --yes" in proc.stderr, proc.stderr
    proc = cli("-i", inv, "--json", "certs", "renew", env=env)
    assert proc.returncode == 2 and json.loads(proc.stdout)["exit_code"] == 2
    proc = cli("-i", inv, "certs", "renew", "--yes", "--kubernetes-dir", "k8s", env=env)
    assert proc.returncode == 2 and "absolute path" in proc.stderr
    proc = cli("-i", inv, "certs", "renew", "--yes", "--before-days", "0", env=env)
    assert proc.returncode == 2 and "--before-days" in proc.stderr
    other = tmp_path / "w.yml"
    other.write_text("all:\n  hosts:\n    w1:\n      ansible_connection: local\n")
    proc = cli("-i", str(other), "certs", "renew", "--yes", env=env)
    assert proc.returncode == 2 and "control_plane" in proc.stderr and str(other) in proc.stderr
    assert not (tmp_path / "state" / "provision" / "runs").exists()  # nothing was run


def test_certs_renew_fails_clearly_on_a_host_without_kubeadm(tmp_path: Path) -> None:
    """Real playbook over a local connection: no admin.conf -> the shared cluster check
    (playbooks/tasks/cluster-present.yml) stops the run with the one "no cluster" line naming
    the host and the file; exit 1; the re-check is not run."""
    env = {"XDG_STATE_HOME": str(tmp_path / "state"), "PATH": f"{Path(sys.executable).parent}"
           ":/usr/bin:/bin", "HOME": str(tmp_path)}
    inv = tmp_path / "hosts.yml"
    inv.write_text("all:\n  children:\n    control_plane:\n      hosts:\n        cp1:\n"
                   "          ansible_connection: local\n"
                   f"          ansible_python_interpreter: {sys.executable}\n")
    proc = cli("-i", str(inv), "--json", "certs", "renew", "--yes", "--kubernetes-dir",
               str(tmp_path / "k8s"), env=env)
    assert proc.returncode == 1, proc.stderr
    obj = json.loads(proc.stdout)
    assert obj["ok"] is False and obj["cluster"] is False and "certificates" not in obj
    assert f"no cluster: run `provision -i {inv} bootstrap` first" in proc.stderr
    assert f"cp1 has no {tmp_path}/k8s/admin.conf" in proc.stderr


# --- role hygiene --------------------------------------------------------------------------------

def test_role_and_playbook_pass_ansible_lint_production() -> None:
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "ansible-lint"), "--profile", "production",
         "--offline", "-q", "roles/kubeadm_certs", "playbooks/certs-renew.yml"],
        cwd=REPO, capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_playbook_runs_one_node_at_a_time_and_stops_on_failure() -> None:
    [play] = yaml.safe_load((REPO / "playbooks" / "certs-renew.yml").read_text())
    assert play["serial"] == 1 and play["max_fail_percentage"] == 0
    assert play["roles"] == [{"role": "kubeadm_certs"}]
    defaults = yaml.safe_load((ROLE / "defaults" / "main.yml").read_text())
    assert defaults["kubeadm_certs_timer_enabled"] is False
    assert defaults["kubeadm_certs_renew_before_days"] == pki.WARN_DAYS


# --- the simulated cluster on lab hosts -------------------------------------------------------

def _sh(lab: Any, host: str, script: str) -> str:
    proc = lab.ssh(host, f"sudo -n sh -ec {shlex.quote(script)}")
    assert proc.returncode == 0, f"{host}: {script}\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


def _read(lab: Any, host: str, path: str) -> bytes:
    return base64.b64decode(_sh(lab, host, f"base64 -w0 {path}"))


def _write(lab: Any, host: str, path: str, data: bytes) -> None:
    _sh(lab, host, f"echo {base64.b64encode(data).decode()} | base64 -d > {path}.new && "
                   f"chmod --reference={path} {path}.new && mv {path}.new {path}")


def make_near_expiry(lab: Any, host: str, validity: dict[str, timedelta]) -> None:
    """Re-sign some of a node's certificates with its cluster CA (same key and subject) so
    they expire soon (negative: already expired)."""
    files = {c.name: c for c in pki.PKI_CERTS}
    for name, valid_for in validity.items():
        cert = files[name]
        ca_rel = {"ca": "pki/ca", "etcd-ca": "pki/etcd/ca",
                  "front-proxy-ca": "pki/front-proxy-ca"}[cert.ca]
        ca_pem = _read(lab, host, f"/etc/kubernetes/{ca_rel}.crt")
        ca_key = _read(lab, host, f"/etc/kubernetes/{ca_rel}.key")
        path = f"/etc/kubernetes/{cert.path}"
        if cert.kind == "kubeconfig":
            conf = yaml.safe_load(_read(lab, host, path))
            user = conf["users"][0]["user"]
            pem = base64.b64decode(user["client-certificate-data"])
            user["client-certificate-data"] = base64.b64encode(
                resign(pem, ca_pem, ca_key, valid_for)).decode()
            _write(lab, host, path, yaml.safe_dump(conf, sort_keys=False).encode())
        else:
            _write(lab, host, path, resign(_read(lab, host, path), ca_pem, ca_key, valid_for))


class ReadyzProbe:
    """Polls the simulated API server's /readyz from the test (every 0.1 s) in a thread."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.answers: list[tuple[float, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.1):
            try:
                with urllib.request.urlopen(self.url + "/readyz", timeout=2) as resp:
                    code = resp.status
            except urllib.error.HTTPError as exc:
                code = exc.code
            except OSError:
                code = 0
            self.answers.append((time.time(), code))

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)


def check_json(lab: Any) -> tuple[int, dict[str, Any]]:
    proc = lab.cli("-i", "lab", "certs", "check", "--json")
    return proc.returncode, json.loads(proc.stdout)


@pytest.mark.container
@pytest.mark.slow
@pytest.mark.timeout(3600)
def test_certs_renew_on_simulated_ha_control_planes_one_at_a_time(lab_cluster: Any,
                                                                   k8s_sim: Any) -> None:
    """Simulated kubeadm (two control planes bootstrapped by cluster.yml): certificates made
    near expiry (one expired) -> `certs renew --yes` renews node by node (the second node's
    renewal starts after the first node's static pods are back), the API answers, `certs
    check --json` exits 0 with every certificate > 30 days, the user's kubeconfig is the
    renewed admin.conf (0600); a second run changes nothing; the optional timer renews."""
    from test_cluster_kubeadm import cluster_vars, run_cluster

    lab = lab_cluster(control_planes=2, workers=0)
    cp1, cp2 = lab.hosts
    address = _sh(lab, cp1, "hostname -I").split()[0]
    values = cluster_vars(lab, k8s_sim, control_plane_endpoint=f"{address}:6443")
    run_cluster(lab, values)
    # no load balancer: the endpoint is cp1, so the API is down while cp1's kube-apiserver is
    k8s_sim.settings(api_needs_apiserver_pod="endpoint")

    make_near_expiry(lab, cp1, {"apiserver": timedelta(days=5),
                                "front-proxy-client": timedelta(days=10),
                                "admin.conf": timedelta(days=3)})
    make_near_expiry(lab, cp2, {"etcd-server": timedelta(days=-1),
                                "scheduler.conf": timedelta(days=20)})
    code, before = check_json(lab)
    assert code == 1, before
    status = {(c["host"], c["name"]): c["status"] for c in before["certificates"]}
    assert status[(cp2, "etcd-server")] == "FAIL" and status[(cp1, "apiserver")] == "WARN"

    started = time.time()
    probe = ReadyzProbe(k8s_sim.server_url)
    try:
        proc = lab.cli("-i", "lab", "certs", "renew", "--yes", "--json")
    finally:
        probe.stop()
    assert proc.returncode == 0, proc.stderr[-6000:]
    obj = json.loads(proc.stdout)
    assert obj["renew"]["changed_hosts"] == [cp1, cp2]
    left = {(c["host"], c["name"]): c["days_left"] for c in obj["certificates"]
            if c["status"] != "ABSENT"}
    assert len({h for h, _ in left}) == 2
    assert all(d is not None and d > 30 for d in left.values()), left
    assert obj["counts"]["FAIL"] == 0 and obj["counts"]["WARN"] == 0
    code, after = check_json(lab)
    assert code == 0 and after["certificates"] == obj["certificates"]

    # one node at a time: cp1 renewed, its static pods stopped and started again, then cp2
    calls = [c for c in k8s_sim.calls() if c["time"] >= started - 1]
    renews = [c for c in calls if c["op"] == "kubeadm-certs-renew"]
    assert [c["node"] for c in renews] == [cp1, cp2]
    comps = {"kube-apiserver", "kube-controller-manager", "kube-scheduler", "etcd"}
    for node in (cp1, cp2):
        stops = {c["component"] for c in calls if c["op"] == "static-pod-stop"
                 and c["node"] == node}
        starts = [c for c in calls if c["op"] == "static-pod-start" and c["node"] == node]
        assert stops == comps and {c["component"] for c in starts} == comps, (node, calls)
    cp1_back = max(c["time"] for c in calls if c["op"] == "static-pod-start" and c["node"] == cp1)
    cp2_first = min(c["time"] for c in calls if c["node"] == cp2 and c["op"] in (
        "kubeadm-certs-renew", "static-pod-stop"))
    assert cp1_back < cp2_first, "cp2 was renewed before cp1's control plane was back"
    # the API (endpoint = cp1) was down while cp1's kube-apiserver was, and only then
    def window(node: str) -> tuple[float, float]:
        own = [c for c in calls if c["node"] == node and c.get("component") == "kube-apiserver"]
        return (min(c["time"] for c in own if c["op"] == "static-pod-stop"),
                max(c["time"] for c in own if c["op"] == "static-pod-start"))
    down = [t for t, code in probe.answers if code != 200]
    lo, hi = window(cp1)
    assert any(lo <= t <= hi for t in down), (window(cp1), probe.answers[:20])
    assert all(lo - 1 <= t <= hi + 1 for t in down), "the API was down outside cp1's restart"
    assert probe.answers[-1][1] == 200

    for host in (cp1, cp2):  # the API answers; the user's kubeconfig is the renewed one
        user_conf = _sh(lab, host, f"stat -c '%a' ~{lab.inventory.hosts[host].user}/.kube/config")
        assert user_conf.strip() == "600"
        same = _sh(lab, host, f"cmp /etc/kubernetes/admin.conf "
                              f"~{lab.inventory.hosts[host].user}/.kube/config && echo same")
        assert same.strip() == "same"
        proc = lab.ssh(host, "kubectl get --raw /readyz && kubectl get nodes -o name")
        assert proc.returncode == 0 and proc.stdout.startswith("ok"), proc.stderr

    second = lab.cli("-i", "lab", "certs", "renew", "--yes", "--json")
    assert second.returncode == 0, second.stderr[-4000:]
    hosts = json.loads(second.stdout)["renew"]["hosts"]
    assert {h: s["changed"] for h, s in hosts.items()} == {cp1: 0, cp2: 0}

    # the optional timer: installed on request, its service renews what is due on the node
    timer = lab.cli("-i", "lab", "--limit", cp2, "certs", "renew", "--yes", "--timer")
    assert timer.returncode == 0, timer.stderr[-4000:]
    assert _sh(lab, cp2, "systemctl is-enabled provision-kubeadm-certs-renew.timer").strip() \
        == "enabled"
    make_near_expiry(lab, cp2, {"apiserver": timedelta(days=40)})  # under the timer's 60 days
    _sh(lab, cp2, "systemctl start provision-kubeadm-certs-renew.service")
    end = _sh(lab, cp2, "openssl x509 -noout -enddate -in /etc/kubernetes/pki/apiserver.crt")
    from datetime import UTC, datetime
    assert pki.days_left(pki.parse_openssl_enddate(end), datetime.now(UTC)) > 300
    log = _sh(lab, cp2, "journalctl -u provision-kubeadm-certs-renew.service --no-pager")
    assert "restarted: " in log
