"""The kubeadm PKI: which certificates exist where, and how their expiry is judged.

Pure functions. ``PKI_CERTS`` is the one list of certificates ``provision certs check`` reads
(the playbook gets it as an extra var, so the list lives only here). ``parse_report`` turns the
lines the playbook gathers on each control-plane node into ``CertStatus`` rows, ``judge``
applies the rules (FAIL when expired, WARN under ``WARN_DAYS`` days left, OK otherwise).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

WARN_DAYS = 30
OK, WARN, FAIL, ABSENT = "OK", "WARN", "FAIL", "ABSENT"
DEFAULT_KUBERNETES_DIR = "/etc/kubernetes"


@dataclass(frozen=True)
class PkiCert:
    """One certificate of a kubeadm control plane.

    ``kind`` is ``file`` (a PEM file under ``pki/``) or ``kubeconfig`` (the client certificate
    of a kubeconfig: ``client-certificate-data``, or the file ``client-certificate`` names).
    ``path`` is relative to the Kubernetes directory (``/etc/kubernetes``). ``required``: a
    missing file is a FAIL; optional ones (external etcd, ``super-admin.conf`` on nodes that
    did not run ``kubeadm init``, kubeadm < 1.29) are reported ABSENT.
    """

    name: str
    kind: str
    path: str
    ca: str
    required: bool = True


PKI_CERTS: tuple[PkiCert, ...] = (
    # certificate authorities (kubeadm: 10 years)
    PkiCert("ca", "file", "pki/ca.crt", "-"),
    PkiCert("etcd-ca", "file", "pki/etcd/ca.crt", "-", required=False),
    PkiCert("front-proxy-ca", "file", "pki/front-proxy-ca.crt", "-"),
    # leaf certificates (kubeadm: 1 year)
    PkiCert("apiserver", "file", "pki/apiserver.crt", "ca"),
    PkiCert("apiserver-kubelet-client", "file", "pki/apiserver-kubelet-client.crt", "ca"),
    PkiCert("apiserver-etcd-client", "file", "pki/apiserver-etcd-client.crt", "etcd-ca",
            required=False),
    PkiCert("front-proxy-client", "file", "pki/front-proxy-client.crt", "front-proxy-ca"),
    PkiCert("etcd-server", "file", "pki/etcd/server.crt", "etcd-ca", required=False),
    PkiCert("etcd-peer", "file", "pki/etcd/peer.crt", "etcd-ca", required=False),
    PkiCert("etcd-healthcheck-client", "file", "pki/etcd/healthcheck-client.crt", "etcd-ca",
            required=False),
    # client certificates embedded in kubeconfigs
    PkiCert("admin.conf", "kubeconfig", "admin.conf", "ca"),
    PkiCert("super-admin.conf", "kubeconfig", "super-admin.conf", "ca", required=False),
    PkiCert("controller-manager.conf", "kubeconfig", "controller-manager.conf", "ca"),
    PkiCert("scheduler.conf", "kubeconfig", "scheduler.conf", "ca"),
    PkiCert("kubelet.conf", "kubeconfig", "kubelet.conf", "ca", required=False),
)

BY_NAME: dict[str, PkiCert] = {c.name: c for c in PKI_CERTS}


@dataclass(frozen=True)
class CertStatus:
    """One row of the check: a certificate on a host, its end date, days left and status."""

    host: str
    name: str
    path: str
    status: str
    not_after: str | None  # ISO 8601 UTC, None when unreadable or absent
    days_left: int | None
    message: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def playbook_items(kubernetes_dir: str = DEFAULT_KUBERNETES_DIR) -> list[dict[str, Any]]:
    """The extra var ``certs_check_items`` for playbooks/certs-check.yml."""
    base = kubernetes_dir.rstrip("/")
    return [{"name": c.name, "kind": c.kind, "path": f"{base}/{c.path}"} for c in PKI_CERTS]


def parse_openssl_enddate(text: str) -> datetime:
    """``notAfter=Nov 21 21:07:05 2027 GMT`` (openssl x509 -enddate) -> aware UTC datetime."""
    value = text.strip()
    if value.startswith("notAfter="):
        value = value[len("notAfter="):]
    value = " ".join(value.split())  # openssl pads single-digit days: "Jan  2"
    try:
        return datetime.strptime(value, "%b %d %H:%M:%S %Y GMT").replace(tzinfo=UTC)
    except ValueError as exc:
        raise ValueError(f"cannot read the end date {text.strip()!r}") from exc


def days_left(not_after: datetime, now: datetime) -> int:
    """Whole days until ``not_after``, truncated toward zero like ``kubeadm certs
    check-expiration`` (364 for a fresh one-year certificate; -3 three days after expiry)."""
    return int((not_after - now).total_seconds() / 86400)


def judge(not_after: datetime, now: datetime, warn_days: int = WARN_DAYS) -> tuple[str, str]:
    """(status, message): FAIL when expired, WARN under ``warn_days`` days left, else OK."""
    left = days_left(not_after, now)
    if not_after <= now:
        return FAIL, f"expired {not_after:%Y-%m-%d %H:%M} UTC ({-left} days ago)"
    if left < warn_days:
        return WARN, f"expires in {left} days (under {warn_days}): renew soon"
    return OK, f"valid for {left} days"


def parse_report(host: str, lines: list[str], now: datetime,
                 kubernetes_dir: str = DEFAULT_KUBERNETES_DIR,
                 warn_days: int = WARN_DAYS) -> list[CertStatus]:
    """Turn the playbook's ``name<TAB>state<TAB>value`` lines of one host into rows.

    state is ``ok`` (value: ``notAfter=...``), ``missing`` (value: the path) or ``error``
    (value: what openssl said). Every certificate of ``PKI_CERTS`` gets exactly one row, in
    that order; a certificate the host did not report is a FAIL ("not reported").
    """
    seen: dict[str, tuple[str, str]] = {}
    for line in lines:
        parts = line.rstrip("\n").split("\t", 2)
        if len(parts) < 2 or parts[0] not in BY_NAME:
            continue
        seen[parts[0]] = (parts[1], parts[2] if len(parts) == 3 else "")
    base = kubernetes_dir.rstrip("/")
    rows: list[CertStatus] = []
    for cert in PKI_CERTS:
        path = f"{base}/{cert.path}"
        state, value = seen.get(cert.name, ("unreported", ""))
        if state == "ok":
            try:
                end = parse_openssl_enddate(value)
            except ValueError as exc:
                rows.append(CertStatus(host, cert.name, path, FAIL, None, None, str(exc)))
                continue
            status, message = judge(end, now, warn_days)
            rows.append(CertStatus(host, cert.name, path, status,
                                   end.isoformat().replace("+00:00", "Z"),
                                   days_left(end, now), message))
        elif state == "missing":
            status = FAIL if cert.required else ABSENT
            what = "missing" if cert.required else "absent (optional)"
            rows.append(CertStatus(host, cert.name, value or path, status, None, None, what))
        elif state == "error":
            rows.append(CertStatus(host, cert.name, path, FAIL, None, None,
                                   f"unreadable: {value.strip()[:200]}"))
        else:
            rows.append(CertStatus(host, cert.name, path, FAIL, None, None,
                                   "not reported by the host"))
    return rows


def exit_status(rows: list[CertStatus]) -> int:
    """1 when any row FAILs (expired, missing or unreadable), else 0 (WARN is not a failure)."""
    return 1 if any(r.status == FAIL for r in rows) else 0


def counts(rows: list[CertStatus]) -> dict[str, int]:
    return {s: sum(r.status == s for r in rows) for s in (OK, WARN, FAIL, ABSENT)}


def table_lines(rows: list[CertStatus]) -> list[str]:
    """Plain aligned table: host, certificate, status, days left, end date, message."""
    header = ("HOST", "CERTIFICATE", "STATUS", "DAYS", "EXPIRES (UTC)", "DETAILS")
    body = [(r.host, r.name, r.status, "" if r.days_left is None else str(r.days_left),
             (r.not_after or "-").replace("T", " ").replace("Z", ""), r.message) for r in rows]
    widths = [max(len(x[i]) for x in [header, *body]) for i in range(5)]
    out = []
    for row in [header, *body]:
        cells = [row[i].ljust(widths[i]) if i != 3 else row[i].rjust(widths[i])
                 for i in range(5)]
        out.append("  ".join(cells) + "  " + row[5])
    return out
