"""Bad inventories for the cluster layer are refused before any host is touched (exit 2, one
message naming file, host/group and key): pod CIDR containing a node address, IPVS with MetalLB
and strictARP forced off, a Kubernetes version that is not a valid release, and the cluster
roles' own options (declared in their meta/argument_specs.yml, which validation reads), and
add-on settings that cannot work together (ingress-nginx's LoadBalancer Service without a
MetalLB pool, when bootstrap's default components include the add-ons).

Same pattern as tests/test_inventory_validation.py: every host is a loopback listener that must
see no connection, and paramiko/ansible-runner fail loudly if used.
"""

from __future__ import annotations

import pytest
from test_inventory_validation import (  # noqa: F401 - fixtures
    ONE_CP,
    assert_refused,
    gv,
    host,
    hosts_text,
    listener,
    no_contact,
)

CP_AND_WORKER = hosts_text(host("cp1"), workers=(host("w1", "10.244.3.7"),))


# (id, hosts.yml, extra files, expected message with {inv} for the inventory dir)
CASES = [
    ("pod-cidr-contains-worker", CP_AND_WORKER, {},
     "{inv}/hosts.yml: host cp1: pod_cidr 10.244.0.0/16 contains the address 10.244.3.7 of "
     "host w1: "
     "pods would shadow the node network"),
    ("pod-cidr-contains-control-plane", ONE_CP, gv("pod_cidr: 127.0.0.0/16\n"),
     "{inv}/group_vars/all.yml:1: group all: pod_cidr 127.0.0.0/16 contains the address "
     "127.0.0.1 of host cp1: pods would shadow the node network"),
    ("ipvs-metallb-strictarp-off", ONE_CP,
     gv("kube_proxy_mode: ipvs\nmetallb_addresses: [10.0.0.240/28]\n"
        "metallb_strict_arp: false\n"),
     "{inv}/group_vars/all.yml:3: group all: host cp1: metallb_strict_arp: false with "
     "kube_proxy_mode ipvs and MetalLB addresses: MetalLB requires strictARP with IPVS"),
    ("version-not-a-release", ONE_CP, gv('kubernetes_version: "1.99"\n'),
     "{inv}/group_vars/all.yml:1: group all: kubernetes_version: '1.99' is not a Kubernetes "
     "release provision supports (1.28 to 1.37)"),
    ("version-with-v", ONE_CP, gv('kubernetes_version: "v1.31.2"\n'),
     "{inv}/group_vars/all.yml:1: group all: kubernetes_version: malformed version 'v1.31.2': "
     'expected "1.31" or "1.31.2" (no leading v)'),
    ("cni-unknown", ONE_CP, gv("cni_plugin: cilium\n"),
     "{inv}/group_vars/all.yml:1: group all: cni_plugin: 'cilium' is not one of: flannel, "
     "calico"),
    ("role-option-typo", ONE_CP, gv("kubernetes_packages_repo: http://mirror.invalid/\n"),
     "{inv}/group_vars/all.yml:1: group all: kubernetes_packages_repo: unknown variable; "
     "did you mean kubernetes_packages_repo_url?"),
    ("role-option-type", ONE_CP, gv("kubeadm_control_plane_bind_port: '6443'\n"),
     "{inv}/group_vars/all.yml:1: group all: kubeadm_control_plane_bind_port: expected an "
     "integer, got a string '6443'"),
    ("ingress-loadbalancer-without-pool", ONE_CP, gv("kubernetes_version: '1.31'\n"),
     "{inv}/hosts.yml: host cp1: ingress_nginx_service_mode: LoadBalancer needs a MetalLB "
     "address pool (metallb_addresses or metallb_pools); set one, or choose NodePort or "
     "hostNetwork for a single VM, or ingress_nginx_enabled: false"),
    ("minikube-cpus-type", ONE_CP, gv("provision_mode: minikube\nminikube_cpus: two\n"),
     "{inv}/group_vars/all.yml:2: group all: minikube_cpus: expected an integer, got a "
     "string 'two'"),
]


@pytest.mark.parametrize(("hosts_yml", "files", "expected"),
                         [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_cluster_inventory_is_refused_before_contact(tmp_path, capsys, listener,  # noqa: F811
                                                         no_contact,  # noqa: F811
                                                         hosts_yml, files, expected):
    assert_refused(tmp_path, capsys, listener, ["bootstrap"], hosts_yml, files, expected)
