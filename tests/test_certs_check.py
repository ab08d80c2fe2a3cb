"""`provision certs check` against a real kubeadm PKI made with `cryptography`.

Pure-function tests judge real `openssl x509 -enddate` output; the command tests run the real
playbook, first over a local connection against a temp dir, then on a systemd lab container
with the PKI copied to /etc/kubernetes.
"""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from pki_fixtures import make_kubeadm_pki

from provision.certs import pki

REPO = Path(__file__).resolve().parent.parent
SOON, GONE = "apiserver", "front-proxy-client"  # expires in 10 days / expired 3 days ago
MIXED = {SOON: timedelta(days=10), GONE: timedelta(days=-3)}


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "provision", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=300, check=False)


# --- pure functions ---------------------------------------------------------------------

def test_enddate_parsing_handles_openssl_padding():
    assert pki.parse_openssl_enddate("notAfter=Jan  2 03:04:05 2030 GMT") == datetime(
        2030, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert pki.parse_openssl_enddate("Nov 21 21:07:05 2027 GMT").year == 2027
    with pytest.raises(ValueError, match="cannot read the end date"):
        pki.parse_openssl_enddate("notAfter=garbage")


def test_status_rules_warn_under_30_days_fail_when_expired():
    now = datetime(2026, 1, 1, tzinfo=UTC)
    assert pki.judge(now + timedelta(days=365), now)[0] == pki.OK
    assert pki.judge(now + timedelta(days=30), now)[0] == pki.OK
    assert pki.judge(now + timedelta(days=30) - timedelta(seconds=1), now)[0] == pki.WARN
    assert pki.judge(now + timedelta(seconds=1), now)[0] == pki.WARN
    assert pki.judge(now, now)[0] == pki.FAIL
    status, message = pki.judge(now - timedelta(days=3, hours=1), now)
    assert status == pki.FAIL and "3 days ago" in message
    assert pki.days_left(now + timedelta(days=364, hours=23), now) == 364
    assert pki.judge(now + timedelta(days=50), now, warn_days=60)[0] == pki.WARN


def test_the_certificate_list_covers_kubeadm():
    names = {c.name for c in pki.PKI_CERTS}
    assert names == {
        "ca", "etcd-ca", "front-proxy-ca", "apiserver", "apiserver-kubelet-client",
        "apiserver-etcd-client", "front-proxy-client", "etcd-server", "etcd-peer",
        "etcd-healthcheck-client", "admin.conf", "super-admin.conf",
        "controller-manager.conf", "scheduler.conf", "kubelet.conf"}
    items = pki.playbook_items("/srv/k8s/")
    assert {"name": "etcd-peer", "kind": "file", "path": "/srv/k8s/pki/etcd/peer.crt"} in items


def _openssl_lines(kdir: Path) -> list[str]:
    """What the playbook reports for the PKI files, produced by the real openssl here."""
    lines = []
    for cert in pki.PKI_CERTS:
        if cert.kind != "file":
            continue
        out = subprocess.run(["openssl", "x509", "-noout", "-enddate", "-in",
                              str(kdir / cert.path)], capture_output=True, text=True,
                             check=True).stdout.strip()
        lines.append(f"{cert.name}\tok\t{out}")
    return lines


def test_report_rows_from_real_openssl_output(tmp_path):
    ends = make_kubeadm_pki(tmp_path, validity=MIXED)
    kdir = tmp_path / "etc/kubernetes"
    lines = _openssl_lines(kdir)
    lines.append(f"super-admin.conf\tmissing\t{kdir}/super-admin.conf")
    lines.append("admin.conf\terror\tunable to load certificate")
    rows = {r.name: r for r in pki.parse_report("cp1", lines, datetime.now(UTC), str(kdir))}
    assert len(rows) == len(pki.PKI_CERTS)
    assert rows[SOON].status == pki.WARN and rows[SOON].days_left == 9
    assert rows[GONE].status == pki.FAIL and rows[GONE].days_left == -3
    assert rows["ca"].status == pki.OK and rows["ca"].days_left == 3649
    assert rows["etcd-peer"].not_after == ends["etcd-peer"].isoformat().replace("+00:00", "Z")
    assert rows["super-admin.conf"].status == pki.ABSENT  # optional
    assert rows["admin.conf"].status == pki.FAIL and "unreadable" in rows["admin.conf"].message
    assert rows["scheduler.conf"].status == pki.FAIL  # not reported at all
    assert pki.exit_status(list(rows.values())) == 1
    ok_rows = [r for r in rows.values() if r.status in (pki.OK, pki.WARN)]
    assert pki.exit_status(ok_rows) == 0
    table = "\n".join(pki.table_lines(list(rows.values())))
    assert "front-proxy-client" in table and "FAIL" in table and "-3" in table


def test_a_missing_required_certificate_fails():
    lines = ["ca\tmissing\t/etc/kubernetes/pki/ca.crt",
             "etcd-ca\tmissing\t/etc/kubernetes/pki/etcd/ca.crt"]
    rows = {r.name: r for r in pki.parse_report("cp1", lines, datetime.now(UTC))}
    assert rows["ca"].status == pki.FAIL and rows["ca"].message == "missing"
    assert rows["etcd-ca"].status == pki.ABSENT  # external etcd: no etcd CA on the node


# --- the command over a local connection ---------------------------------------------------

def _local_inventory(tmp_path: Path) -> Path:
    inv = tmp_path / "hosts.yml"
    inv.write_text(yaml.safe_dump({"all": {"children": {"control_plane": {"hosts": {"localcp": {
        "ansible_connection": "local", "ansible_become": False,
        "ansible_python_interpreter": sys.executable}}}}}}))
    return inv


def _run_local(tmp_path: Path, validity: dict[str, timedelta], *extra: str,
               omit: tuple[str, ...] = ()) -> tuple[subprocess.CompletedProcess[str], Path]:
    root = tmp_path / "root"
    kdir = root / "etc/kubernetes"
    make_kubeadm_pki(Path("/"), kubernetes_dir=str(kdir),
                     kubelet_pki_dir=str(root / "var/lib/kubelet/pki"), validity=validity,
                     omit=omit)
    env = {"XDG_STATE_HOME": str(tmp_path / "state"), "PATH": "/usr/bin:/bin",
           "HOME": str(tmp_path)}
    return cli("-i", str(_local_inventory(tmp_path)), *extra, "certs", "check",
               "--kubernetes-dir", str(kdir), env=env), kdir


def test_certs_check_json_names_every_certificate_and_fails_on_expired(tmp_path):
    proc, _ = _run_local(tmp_path, MIXED, "--json")
    assert proc.returncode == 1, proc.stderr
    obj = json.loads(proc.stdout)
    assert obj["exit_code"] == 1 and not obj["ok"]
    certs = {c["name"]: c for c in obj["certificates"]}
    assert set(certs) == {c.name for c in pki.PKI_CERTS}
    assert all(isinstance(c["days_left"], int) for c in certs.values())
    assert certs[SOON]["status"] == "WARN" and certs[SOON]["days_left"] == 9
    assert certs[GONE]["status"] == "FAIL" and certs[GONE]["days_left"] == -3
    assert certs["kubelet.conf"]["status"] == "OK"  # via client-certificate: <file>
    assert certs["admin.conf"]["days_left"] == 364  # embedded client-certificate-data
    assert obj["hosts"]["localcp"]["changed"] == 0
    assert any(e.get("certificate") == GONE for e in obj["errors"])
    assert obj["counts"] == {"OK": 13, "WARN": 1, "FAIL": 1, "ABSENT": 0}


def test_certs_check_exit_0_when_all_valid_beyond_30_days(tmp_path):
    proc, _ = _run_local(tmp_path, {}, "--json", omit=("super-admin.conf",))
    assert proc.returncode == 0, proc.stderr
    obj = json.loads(proc.stdout)
    certs = {c["name"]: c for c in obj["certificates"]}
    assert certs["super-admin.conf"]["status"] == "ABSENT"
    assert all(c["days_left"] >= 30 for c in certs.values() if c["status"] != "ABSENT")


def test_certs_check_prints_the_table_and_warns_without_failing(tmp_path):
    proc, _ = _run_local(tmp_path, {SOON: timedelta(days=10)})
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert any(line.split()[:4] == ["HOST", "CERTIFICATE", "STATUS", "DAYS"] for line in lines)
    row = next(line for line in lines if line.split()[1:2] == [SOON])
    assert row.split()[2:4] == ["WARN", "9"]
    assert "14 OK, 1 WARN, 0 FAIL" in proc.stdout


def test_certs_check_bad_input_exits_2(tmp_path):
    inv = tmp_path / "hosts.yml"
    inv.write_text("all:\n  hosts:\n    w1:\n      ansible_connection: local\n")
    env = {"XDG_STATE_HOME": str(tmp_path / "state"), "PATH": "/usr/bin:/bin"}
    proc = cli("-i", str(inv), "certs", "check", env=env)
    assert proc.returncode == 2 and "control_plane" in proc.stderr and str(inv) in proc.stderr
    proc = cli("-i", str(_local_inventory(tmp_path)), "certs", "check", "--kubernetes-dir",
               "etc/kubernetes", env=env)
    assert proc.returncode == 2 and "absolute path" in proc.stderr
    assert not (tmp_path / "state" / "provision" / "runs").exists()  # nothing was run


def test_certs_renew_is_built_and_asks_before_acting():
    """`certs renew` is no longer a placeholder (its tests: tests/test_certs_renew.py)."""
    proc = cli("certs", "renew", "--help")
    assert proc.returncode == 0 and "not built" not in proc.stdout.lower()
    assert "--yes" in proc.stdout and "one control-plane node at a time" in proc.stdout


# --- the command on a lab host ---------------------------------------------------------------

COPY_PLAY = """
- name: Install a kubeadm PKI
  hosts: control_plane
  become: true
  gather_facts: false
  tasks:
    - name: Remove the previous PKI
      ansible.builtin.file:
        path: "{{ item }}"
        state: absent
      loop: [/etc/kubernetes, /var/lib/kubelet/pki]
    - name: Unpack the PKI
      ansible.builtin.unarchive:
        src: "{{ pki_tar }}"
        dest: /
"""


@pytest.mark.container
@pytest.mark.slow
def test_certs_check_on_a_lab_host(lab_host, tmp_path):
    """Real: a systemd Debian container over SSH, the PKI copied to /etc/kubernetes."""
    from provision.runner import run_playbook

    lab = lab_host()
    play = tmp_path / "copy-pki.yml"
    play.write_text(COPY_PLAY)

    def install(validity: dict[str, timedelta]) -> None:
        root = tmp_path / f"pki-{len(validity)}"
        make_kubeadm_pki(root, validity=validity)
        tar = root.with_suffix(".tar")  # one transfer, not one per file
        subprocess.run(["tar", "-C", str(root), "-cf", str(tar), "."], check=True)
        res = run_playbook(command="test copy pki", playbook=str(play), inventory=lab.inventory,
                           extravars={"pki_tar": str(tar)}, quiet=True)
        assert res.ok, res.errors

    install(MIXED)
    proc = lab.cli("-i", "lab", "certs", "check", "--json")
    assert proc.returncode == 1, proc.stderr
    obj = json.loads(proc.stdout)
    certs = {c["name"]: c for c in obj["certificates"]}
    assert set(certs) == {c.name for c in pki.PKI_CERTS}
    assert {c["host"] for c in certs.values()} == {lab.hosts[0]}
    assert certs[GONE]["status"] == "FAIL" and certs[GONE]["days_left"] == -3
    assert certs[SOON]["status"] == "WARN" and certs[SOON]["days_left"] == 9
    assert certs["ca"]["path"] == "/etc/kubernetes/pki/ca.crt"
    assert obj["hosts"][lab.hosts[0]]["changed"] == 0

    install({})
    proc = lab.cli("-i", "lab", "certs", "check")
    assert proc.returncode == 0, proc.stderr
    assert "15 OK, 0 WARN, 0 FAIL, 0 ABSENT on 1 host(s)" in proc.stdout
    assert f"{lab.hosts[0]}" in proc.stdout and "kubelet.conf" in proc.stdout
