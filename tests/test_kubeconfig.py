"""`provision kubeconfig`, the fast part: the pure rename/rewrite/merge (kubeconfig YAML in,
YAML out), --server validation, the private file write, and the usage errors (exit 2, nothing
contacted, nothing written). The fetch from a host is proven in tests/test_kubeconfig_lab.py."""

from __future__ import annotations

import base64
import os
import stat
from pathlib import Path

import pytest
import yaml

from provision import kubeconfig as kc
from provision.cli import main
from provision.commands.kubeconfig import build, write_private

CA, CERT, KEY = (base64.b64encode(x).decode() for x in (b"ca-pem", b"cert-pem", b"key-pem"))
ADMIN_CONF = f"""\
apiVersion: v1
clusters:
- cluster:
    certificate-authority-data: {CA}
    server: https://10.0.0.10:6443
  name: kubernetes
contexts:
- context:
    cluster: kubernetes
    user: kubernetes-admin
  name: kubernetes-admin@kubernetes
current-context: kubernetes-admin@kubernetes
kind: Config
preferences: {{}}
users:
- name: kubernetes-admin
  user:
    client-certificate-data: {CERT}
    client-key-data: {KEY}
"""
# minikube's kubeconfig names files (the profile's certificates), with an extension block
MINIKUBE_CONF = """\
apiVersion: v1
clusters:
- cluster:
    certificate-authority: /home/u/.minikube/ca.crt
    extensions:
    - extension: {provider: minikube.sigs.k8s.io, version: v1.34.0}
      name: cluster_info
    server: https://192.168.49.2:8443
  name: minikube
contexts:
- context: {cluster: minikube, namespace: default, user: minikube}
  name: minikube
current-context: minikube
kind: Config
preferences: {}
users:
- name: minikube
  user:
    client-certificate: /home/u/.minikube/profiles/minikube/client.crt
    client-key: /home/u/.minikube/profiles/minikube/client.key
"""
MINIKUBE_FILES = {"/home/u/.minikube/ca.crt": b"mk-ca",
                  "/home/u/.minikube/profiles/minikube/client.crt": b"mk-cert",
                  "/home/u/.minikube/profiles/minikube/client.key": b"mk-key"}
OTHER = """\
apiVersion: v1
kind: Config
clusters:
- {name: prod, cluster: {server: 'https://prod.example:6443'}}
- {name: other, cluster: {server: 'https://other.example:6443'}}
users:
- {name: prod-admin, user: {token: old}}
- {name: me, user: {token: mine}}
contexts:
- {name: prod, context: {cluster: prod, user: prod-admin}}
- {name: other, context: {cluster: other, user: me}}
current-context: other
preferences: {colors: true}
"""


def rewritten(server: str = "https://203.0.113.10:6443", name: str = "prod",
              tls: str | None = None) -> dict:
    return kc.workstation(kc.load(ADMIN_CONF, "admin.conf"), name, server, "admin.conf",
                          tls_name=tls)


def test_workstation_kubeconfig_names_everything_after_the_cluster_and_rewrites_the_server(
        ) -> None:
    out = yaml.safe_load(kc.dump(rewritten()))
    assert out == {
        "apiVersion": "v1", "kind": "Config",
        "clusters": [{"name": "prod", "cluster": {"certificate-authority-data": CA,
                                                  "server": "https://203.0.113.10:6443"}}],
        "users": [{"name": "prod-admin", "user": {"client-certificate-data": CERT,
                                                  "client-key-data": KEY}}],
        "contexts": [{"name": "prod", "context": {"cluster": "prod", "user": "prod-admin"}}],
        "current-context": "prod", "preferences": {}}
    tunnel = rewritten("https://127.0.0.1:6443", tls="kubernetes")
    assert tunnel["clusters"][0]["cluster"]["tls-server-name"] == "kubernetes"


def test_minikube_certificate_files_are_embedded_and_the_context_chosen() -> None:
    cfg = kc.load(MINIKUBE_CONF, "mk")
    out = kc.workstation(cfg, "lab", "https://127.0.0.1:8443", "mk", MINIKUBE_FILES, "minikube")
    cluster = out["clusters"][0]["cluster"]
    user = out["users"][0]["user"]
    assert base64.b64decode(cluster["certificate-authority-data"]) == b"mk-ca"
    assert "certificate-authority" not in cluster and cluster["extensions"]
    assert {k: base64.b64decode(v) for k, v in user.items()} == {
        "client-certificate-data": b"mk-cert", "client-key-data": b"mk-key"}
    with pytest.raises(kc.KubeconfigError, match="client-key '/home/u/.minikube/profiles/"
                                                 "minikube/client.key' was not read"):
        kc.workstation(cfg, "lab", "https://127.0.0.1:8443", "mk",
                       {k: v for k, v in MINIKUBE_FILES.items() if "key" not in k}, "minikube")


def test_merge_replaces_only_our_entries_and_keeps_the_current_context() -> None:
    existing = kc.load(OTHER, "config")
    merged = yaml.safe_load(kc.dump(kc.merge(existing, rewritten())))
    assert [c["name"] for c in merged["clusters"]] == ["other", "prod"]
    assert [u["name"] for u in merged["users"]] == ["me", "prod-admin"]
    assert [c["name"] for c in merged["contexts"]] == ["other", "prod"]
    assert merged["users"][1]["user"]["client-key-data"] == KEY  # the old token replaced
    assert merged["current-context"] == "other" and merged["preferences"] == {"colors": True}
    assert merged["clusters"][0] == existing["clusters"][1]
    # merging the same again changes nothing; into nothing, ours is current
    assert kc.merge(merged, rewritten()) == merged
    assert kc.merge({}, rewritten())["current-context"] == "prod"


@pytest.mark.parametrize("value, message", [
    ("http://203.0.113.10:6443", "expected https://HOST:PORT"),
    ("https://203.0.113.10", "expected https://HOST:PORT"),
    ("https://203.0.113.10:6443/api", "expected https://HOST:PORT"),
    ("https://u:p@h:6443", "expected https://HOST:PORT"),
    ("https://h:0", "port out of range"),
    ("https://h:99999", "Port out of range"),
    ("https://bad_host$(id):6443", "not an IP address or DNS name"),
    ("https://[::1:6443", "Invalid IPv6 URL"),
    ("https://a.example\n:6443", "ASCII, one line"),
    ("https://ａ.example:6443", "ASCII, one line"),
    ("https://{{ lookup('pipe','id') }}:6443", "no template"),
])
def test_server_is_validated(value: str, message: str) -> None:
    with pytest.raises(kc.KubeconfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        kc.parse_server(value)


def test_server_forms_and_defaults() -> None:
    assert kc.parse_server("https://[2001:db8::1]:6443").url == "https://[2001:db8::1]:6443"
    assert kc.parse_server("https://api.example.com:443/").url == "https://api.example.com:443"
    admin = kc.Server("10.0.0.10", 6443)
    assert kc.default_server(admin, "203.0.113.10", None, False).url == (
        "https://203.0.113.10:6443")
    assert kc.default_server(admin, "203.0.113.10", "lb.example:6443", False) == admin
    assert kc.default_server(kc.Server("192.168.49.2", 8443), "vm", None, True).url == (
        "https://127.0.0.1:8443")
    # tls-server-name only where the certificate does not name the address
    pub = kc.Server("203.0.113.10", 6443)
    assert kc.tls_server_name(pub, admin, [], False) == "kubernetes"
    assert kc.tls_server_name(pub, admin, ["203.0.113.10"], False) is None
    assert kc.tls_server_name(admin, admin, [], False) is None
    assert kc.tls_server_name(kc.Server("127.0.0.1", 6443), admin, [], False) == "kubernetes"
    assert kc.tls_server_name(kc.Server("127.0.0.1", 8443), kc.Server("192.168.49.2", 8443),
                              [], True) is None


@pytest.mark.parametrize("name", ["Prod", "-x", "a/b", "a b", "x" * 64, "", 5, "a_b", "a\n"])
def test_cluster_name_is_validated(name: object) -> None:
    with pytest.raises(kc.KubeconfigError, match="cluster_name"):
        kc.check_name(name)


@pytest.mark.parametrize("text, message", [
    ("- a\n", "not a kubeconfig"), ("kind: Pod\n", "not a kubeconfig"),
    ("clusters: {a: 1}\n", "clusters: expected a list"), ("a: [\n", "not YAML"),
])
def test_bad_kubeconfig_is_named(text: str, message: str) -> None:
    with pytest.raises(kc.KubeconfigError, match=message):
        kc.load(text, "config")


def test_write_private_mode_parents_and_no_rewrite(tmp_path: Path) -> None:
    target = tmp_path / "home" / ".kube" / "config-prod"
    (tmp_path / "home").mkdir(mode=0o755)
    assert write_private(target, "a: 1\n")
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert stat.S_IMODE(target.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE((tmp_path / "home").stat().st_mode) == 0o755  # not ours: untouched
    assert not write_private(target, "a: 1\n")  # same content: nothing written
    assert write_private(target, "a: 2\n") and target.read_text() == "a: 2\n"
    # an existing ~/.kube keeps its mode; a symlinked config is written through
    kube = tmp_path / "k"
    kube.mkdir(mode=0o750)
    real = kube / "real"
    real.write_text("old")
    (kube / "config").symlink_to(real)
    assert write_private(kube / "config", "new\n")
    assert (kube / "config").is_symlink() and real.read_text() == "new\n"
    assert stat.S_IMODE(kube.stat().st_mode) == 0o750
    assert sorted(os.listdir(kube)) == ["config", "real"]  # no temp file left


class _Host:
    name, address, user = "cp1", "203.0.113.10", "ubuntu"
    vars: dict = {}


def test_build_from_a_report_notes_the_tunnel_and_the_certificate_name() -> None:
    report = {"mode": "kubeadm", "kubeconfig": base64.b64encode(ADMIN_CONF.encode()).decode()}
    cfg, extra, notes = build(report, None, _Host(), "prod", None)
    assert cfg["clusters"][0]["cluster"]["server"] == "https://203.0.113.10:6443"
    assert extra == {"tls_server_name": "kubernetes"} and "apiserver_cert_extra_sans" in notes[0]
    cfg, _, notes = build(report, None, _Host(), "prod", kc.parse_server("https://127.0.0.1:6443"))
    assert "ssh -N -L 6443:127.0.0.1:6443 ubuntu@203.0.113.10" in notes[0]
    mk = {"mode": "minikube", "context": "minikube",
          "kubeconfig": base64.b64encode(MINIKUBE_CONF.encode()).decode(),
          "files": {p: base64.b64encode(c).decode() for p, c in MINIKUBE_FILES.items()}}
    cfg, extra, notes = build(mk, None, _Host(), "lab", None)
    assert cfg["clusters"][0]["cluster"]["server"] == "https://127.0.0.1:8443"
    assert extra == {"tls_server_name": None}
    assert notes == ["https://127.0.0.1:8443 is this machine: keep an SSH tunnel open, e.g. "
                     "ssh -N -L 8443:192.168.49.2:8443 ubuntu@203.0.113.10"]


def _inventory(tmp_path: Path, extra: str = "") -> Path:
    inv = tmp_path / "inv"
    inv.mkdir()
    (inv / "hosts.yml").write_text(
        "all:\n  children:\n    control_plane:\n      hosts:\n        cp1:\n"
        f"          ansible_host: 127.0.0.1\n          ansible_user: u\n{extra}")
    return inv


@pytest.mark.parametrize("args, extra, message", [
    (["--server", "https://x:1/p"], "", "--server 'https://x:1/p': expected https://HOST:PORT"),
    (["--limit", "cp1"], "", "--limit"),
    (["--check"], "", "--check"),
    ([], "  vars:\n    cluster_name: Bad/Name\n", "cluster_name: 'Bad/Name' is not"),
    (["--server", "https://a.example\n:6443"], "", "--server"),
    (["--merge"], "", "not a kubeconfig"),
])
def test_usage_errors_exit_2_before_contact(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                            capsys: pytest.CaptureFixture[str], args: list[str],
                                            extra: str, message: str) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    (tmp_path / ".kube").mkdir()
    (tmp_path / ".kube" / "config").write_text("- not a kubeconfig\n")
    inv = _inventory(tmp_path, extra)
    with pytest.raises(SystemExit) as exc:
        main(["-i", str(inv), "kubeconfig", *args])
    assert exc.value.code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "state" / "provision" / "runs").exists()  # nothing ran
    assert sorted(os.listdir(tmp_path / ".kube")) == ["config"]


def test_bootstrap_prints_the_kubeconfig_command_when_it_built_the_cluster() -> None:
    from provision.commands.bootstrap import kubeconfig_hint
    from provision.context import Options

    hint = kubeconfig_hint(Options(inventory="my inv"), ["base", "containerd", "cluster"])
    assert hint is not None and "provision -i 'my inv' kubeconfig" in hint
    assert kubeconfig_hint(Options(), ["cluster"]).startswith(  # type: ignore[union-attr]
        "Use kubectl from this machine: provision kubeconfig")
    assert kubeconfig_hint(Options(inventory="prod"), ["base", "docker"]) is None
