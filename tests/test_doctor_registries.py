"""doctor checks the download hosts the inventory's components need, and an unreachable one
is a FAIL (bootstrap would certainly fail), not a WARN; hosts nothing downloads from are not
checked (download.docker.com with docker_source: distro)."""

from __future__ import annotations

import pytest

from provision.doctor import netchecks as n
from provision.doctor.engine import host_spec
from provision.doctor.model import FAIL, PASS, WARN, HostSpec
from provision.inventory import load_inventory

UNREACHABLE = "6 000\tcurl: (6) Could not resolve host"


def _inventory(tmp_path, mode: str, docker_source: str = "distro", workers: bool = True):
    (tmp_path / "key").write_text("k")
    text = (f"all:\n  vars:\n    provision_mode: {mode}\n    docker_source: {docker_source}\n"
            f"    ansible_ssh_private_key_file: {tmp_path / 'key'}\n"
            "  children:\n    control_plane:\n      hosts:\n"
            "        cp1: {ansible_host: 10.0.0.1}\n")
    if workers:
        text += "    workers:\n      hosts:\n        w1: {ansible_host: 10.0.0.2}\n"
    (tmp_path / "hosts.yml").write_text(text)
    return load_inventory(str(tmp_path / "hosts.yml"))


def test_kubeadm_needs_pkgs_registry_and_github_for_the_addons(tmp_path):
    inv = _inventory(tmp_path, "kubeadm")
    cp = host_spec(inv.hosts["cp1"], None, first_control_plane=True)
    w = host_spec(inv.hosts["w1"], None)
    assert cp.urls == (n.PKGS_K8S, n.REGISTRY_K8S, n.RAW_GITHUB, n.GITHUB, n.GITHUB_ASSETS)
    assert w.urls == (n.PKGS_K8S, n.REGISTRY_K8S)
    assert n.DOWNLOAD_DOCKER not in cp.urls  # docker_source: distro downloads nothing there


def test_minikube_needs_github_dl_k8s_and_registry_and_docker_ce_adds_docker(tmp_path):
    inv = _inventory(tmp_path, "minikube", workers=False)
    mk = host_spec(inv.hosts["cp1"], None, first_control_plane=True)
    # minikube's own downloads too: its release asset host, node image and preload tarball
    assert mk.urls == (n.GITHUB, n.GITHUB_ASSETS, n.DL_K8S, n.REGISTRY_K8S,
                       n.MINIKUBE_BASE_IMAGE, n.MINIKUBE_PRELOAD)
    inv = _inventory(tmp_path, "minikube", "docker-ce", workers=False)
    mk = host_spec(inv.hosts["cp1"], None, first_control_plane=True)
    assert mk.urls[0] == n.DOWNLOAD_DOCKER and "docker-ce packages" in dict(mk.needs)[
        n.DOWNLOAD_DOCKER]


def test_explicit_urls_are_checked_as_given_and_only_warn(tmp_path):
    inv = _inventory(tmp_path, "kubeadm")
    spec = host_spec(inv.hosts["cp1"], ["https://mirror.example/"])
    assert spec.urls == ("https://mirror.example/",) and spec.needs == ()
    [r] = n.check_urls(spec, {"urls": f"https://mirror.example/\t{UNREACHABLE}"})
    assert r.status == WARN


@pytest.mark.parametrize(("line", "status"), [
    (UNREACHABLE, FAIL), ("28 000\tcurl: (28) Connection timed out", FAIL),
    ("0 403\t", FAIL), ("0 200\t", PASS), ("0 503\t", WARN),
    ("0 401\t", PASS), ("0 404\t", PASS)])  # a registry's token challenge: the host answers
def test_a_needed_url_that_cannot_be_had_fails(line, status):
    spec = HostSpec("cp1", urls=(n.PKGS_K8S,),
                    needs=((n.PKGS_K8S, "kubeadm, kubelet and kubectl packages"),))
    [r] = n.check_urls(spec, {"urls": f"{n.PKGS_K8S}\t{line}"})
    assert r.status == status
    if status == FAIL:
        assert "kubeadm mode needs it for kubeadm, kubelet and kubectl packages" in r.message


def test_a_github_mirror_replaces_the_release_asset_host_too(tmp_path):
    """With github_url set the mirror serves release files itself: doctor does not probe
    GitHub's release-asset host (nothing redirects there)."""
    from provision.doctor import mirrors

    needs = n.needed_urls(mode="minikube", docker_source="distro", control_plane=True,
                          first_control_plane=True, ingress=False, metallb_pool=False)
    assert n.GITHUB_ASSETS in [u for u, _ in mirrors.mirrored(needs, {}, mode="minikube")]
    mirrored = [u for u, _ in mirrors.mirrored(
        needs, {"github_url": "https://mirror.example/gh"}, mode="minikube")]
    assert n.GITHUB_ASSETS not in mirrored and "https://mirror.example/gh/" in mirrored
