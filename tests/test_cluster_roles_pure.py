"""Pure pieces of the cluster roles: the package version choice (kubernetes_packages) and the
join-command parsing (kubeadm_worker). No hosts, no Ansible run."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

ROLES = Path(__file__).resolve().parent.parent / "roles"


def load(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


versions = load(ROLES / "kubernetes_packages/filter_plugins/k8s_versions.py")
join = load(ROLES / "kubeadm_worker/filter_plugins/kubeadm_join.py")

# `apt-cache madison kubeadm` against a pkgs.k8s.io-style per-minor repository
MADISON = """\
   kubeadm | 1.31.10-1.1 | https://pkgs.k8s.io/core:/stable:/v1.31/deb  Packages
   kubeadm | 1.31.3-1.1 | https://pkgs.k8s.io/core:/stable:/v1.31/deb  Packages
   kubeadm | 1.31.2-1.1 | https://pkgs.k8s.io/core:/stable:/v1.31/deb  Packages
   kubeadm | 1.31.2-1.0 | https://pkgs.k8s.io/core:/stable:/v1.31/deb  Packages
"""


@pytest.mark.parametrize(("requested", "installed", "expected"), [
    ("1.31", "", "1.31.10-1.1"),            # newest patch, numerically (10 > 3)
    ("1.31.2", "", "1.31.2-1.1"),           # exact release, highest Debian revision
    ("1.31", "1.31.2-1.1", "1.31.2-1.1"),   # a rerun keeps the installed patch
    ("1.31.3", "1.31.2-1.1", "1.31.3-1.1"),  # an explicit patch wins over the installed one
    ("1.31", "1.30.6-1.1", "1.31.10-1.1"),  # another minor installed: newest of the request
])
def test_k8s_deb_version_choice(requested: str, installed: str, expected: str) -> None:
    assert versions.k8s_deb_version(MADISON, requested, installed) == expected


@pytest.mark.parametrize(("requested", "message"), [
    ("1.31.9", "Kubernetes 1.31.9 is not in the package repository (it offers: 1.31.2, "
               "1.31.3, 1.31.10)"),
    ("1.32", "Kubernetes 1.32 is not in the package repository"),
    ("v1.31", None),
    ("1.31.x", "expected"),
])
def test_k8s_deb_version_refuses_what_the_repository_lacks(requested: str,
                                                          message: str | None) -> None:
    if message is None:  # a leading v is tolerated here (validation refuses it earlier)
        assert versions.k8s_deb_version(MADISON, requested) == "1.31.10-1.1"
        return
    with pytest.raises(Exception, match=message.replace("(", r"\(").replace(")", r"\)")):
        versions.k8s_deb_version(MADISON, requested)


def test_k8s_deb_version_with_an_empty_repository() -> None:
    with pytest.raises(Exception, match="it offers: nothing"):
        versions.k8s_deb_version("", "1.31")


def test_k8s_release() -> None:
    assert versions.k8s_release("1.31.2-1.1") == "1.31.2"


def test_kubeadm_join_params_from_print_join_command() -> None:
    out = ("kubeadm join 10.0.0.10:6443 --token abcdef.0123456789abcdef "
           "--discovery-token-ca-cert-hash sha256:" + "ab" * 32 + " \n")
    assert join.kubeadm_join_params(out) == {
        "endpoint": "10.0.0.10:6443", "token": "abcdef.0123456789abcdef",
        "ca_cert_hash": "sha256:" + "ab" * 32}


def test_kubeadm_join_params_multiline_and_incomplete() -> None:
    out = ("kubeadm join k8s.example.test:6443 --token t.x \\\n\t"
           "--discovery-token-ca-cert-hash sha256:00")
    assert join.kubeadm_join_params(out)["ca_cert_hash"] == "sha256:00"
    assert join.kubeadm_join_params("error: no token") == {"endpoint": "", "token": "",
                                                           "ca_cert_hash": ""}
