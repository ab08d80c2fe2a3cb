"""A real kubeadm PKI made with `cryptography`, in kubeadm's layout, for `certs check` tests.

``make_kubeadm_pki(root, validity={...})`` writes, under ``root`` + ``kubernetes_dir``:
``pki/{ca,front-proxy-ca,apiserver,apiserver-kubelet-client,apiserver-etcd-client,
front-proxy-client}.{crt,key}``, ``pki/etcd/{ca,server,peer,healthcheck-client}.{crt,key}``,
``pki/sa.{key,pub}`` and the kubeconfigs ``admin.conf super-admin.conf controller-manager.conf
scheduler.conf`` with embedded ``client-certificate-data``/``client-key-data``; ``kubelet.conf``
points at ``<kubelet_pki_dir>/kubelet-client-current.pem`` like kubeadm's does. Leaf
certificates are signed by their CA. ``validity`` maps a certificate name (as in
``provision.certs.pki.PKI_CERTS``) to a ``timedelta`` from now (negative: already expired).
Returns ``{name: not_after}`` (UTC, whole seconds).
"""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta
from pathlib import Path

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

LEAF_DAYS = 365
CA_DAYS = 3650

# name -> (file stem under pki/, signing CA, subject CN, organisation, server?)
FILE_LEAVES = {
    "apiserver": ("apiserver", "ca", "kube-apiserver", None, True),
    "apiserver-kubelet-client": ("apiserver-kubelet-client", "ca", "kube-apiserver-kubelet-client",
                                 "kubeadm:cluster-admins", False),
    "apiserver-etcd-client": ("apiserver-etcd-client", "etcd-ca", "kube-apiserver-etcd-client",
                              None, False),
    "front-proxy-client": ("front-proxy-client", "front-proxy-ca", "front-proxy-client", None,
                           False),
    "etcd-server": ("etcd/server", "etcd-ca", "lab-1", None, True),
    "etcd-peer": ("etcd/peer", "etcd-ca", "lab-1", None, True),
    "etcd-healthcheck-client": ("etcd/healthcheck-client", "etcd-ca",
                                "kube-etcd-healthcheck-client", None, False),
}
CAS = {"ca": ("ca", "kubernetes"), "etcd-ca": ("etcd/ca", "etcd-ca"),
       "front-proxy-ca": ("front-proxy-ca", "front-proxy-ca")}
KUBECONFIGS = {
    "admin.conf": ("kubernetes-admin", "kubeadm:cluster-admins"),
    "super-admin.conf": ("kubernetes-super-admin", "system:masters"),
    "controller-manager.conf": ("system:kube-controller-manager", None),
    "scheduler.conf": ("system:kube-scheduler", None),
    "kubelet.conf": ("system:node:lab-1", "system:nodes"),
}


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _name(cn: str, org: str | None = None) -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.COMMON_NAME, cn)]
    if org:
        attrs.insert(0, x509.NameAttribute(NameOID.ORGANIZATION_NAME, org))
    return x509.Name(attrs)


def _cert(subject: x509.Name, key: ec.EllipticCurvePrivateKey, issuer: x509.Name,
          issuer_key: ec.EllipticCurvePrivateKey, not_after: datetime, *, ca: bool,
          server: bool = False) -> x509.Certificate:
    now = datetime.now(UTC).replace(microsecond=0)
    not_before = min(now - timedelta(minutes=5), not_after - timedelta(days=1))
    b = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer)
         .public_key(key.public_key()).serial_number(x509.random_serial_number())
         .not_valid_before(not_before).not_valid_after(not_after)
         .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if ca:
        b = b.add_extension(x509.KeyUsage(True, False, True, False, False, True, True, False,
                                          False), critical=True)
    else:
        usages = [ExtendedKeyUsageOID.SERVER_AUTH] if server else []
        b = b.add_extension(x509.ExtendedKeyUsage(
            [*usages, ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        if server:
            b = b.add_extension(x509.SubjectAlternativeName(
                [x509.DNSName("lab-1"), x509.DNSName("localhost")]), critical=False)
    return b.sign(issuer_key, hashes.SHA256())


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _write(path: Path, data: bytes, mode: int = 0o644) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    path.chmod(mode)


def _kubeconfig(ca: x509.Certificate, user: str, cert: bytes | None, key: bytes | None,
                cert_file: str | None = None) -> bytes:
    b64 = lambda data: base64.b64encode(data).decode()  # noqa: E731
    creds = ({"client-certificate": cert_file, "client-key": cert_file} if cert_file else
             {"client-certificate-data": b64(cert or b""), "client-key-data": b64(key or b"")})
    conf = {
        "apiVersion": "v1", "kind": "Config",
        "clusters": [{"name": "kubernetes", "cluster": {
            "certificate-authority-data": b64(_pem(ca)), "server": "https://lab-1:6443"}}],
        "contexts": [{"name": f"{user}@kubernetes",
                      "context": {"cluster": "kubernetes", "user": user}}],
        "current-context": f"{user}@kubernetes",
        "preferences": {},
        "users": [{"name": user, "user": creds}],
    }
    return yaml.safe_dump(conf, sort_keys=False).encode()


def make_kubeadm_pki(root: Path, *, kubernetes_dir: str = "/etc/kubernetes",
                     kubelet_pki_dir: str = "/var/lib/kubelet/pki",
                     validity: dict[str, timedelta] | None = None,
                     omit: tuple[str, ...] = ()) -> dict[str, datetime]:
    """Write a kubeadm PKI below ``root`` (see the module docstring); names in ``omit``
    are not written. Returns ``{certificate name: not_after}``."""
    validity = validity or {}
    now = datetime.now(UTC).replace(microsecond=0)
    kdir = Path(str(root) + kubernetes_dir)
    ends: dict[str, datetime] = {}

    def end(name: str, default_days: int) -> datetime:
        ends[name] = now + validity.get(name, timedelta(days=default_days))
        return ends[name]

    cas: dict[str, tuple[x509.Certificate, ec.EllipticCurvePrivateKey]] = {}
    for name, (stem, cn) in CAS.items():
        key = _key()
        cert = _cert(_name(cn), key, _name(cn), key, end(name, CA_DAYS), ca=True)
        cas[name] = (cert, key)
        if name not in omit:
            _write(kdir / "pki" / f"{stem}.crt", _pem(cert))
            _write(kdir / "pki" / f"{stem}.key", _key_pem(key), 0o600)
    for name, (stem, ca_name, cn, org, server) in FILE_LEAVES.items():
        ca_cert, ca_key = cas[ca_name]
        key = _key()
        cert = _cert(_name(cn, org), key, ca_cert.subject, ca_key, end(name, LEAF_DAYS),
                     ca=False, server=server)
        if name not in omit:
            _write(kdir / "pki" / f"{stem}.crt", _pem(cert))
            _write(kdir / "pki" / f"{stem}.key", _key_pem(key), 0o600)
    sa = _key()
    _write(kdir / "pki" / "sa.key", _key_pem(sa), 0o600)
    _write(kdir / "pki" / "sa.pub", sa.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    ca_cert, ca_key = cas["ca"]
    for name, (user, org) in KUBECONFIGS.items():
        key = _key()
        cert = _cert(_name(user, org), key, ca_cert.subject, ca_key, end(name, LEAF_DAYS),
                     ca=False)
        if name in omit:
            continue
        if name == "kubelet.conf":
            pem_path = f"{kubelet_pki_dir}/kubelet-client-current.pem"
            _write(Path(str(root) + pem_path), _pem(cert) + _key_pem(key), 0o600)
            _write(kdir / name, _kubeconfig(ca_cert, user, None, None, pem_path), 0o600)
        else:
            _write(kdir / name, _kubeconfig(ca_cert, user, _pem(cert), _key_pem(key)), 0o600)
    return ends


def resign(cert_pem: bytes, ca_cert_pem: bytes, ca_key_pem: bytes,
           valid_for: timedelta) -> bytes:
    """Re-sign an existing certificate with its CA, keeping its public key, subject and
    extensions, valid ``valid_for`` from now (negative: already expired). For making the
    certificates of a running (simulated) cluster near expiry without changing its CA."""
    cert = x509.load_pem_x509_certificate(cert_pem)
    ca = x509.load_pem_x509_certificate(ca_cert_pem)
    ca_key = serialization.load_pem_private_key(ca_key_pem, password=None)
    now = datetime.now(UTC).replace(microsecond=0)
    not_after = now + valid_for
    b = (x509.CertificateBuilder().subject_name(cert.subject).issuer_name(ca.subject)
         .public_key(cert.public_key()).serial_number(x509.random_serial_number())
         .not_valid_before(min(now - timedelta(minutes=5), not_after - timedelta(days=1)))
         .not_valid_after(not_after))
    for ext in cert.extensions:
        if ext.oid in (x509.oid.ExtensionOID.AUTHORITY_KEY_IDENTIFIER,):
            continue
        b = b.add_extension(ext.value, ext.critical)
    return b.sign(ca_key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)  # type: ignore[arg-type]
