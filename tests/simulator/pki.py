"""Real certificates in kubeadm's layout, made with the host's openssl (stdlib + openssl CLI).

kubeadm's defaults: CAs valid 10 years, leaf certificates 1 year; RSA 2048 keys unless
ClusterConfiguration.encryptionAlgorithm says ECDSA (v1beta4).
"""

from __future__ import annotations

import base64
import hashlib
import os
import shutil
import subprocess
import tempfile
from concurrent.futures import ThreadPoolExecutor

from .client import host_path

PKI = "/etc/kubernetes/pki"
CA_DAYS, LEAF_DAYS = 3650, 365
#: files that `kubeadm init phase upload-certs` shares with joining control planes
SHARED = (
    "ca.crt",
    "ca.key",
    "sa.key",
    "sa.pub",
    "front-proxy-ca.crt",
    "front-proxy-ca.key",
    "etcd/ca.crt",
    "etcd/ca.key",
)


def available() -> bool:
    return shutil.which("openssl") is not None


def _run(*args: str) -> bytes:
    return subprocess.run(["openssl", *args], check=True, capture_output=True).stdout


def _keyargs(algorithm: str) -> list[str]:
    if algorithm.upper().startswith("ECDSA"):
        return ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"]
    return ["-newkey", "rsa:2048"]


def make_ca(rel: str, cn: str, algorithm: str) -> None:
    crt, key = host_path(f"{PKI}/{rel}.crt"), host_path(f"{PKI}/{rel}.key")
    if os.path.exists(crt):
        return
    os.makedirs(os.path.dirname(crt), exist_ok=True)
    _run(
        "req",
        "-x509",
        "-new",
        "-nodes",
        *_keyargs(algorithm),
        "-keyout",
        key,
        "-out",
        crt,
        "-days",
        str(CA_DAYS),
        "-subj",
        f"/CN={cn}",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,digitalSignature,keyEncipherment,keyCertSign",
    )
    os.chmod(key, 0o600)


def make_leaf(
    rel: str,
    ca: str,
    subj: str,
    algorithm: str,
    *,
    server: bool = False,
    client: bool = False,
    sans: list[str] | None = None,
    days: int = LEAF_DAYS,
    dest: str | None = None,
) -> tuple[str, str]:
    """Sign a leaf certificate with CA `ca` (relative name); returns (crt path, key path).

    `dest` is a real directory for the files (default: the host's /etc/kubernetes/pki).
    """
    base = dest or host_path(PKI)
    crt, key = f"{base}/{rel}.crt", f"{base}/{rel}.key"
    os.makedirs(os.path.dirname(crt), exist_ok=True)
    usages = ",".join(u for u, on in (("serverAuth", server), ("clientAuth", client)) if on)
    ext = [
        "keyUsage = critical,digitalSignature,keyEncipherment",
        f"extendedKeyUsage = {usages}",
        "basicConstraints = critical,CA:FALSE",
        "authorityKeyIdentifier = keyid",
    ]
    if sans:
        ext.append("subjectAltName = " + ",".join(sans))
    with tempfile.TemporaryDirectory() as tmp:
        cnf = os.path.join(tmp, "leaf.cnf")
        with open(cnf, "w") as fh:
            fh.write(
                "[req]\ndistinguished_name = dn\nx509_extensions = ext\nprompt = no\n"
                "[dn]\n[ext]\n" + "\n".join(ext) + "\n"
            )
        # one openssl call (OpenSSL >= 3.0: `req -x509 -CA`): key, certificate, CA signature
        _run(
            "req",
            "-x509",
            "-new",
            "-nodes",
            *_keyargs(algorithm),
            "-config",
            cnf,
            "-subj",
            subj,
            "-CA",
            host_path(f"{PKI}/{ca}.crt"),
            "-CAkey",
            host_path(f"{PKI}/{ca}.key"),
            "-days",
            str(days),
            "-keyout",
            key,
            "-out",
            crt,
        )
    os.chmod(key, 0o600)
    return crt, key


def control_plane_certs(
    node: str, advertise: str, sans: list[str], service_ip: str, algorithm: str, log: callable
) -> None:
    """What `kubeadm init phase certs all` creates (CAs only when missing)."""
    for rel, cn in (
        ("ca", "kubernetes"),
        ("front-proxy-ca", "front-proxy-ca"),
        ("etcd/ca", "etcd-ca"),
    ):
        if not os.path.exists(host_path(f"{PKI}/{rel}.crt")):
            log(f'[certs] Generating "{rel}" certificate and key')
            make_ca(rel, cn, algorithm)
    api_sans = [
        f"DNS:{n}"
        for n in (
            "kubernetes",
            "kubernetes.default",
            "kubernetes.default.svc",
            "kubernetes.default.svc.cluster.local",
            node,
        )
    ]
    api_sans += [f"IP:{service_ip}", f"IP:{advertise}"]
    api_sans += [
        (f"IP:{s}" if s.replace(".", "").isdigit() or ":" in s else f"DNS:{s}") for s in sans
    ]
    etcd_sans = [f"DNS:{node}", "DNS:localhost", f"IP:{advertise}", "IP:127.0.0.1", "IP:::1"]
    leaves = [
        ("apiserver", "ca", "/CN=kube-apiserver", dict(server=True, sans=api_sans)),
        (
            "apiserver-kubelet-client",
            "ca",
            "/O=kubeadm:cluster-admins/CN=kube-apiserver-kubelet-client",
            dict(client=True),
        ),
        ("front-proxy-client", "front-proxy-ca", "/CN=front-proxy-client", dict(client=True)),
        ("etcd/server", "etcd/ca", f"/CN={node}", dict(server=True, client=True, sans=etcd_sans)),
        ("etcd/peer", "etcd/ca", f"/CN={node}", dict(server=True, client=True, sans=etcd_sans)),
        (
            "etcd/healthcheck-client",
            "etcd/ca",
            "/CN=kube-etcd-healthcheck-client",
            dict(client=True),
        ),
        ("apiserver-etcd-client", "etcd/ca", "/CN=kube-apiserver-etcd-client", dict(client=True)),
    ]
    todo = [leaf for leaf in leaves if not os.path.exists(host_path(f"{PKI}/{leaf[0]}.crt"))]
    for rel, *_ in todo:
        log(f'[certs] Generating "{rel}" certificate and key')
    with ThreadPoolExecutor(max_workers=4) as pool:
        list(
            pool.map(lambda leaf: make_leaf(leaf[0], leaf[1], leaf[2], algorithm, **leaf[3]), todo)
        )
    if not os.path.exists(host_path(f"{PKI}/sa.key")):
        log('[certs] Generating "sa" key and public key')
        if algorithm.upper().startswith("ECDSA"):
            _run(
                "genpkey",
                "-algorithm",
                "EC",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-out",
                host_path(f"{PKI}/sa.key"),
            )
        else:
            _run(
                "genpkey",
                "-algorithm",
                "RSA",
                "-pkeyopt",
                "rsa_keygen_bits:2048",
                "-out",
                host_path(f"{PKI}/sa.key"),
            )
        os.chmod(host_path(f"{PKI}/sa.key"), 0o600)
        with open(host_path(f"{PKI}/sa.pub"), "wb") as fh:
            fh.write(_run("pkey", "-in", host_path(f"{PKI}/sa.key"), "-pubout"))


def client_cert_b64(name: str, subj: str, algorithm: str) -> tuple[str, str]:
    """A client certificate signed by the cluster CA, base64 PEM (for kubeconfig files)."""
    with tempfile.TemporaryDirectory() as tmp:
        crt, key = make_leaf(name, "ca", subj, algorithm, client=True, dest=tmp)
        with open(crt, "rb") as c, open(key, "rb") as k:
            return base64.b64encode(c.read()).decode(), base64.b64encode(k.read()).decode()


def ca_cert_hash(ca_pem: bytes) -> str:
    """sha256:<hex> of the CA's SubjectPublicKeyInfo (what --discovery-token-ca-cert-hash is)."""
    with tempfile.NamedTemporaryFile(suffix=".crt") as tmp:
        tmp.write(ca_pem)
        tmp.flush()
        pub = _run("x509", "-in", tmp.name, "-noout", "-pubkey")
    der = subprocess.run(
        ["openssl", "pkey", "-pubin", "-outform", "DER"], input=pub, check=True, capture_output=True
    ).stdout
    return "sha256:" + hashlib.sha256(der).hexdigest()


def expiry(path: str) -> str:
    """notAfter of a certificate file, as openssl prints it."""
    return _run("x509", "-in", path, "-noout", "-enddate").decode().strip().split("=", 1)[1]


def read_shared() -> dict[str, str]:
    out = {}
    for rel in SHARED:
        p = host_path(f"{PKI}/{rel}")
        if os.path.exists(p):
            with open(p, encoding="utf-8") as fh:
                out[rel] = fh.read()
    return out


def write_shared(certs: dict[str, str]) -> None:
    for rel, pem in certs.items():
        p = host_path(f"{PKI}/{rel}")
        os.makedirs(os.path.dirname(p), exist_ok=True)
        with open(p, "w", encoding="utf-8") as fh:
            fh.write(pem)
        os.chmod(p, 0o600 if rel.endswith(".key") else 0o644)


def expiry_row(path: str) -> tuple[str, str]:
    """('Nov 21, 2027 21:00 UTC', '364d') for a certificate or a kubeconfig's client cert,
    in the format of `kubeadm certs check-expiration`."""
    import datetime as dt

    pem = _cert_pem(path)
    end = (
        subprocess.run(
            ["openssl", "x509", "-noout", "-enddate"], input=pem, check=True, capture_output=True
        )
        .stdout.decode()
        .strip()
        .split("=", 1)[1]
    )
    when = dt.datetime.strptime(end, "%b %d %H:%M:%S %Y %Z").replace(tzinfo=dt.UTC)
    left = when - dt.datetime.now(dt.UTC)
    days = left.days
    residual = (
        "<invalid>"
        if left.total_seconds() < 0
        else (
            f"{days // 365}y"
            if days >= 365 * 2
            else f"{days}d"
            if days
            else f"{int(left.total_seconds() // 3600)}h"
        )
    )
    return when.strftime("%b %d, %Y %H:%M UTC"), residual


def _cert_pem(path: str) -> bytes:
    if path.endswith(".conf"):
        import yaml

        with open(path, encoding="utf-8") as fh:
            cfg = yaml.safe_load(fh)
        return base64.b64decode(cfg["users"][0]["user"]["client-certificate-data"])
    with open(path, "rb") as fh:
        return fh.read()


def renew(crt: str, ca: str, days: int = LEAF_DAYS) -> None:
    """Re-sign a certificate with its existing key, subject and extensions (kubeadm keeps
    the key on renewal)."""
    key = crt[:-4] + ".key"
    with tempfile.TemporaryDirectory() as tmp:
        csr = os.path.join(tmp, "r.csr")
        _run(
            "x509",
            "-x509toreq",
            "-copy_extensions",
            "copyall",
            "-in",
            crt,
            "-signkey",
            key,
            "-out",
            csr,
        )
        _run(
            "x509",
            "-req",
            "-in",
            csr,
            "-copy_extensions",
            "copyall",
            "-CA",
            host_path(f"{PKI}/{ca}.crt"),
            "-CAkey",
            host_path(f"{PKI}/{ca}.key"),
            "-CAcreateserial",
            "-days",
            str(days),
            "-out",
            crt + ".new",
        )
    os.replace(crt + ".new", crt)


def renew_kubeconfig(path: str, ca: str, days: int = LEAF_DAYS) -> None:
    """Renew the client certificate embedded in a kubeconfig file (mode kept)."""
    import yaml

    with open(path, encoding="utf-8") as fh:
        cfg = yaml.safe_load(fh)
    user = cfg["users"][0]["user"]
    with tempfile.TemporaryDirectory() as tmp:
        crt, key = os.path.join(tmp, "c.crt"), os.path.join(tmp, "c.key")
        with open(crt, "wb") as fh:
            fh.write(base64.b64decode(user["client-certificate-data"]))
        with open(key, "wb") as fh:
            fh.write(base64.b64decode(user["client-key-data"]))
        renew(crt, ca, days)
        with open(crt, "rb") as fh:
            user["client-certificate-data"] = base64.b64encode(fh.read()).decode()
    mode = os.stat(path).st_mode & 0o777
    with open(path + ".new", "w", encoding="utf-8") as fh:
        yaml.safe_dump(cfg, fh, sort_keys=False)
    os.chmod(path + ".new", mode)
    os.replace(path + ".new", path)
