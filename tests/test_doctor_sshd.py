"""`provision doctor` against a real OpenSSH server (Debian's sshd on loopback, or inside a
network namespace with OCI's iptables rules). Traffic goes only to loopback and to the
namespace these tests create; the HTTPS check is pointed at a local HTTP server.
"""

from __future__ import annotations

import http.server
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sshd_fixtures import (
    free_port,
    keygen,
    needs_root,
    needs_sshd,
    netns_with_veth,
    sshd_server,  # noqa: F401 - pytest fixture
    start_sshd,
    write_inventory,
)

REPO = Path(__file__).resolve().parent.parent
pytestmark = [pytest.mark.sshd, needs_sshd]


def doctor(inventory: Path, *args: str, global_args: tuple[str, ...] = ("--json",),
           doctor_args: tuple[str, ...] = ("--skip-network-checks",)) -> tuple[int, Any, str]:
    """Run the real CLI; returns (exit code, parsed JSON or stdout text, stderr)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROVISION_")}
    proc = subprocess.run(
        [sys.executable, "-m", "provision", "-i", str(inventory), *global_args, "doctor",
         *doctor_args, *args],
        capture_output=True, text=True, cwd=REPO, env=env, timeout=120)
    out: Any = json.loads(proc.stdout) if "--json" in global_args else proc.stdout
    return proc.returncode, out, proc.stderr


def rows(obj: dict[str, Any], host: str) -> dict[str, dict[str, str]]:
    return {c["check"]: c for c in obj["checks"] if c["host"] == host}


def fingerprint_of(public_key_line: str, tmp: Path) -> str:
    f = tmp / "fp.pub"
    f.write_text(public_key_line + "\n")
    out = subprocess.run(["ssh-keygen", "-lf", str(f)], capture_output=True, text=True,
                         check=True).stdout
    return out.split()[1]


@pytest.fixture
def http_server() -> Iterator[str]:
    """A loopback HTTP server: /ok answers 200, /forbidden 403 (the dl.k8s.io symptom)."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server API
            self.send_response(200 if self.path == "/ok" else 403)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_right_known_hosts_passes_ssh_and_runs_every_check(sshd_server, tmp_path,  # noqa: F811
                                                           http_server):
    inv = write_inventory(tmp_path / "inv", {"h1": sshd_server.host_vars()})
    closed = f"http://127.0.0.1:{free_port()}/"
    code, obj, err = doctor(inv, doctor_args=(
        "--url", f"{http_server}/ok", "--url", f"{http_server}/forbidden", "--url", closed))
    r = rows(obj, "h1")
    assert r["ssh"]["status"] == "PASS", r["ssh"]
    assert f"{sshd_server.user}@127.0.0.1:{sshd_server.port}" in r["ssh"]["message"]
    for name in ("sudo", "os", "arch", "cpu", "memory", "disk /", "disk unallocated", "swap",
                 "clock", "cgroup", "ports in use", "firewall tcp/6443", "firewall pod traffic"):
        assert name in r, name
    assert r[f"https {http_server}/ok"]["status"] == "PASS"
    forbidden = r[f"https {http_server}/forbidden"]
    assert forbidden["status"] == "WARN" and "never needs dl.k8s.io" in forbidden["message"]
    assert r[f"https {closed}"]["status"] == "WARN"
    assert "not reachable from the host" in r[f"https {closed}"]["message"]
    any_fail = any(c["status"] == "FAIL" for c in obj["checks"])
    assert code == obj["exit_code"] == (1 if any_fail else 0)
    assert obj["hosts"]["h1"]["unreachable"] == 0
    assert obj["hosts"]["h1"]["ok"] == sum(c["status"] == "PASS" for c in r.values())


@pytest.mark.skipif(not shutil.which("openssl"), reason="needs openssl")
def test_https_with_an_untrusted_certificate_warns(sshd_server, tmp_path):  # noqa: F811
    """A real TLS server on loopback with a self-signed certificate: curl on the host refuses
    it, and doctor says why (what a TLS-intercepting proxy looks like)."""
    import ssl

    key, cert = tmp_path / "tls.key", tmp_path / "tls.crt"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=127.0.0.1", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0),
                                             http.server.BaseHTTPRequestHandler)
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"https://127.0.0.1:{server.server_address[1]}/"
    try:
        inv = write_inventory(tmp_path / "inv", {"h1": sshd_server.host_vars()})
        code, obj, _ = doctor(inv, doctor_args=("--url", url))
    finally:
        server.shutdown()
        server.server_close()
    r = rows(obj, "h1")[f"https {url}"]
    assert r["status"] == "WARN"
    assert "curl exit 60" in r["message"] and "certificate" in r["message"].lower()


def test_plain_text_table_when_stdout_is_not_a_tty(sshd_server, tmp_path):  # noqa: F811
    inv = write_inventory(tmp_path / "inv", {"h1": sshd_server.host_vars()})
    code, text, err = doctor(inv, global_args=())
    assert code in (0, 1)
    lines = text.splitlines()
    assert lines[0].split()[:3] == ["h1", "ssh", "PASS"]
    assert any(line.split()[1:3] == ["arch", "PASS"] for line in lines)
    assert "\x1b[" not in text  # no colour codes in a pipe
    assert "doctor:" in err and "PASS" in err


def test_unknown_host_key_fails_and_is_never_accepted(sshd_server, tmp_path):  # noqa: F811
    sshd_server.known_hosts.write_text("")
    inv = write_inventory(tmp_path / "inv", {"h1": sshd_server.host_vars()})
    code, obj, _ = doctor(inv)
    ssh = rows(obj, "h1")["ssh"]
    assert code == 1 and ssh["status"] == "FAIL"
    assert "unknown host key" in ssh["message"]
    assert fingerprint_of(sshd_server.host_public_key, tmp_path) in ssh["message"]
    assert f"ssh-keyscan -p {sshd_server.port} 127.0.0.1" in ssh["message"]
    assert sshd_server.known_hosts.read_text() == ""  # nothing was added
    assert list(rows(obj, "h1")) == ["ssh"]  # no probe ran


def test_missing_known_hosts_file_is_an_unknown_host_key(sshd_server, tmp_path):  # noqa: F811
    sshd_server.known_hosts.unlink()
    inv = write_inventory(tmp_path / "inv", {"h1": sshd_server.host_vars()})
    code, obj, _ = doctor(inv)
    assert code == 1
    assert "does not exist" in rows(obj, "h1")["ssh"]["message"]
    assert not sshd_server.known_hosts.exists()


@pytest.mark.parametrize("kind", ["ed25519", "ecdsa"])
def test_changed_host_key_fails_with_what_to_do(sshd_server, tmp_path, kind):  # noqa: F811
    other = keygen(tmp_path / "other_host_key", kind=kind)
    name = f"[127.0.0.1]:{sshd_server.port}"
    sshd_server.known_hosts.write_text(f"{name} {' '.join(other.split()[:2])}\n")
    inv = write_inventory(tmp_path / "inv", {"h1": sshd_server.host_vars()})
    code, obj, _ = doctor(inv)
    ssh = rows(obj, "h1")["ssh"]
    assert code == 1 and ssh["status"] == "FAIL"
    assert "host key changed" in ssh["message"]
    assert f"ssh-keygen -R '{name}'" in ssh["message"]
    assert fingerprint_of(other, tmp_path) in ssh["message"]


def test_wrong_key_fails_authentication(sshd_server, tmp_path):  # noqa: F811
    wrong = tmp_path / "wrong_key"
    keygen(wrong)
    inv = write_inventory(tmp_path / "inv", {
        "h1": sshd_server.host_vars(ansible_ssh_private_key_file=str(wrong))})
    code, obj, _ = doctor(inv)
    ssh = rows(obj, "h1")["ssh"]
    assert code == 1 and ssh["status"] == "FAIL"
    assert f"authentication failed for user {sshd_server.user} with key {wrong}" in ssh[
        "message"]


def test_wrong_user_fails_authentication(sshd_server, tmp_path):  # noqa: F811
    inv = write_inventory(tmp_path / "inv", {
        "h1": sshd_server.host_vars(ansible_user="nobody")})
    code, obj, _ = doctor(inv)
    ssh = rows(obj, "h1")["ssh"]
    assert code == 1
    assert f"authentication failed for user nobody with key {sshd_server.user_key}" in ssh[
        "message"]


def test_nothing_listening_exits_3_and_names_the_host(sshd_server, tmp_path):  # noqa: F811
    dead = sshd_server.host_vars(ansible_port=free_port())
    inv = write_inventory(tmp_path / "inv", {"good": sshd_server.host_vars(), "dead": dead},
                          workers=("dead",))
    code, obj, err = doctor(inv)
    assert code == 3 == obj["exit_code"]
    assert obj["unreachable"] == ["dead"]
    assert obj["hosts"]["dead"]["unreachable"] == 1
    assert "connection refused" in rows(obj, "dead")["ssh"]["message"]
    assert rows(obj, "good")["ssh"]["status"] == "PASS"  # the other host was still checked
    assert "unreachable: dead" in err
    # --limit leaves the dead host out
    code, obj, _ = doctor(inv, global_args=("--json", "--limit", "good"))
    assert code in (0, 1) and list(obj["hosts"]) == ["good"]


def test_a_port_that_never_speaks_ssh_is_unreachable_after_the_timeout(sshd_server,  # noqa: F811
                                                                        tmp_path):
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen()
    try:
        inv = write_inventory(tmp_path / "inv", {
            "mute": sshd_server.host_vars(ansible_port=silent.getsockname()[1])})
        code, obj, err = doctor(inv, doctor_args=("--skip-network-checks", "--timeout", "1"))
    finally:
        silent.close()
    assert code == 3 and obj["unreachable"] == ["mute"]
    message = rows(obj, "mute")["ssh"]["message"]
    assert "banner" in message.lower() or "timed out" in message
    assert "Traceback" not in err and "Exception" not in err  # paramiko's own logging is quiet


def test_limit_matching_nothing_is_a_usage_error(sshd_server, tmp_path):  # noqa: F811
    inv = write_inventory(tmp_path / "inv", {"h1": sshd_server.host_vars()})
    before = sshd_server.log().count("Connection from")
    code, obj, err = doctor(inv, global_args=("--json", "--limit", "nosuchhost"))
    assert code == 2 == obj["exit_code"]
    assert "--limit nosuchhost: 'nosuchhost' is not a host or group" in err
    assert sshd_server.log().count("Connection from") == before


def test_bad_inventory_exits_2_before_any_connection(sshd_server, tmp_path):  # noqa: F811
    inv = write_inventory(tmp_path / "inv", {"h1": sshd_server.host_vars()},
                          all_vars={"kubernets_version": "1.31"})
    before = sshd_server.log().count("Connection from")
    assert before >= 1  # the fixture's readiness probe shows that connections are logged
    code, obj, err = doctor(inv)
    assert code == 2 == obj["exit_code"]
    assert "kubernets_version" in err and "kubernetes_version" in err
    assert sshd_server.log().count("Connection from") == before  # nothing was contacted


OCI_RULES = """*filter
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
-A INPUT -m state --state RELATED,ESTABLISHED -j ACCEPT
-A INPUT -p icmp -j ACCEPT
-A INPUT -i lo -j ACCEPT
-A INPUT -p udp -m udp --sport 123 -j ACCEPT
-A INPUT -p tcp -m state --state NEW -m tcp --dport 22 -j ACCEPT
-A INPUT -j REJECT --reject-with icmp-host-prohibited
-A FORWARD -j REJECT --reject-with icmp-host-prohibited
COMMIT
"""


def _connect(address: str, port: int) -> str:
    try:
        with socket.create_connection((address, port), timeout=3):
            return "connected"
    except OSError as exc:
        return type(exc).__name__ + ": " + str(exc)


@needs_root
@pytest.mark.skipif(not shutil.which("iptables-restore"), reason="needs iptables")
def test_oci_reject_rules_in_a_namespace_warn_for_6443_until_accepted(tmp_path):
    """sshd inside a network namespace whose INPUT chain is OCI's; doctor must see that 6443
    is rejected, and the kernel must agree (a real connection attempt is rejected too)."""
    with netns_with_veth() as ns, start_sshd(tmp_path / "sshd", address=ns.ns_ip,
                                             netns=ns.name) as server:
        ns.run("iptables-restore", input_text=OCI_RULES)
        pool_inside = f"{ns.host_ip}-{ns.ns_ip}"
        inv = write_inventory(tmp_path / "inv", {"oci": server.host_vars()},
                              all_vars={"metallb_addresses": [pool_inside, "192.0.2.0/29"]})
        code, obj, _ = doctor(inv)
        r = rows(obj, "oci")
        assert r["ssh"]["status"] == "PASS"  # 22 is accepted by the OCI rules
        assert code in (0, 1)
        fw = r["firewall tcp/6443"]
        assert fw["status"] == "WARN", fw
        assert "REJECT --reject-with icmp-host-prohibited" in fw["message"]
        assert "provision bootstrap inserts ACCEPT rules before the REJECT" in fw["message"]
        assert r["firewall tcp/10250"]["status"] == "WARN"
        assert r["firewall pod traffic"]["status"] == "WARN"
        metallb = rows(obj, "all")
        assert metallb[f"metallb {pool_inside}"]["status"] == "PASS"
        assert metallb["metallb 192.0.2.0/29"]["status"] == "WARN"
        assert f"{ns.host_ip.rsplit('.', 1)[0]}.0/30" in metallb["metallb 192.0.2.0/29"][
            "message"]

        # the kernel agrees: a listener on 6443 in the namespace is unreachable from outside
        listener = subprocess.Popen(
            ["ip", "netns", "exec", ns.name, sys.executable, "-c",
             "import socket,time; s=socket.socket(); "
             "s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); "
             "s.bind(('0.0.0.0', 6443)); s.listen(); print('up', flush=True); time.sleep(60)"],
            stdout=subprocess.PIPE, text=True)
        try:
            assert listener.stdout is not None and listener.stdout.readline().strip() == "up"
            assert "No route to host" in _connect(ns.ns_ip, 6443)
            # an ACCEPT inserted before the REJECT opens it, and doctor sees it
            ns.run("iptables", "-I", "INPUT", "5", "-p", "tcp", "-m", "tcp", "--dport", "6443",
                   "-j", "ACCEPT")
            assert _connect(ns.ns_ip, 6443) == "connected"
        finally:
            listener.terminate()
            listener.wait(timeout=5)
        code, obj, _ = doctor(inv)
        fw = rows(obj, "oci")["firewall tcp/6443"]
        assert fw["status"] == "PASS" and "--dport 6443 -j ACCEPT" in fw["message"]
        assert rows(obj, "oci")["firewall tcp/10250"]["status"] == "WARN"
        # an sshd moved to a port the OCI rules reject: unreachable, with the kernel's reason
        blocked = write_inventory(tmp_path / "inv-blocked", {
            "oci-2222": server.host_vars(ansible_port=2222)})
        code, obj, _ = doctor(blocked, doctor_args=("--skip-network-checks", "--timeout", "3"))
        assert code == 3 and obj["unreachable"] == ["oci-2222"]
        assert "no route to host" in rows(obj, "oci-2222")["ssh"]["message"]
    assert ns.name not in subprocess.run(["ip", "netns", "list"], capture_output=True,
                                         text=True).stdout
