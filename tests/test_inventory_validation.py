"""Bad inventories and flags: exact message, exit code 2, and no connection attempted.

Every host in these inventories points at a real TCP listener on loopback; after the command the
test asserts that the listener has no pending connection, and paramiko/ansible-runner are
patched to fail loudly if anything tries to use them.
"""

from __future__ import annotations

import socket
import textwrap
from pathlib import Path

import pytest

from provision.cli import main


@pytest.fixture()
def listener():
    """A loopback TCP listener standing in for every host; counts connection attempts."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    sock.setblocking(False)
    yield sock
    sock.close()


def assert_no_connection(sock: socket.socket) -> None:
    try:
        conn, _ = sock.accept()
    except BlockingIOError:
        return
    conn.close()
    raise AssertionError("a connection to a host was attempted before validation failed")


@pytest.fixture()
def no_contact(monkeypatch):
    """Fail loudly if paramiko or ansible-runner is used."""
    import ansible_runner
    import paramiko

    def boom(*a, **k):
        raise AssertionError("host contacted despite invalid input")

    monkeypatch.setattr(paramiko.SSHClient, "connect", boom)
    monkeypatch.setattr(ansible_runner, "run", boom)


def run_cli(args: list[str], capsys) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exc:
        main(args)
    out, err = capsys.readouterr()
    return int(exc.value.code or 0), out, err


def write_inventory(root: Path, port: int, hosts_yml: str, files: dict[str, str]) -> Path:
    inv = root / "inv"
    inv.mkdir()
    (inv / "hosts.yml").write_text(textwrap.dedent(hosts_yml).replace("PORT", str(port)))
    for rel, text in files.items():
        path = inv / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).replace("PORT", str(port)))
    return inv


def assert_refused(tmp_path: Path, capsys, listener: socket.socket, args: list[str],
                   hosts_yml: str, files: dict[str, str], expected: str) -> None:
    """``provision -i INV *args`` on a written inventory exits 2 with ``expected`` ({inv}:
    the inventory dir, PORT: the listener's port) as one of its error lines, and no host is
    contacted."""
    port = listener.getsockname()[1]
    inv = write_inventory(tmp_path, port, hosts_yml, files)
    code, out, err = run_cli(["-i", str(inv), *args], capsys)
    assert code == 2, err
    lines = [line.removeprefix("error: ") for line in err.splitlines()
             if line.startswith("error: ")]
    assert expected.format(inv=inv).replace("PORT", str(port)) in lines, err
    assert_no_connection(listener)


def host(name: str, address: str = "127.0.0.1", port: str = "PORT") -> str:
    return f"{name}: {{ansible_host: {address}, ansible_port: {port}}}"


def hosts_text(*control_plane: str, workers: tuple[str, ...] | None = None,
              cp_vars: str = "") -> str:
    """hosts.yml text: host lines (see :func:`host`) under control_plane (hosts.yml line 5 is
    the first), then ``cp_vars`` lines as its vars, then a workers group if ``workers`` is
    given (``()``: no hosts)."""
    text = "all:\n  children:\n    control_plane:\n      hosts:\n"
    text += "".join(f"        {h}\n" for h in control_plane)
    if cp_vars:
        text += "      vars:\n" + "".join(f"        {v}\n" for v in cp_vars.splitlines())
    if workers is not None:
        text += "    workers:\n      hosts:" + ("\n" if workers else " {}\n")
        text += "".join(f"        {h}\n" for h in workers)
    return text


ONE_CP = hosts_text(host("cp1"), workers=())
CP_AND_WORKER = hosts_text(host("cp1"), workers=(host("w1", "127.0.0.2"),))


def gv(text: str) -> dict[str, str]:
    return {"group_vars/all.yml": text}


# (id, hosts.yml, extra files, expected message with {inv} for the inventory dir)
CASES = [
    ("typo-all", ONE_CP, gv("kubernets_version: '1.31'\n"),
     "{inv}/group_vars/all.yml:1: group all: kubernets_version: unknown variable; "
     "did you mean kubernetes_version?"),
    ("typo-host", hosts_text("cp1: {ansible_hots: 127.0.0.1, ansible_port: PORT}"), {},
     "{inv}/hosts.yml:5: host cp1: ansible_hots: unknown variable; "
     "did you mean ansible_host?"),
    ("typo-group-vars-in-hosts",
     hosts_text(host("cp1"), cp_vars="metalb_addresses: [10.0.0.200-10.0.0.210]"), {},
     "{inv}/hosts.yml:7: group control_plane: metalb_addresses: unknown variable; "
     "did you mean metallb_addresses?"),
    ("group-key-typo", """\
all:
  children:
    control_plane:
      host:
        cp1: {ansible_host: 127.0.0.1, ansible_port: PORT}
""", {}, "{inv}/hosts.yml:4: group control_plane: unknown key 'host' "
        "(a group has only: hosts, vars, children); did you mean hosts?"),
    ("version-float", ONE_CP, gv("kubernetes_version: 1.30\n"),
     "{inv}/group_vars/all.yml:1: group all: kubernetes_version: expected a version string, "
     "got the number 1.3: YAML reads an unquoted version as a number (1.30 becomes 1.3); "
     'quote it, e.g. kubernetes_version: "1.30"'),
    ("version-leading-v", ONE_CP, gv("kubernetes_version: v1.31\n"),
     "{inv}/group_vars/all.yml:1: group all: kubernetes_version: malformed version 'v1.31': "
     'expected "1.31" or "1.31.2" (no leading v)'),
    ("version-four-parts", ONE_CP, gv("kubernetes_version: '1.31.2.1'\n"),
     "{inv}/group_vars/all.yml:1: group all: kubernetes_version: malformed version '1.31.2.1': "
     'expected "1.31" or "1.31.2" (no leading v)'),
    ("version-unsupported", ONE_CP, gv("kubernetes_version: '1.99'\n"),
     "{inv}/group_vars/all.yml:1: group all: kubernetes_version: '1.99' is not a Kubernetes "
     "release provision supports (1.28 to 1.37)"),
    ("mode-typo", ONE_CP, gv("provision_mode: minikub\n"),
     "{inv}/group_vars/all.yml:1: group all: provision_mode: 'minikub' is not one of: "
     "minikube, kubeadm; did you mean minikube?"),
    ("docker-source", ONE_CP, gv("docker_source: ce\n"),
     "{inv}/group_vars/all.yml:1: group all: docker_source: 'ce' is not one of: "
     "distro, docker-ce"),
    ("proxy-mode-case", ONE_CP, gv("kube_proxy_mode: IPVS\n"),
     "{inv}/group_vars/all.yml:1: group all: kube_proxy_mode: 'IPVS' is not one of: "
     "iptables, ipvs; did you mean ipvs?"),
    ("cidr-host-bits", ONE_CP, gv("pod_cidr: 10.244.0.1/16\n"),
     "{inv}/group_vars/all.yml:1: group all: pod_cidr: invalid CIDR '10.244.0.1/16': "
     "host bits set; did you mean 10.244.0.0/16?"),
    ("cidr-no-prefix", ONE_CP, gv("pod_cidr: 10.244.0.0\n"),
     "{inv}/group_vars/all.yml:1: group all: pod_cidr: invalid CIDR '10.244.0.0': "
     "missing the prefix length (e.g. 10.244.0.0/16)"),
    ("cidr-garbage", ONE_CP, gv("service_cidr: 300.1.0.0/16\n"),
     "{inv}/group_vars/all.yml:1: group all: service_cidr: invalid CIDR '300.1.0.0/16'"),
    ("cidr-overlap", ONE_CP, gv("pod_cidr: 10.96.0.0/16\nservice_cidr: 10.96.0.0/12\n"),
     "{inv}/group_vars/all.yml:1: group all: pod_cidr 10.96.0.0/16 overlaps service_cidr "
     "10.96.0.0/12: choose disjoint networks"),
    ("pool-reversed", ONE_CP, gv("metallb_addresses: [10.0.0.200-10.0.0.100]\n"),
     "{inv}/group_vars/all.yml:1: group all: metallb_addresses: invalid address range "
     "'10.0.0.200-10.0.0.100': the first address must be <= the last"),
    ("pool-single-ip", ONE_CP, gv("metallb_addresses: [10.0.0.5]\n"),
     "{inv}/group_vars/all.yml:1: group all: metallb_addresses: invalid pool entry "
     "'10.0.0.5': a single address needs a prefix: 10.0.0.5/32"),
    ("pool-not-list", ONE_CP, gv("metallb_addresses: 10.0.0.0/24\n"),
     "{inv}/group_vars/all.yml:1: group all: metallb_addresses: expected a list of CIDRs or "
     "A-B ranges, got a string '10.0.0.0/24'"),
    ("pool-garbage", ONE_CP, gv("metallb_addresses: [foo]\n"),
     "{inv}/group_vars/all.yml:1: group all: metallb_addresses: invalid pool entry 'foo': "
     "expected a CIDR or an A-B range"),
    ("pool-mixed-family", ONE_CP, gv("metallb_addresses: ['10.0.0.1-fd00::1']\n"),
     "{inv}/group_vars/all.yml:1: group all: metallb_addresses: invalid address range "
     "'10.0.0.1-fd00::1': the first address must be <= the last"),
    ("keep-zero", ONE_CP, gv("etcd_backup_keep: 0\n"),
     "{inv}/group_vars/all.yml:1: group all: etcd_backup_keep: expected an integer >= 1, "
     "got 0"),
    ("keep-string", ONE_CP, gv("etcd_backup_keep: '14'\n"),
     "{inv}/group_vars/all.yml:1: group all: etcd_backup_keep: expected an integer, "
     "got a string '14'"),
    ("max-age", ONE_CP, gv("etcd_backup_max_age: 30 days\n"),
     "{inv}/group_vars/all.yml:1: group all: etcd_backup_max_age: expected a duration like "
     "30d, 12h or 15m, got a string '30 days'"),
    ("bool-string", ONE_CP, gv("ingress_nginx_enabled: 'yes'\n"),
     "{inv}/group_vars/all.yml:1: group all: ingress_nginx_enabled: expected true or false, "
     "got a string 'yes' (write true or false, unquoted)"),
    ("users-not-list", ONE_CP, gv("docker_users: ubuntu\n"),
     "{inv}/group_vars/all.yml:1: group all: docker_users: expected a list, "
     "got a string 'ubuntu'"),
    ("port-range", hosts_text(host("cp1", port="70000")), {},
     "{inv}/hosts.yml:5: host cp1: ansible_port: expected a port 1-65535, got 70000"),
    ("minikube-two-hosts", CP_AND_WORKER, gv("provision_mode: minikube\n"),
     "{inv}/hosts.yml: provision_mode: minikube runs on exactly one host, the inventory has "
     "2 (cp1, w1)"),
    ("kubeadm-no-cp", """\
all:
  children:
    workers:
      hosts:
        w1: {ansible_host: 127.0.0.1, ansible_port: PORT}
""", {}, "{inv}/hosts.yml: group control_plane: kubeadm mode needs at least one "
        "control-plane host (all.children.control_plane.hosts)"),
    ("same-host-twice", hosts_text(host("cp1"), workers=(host("w1"),)), {},
     "{inv}/hosts.yml:8: host w1: host w1: 127.0.0.1:PORT is the same host as 'cp1' "
     "under another name"),
    ("missing-key", ONE_CP, gv("ansible_ssh_private_key_file: /nonexistent/id_ed25519\n"),
     "{inv}/group_vars/all.yml:1: group all: host cp1: ansible_ssh_private_key_file: "
     "/nonexistent/id_ed25519 does not exist"),
    ("yaml-syntax", ONE_CP, gv("kubernetes_version: '1.31'\npod_cidr: [10.244.0.0/16\n"),
     "{inv}/group_vars/all.yml:3:1: YAML syntax error: expected ',' or ']', but got "
     "'<stream end>'"),
    ("group-vars-unknown-group", ONE_CP, {"group_vars/control-plane.yml": "cni_plugin: calico\n"},
     "{inv}/group_vars/control-plane.yml: group_vars for 'control-plane', which is not a group "
     "of the inventory; did you mean control_plane?"),
    ("host-vars-unknown-host", ONE_CP, {"host_vars/cp2.yml": "ansible_port: 2222\n"},
     "{inv}/host_vars/cp2.yml: host_vars for 'cp2', which is not a host of the inventory; "
     "did you mean cp1?"),
    ("cp-and-worker", hosts_text(host("cp1"), workers=("cp1:",)), {},
     "{inv}/hosts.yml: host cp1: is in both control_plane and workers; a control plane "
     "without workers runs workloads itself"),
    ("pod-cidr-has-node", hosts_text(host("cp1", "10.244.1.5")), {},
     "{inv}/hosts.yml: host cp1: pod_cidr 10.244.0.0/16 contains the address 10.244.1.5 "
     "of host cp1: pods would shadow the node network"),
    ("ipvs-strictarp-off", ONE_CP,
     gv("kube_proxy_mode: ipvs\nmetallb_addresses: [10.0.0.200-10.0.0.210]\n"
        "metallb_strict_arp: false\n"),
     "{inv}/group_vars/all.yml:3: group all: host cp1: metallb_strict_arp: false with "
     "kube_proxy_mode ipvs and MetalLB addresses: MetalLB requires strictARP with IPVS"),
    ("no-hosts", "all:\n  children:\n    control_plane:\n      hosts: {}\n", {},
     "{inv}/hosts.yml: no hosts: add hosts under all.children.control_plane.hosts"),
    ("host-scope-in-group", ONE_CP, gv("ansible_host: 10.0.0.1\n"),
     "{inv}/group_vars/all.yml:1: group all: ansible_host: must be set per host, not for a "
     "group"),
    ("modes-differ", CP_AND_WORKER, {"host_vars/w1.yml": "provision_mode: minikube\n"},
     "{inv}/hosts.yml: provision_mode differs between hosts (kubeadm, minikube): one cluster "
     "has one mode"),
    ("not-a-mapping", "- cp1\n- cp2\n", {},
     "{inv}/hosts.yml: an inventory must be a YAML mapping with 'all:'"),
]


@pytest.mark.parametrize("command", ["doctor", "bootstrap"])
@pytest.mark.parametrize(("hosts_yml", "files", "expected"),
                         [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_inventory_is_refused_before_contact(tmp_path, capsys, listener, no_contact,
                                                 command, hosts_yml, files, expected):
    assert_refused(tmp_path, capsys, listener, [command], hosts_yml, files, expected)


def test_case_count_meets_the_bar():
    assert len(CASES) >= 30


def test_json_mode_reports_validation_errors(tmp_path, capsys, listener, no_contact):
    import json

    inv = write_inventory(tmp_path, listener.getsockname()[1], ONE_CP,
                          gv("kubernetes_version: 1.30\n"))
    code, out, err = run_cli(["--json", "-i", str(inv), "doctor"], capsys)
    obj = json.loads(out)
    assert code == 2 and obj["exit_code"] == 2 and obj["ok"] is False
    assert obj["command"] == "doctor"
    assert "quote it" in obj["errors"][0]
    assert_no_connection(listener)


@pytest.mark.parametrize(("args", "expected"), [
    (["-i", "/nonexistent/inv", "doctor"],
     "/nonexistent/inv: inventory not found (a file, a directory or 'lab')"),
    (["doctor"], "no inventory: pass -i PATH (a file, a directory, or 'lab' after 'provision "
                 "lab up') or set PROVISION_INVENTORY"),
])
def test_missing_inventory(capsys, monkeypatch, tmp_path, args, expected):
    monkeypatch.delenv("PROVISION_INVENTORY", raising=False)
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))
    code, _, err = run_cli(args, capsys)
    assert code == 2
    assert f"error: {expected}" in err.splitlines()


def test_lab_inventory_before_lab_up(capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))
    code, _, err = run_cli(["-i", "lab", "doctor"], capsys)
    assert code == 2
    assert "run 'provision lab up' first" in err


def test_even_control_planes_warns_but_passes(tmp_path, capsys, listener):
    hosts = hosts_text(host("cp1"), host("cp2", "127.0.0.2"))
    inv = write_inventory(tmp_path, listener.getsockname()[1], hosts, {})
    code, out, err = run_cli(["-i", str(inv), "validate"], capsys)
    assert code == 0, err
    assert ("warning: " + f"{inv}/hosts.yml: group control_plane: 2 control-plane hosts: etcd "
            "quorum needs an odd number (3 tolerates one failure, 2 does not tolerate more)"
            ) in err.splitlines()


def test_valid_inventory_passes(tmp_path, capsys, listener):
    inv = write_inventory(tmp_path, listener.getsockname()[1], CP_AND_WORKER, gv(
        "kubernetes_version: '1.31'\nmetallb_addresses: [10.0.0.200-10.0.0.210, 10.1.0.0/28]\n"
        "docker_users: [ubuntu]\netcd_backup_keep: 7\n"))
    code, out, err = run_cli(["-i", str(inv), "validate"], capsys)
    assert code == 0, err
    assert "valid: 2 hosts, mode kubeadm, 1 control plane, 1 worker" in out


@pytest.mark.parametrize(("limit", "expected"), [
    ("cp2", "--limit cp2: 'cp2' is not a host or group of {inv}; did you mean cp1?"),
    ("worker", "--limit worker: 'worker' is not a host or group of {inv}; did you mean workers?"),
    ("workers", "--limit workers: selects no host of {inv}"),
])
def test_bad_limit_is_refused_before_contact(tmp_path, capsys, listener, no_contact, limit,
                                             expected):
    assert_refused(tmp_path, capsys, listener, ["--limit", limit, "bootstrap"], ONE_CP, {},
                   expected)


# --- injection (issue 13): declared patterns and templates, refused before any contact ----------

TPL = "templates in connection variables run on your machine before any check"
NOT_CHECKED = "Jinja templates ({{ }}, {% %}, {# #}) are not allowed here: "


def tpl_msg(key: str, connection: bool = True) -> str:
    why = TPL if connection else (f"a template would be evaluated by Ansible on your machine "
                                  f"and skip the check of {key}")
    return NOT_CHECKED + why + "; write the value itself"


def tpl(key: str, connection: bool = True) -> str:
    """tpl_msg escaped for the str.format of assert_refused."""
    return tpl_msg(key, connection).replace("{", "{{").replace("}", "}}")


INJECTION_CASES = [
    ("host-newline", hosts_text('cp1: {ansible_host: "10.0.0.1\\nx", ansible_port: PORT}'), {},
     "{inv}/hosts.yml:5: host cp1: ansible_host: '10.0.0.1\\nx' contains a newline or control "
     "character: expected an IPv4/IPv6 address or a DNS name"),
    ("host-dash", hosts_text('cp1: {ansible_host: "-oProxyCommand=id", ansible_port: PORT}'), {},
     "{inv}/hosts.yml:5: host cp1: ansible_host: '-oProxyCommand=id' starts with '-' (it would "
     "read as an option): expected an IPv4/IPv6 address or a DNS name"),
    ("host-semicolon", hosts_text('cp1: {ansible_host: "a;id", ansible_port: PORT}'), {},
     "{inv}/hosts.yml:5: host cp1: ansible_host: 'a;id' is not a DNS name like cp1.example.org "
     "(or an SSH alias)"),
    ("host-port", hosts_text('cp1: {ansible_host: "127.0.0.1:22", ansible_port: PORT}'), {},
     "{inv}/hosts.yml:5: host cp1: ansible_host: '127.0.0.1:22' is not an address: a port goes "
     "in ansible_port, not after ':'"),
    ("host-brackets", hosts_text('cp1: {ansible_host: "[::1]", ansible_port: PORT}'), {},
     "{inv}/hosts.yml:5: host cp1: ansible_host: '[::1]': write an IPv6 address without "
     "brackets (e.g. ::1); the port goes in ansible_port"),
    ("host-empty", hosts_text('cp1: {ansible_host: "", ansible_port: PORT}'), {},
     "{inv}/hosts.yml:5: host cp1: ansible_host: empty: expected an IPv4/IPv6 address or a "
     "DNS name"),
    ("host-non-ascii", hosts_text('cp1: {ansible_host: "１27.0.0.1", ansible_port: PORT}'), {},
     "{inv}/hosts.yml:5: host cp1: ansible_host: '１27.0.0.1' has non-ASCII characters: "
     "expected an IPv4/IPv6 address or a DNS name"),
    ("host-template", hosts_text(
        "cp1: {ansible_host: \"{{ lookup('pipe', 'touch CANARY') }}\", ansible_port: PORT}"), {},
     "{inv}/hosts.yml:5: host cp1: ansible_host: " + tpl("ansible_host")),
    ("name-as-address", hosts_text('"-oProxyCommand=id": {ansible_port: PORT}'), {},
     "{inv}/hosts.yml: host -oProxyCommand=id: the inventory name is the SSH address (no "
     "ansible_host): '-oProxyCommand=id' starts with '-' (it would read as an option): "
     "expected a DNS name like cp1.example.org (or an SSH alias)"),
    ("port-template", hosts_text(host("cp1", port="'{{ 22 }}'")), {},
     "{inv}/hosts.yml:5: host cp1: ansible_port: " + tpl("ansible_port")),
    ("port-non-ascii", hosts_text(host("cp1", port="'２２'")), {},
     "{inv}/hosts.yml:5: host cp1: ansible_port: expected an integer, got a string '２２'"),
    ("user-newline", ONE_CP, gv('ansible_user: "ubuntu\\nroot"\n'),
     "{inv}/group_vars/all.yml:1: group all: ansible_user: 'ubuntu\\nroot' contains a newline "
     "or control character: expected a POSIX user name like ubuntu or deploy_1 (a-z, 0-9, '_', "
     "'.', '-'; at most 32)"),
    ("user-dash", ONE_CP, gv('ansible_user: "-oops"\n'),
     "{inv}/group_vars/all.yml:1: group all: ansible_user: '-oops' starts with '-' (it would "
     "read as an option): expected a POSIX user name like ubuntu or deploy_1 (a-z, 0-9, '_', "
     "'.', '-'; at most 32)"),
    ("user-template", ONE_CP, gv("ansible_user: \"{{ lookup('env', 'USER') }}\"\n"),
     "{inv}/group_vars/all.yml:1: group all: ansible_user: " + tpl("ansible_user")),
    ("key-template", ONE_CP,
     gv("ansible_ssh_private_key_file: \"{{ lookup('pipe', 'id') }}\"\n"),
     "{inv}/group_vars/all.yml:1: group all: ansible_ssh_private_key_file: "
     + tpl("ansible_ssh_private_key_file")),
    ("proxycommand-template", ONE_CP, gv(
        "ansible_ssh_common_args: \"-o ProxyCommand='{{ lookup(\\\"pipe\\\", \\\"id\\\") }}'\"\n"),
     "{inv}/group_vars/all.yml:1: group all: ansible_ssh_common_args: "
     + tpl("ansible_ssh_common_args")),
    ("ssh-args-newline", ONE_CP, gv('ansible_ssh_extra_args: "-o A=1\\n-o B=2"\n'),
     "{inv}/group_vars/all.yml:1: group all: ansible_ssh_extra_args: '-o A=1\\n-o B=2' "
     "contains a newline or control character: expected one line of text"),
    ("connection-template", ONE_CP, gv('ansible_connection: "{{ \'local\' }}"\n'),
     "{inv}/group_vars/all.yml:1: group all: ansible_connection: "
     + tpl("ansible_connection")),
    ("interpreter-semicolon", ONE_CP, gv("ansible_python_interpreter: /usr/bin/python3;id\n"),
     "{inv}/group_vars/all.yml:1: group all: ansible_python_interpreter: "
     "'/usr/bin/python3;id' is not auto, auto_silent or an absolute path like /usr/bin/python3"),
    ("become-template", ONE_CP, gv("ansible_become_password: \"{{ lookup('pipe', 'id') }}\"\n"),
     "{inv}/group_vars/all.yml:1: group all: ansible_become_password: "
     + tpl("ansible_become_password")
     + " (the value is hidden: ansible_become_password is a secret)"),
    ("become-user-dash", ONE_CP, gv("ansible_become_user: -root\n"),
     "{inv}/group_vars/all.yml:1: group all: ansible_become_user: '-root' starts with '-' (it "
     "would read as an option): expected a POSIX user name like ubuntu or deploy_1 (a-z, 0-9, "
     "'_', '.', '-'; at most 32)"),
    ("version-newline", ONE_CP, gv('kubernetes_version: "1.31\\n"\n'),
     "{inv}/group_vars/all.yml:1: group all: kubernetes_version: malformed version '1.31\\n': "
     'expected "1.31" or "1.31.2" (no leading v)'),
    ("version-space", ONE_CP, gv('kubernetes_version: " 1.31"\n'),
     "{inv}/group_vars/all.yml:1: group all: kubernetes_version: malformed version ' 1.31': "
     'expected "1.31" or "1.31.2" (no leading v)'),
    ("version-fullwidth", ONE_CP, gv('kubernetes_version: "1.３１"\n'),
     "{inv}/group_vars/all.yml:1: group all: kubernetes_version: malformed version '1.３１': "
     'expected "1.31" or "1.31.2" (no leading v)'),
    ("version-template", ONE_CP, gv('kubernetes_version: "{{ \'1.31\' }}"\n'),
     "{inv}/group_vars/all.yml:1: group all: kubernetes_version: "
     + tpl("kubernetes_version", connection=False)),
    ("choices-template", ONE_CP, gv('provision_mode: "{{ \'kubeadm\' }}"\n'),
     "{inv}/group_vars/all.yml:1: group all: provision_mode: "
     + tpl("provision_mode", connection=False)),
    ("int-template", ONE_CP, gv('etcd_backup_keep: "{{ 3 }}"\n'),
     "{inv}/group_vars/all.yml:1: group all: etcd_backup_keep: "
     + tpl("etcd_backup_keep", connection=False)),
    ("docker-user-semicolon", ONE_CP, gv("docker_users: ['root; touch x']\n"),
     "{inv}/group_vars/all.yml:1: group all: docker_users: element 'root; touch x' is not a "
     "POSIX user name like ubuntu or deploy_1 (a-z, 0-9, '_', '.', '-'; at most 32)"),
    ("docker-user-newline", ONE_CP, gv('docker_users: ["ubuntu\\nroot"]\n'),
     "{inv}/group_vars/all.yml:1: group all: docker_users: element 'ubuntu\\nroot' contains a "
     "newline or control character: expected a POSIX user name like ubuntu or deploy_1 (a-z, "
     "0-9, '_', '.', '-'; at most 32)"),
    ("cluster-name-path", ONE_CP, gv("cluster_name: '../../etc/x y'\n"),
     "{inv}/group_vars/all.yml:1: group all: cluster_name: '../../etc/x y' is not a DNS label: "
     "lower-case letters, digits and '-', at most 63, e.g. prod"),
    ("acme-domain-newline", ONE_CP, gv('acme_domain: "a.example.org\\nx"\n'),
     "{inv}/group_vars/all.yml:1: group all: acme_domain: 'a.example.org\\nx' contains a "
     "newline or control character: expected a DNS name like registry.example.org "
     "(*.example.org for dns-01)"),
    ("acme-service", ONE_CP, gv("acme_service: x$(touch y)\n"),
     "{inv}/group_vars/all.yml:1: group all: acme_service: 'x$(touch y)' is not a systemd unit "
     "name like nginx or docker-registry.service (letters, digits, ':', '_', '.', '@', '-')"),
    ("prune-schedule-newline", ONE_CP, gv('docker_prune_schedule: "daily\\nUnit=ssh.service"\n'),
     "{inv}/group_vars/all.yml:1: group all: docker_prune_schedule: 'daily\\nUnit=ssh.service' "
     "contains a newline or control character: expected a systemd OnCalendar expression like "
     "daily or 'Mon *-*-* 03:00'"),
    ("certs-dir", ONE_CP, gv("kubeadm_certs_kubernetes_dir: /etc/kubernetes;id\n"),
     "{inv}/group_vars/all.yml:1: group all: kubeadm_certs_kubernetes_dir: "
     "'/etc/kubernetes;id' is not an absolute path like /etc/kubernetes (letters, digits and "
     "._/+@,=:~- only)"),
    ("data-root-relative", ONE_CP, gv("docker_data_root: data/docker\n"),
     "{inv}/group_vars/all.yml:1: group all: docker_data_root: 'data/docker' is not an "
     "absolute path like /etc/kubernetes (letters, digits and ._/+@,=:~- only)"),
]


@pytest.mark.parametrize("command", ["validate", "bootstrap"])
@pytest.mark.parametrize(("hosts_yml", "files", "expected"),
                         [c[1:] for c in INJECTION_CASES], ids=[c[0] for c in INJECTION_CASES])
def test_injection_is_refused_before_contact(tmp_path, capsys, listener, no_contact, command,
                                             hosts_yml, files, expected):
    assert_refused(tmp_path, capsys, listener, [command], hosts_yml, files, expected)


@pytest.mark.parametrize("key, value", [
    ("ansible_host", "{{ lookup('pipe', 'touch CANARY') }}"),
    ("ansible_user", "{{ lookup('pipe', 'touch CANARY') }}"),
    ("ansible_ssh_common_args", "-o ProxyCommand='{{ lookup(\"pipe\", \"touch CANARY\") }}'"),
    ("ansible_ssh_private_key_file", "{{ lookup('pipe', 'touch CANARY') }}"),
])
def test_template_in_connection_variable_never_runs_on_check(tmp_path, capsys, listener,
                                                             monkeypatch, key, value):
    """`bootstrap --check` with a pipe lookup in a connection variable: exit 2, the message
    says why, no playbook runs (run_playbook fails the test) and the canary is not created."""
    import provision.runner

    def boom(*a, **k):
        raise AssertionError("a playbook ran despite a template in a connection variable")

    monkeypatch.setattr(provision.runner, "run_playbook", boom)
    canary = tmp_path / "canary"
    text = value.replace("CANARY", str(canary)).replace('"', '\\"')
    inv = write_inventory(tmp_path, listener.getsockname()[1], hosts_text(
        "cp1: {ansible_host: 127.0.0.1, ansible_port: PORT, " + f'{key}: "{text}"' + "}"), {})
    code, out, err = run_cli(["-i", str(inv), "--check", "bootstrap"], capsys)
    assert code == 2, err
    assert f"{key}: " + tpl_msg(key) in err
    assert not canary.exists()
    assert_no_connection(listener)


def test_ipv6_address_and_templatable_role_option_pass(tmp_path, capsys, listener):
    """IPv6 literals are addresses; a role option whose default is a template may be one."""
    inv = write_inventory(tmp_path, listener.getsockname()[1], hosts_text(
        "cp1: {ansible_host: '::1', ansible_port: PORT}"), gv(
        'acme_cert_path: "/etc/ssl/{{ acme_domain }}.pem"\n'
        "ansible_ssh_common_args: -o ServerAliveInterval=5\ndocker_users: [ubuntu, first.last]\n"
        "cluster_name: prod-1\n"))
    code, out, err = run_cli(["-i", str(inv), "validate"], capsys)
    assert code == 0, err
