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
    # every node: flannel's images (ghcr.io) and cert-manager's (quay.io: pods run anywhere)
    assert cp.urls == (n.PKGS_K8S, n.REGISTRY_K8S, n.GHCR, n.QUAY, n.RAW_GITHUB, n.GITHUB,
                       n.GITHUB_ASSETS)
    assert w.urls == (n.PKGS_K8S, n.REGISTRY_K8S, n.GHCR, n.QUAY)
    assert "flannel's images (ghcr.io/flannel-io)" in dict(w.needs)[n.GHCR]
    assert n.DOWNLOAD_DOCKER not in cp.urls  # docker_source: distro downloads nothing there


def test_every_node_needs_the_registries_of_the_pods_it_may_run(tmp_path):
    """The CNI's, MetalLB speaker's and cert-manager's image registries are needed on every
    node (DaemonSets, or Deployments that land anywhere); one URL, its reasons joined."""
    base = dict(mode="kubeadm", docker_source="distro", control_plane=False,
                first_control_plane=False, ingress=True)
    calico = dict(n.needed_urls(**base, metallb_pool=True, cni_plugin="calico"))
    assert n.GHCR not in calico
    assert calico[n.QUAY] == ("calico's images (quay.io/calico, cni_plugin: calico); MetalLB's "
                              "speaker image (quay.io/metallb, a DaemonSet on every node); "
                              "cert-manager's images (quay.io/jetstack; its pods run on any "
                              "node)")
    mirror = dict(n.needed_urls(**base, metallb_pool=False,
                                flannel_image_repository="mirror.example:5000/flannel-io",
                                cert_manager=False))
    assert "https://mirror.example:5000/v2/" in mirror and n.QUAY not in mirror
    assert n.image_registry_url("flannel-io/flannel") == "https://registry-1.docker.io/v2/"
    assert n.image_registry_url("flannel") == "https://registry-1.docker.io/v2/"
    inv_text = (tmp_path / "hosts.yml")
    _inventory(tmp_path, "kubeadm")
    inv_text.write_text(inv_text.read_text().replace(
        "    provision_mode: kubeadm\n",
        "    provision_mode: kubeadm\n    cni_flannel_image_repository: m.example/flannel\n"))
    w = host_spec(load_inventory(str(inv_text)).hosts["w1"], None)
    assert "https://m.example/v2/" in w.urls and n.GHCR not in w.urls


def test_the_registries_are_those_of_the_pinned_manifests():
    """What doctor probes is where the pinned releases' manifests pull from (their reduced
    copies under tests/data) and what roles/cni pulls flannel from by default."""
    import inspect
    from pathlib import Path

    import yaml

    root = Path(__file__).resolve().parent.parent
    data = root / "tests" / "data"
    default = inspect.signature(n.needed_urls).parameters["flannel_image_repository"].default
    assert yaml.safe_load((root / "roles/cni/defaults/main.yml").read_text())[
        "cni_flannel_image_repository"] == default
    assert "image: ghcr.io/flannel-io/" in (data / "cni/kube-flannel-v0.28.9.yml").read_text()
    assert "image: quay.io/calico/node:" in (data / "cni/calico-v3.32.1.yaml").read_text()
    assert "image: quay.io/metallb/speaker:" in (
        data / "addons/metallb-native-v0.16.1.yaml").read_text()


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
