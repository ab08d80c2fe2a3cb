"""pytest fixtures for the Kubernetes simulator (import them in tests/conftest.py).

``k8s_sim`` (function scope) -> K8sSim: a fresh simulated API server plus the signed apt
repository (built once per session by ``k8s_sim_repo``), both on 127.0.0.1 first.
``sim.expose_to(lab)`` also serves them on the gateway address of a lab's docker network and
writes /etc/provision-sim/server on every lab host; it returns the URLs the hosts use.

    def test_simulated_something(lab_host, k8s_sim):
        lab = lab_host()
        urls = k8s_sim.expose_to(lab)          # urls.server, urls.repo, urls.repo_for(31)
        k8s_sim.fault("kubeadm-upgrade-apply", node="lab-1", count=1)
        ...
        assert k8s_sim.state()["nodes"]["lab-1"]["ready"]

``sim_local`` (function scope) -> LocalCluster: a simulated API server and nodes that are
directories on this machine (``sim_local.node("cp1", "1.30.6")``, see localnode.py): the same
programs with a supervised kubelet process, for fast tests that need no container.

Set PROVISION_SIM_DEB_CACHE to a directory to keep the built .debs between sessions.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from .packaging import Repo, RepoServer, build_repo, make_signing_key
from .server import SimServer

#: where the roles put the key on a host (pkgs.k8s.io's documented keyring path)
KEYRING = "/etc/apt/keyrings/kubernetes-apt-keyring.gpg"


@dataclass
class Endpoints:
    server: str  # simulated API server URL as the hosts reach it
    repo: str  # apt repository root URL as the hosts reach it

    def repo_for(self, minor: int) -> str:
        """The per-minor repository URL, like https://pkgs.k8s.io/core:/stable:/v1.31/deb/."""
        return f"{self.repo}/core:/stable:/v1.{minor}/deb/"

    def key_url(self, minor: int) -> str:
        return self.repo_for(minor) + "Release.key"


class K8sSim:
    """A running simulator for one test: API server, apt repository and admin helpers."""

    def __init__(self, repo: Repo, key_file: Path) -> None:
        self.repo = repo
        self.key_file = key_file  # ASCII-armored public key (Release.key)
        self.server = SimServer("127.0.0.1", 0).start()
        self.repo_server = RepoServer(repo.root, "127.0.0.1", 0)
        self.cluster = self.server.cluster
        self.local = Endpoints(self.server.url, self.repo_server.url)

    # --------------------------------------------------------------- addresses
    @property
    def server_url(self) -> str:
        return self.local.server

    @property
    def repo_url(self) -> str:
        return self.local.repo

    @property
    def repo_key(self) -> str:
        return self.key_file.read_text()

    def listen(self, host: str) -> Endpoints:
        """Serve the API and the repository on another local address too."""
        return Endpoints(self.server.listen(host), self.repo_server.listen(host))

    def expose_to(self, lab: Any) -> Endpoints:
        """Serve where the lab's hosts reach us and point every host at the server.

        Containers: the gateway address of the lab's docker network. qemu VMs (user
        networking): the guest reaches the host's loopback as 10.0.2.2.
        """
        arch = getattr(lab, "arch", None)
        if arch:
            self.repo.add_arch(arch)
        if getattr(lab, "kind", "container") == "vm":
            endpoints = Endpoints(
                self.local.server.replace("127.0.0.1", "10.0.2.2"),
                self.local.repo.replace("127.0.0.1", "10.0.2.2"),
            )
        else:
            endpoints = self.listen(lab_gateway(lab))
        for host in lab.hosts:
            cmd = (
                f"sudo -n sh -c 'mkdir -p /etc/provision-sim && echo "
                f"{shlex.quote(endpoints.server)} > /etc/provision-sim/server'"
            )
            proc = lab.ssh(host, cmd)
            assert proc.returncode == 0, (
                f"writing /etc/provision-sim/server on {host}: {proc.stderr}"
            )
        return endpoints

    # --------------------------------------------------------------- admin API
    def _call(self, method: str, path: str, body: Any = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(
            self.server_url + path,
            data=data,
            method=method,
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(req, timeout=10) as resp:
            return json.loads(resp.read() or b"null")

    def state(self) -> dict:
        """Nodes (ready, kubeletVersion, unschedulable, labels, taints), component versions
        per node, pods, pending faults, settings, cluster and API server versions."""
        return self._call("GET", "/sim/admin/state")

    def calls(self, op: str | None = None, node: str | None = None) -> list[dict]:
        """The call log: kubeadm operations, evictions, cordons, package installs ..."""
        return [
            c
            for c in self._call("GET", "/sim/admin/calls")
            if (op is None or c["op"] == op) and (node is None or c["node"] == node)
        ]

    def seed(
        self,
        *,
        pods: list[dict] | None = None,
        pdbs: list[dict] | None = None,
        deployments: list[dict] | None = None,
    ) -> dict:
        """pods: {name, node, namespace?, owner: ReplicaSet|DaemonSet|None, owner_name?,
        labels?, emptyDir?}; pdbs: {name, selector: {labels}, minAvailable|maxUnavailable};
        deployments: {name, replicas, labels?, tolerations?, emptyDir?}."""
        return self._call(
            "POST",
            "/sim/admin/seed",
            {"pods": pods or [], "pdbs": pdbs or [], "deployments": deployments or []},
        )

    def fault(
        self,
        op: str,
        node: str = "*",
        count: int = 1,
        phase: str = "before",
        message: str = "",
        **match: str,
    ) -> dict:
        """Fail the next `count` calls of `op` on `node`. Operations: kubeadm-init,
        kubeadm-join, kubeadm-upgrade-apply (phase "after": applied, then reported failed),
        kubeadm-upgrade-node, kubeadm-upload-certs, drain (after cordon), cordon, uncordon,
        eviction, kubelet-start, package-install. Keyword arguments narrow the match, e.g.
        package="kubelet" for package-install."""
        return self._call(
            "POST",
            "/sim/admin/faults",
            {
                "op": op,
                "node": node,
                "count": count,
                "phase": phase,
                "message": message,
                "match": match,
            },
        )

    def clear_faults(self) -> None:
        self._call("DELETE", "/sim/admin/faults")

    def settings(self, **values: Any) -> dict:
        """node_grace_seconds, drain_retry_seconds, pod_ready_seconds,
        deployment_ready_seconds, require_cni, require_cri, faithful_key_algorithm."""
        return self._call("POST", "/sim/admin/settings", values)

    def stop(self) -> None:
        self.server.stop()
        self.repo_server.stop()


def lab_gateway(lab: Any) -> str:
    """The IPv4 gateway of the docker network of the lab's first host."""
    from provision.lab import state

    saved = os.environ.get("XDG_STATE_HOME")
    os.environ["XDG_STATE_HOME"] = str(lab.state_home)
    try:
        st = state.load()
    finally:
        if saved is None:
            os.environ.pop("XDG_STATE_HOME", None)
        else:
            os.environ["XDG_STATE_HOME"] = saved
    rec = st.node(lab.hosts[0]) if st else None
    network = (rec.extra or {}).get("network") if rec else None
    if not network:
        raise RuntimeError(f"lab state has no docker network for {lab.hosts[0]}")
    fmt = "{{range .IPAM.Config}}{{.Gateway}} {{end}}"
    out = subprocess.run(
        ["docker", "network", "inspect", "-f", fmt, network],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    gateways = [g for g in out if ":" not in g]
    if not gateways:
        raise RuntimeError(f"docker network {network} has no IPv4 gateway")
    return gateways[0]


def build_sim_repo(base: Path) -> tuple[Repo, Path]:
    cache = Path(os.environ.get("PROVISION_SIM_DEB_CACHE") or base / "debs")
    key = make_signing_key(base / "gnupg")
    repo = build_repo(base / "repo", cache, key=key)
    key_file = base / "Release.key"
    key_file.write_text(key.armored)
    return repo, key_file


@pytest.fixture(scope="session")
def k8s_sim_repo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Repo, Path]:
    """The signed per-minor apt repositories with every simulated release (built once)."""
    return build_sim_repo(tmp_path_factory.mktemp("k8s-sim"))


@pytest.fixture
def k8s_sim(k8s_sim_repo: tuple[Repo, Path]) -> Iterator[K8sSim]:
    """A fresh simulated cluster API + the apt repository, for one test."""
    sim = K8sSim(*k8s_sim_repo)
    try:
        yield sim
    finally:
        sim.stop()


class LocalCluster:
    """A simulated API server and LocalNodes (directories + real kubelet processes)."""

    def __init__(self, base: Path) -> None:
        from .localnode import LocalNode

        self._node_cls = LocalNode
        self.base = base
        self.server = SimServer("127.0.0.1", 0).start()
        self.cluster = self.server.cluster
        self.cluster.settings.update(
            require_cni=False,
            node_grace_seconds=5.0,
            drain_retry_seconds=0.3,
            pod_ready_seconds=0.3,
        )
        self.nodes: dict[str, Any] = {}

    def node(self, name: str, version: str) -> Any:
        node = self._node_cls(self.base / name, name, self.server.url, version)
        self.nodes[name] = node
        return node

    def close(self) -> None:
        for node in self.nodes.values():
            node.close()
        self.server.stop()


@pytest.fixture
def sim_local(tmp_path: Path) -> Iterator[LocalCluster]:
    """Simulated nodes as local directories: `sim_local.node("cp1", "1.30.6")`."""
    lc = LocalCluster(tmp_path)
    try:
        yield lc
    finally:
        lc.close()


@contextmanager
def nodeless_api(tmp_path: Path, **settings: Any) -> Iterator[tuple[SimServer, Path]]:
    """A simulated API server on 127.0.0.1 whose cluster is initialized without nodes (enough
    for workloads: no CNI required; ``settings`` go to the cluster, e.g.
    ``job_complete_seconds=0.0``) and an admin kubeconfig for it; stopped after the block."""
    server = SimServer("127.0.0.1", 0).start()
    server.cluster.settings.update(require_cni=False, **settings)
    with server.cluster.lock:
        server.cluster.initialized = True
    path = tmp_path / "admin.conf"
    path.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: sim\n"
        f"clusters:\n- name: sim\n  cluster:\n    server: {server.url}\n"
        "contexts:\n- name: sim\n  context:\n    cluster: sim\n    user: admin\n"
        "users:\n- name: admin\n  user: {}\n")
    try:
        yield server, path
    finally:
        server.stop()


def sim_kubectl(version: str, kubeconfig: Path, *args: str) -> subprocess.CompletedProcess:
    """The simulated kubectl ``version`` against ``kubeconfig`` (a subprocess, as roles run it)."""
    tests = Path(__file__).resolve().parent.parent
    env = dict(os.environ, PYTHONPATH=str(tests) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run([sys.executable, "-m", "simulator.run", "kubectl", version,
                           f"--kubeconfig={kubeconfig}", *args], capture_output=True,
                          text=True, env=env, timeout=60, check=False)


# ------------------------------------------------------------------ a simulated node on a lab host
def lab_sh(lab: Any, host: str, script: str, check: bool = True) -> subprocess.CompletedProcess:
    """Run a shell script as root on a lab host; with check, fail the test on a non-zero exit."""
    proc = lab.ssh(host, f"sudo -n sh -ec {shlex.quote(script)}")
    if check:
        assert proc.returncode == 0, (
            f"{script}\n--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr}"
        )
    return proc


def use_sim_repo(lab: Any, host: str, urls: Endpoints, minor: int) -> None:
    """Point the host's apt at the simulator's signed v1.<minor> repository (only that list)."""
    lst = "/etc/apt/sources.list.d/kubernetes.list"
    lab_sh(
        lab,
        host,
        f"install -d -m 0755 /etc/apt/keyrings && "
        f"curl -fsSL {urls.key_url(minor)} | gpg --batch --yes --dearmor -o {KEYRING} && "
        f"echo 'deb [signed-by={KEYRING}] {urls.repo_for(minor)} /' > {lst} && "
        f"apt-get update -o Dir::Etc::SourceList={lst} -o Dir::Etc::SourceParts=-",
    )


def install_sim_packages(lab: Any, host: str, *pkgs: str, check: bool = True
                         ) -> subprocess.CompletedProcess:
    """apt-get install the given kubeadm/kubelet/kubectl versions and hold them again."""
    return lab_sh(
        lab,
        host,
        f"apt-mark unhold kubeadm kubelet kubectl >/dev/null 2>&1 || true; "
        f"DEBIAN_FRONTEND=noninteractive apt-get install -y "
        f"--allow-change-held-packages {' '.join(pkgs)} && "
        f"apt-mark hold kubeadm kubelet kubectl",
        check=check,
    )


@dataclass
class SimLabNode:
    """A real lab host pointed at the simulator (`sim_lab_node` fixture)."""

    lab: Any
    host: str
    sim: K8sSim
    urls: Endpoints

    def sh(self, script: str, check: bool = True) -> subprocess.CompletedProcess:
        return lab_sh(self.lab, self.host, script, check)

    def use_repo(self, minor: int) -> None:
        use_sim_repo(self.lab, self.host, self.urls, minor)

    def install(self, *pkgs: str, check: bool = True) -> subprocess.CompletedProcess:
        return install_sim_packages(self.lab, self.host, *pkgs, check=check)

    def bootstrap(self, config: str, version: str = "1.31.2") -> None:
        """Repository, pinned kubeadm/kubelet/kubectl and `kubeadm init --config`."""
        minor = int(version.split(".")[1])
        self.use_repo(minor)
        self.install(*(f"{p}={version}-1.1" for p in ("kubeadm", "kubelet", "kubectl")))
        self.sh(f"cat > /root/kubeadm.yaml <<'EOF'\n{config}EOF\n"
                "kubeadm init --config /root/kubeadm.yaml >/dev/null")


@pytest.fixture
def sim_lab_node(lab_host: Any, k8s_sim: K8sSim) -> Any:
    """Factory: `sim_lab_node(**settings)` -> SimLabNode: a fresh lab host (lab_host) whose
    kubeadm/kubelet/kubectl talk to this test's simulator (k8s_sim.expose_to), with the
    simulator settings given (e.g. require_cni=False)."""

    def make(**settings: Any) -> SimLabNode:
        lab = lab_host()
        urls = k8s_sim.expose_to(lab)
        if settings:
            k8s_sim.settings(**settings)
        return SimLabNode(lab, lab.hosts[0], k8s_sim, urls)

    return make
