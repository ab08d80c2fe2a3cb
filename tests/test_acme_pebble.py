"""Real ACME end to end: Debian's Pebble (ACME CA) and pebble-challtestsrv (DNS) on this
machine, `provision certs issue` on a systemd lab container with lego from Debian.

Pebble and challtestsrv listen on the lab network's gateway address (this machine, as the lab
host sees it); Pebble's own HTTPS listener uses a certificate from a throwaway test CA that
the role installs on the lab host (``acme_server_ca_cert`` -> LEGO_CA_CERTIFICATES).

- dns-01: lego's ``exec`` provider runs a script on the lab host that sets the TXT record
  through challtestsrv's management API (``/set-txt``, ``/clear-txt``): the realistic stand-in
  for a DNS provider's API. lego checks the record with ``--dns.resolvers`` = challtestsrv.
- http-01: challtestsrv answers every A query with the lab host's address, so Pebble's
  validation reaches lego's built-in HTTP server on port 80 of the lab host.

A tiny TLS server unit on the lab host (``acme-demo.service``, Python ``ssl``; it reloads its
certificate on SIGHUP, i.e. ``systemctl reload``) serves the certificate; the test checks from
here that it presents a certificate for the domain chaining to Pebble's root (fetched from
Pebble's management endpoint). Pebble issues certificates valid for 20 days (its
``certificateValidityPeriod``), under the 30-day renewal threshold, so starting the timer's
service renews: the test shows the new certificate served and the service reloaded (same PID).

Selected by ``pytest -k "pebble or acme" tests``.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from ipaddress import ip_address
from pathlib import Path

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

REPO = Path(__file__).resolve().parent.parent
PEBBLE_VALIDITY_DAYS = 20
DEMO_PORT = 8443
ACME_PORT, MGMT_PORT, DNS_PORT, CHALL_MGMT_PORT = 14000, 15000, 8053, 8055

pytestmark = [
    pytest.mark.skipif(shutil.which("pebble") is None or
                       shutil.which("pebble-challtestsrv") is None,
                       reason="Debian's pebble is not installed (apt-get install pebble)"),
]


# --- a throwaway CA for Pebble's own HTTPS listener ------------------------------------------

def _tls_files(directory: Path, address: str) -> tuple[Path, Path, Path]:
    """(ca.pem, cert.pem, key.pem): a test CA and a listener certificate for ``address``."""
    now = datetime.now(UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "provision test ACME-server CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now - timedelta(hours=1)).not_valid_after(now + timedelta(days=2))
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "pebble")]))
            .issuer_name(ca_name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(hours=1)).not_valid_after(now + timedelta(days=2))
            .add_extension(x509.SubjectAlternativeName([
                x509.IPAddress(ip_address(address)), x509.IPAddress(ip_address("127.0.0.1")),
                x509.DNSName("localhost")]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    paths = directory / "ca.pem", directory / "cert.pem", directory / "key.pem"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    paths[2].chmod(0o600)
    return paths


@dataclass
class Pebble:
    """Pebble + challtestsrv running on ``address`` (this machine)."""

    address: str
    ca_pem: Path  # CA of Pebble's HTTPS listener
    procs: list[subprocess.Popen[bytes]]

    @property
    def directory(self) -> str:
        return f"https://{self.address}:{ACME_PORT}/dir"

    @property
    def dns(self) -> str:
        return f"{self.address}:{DNS_PORT}"

    @property
    def management(self) -> str:
        return f"http://{self.address}:{CHALL_MGMT_PORT}"

    def root_pem(self) -> bytes:
        """Pebble's issuing root, from its management endpoint (random per Pebble run)."""
        ctx = ssl.create_default_context(cafile=str(self.ca_pem))
        url = f"https://{self.address}:{MGMT_PORT}/roots/0"
        with urllib.request.urlopen(url, context=ctx, timeout=30) as resp:
            return resp.read()

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _die_with_parent() -> None:
    """preexec_fn: the CA processes get SIGTERM if pytest itself dies (PR_SET_PDEATHSIG)."""
    import ctypes

    ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)


def _wait_port(address: str, port: int, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args[0]} exited: {log.read_text()[-2000:]}")
        with socket.socket() as s:
            s.settimeout(1)
            if s.connect_ex((address, port)) == 0:
                return
        time.sleep(0.2)
    raise RuntimeError(f"{proc.args[0]} does not listen on {address}:{port}")


def start_pebble(workdir: Path, address: str, lab_host_ip: str) -> Pebble:
    """Start challtestsrv (DNS: every A query -> the lab host) and Pebble on ``address``."""
    workdir.mkdir(parents=True, exist_ok=True)
    ca_pem, cert, key = _tls_files(workdir, address)
    config = {"pebble": {
        "listenAddress": f"{address}:{ACME_PORT}",
        "managementListenAddress": f"{address}:{MGMT_PORT}",
        "certificate": str(cert), "privateKey": str(key),
        "httpPort": 80, "tlsPort": 443, "ocspResponderURL": "",
        "externalAccountBindingRequired": False,
        "certificateValidityPeriod": PEBBLE_VALIDITY_DAYS * 86400,
    }}
    (workdir / "pebble-config.json").write_text(json.dumps(config))
    procs: list[subprocess.Popen[bytes]] = []
    chall_log, pebble_log = workdir / "challtestsrv.log", workdir / "pebble.log"
    pebble = Pebble(address, ca_pem, procs)
    try:
        procs.append(subprocess.Popen(
            ["pebble-challtestsrv", "-defaultIPv4", lab_host_ip, "-defaultIPv6", "",
             "-dns01", f"{address}:{DNS_PORT}", "-management", f"{address}:{CHALL_MGMT_PORT}",
             "-http01", "", "-https01", "", "-tlsalpn01", ""],
            stdout=chall_log.open("wb"), stderr=subprocess.STDOUT, preexec_fn=_die_with_parent))
        _wait_port(address, CHALL_MGMT_PORT, procs[0], chall_log)
        env = dict(os.environ, PEBBLE_VA_NOSLEEP="1", PEBBLE_WFE_NONCEREJECT="0",
                   PEBBLE_AUTHZREUSE="0")  # every order is validated again
        procs.append(subprocess.Popen(
            ["pebble", "-config", str(workdir / "pebble-config.json"),
             "-dnsserver", f"{address}:{DNS_PORT}"],
            stdout=pebble_log.open("wb"), stderr=subprocess.STDOUT, env=env, cwd=workdir,
            preexec_fn=_die_with_parent))
        _wait_port(address, ACME_PORT, procs[1], pebble_log)
    except BaseException:
        pebble.stop()
        raise
    return pebble


# --- the lab host side --------------------------------------------------------------------------

EXEC_DNS_SCRIPT = """#!/usr/bin/python3
# lego `exec` DNS provider: `present|cleanup FQDN VALUE` -> challtestsrv's management API.
import json, sys, urllib.request
action, fqdn = sys.argv[1], sys.argv[2]
value = sys.argv[3] if len(sys.argv) > 3 else ""
path = {"present": "set-txt", "cleanup": "clear-txt"}.get(action)
if path:
    body = {"host": fqdn, "value": value} if path == "set-txt" else {"host": fqdn}
    req = urllib.request.Request("%s/%s" % ("MGMT", path), data=json.dumps(body).encode())
    urllib.request.urlopen(req, timeout=30).read()
"""

DEMO_SERVER = """#!/usr/bin/python3
# acme-demo: an HTTPS server that reloads its certificate on SIGHUP (systemctl reload).
import http.server, signal, ssl, sys
cert, key, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
def load(*_):
    ctx.load_cert_chain(cert, key)
    print("loaded", cert, flush=True)
load()
signal.signal(signal.SIGHUP, load)
srv = http.server.HTTPServer(("0.0.0.0", port), http.server.SimpleHTTPRequestHandler)
srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
srv.serve_forever()
"""

DEMO_UNIT = """[Unit]
Description=ACME demo HTTPS server (provision tests)

[Service]
ExecStart=/usr/local/bin/acme-demo {cert} {key} {port}
ExecReload=/bin/kill -HUP $MAINPID
"""

SETUP_PLAY = """
- name: Prepare the lab host for the ACME test
  hosts: all
  become: true
  gather_facts: false
  tasks:
    - name: Install the dns-01 exec hook and the demo server
      ansible.builtin.copy:
        content: "{{ item.content }}"
        dest: "{{ item.dest }}"
        mode: "0755"
      loop: "{{ files }}"
      loop_control:
        label: "{{ item.dest }}"
    - name: Install the demo service unit
      ansible.builtin.copy:
        content: "{{ unit }}"
        dest: /etc/systemd/system/acme-demo.service
        mode: "0644"
    - name: Reload systemd
      ansible.builtin.systemd_service:
        daemon_reload: true
"""


def docker_inspect(name: str, fmt: str) -> str:
    return subprocess.run(["docker", "inspect", "-f", fmt, name], capture_output=True,
                          text=True, check=True).stdout.strip()


def lab_addresses(lab) -> tuple[str, str, str]:  # noqa: ANN001 - tests/lab_fixtures.Lab
    """(container name, its IP on the lab network, the network's gateway = this machine)."""
    node = json.loads((lab.lab_dir / "lab.json").read_text())["nodes"][0]
    name, net = node["ident"], node["extra"]["network"]
    ip = docker_inspect(name, "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}")
    gateway = subprocess.run(["docker", "network", "inspect", "-f",
                              "{{(index .IPAM.Config 0).Gateway}}", net],
                             capture_output=True, text=True, check=True).stdout.strip()
    return name, ip, gateway


def acme_inventory(lab, tmp_path: Path, pebble: Pebble, **acme: object) -> Path:  # noqa: ANN001
    """The lab's inventory plus the acme_* variables, in a directory of its own."""
    inv = tmp_path / "inventory"
    (inv / "group_vars" / "all").mkdir(parents=True, exist_ok=True)
    shutil.copy(lab.inventory_dir / "hosts.yml", inv / "hosts.yml")
    shutil.copy(lab.inventory_dir / "group_vars" / "all.yml", inv / "group_vars/all/lab.yml")
    variables = {"acme_email": "ops@example.org", "acme_server": pebble.directory,
                 "acme_server_ca_cert": pebble.ca_pem.read_text(),
                 "acme_service": "acme-demo", **acme}
    (inv / "group_vars" / "all" / "acme.yml").write_text(yaml.safe_dump(variables))
    return inv


def served_certificate(ip: str, domain: str, root_pem: bytes) -> x509.Certificate:
    """Connect to the demo server, verifying the chain to Pebble's root and the hostname."""
    ctx = ssl.create_default_context(cadata=root_pem.decode())
    with socket.create_connection((ip, DEMO_PORT), timeout=30) as raw, \
            ctx.wrap_socket(raw, server_hostname=domain) as tls:
        der = tls.getpeercert(binary_form=True)
    assert der
    return x509.load_der_x509_certificate(der)


def wait_served(ip: str, domain: str, root_pem: bytes) -> x509.Certificate:
    deadline = time.monotonic() + 60
    while True:
        try:
            return served_certificate(ip, domain, root_pem)
        except (ConnectionRefusedError, TimeoutError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def cli(inv: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "provision", "-i", str(inv), *args],
                          cwd=REPO, capture_output=True, text=True, timeout=1800, check=False)


def run_log(proc: subprocess.CompletedProcess[str]) -> str:
    """The full Ansible log of a `--json` run."""
    return Path(json.loads(proc.stdout)["log"]).read_text()


# --- the tests ------------------------------------------------------------------------------------

@pytest.mark.container
@pytest.mark.slow
@pytest.mark.timeout(3000)  # about 5 min on an idle 2-core machine; far more under load
@pytest.mark.parametrize("challenge", ["dns-01", "http-01"])
def test_acme_pebble_issue_serve_and_timer_renewal(lab_host, tmp_path, challenge):
    """Real: Pebble issues through lego on a lab host; the service presents the certificate;
    the renewal timer's service replaces it and reloads the service."""
    from provision.runner import run_playbook

    lab = lab_host()
    name, ip, gateway = lab_addresses(lab)
    pebble = start_pebble(tmp_path / "pebble", gateway, ip)
    try:
        domain = f"{challenge.replace('-', '')}.acme-test.example"
        cert_path, key_path = f"/etc/ssl/acme-test/{domain}.crt", f"/etc/ssl/acme-test/{domain}.key"
        play = tmp_path / "setup.yml"
        play.write_text(SETUP_PLAY)
        res = run_playbook(command="test acme setup", playbook=str(play), inventory=lab.inventory,
                           quiet=True, extravars={
                               "files": [
                                   {"dest": "/usr/local/bin/challtestsrv-dns",
                                    "content": EXEC_DNS_SCRIPT.replace("MGMT", pebble.management)},
                                   {"dest": "/usr/local/bin/acme-demo", "content": DEMO_SERVER}],
                               "unit": DEMO_UNIT.format(cert=cert_path, key=key_path,
                                                        port=DEMO_PORT)})
        assert res.ok, res.errors
        secret = "s3cret-" + secrets.token_hex(8)
        acme: dict[str, object] = {"acme_cert_path": cert_path, "acme_key_path": key_path}
        if challenge == "dns-01":
            acme.update(acme_dns_provider="exec", acme_dns_resolvers=[pebble.dns],
                        acme_dns_disable_propagation_check=True,
                        acme_dns_env={"EXEC_PATH": "/usr/local/bin/challtestsrv-dns",
                                      "EXEC_POLLING_INTERVAL": "1",
                                      "EXEC_PROPAGATION_TIMEOUT": "60",
                                      "UNUSED_API_TOKEN": secret})
        inv = acme_inventory(lab, tmp_path, pebble, **acme)

        # issue
        proc = cli(inv, "--json", "certs", "issue", "--domain", domain, "--challenge", challenge)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert secret not in run_log(proc)  # provider credentials are never logged
        root = pebble.root_pem()
        first = wait_served(ip, domain, root)
        assert first.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == domain or \
            domain in first.extensions.get_extension_for_class(
                x509.SubjectAlternativeName).value.get_values_for_type(x509.DNSName)
        left = first.not_valid_after_utc - datetime.now(UTC)
        assert timedelta(days=PEBBLE_VALIDITY_DAYS - 1) < left <= timedelta(
            days=PEBBLE_VALIDITY_DAYS)
        key_stat = lab.ssh(lab.hosts[0], f"sudo stat -c '%a %U' {key_path}")
        assert key_stat.stdout.strip() == "600 root", key_stat

        if challenge == "dns-01":  # the same tasks for both challenges: check once
            # idempotent: nothing changes on a second run (no new certificate either)
            proc = cli(inv, "--json", "certs", "issue", "--domain", domain, "--challenge",
                       challenge)
            assert proc.returncode == 0, proc.stdout + proc.stderr
            assert json.loads(proc.stdout)["hosts"][lab.hosts[0]]["changed"] == 0
            assert served_certificate(ip, domain, root).serial_number == first.serial_number

        # the timer is installed; its service renews (20 days left < 30) and reloads
        stem = f"acme-renew-{domain}"
        timer = lab.ssh(lab.hosts[0], f"systemctl is-enabled {stem}.timer && "
                                      f"systemctl is-active {stem}.timer")
        assert timer.stdout.split() == ["enabled", "active"], timer
        pid = lab.ssh(lab.hosts[0], "systemctl show -p MainPID --value acme-demo").stdout.strip()
        renew = lab.ssh(lab.hosts[0], f"sudo systemctl start {stem}.service; "
                                      f"sudo journalctl -u {stem}.service --no-pager -o cat")
        assert renew.returncode == 0, renew
        assert "installed the renewed certificate" in renew.stdout, renew.stdout
        second = served_certificate(ip, domain, root)
        assert second.serial_number != first.serial_number
        assert second.not_valid_after_utc >= first.not_valid_after_utc
        after = lab.ssh(lab.hosts[0], "systemctl show -p MainPID --value acme-demo; "
                                      "sudo journalctl -u acme-demo --no-pager -o cat")
        assert after.stdout.split()[0] == pid  # reloaded, not restarted
        assert after.stdout.count(f"loaded {cert_path}") >= 2  # start + reload on renewal
    finally:
        pebble.stop()


def test_acme_certs_issue_bad_input_exits_2(tmp_path):
    """Bad input names the key and host, exits 2 and contacts nothing."""
    inv = tmp_path / "hosts.yml"
    inv.write_text(yaml.safe_dump({"all": {"children": {"control_plane": {"hosts": {
        "h1": {"ansible_host": "192.0.2.1"}, "h2": {"ansible_host": "192.0.2.2"}}}}}}))
    env = dict(os.environ, XDG_STATE_HOME=str(tmp_path / "state"))

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "provision", "-i", str(inv), *args],
                              cwd=REPO, capture_output=True, text=True, env=env, timeout=60)

    proc = run("--limit", "h1", "certs", "issue", "--domain", "bad_domain!")
    assert proc.returncode == 2 and "--domain" in proc.stderr
    proc = run("--limit", "h1", "certs", "issue", "--domain", "a.example.org")
    assert proc.returncode == 2 and "acme_email" in proc.stderr and "h1" in proc.stderr
    proc = run("--limit", "h1", "certs", "issue", "--domain", "a.example.org", "--email",
               "o@example.org", "--challenge", "dns-01")
    assert proc.returncode == 2 and "acme_dns_provider" in proc.stderr
    proc = run("certs", "issue", "--domain", "a.example.org", "--email", "o@example.org")
    assert proc.returncode == 2 and "--limit" in proc.stderr
    assert not (tmp_path / "state" / "provision" / "runs").exists()


def test_acme_issue_checks_pure():
    """The pre-contact checks of `certs issue` (pure functions)."""
    from provision.certs import acme

    flags = acme.issue_vars({"domain": "r.example.org", "email": None, "challenge": "dns-01"})
    assert flags == {"acme_domain": "r.example.org", "acme_challenge": "dns-01"}
    hosts = {"vm1": {"acme_email": "o@example.org", "acme_dns_provider": "cloudflare"}}
    assert acme.check_issue(hosts, flags, limited=False) == []
    problems = acme.check_issue({"vm1": {"acme_email": "nope"}}, flags, limited=True)
    assert any("host vm1: acme_email: 'nope'" in p for p in problems)
    assert any("acme_dns_provider" in p for p in problems)
    wildcard = acme.issue_vars({"domain": "*.example.org"})
    problems = acme.check_issue({"vm1": {"acme_email": "o@example.org"}}, wildcard, limited=True)
    assert problems == ["host vm1: acme_challenge: the wildcard '*.example.org' needs dns-01"]
    problems = acme.check_issue({"a": {}, "b": {}}, flags, limited=False)
    assert len(problems) == 1 and "--limit" in problems[0]
    server = acme.issue_vars({"domain": "r.example.org", "server": "http://ca/dir"})
    problems = acme.check_issue({"vm1": {"acme_email": "o@example.org"}}, server, limited=True)
    assert problems == ["host vm1: --server: 'http://ca/dir' is not an https:// ACME "
                        "directory URL"]
