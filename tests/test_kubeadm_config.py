"""The kubeadm configuration the kubeadm_control_plane role renders, for 1.29, 1.30, 1.31, the
default minor for new clusters (the schema's kubernetes_version, provision/pins.py) and the newest
release, checked field by field against the simulator's per-version kubeadm schema
(tests/simulator/rules.py, the rules of the real kubeadm of that release) and against golden
files in tests/golden/kubeadm/.

The template is rendered by a real Ansible run (tests/playbooks/render-kubeadm-config.yml) with
the role's defaults and vars. Regenerate the golden files after an intended template change
with ``PROVISION_UPDATE_GOLDEN=1 pytest tests/test_kubeadm_config.py``.
"""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path
from typing import Any

import pytest
import yaml
from simulator import rules
from simulator.rules import RuleError, Version

from provision.runner import run_playbook
from provision.schema import BY_NAME

REPO = Path(__file__).resolve().parent.parent
GOLDEN = Path(__file__).parent / "golden" / "kubeadm"
PLAYBOOK = str(Path(__file__).parent / "playbooks" / "render-kubeadm-config.yml")
NEWEST = rules.RELEASES[max(rules.RELEASES)][-1]
DEFAULT_MINOR = str(BY_NAME["kubernetes_version"].default)
DEFAULT = rules.RELEASES[int(DEFAULT_MINOR.split(".")[1])][-1]

# One case per release; each exercises a different set of options.
CASES: dict[str, dict[str, Any]] = {
    "1.29-defaults": {"kubernetes_packages_release": rules.RELEASES[29][-1]},
    "1.30-ipvs-metallb": {"kubernetes_packages_release": rules.RELEASES[30][-1],
                          "kube_proxy_mode": "ipvs", "metallb_addresses": ["10.0.0.240/28"]},
    "1.31-lb-endpoint": {"kubernetes_packages_release": rules.RELEASES[31][-1],
                         "control_plane_endpoint": "k8s.example.test:6443",
                         "apiserver_cert_extra_sans": ["k8s.example.test", "198.51.100.7"],
                         "pod_cidr": "10.32.0.0/16", "service_cidr": "10.112.0.0/12",
                         "cluster_name": "prod"},
    f"{DEFAULT_MINOR}-default-minor": {"kubernetes_packages_release": DEFAULT},
    f"{'.'.join(NEWEST.split('.')[:2])}-untainted": {
        "kubernetes_packages_release": NEWEST, "kubeadm_control_plane_schedulable": True,
        "kube_proxy_mode": "ipvs"},
}

INVENTORY = """\
all:
  children:
    control_plane:
      hosts:
        cp1: {ansible_host: 203.0.113.10, ansible_connection: local}
        cp2: {ansible_host: 203.0.113.11, ansible_connection: local}
    workers:
      hosts:
        w1: {ansible_host: 203.0.113.20, ansible_connection: local}
"""
HOST_VARS = {"kubeadm_control_plane_advertise_address": "10.0.0.10",
             "kubeadm_control_plane_node_name": "cp1"}


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Every case rendered by a real Ansible run: case -> file text."""
    import sys

    base = tmp_path_factory.mktemp("kubeadm-config")
    inv = base / "hosts.yml"
    inv.write_text(INVENTORY)
    out: dict[str, str] = {}
    for case, values in CASES.items():
        dest = base / f"{case}.yaml"
        result = run_playbook(command="test-render", playbook=PLAYBOOK, inventory=inv,
                              extravars={**HOST_VARS, **values, "render_dest": str(dest),
                                         "ansible_python_interpreter": sys.executable},
                              quiet=True)
        assert result.ok, f"{case}: rendering failed: {result.errors}\n" \
                          f"{result.log_path.read_text()[-3000:]}"
        out[case] = dest.read_text()
    return out


def docs_of(text: str) -> dict[str, dict]:
    return {d["kind"]: d for d in yaml.safe_load_all(text) if d}


@pytest.mark.parametrize("case", CASES)
def test_kubeadm_config_matches_golden_file(rendered: dict[str, str], case: str) -> None:
    """The rendered file is byte-for-byte the reviewed golden file."""
    golden = GOLDEN / f"{case}.yaml"
    if os.environ.get("PROVISION_UPDATE_GOLDEN"):
        golden.parent.mkdir(parents=True, exist_ok=True)
        golden.write_text(rendered[case])
    assert golden.is_file(), f"missing {golden}: run with PROVISION_UPDATE_GOLDEN=1 and review"
    assert rendered[case] == golden.read_text(), f"{case}: differs from {golden}"


@pytest.mark.parametrize("case", CASES)
def test_kubeadm_config_passes_the_simulator_schema_of_its_release(rendered: dict[str, str],
                                                                   case: str) -> None:
    """Strict validation (`kubeadm config validate` rules of that release): known apiVersion,
    every field known, no deprecation warning."""
    release = Version.parse(CASES[case]["kubernetes_packages_release"])
    docs = list(yaml.safe_load_all(rendered[case]))
    check = rules.validate_kubeadm_config(docs, release, strict=True, source=case)
    assert check.warnings == [], f"{case}: {check.warnings}"
    assert set(check.documents) == {"InitConfiguration", "ClusterConfiguration",
                                    "KubeletConfiguration", "KubeProxyConfiguration"}


@pytest.mark.parametrize("case", CASES)
def test_kubeadm_config_fields(rendered: dict[str, str], case: str) -> None:
    """Field by field: API version of the release, explicit version, registry, CIDRs, SANs,
    cgroup driver, kube-proxy mode and strictARP, taints."""
    values = CASES[case]
    release = Version.parse(values["kubernetes_packages_release"])
    docs = docs_of(rendered[case])
    init, cluster = docs["InitConfiguration"], docs["ClusterConfiguration"]
    api = rules.expected_kubeadm_api(release)
    assert init["apiVersion"] == cluster["apiVersion"] == api
    assert api == ("kubeadm.k8s.io/v1beta4" if release.minor >= 31 else "kubeadm.k8s.io/v1beta3")
    assert cluster["kubernetesVersion"] == str(release)  # never a label like stable-1
    assert cluster["imageRepository"] == "registry.k8s.io"
    assert cluster["clusterName"] == values.get("cluster_name", "provision")
    pod = values.get("pod_cidr", "10.244.0.0/16")
    svc = values.get("service_cidr", "10.96.0.0/12")
    assert cluster["networking"] == {"podSubnet": pod, "serviceSubnet": svc,
                                     "dnsDomain": "cluster.local"}
    assert not ipaddress.ip_network(pod).overlaps(ipaddress.ip_network(svc))
    endpoint = values.get("control_plane_endpoint", "10.0.0.10:6443")
    assert cluster["controlPlaneEndpoint"] == endpoint
    sans = cluster["apiServer"]["certSANs"]
    # every control plane's SSH address (the OCI public IP) and the endpoint host are SANs
    assert {"203.0.113.10", "203.0.113.11", endpoint.rsplit(":", 1)[0]} <= set(sans)
    assert set(values.get("apiserver_cert_extra_sans", [])) <= set(sans)
    assert len(sans) == len(set(sans))
    assert init["localAPIEndpoint"] == {"advertiseAddress": "10.0.0.10", "bindPort": 6443}
    assert init["nodeRegistration"]["name"] == "cp1"
    assert init["nodeRegistration"]["criSocket"] == "unix:///var/run/containerd/containerd.sock"
    if values.get("kubeadm_control_plane_schedulable"):
        assert init["nodeRegistration"]["taints"] == []
    else:
        assert "taints" not in init["nodeRegistration"]  # kubeadm's control-plane taint
    assert docs["KubeletConfiguration"]["cgroupDriver"] == "systemd"
    proxy = docs["KubeProxyConfiguration"]
    mode = values.get("kube_proxy_mode", "iptables")
    assert proxy["mode"] == mode and proxy["clusterCIDR"] == pod
    if mode == "ipvs":
        assert proxy["ipvs"]["strictARP"] is bool(values.get("metallb_addresses"))
    else:
        assert "ipvs" not in proxy


def test_kubeadm_config_api_version_is_the_one_each_release_reads(rendered: dict[str, str]
                                                                 ) -> None:
    """The version choice matters: kubeadm 1.30 refuses the 1.31 file (v1beta4 is experimental
    there) and kubeadm 1.31 only accepts the 1.30 file with a deprecation warning."""
    v130, v131 = (Version.parse(rules.RELEASES[m][-1]) for m in (30, 31))
    new_file = list(yaml.safe_load_all(rendered["1.31-lb-endpoint"]))
    with pytest.raises(RuleError, match="experimental API spec"):
        rules.validate_kubeadm_config(new_file, v130, strict=True)
    old_file = list(yaml.safe_load_all(rendered["1.30-ipvs-metallb"]))
    check = rules.validate_kubeadm_config(old_file, v131, strict=True)
    assert any("deprecated API spec" in w for w in check.warnings)
    newest = Version.parse(NEWEST)
    if newest.minor >= 36:  # v1beta3 removed (kubernetes/kubernetes PR #136016)
        with pytest.raises(RuleError, match="old API spec"):
            rules.validate_kubeadm_config(old_file, newest, strict=True)


def test_kubeadm_config_without_metallb_strict_arp_is_refused_by_validation() -> None:
    """The template never sees strictARP off with IPVS and MetalLB: inventory validation
    (provision/validate.py) refuses that combination first (see test_cluster_inventory.py)."""
    from provision.validate import check_value  # noqa: F401 - the validator is importable
    text = (REPO / "roles/kubeadm_control_plane/templates/kubeadm-config.yaml.j2").read_text()
    assert "strictARP" in text and "kubernetesVersion: v{{" in text
