"""`provision etcd restore`: the pure manifest edits and the controller-side refusals.

Fast: the etcd_restore role's filters on kubeadm's etcd manifest (tests/etcd_support.py writes
the shape kubeadm 1.31 writes) and on the kubeadm-config ConfigMap's ClusterConfiguration (with
the simulator's kubeadm/kubectl on a local simulated node: the simulated `kubeadm upgrade node`
writes etcd.yaml from the replaced ConfigMap), and bad input (a missing snapshot, a checksum
that does not match its sidecar, a file that is not a snapshot, no confirmation off a
terminal), which must exit 2 before any host is contacted. The restore itself against a real etcd:
tests/test_etcd_backup_tool.py (the node tool) and tests/test_etcd_restore_lab.py (the role).
"""

from __future__ import annotations

import copy
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from etcd_support import kubeadm_etcd_manifest  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location(
    "etcd_restore_filters", REPO / "roles/etcd_restore/filter_plugins/etcd_restore.py")
assert _spec and _spec.loader
f = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(f)


def test_member_is_read_from_kubeadm_manifest():
    pod = kubeadm_etcd_manifest("cp1", "10.0.0.11")
    assert f.etcd_manifest_member(pod) == {
        "name": "cp1", "peer_url": "https://10.0.0.11:2380", "data_dir": "/var/lib/etcd",
        "client_url": "https://10.0.0.11:2379"}


def test_point_changes_the_three_data_dir_places_and_the_cluster_flags_only():
    pod = kubeadm_etcd_manifest("cp1", "10.0.0.11")
    original = copy.deepcopy(pod)
    cluster = "cp1=https://10.0.0.11:2380,cp2=https://10.0.0.12:2380"
    new = f.etcd_manifest_point(pod, "/var/lib/etcd-restored-x", "restore-1", cluster)
    assert pod == original, "the input manifest was modified"
    c_old, c_new = original["spec"]["containers"][0], new["spec"]["containers"][0]
    changed = set(c_new["command"]) - set(c_old["command"])
    assert changed == {"--data-dir=/var/lib/etcd-restored-x",
                       "--initial-cluster-token=restore-1", f"--initial-cluster={cluster}"}
    assert len(c_new["command"]) == len(c_old["command"]) + 1  # the token flag is new
    assert c_new["volumeMounts"][0] == {"mountPath": "/var/lib/etcd-restored-x",
                                        "name": "etcd-data"}
    assert c_new["volumeMounts"][1] == c_old["volumeMounts"][1]  # the certificates stay
    vols = {v["name"]: v["hostPath"]["path"] for v in new["spec"]["volumes"]}
    assert vols == {"etcd-certs": "/etc/kubernetes/pki/etcd",
                    "etcd-data": "/var/lib/etcd-restored-x"}
    assert f.etcd_manifest_member(new)["data_dir"] == "/var/lib/etcd-restored-x"


def test_point_replaces_an_existing_token_and_a_joined_members_state():
    pod = kubeadm_etcd_manifest("cp2", "10.0.0.12")
    cmd = pod["spec"]["containers"][0]["command"]
    cmd += ["--initial-cluster-token=old", "--initial-cluster-state=existing"]
    new = f.etcd_manifest_point(pod, "/d", "restore-2", "cp2=https://10.0.0.12:2380")
    flags = [a for a in new["spec"]["containers"][0]["command"] if "initial-cluster-" in a]
    assert flags == ["--initial-cluster-token=restore-2", "--initial-cluster-state=new"]


@pytest.mark.parametrize(("pod", "message"), [
    ({"spec": {}}, "container command"),
    ({"spec": {"containers": [{"name": "x", "command": ["kube-apiserver"]}]}}, "does not run"),
    ({"spec": {"containers": [{"name": "etcd", "command": ["etcd", "--name=a"]}]}},
     "--initial-advertise-peer-urls"),
])
def test_manifests_that_are_not_etcd_pods_are_refused(pod, message):
    with pytest.raises(f.ManifestError, match=message):
        f.etcd_manifest_member(pod)


def test_point_refuses_a_relative_dir_or_no_member_list():
    pod = kubeadm_etcd_manifest("cp1", "10.0.0.11")
    with pytest.raises(f.ManifestError, match="absolute"):
        f.etcd_manifest_point(pod, "var/lib/x", "t", "cp1=https://10.0.0.11:2380")
    with pytest.raises(f.ManifestError, match="initial-cluster"):
        f.etcd_manifest_point(pod, "/x", "t", "")


def test_new_data_dir_is_one_per_snapshot():
    d = f.etcd_restore_data_dir
    assert d("etcd-prod-cp-1-20261121T030000Z.db") == "/var/lib/etcd-restored-20261121T030000Z"
    assert d("/b/etcd-prod-cp1-20261121T030000Z-pre.upgrade.db", "/srv/") == \
        "/srv/etcd-restored-20261121T030000Z-pre.upgrade"
    with pytest.raises(f.ManifestError, match="not a snapshot name"):
        d("backup.db")


# --- kubeadm-config: etcd.local.dataDir, the one field kubeadm upgrade rebuilds etcd.yaml from --

CCFG = """\
apiServer: {}
apiVersion: kubeadm.k8s.io/v1beta4
certificatesDir: /etc/kubernetes/pki
clusterName: kubernetes
controllerManager: {}
etcd:
  local:
    dataDir: /var/lib/etcd   # kubeadm's default
    extraArgs:
    - name: quota-backend-bytes
      value: "8589934592"
imageRepository: registry.k8s.io
kind: ClusterConfiguration
kubernetesVersion: v1.31.2
networking:
  dnsDomain: cluster.local
  serviceSubnet: 10.96.0.0/12
"""


def test_data_dir_filter_changes_one_line_only():
    import yaml

    new = f.kubeadm_config_data_dir(CCFG, "/var/lib/etcd-restored-20261121T030000Z")
    changed = [(a, b) for a, b in zip(CCFG.splitlines(), new.splitlines(), strict=True) if a != b]
    comment = "   # kubeadm's default"
    assert changed == [("    dataDir: /var/lib/etcd" + comment,
                        "    dataDir: /var/lib/etcd-restored-20261121T030000Z" + comment)]
    want = yaml.safe_load(CCFG)
    want["etcd"]["local"]["dataDir"] = "/var/lib/etcd-restored-20261121T030000Z"
    assert yaml.safe_load(new) == want
    # already right: the very same text, so the role changes nothing (idempotent)
    assert f.kubeadm_config_data_dir(new, "/var/lib/etcd-restored-20261121T030000Z") is new


@pytest.mark.parametrize(("text", "want"), [
    ("kind: ClusterConfiguration\netcd: {local: {dataDir: /var/lib/etcd}}\n",
     {"kind": "ClusterConfiguration", "etcd": {"local": {"dataDir": "/d"}}}),
    ("kind: ClusterConfiguration\nclusterName: c\n",
     {"kind": "ClusterConfiguration", "clusterName": "c", "etcd": {"local": {"dataDir": "/d"}}}),
    ("kind: ClusterConfiguration\netcd:\n  local:\n    dataDir: '/var/lib/etcd'\n",
     {"kind": "ClusterConfiguration", "etcd": {"local": {"dataDir": "/d"}}}),
])
def test_data_dir_filter_in_other_forms(text, want):
    import yaml

    assert yaml.safe_load(f.kubeadm_config_data_dir(text, "/d")) == want


def test_data_dir_filter_quotes_a_dir_which_is_not_a_plain_scalar():
    import yaml

    new = f.kubeadm_config_data_dir(CCFG, "/var/lib/a: b #c")
    assert yaml.safe_load(new)["etcd"]["local"]["dataDir"] == "/var/lib/a: b #c"


@pytest.mark.parametrize(("text", "data_dir", "message"), [
    ("kind: ClusterConfiguration\netcd:\n  external:\n    endpoints: [https://e:2379]\n",
     "/d", "etcd.external"),
    (CCFG, "var/lib/etcd-new", "not an absolute path"),
    ("kind: InitConfiguration\n", "/d", "not a kubeadm ClusterConfiguration"),
    ("- a\n- b\n", "/d", "not a kubeadm ClusterConfiguration"),
    ("kind: [\n", "/d", "not YAML"),
])
def test_data_dir_filter_refusals(text, data_dir, message):
    with pytest.raises(f.ManifestError, match=message):
        f.kubeadm_config_data_dir(text, data_dir)


def test_simulated_kubeadm_upgrade_follows_the_replaced_kubeadm_config(sim_local, tmp_path):
    """Simulator: kubeadm init, the ConfigMap changed like the role does it (kubectl get -o
    json, the filter, kubectl replace with the resourceVersion read), then `kubeadm upgrade
    node` writes etcd.yaml from it: its --data-dir is the new dir.
    A replace with a stale resourceVersion is a conflict and changes nothing."""
    import yaml

    cp = sim_local.node("cp1", "1.31.2")
    cfg = tmp_path / "init.yaml"
    cfg.write_text("apiVersion: kubeadm.k8s.io/v1beta4\nkind: InitConfiguration\n"
                   "nodeRegistration: {name: cp1}\nlocalAPIEndpoint: {advertiseAddress: "
                   "192.0.2.10}\n---\napiVersion: kubeadm.k8s.io/v1beta4\n"
                   "kind: ClusterConfiguration\nkubernetesVersion: v1.31.2\n")
    init = cp.run("kubeadm", "init", "--config", str(cfg))
    assert init.returncode == 0, init.stderr
    manifest = cp.path("/etc/kubernetes/manifests/etcd.yaml")
    assert "--data-dir=/var/lib/etcd" in yaml.safe_load(manifest.read_text())["spec"][
        "containers"][0]["command"]

    def get() -> dict:
        got = cp.kubectl("-n", "kube-system", "get", "configmap", "kubeadm-config", "-o", "json")
        assert got.returncode == 0, got.stderr
        return json.loads(got.stdout)

    cm = get()
    old_text = cm["data"]["ClusterConfiguration"]
    new_dir = "/var/lib/etcd-restored-20261121T030000Z"
    new_text = f.kubeadm_config_data_dir(old_text, new_dir)
    assert new_text != old_text
    edited = tmp_path / "cm.json"
    edited.write_text(json.dumps({**cm, "data": {**cm["data"], "ClusterConfiguration": new_text}}))
    rep = cp.kubectl("replace", "-f", str(edited))
    assert rep.returncode == 0 and rep.stdout.strip() == "configmap/kubeadm-config replaced", rep
    after = get()
    assert after["data"]["ClusterConfiguration"] == new_text
    assert after["metadata"]["resourceVersion"] != cm["metadata"]["resourceVersion"]
    stale = cp.kubectl("replace", "-f", str(edited))
    assert stale.returncode == 1 and "(Conflict)" in stale.stderr, stale
    assert get()["metadata"]["resourceVersion"] == after["metadata"]["resourceVersion"]
    assert f.kubeadm_config_data_dir(new_text, new_dir) is new_text

    up = cp.run("kubeadm", "upgrade", "node")
    assert up.returncode == 0, up.stderr
    pod = yaml.safe_load(manifest.read_text())
    assert f"--data-dir={new_dir}" in pod["spec"]["containers"][0]["command"]


# --- the CLI refuses bad input before contacting anything -------------------------------------

def run(tmp_path: Path, *args: str, inventory: Path | None = None
        ) -> subprocess.CompletedProcess[str]:
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "XDG_STATE_HOME": str(tmp_path)}
    inv = inventory or tmp_path / "nowhere"
    return subprocess.run([sys.executable, "-m", "provision", "-i", str(inv), "--json", "etcd",
                           "restore", *args], cwd=REPO, capture_output=True, text=True,
                          env=env, timeout=60, stdin=subprocess.DEVNULL)


def snapshot_pair(d: Path) -> Path:
    from provision.etcd import sidecar

    d.mkdir(parents=True, exist_ok=True)
    db = d / "etcd-lab-cp1-20261121T030000Z.db"
    db.write_bytes(b"\0" * 4096 + b"not really bolt, only hashed here")
    data = sidecar.build(file=db.name, cluster="lab", node="cp1", tag="",
                         created="2026-11-21T03:00:00+00:00", size=db.stat().st_size,
                         sha256=sidecar.sha256_file(db), revision=7, total_keys=9, keys=3,
                         hash=1, etcd_version="3.5.1", cluster_id="1", member_id="2",
                         endpoint="https://127.0.0.1:2379")
    db.with_suffix(".json").write_text(sidecar.dumps(data))
    return db


def assert_refused(cp: subprocess.CompletedProcess[str], tmp_path: Path, *words: str) -> None:
    assert cp.returncode == 2, cp.stderr
    obj = json.loads(cp.stdout)
    text = " ".join(e["message"] for e in obj["errors"]) + cp.stderr
    assert obj["exit_code"] == 2 and all(w in text for w in words), text
    assert not (tmp_path / "provision").exists(), "a run directory was created"


def test_missing_snapshot_file_exits_2(tmp_path):
    cp = run(tmp_path, "--snapshot", str(tmp_path / "etcd-x-y-20261121T030000Z.db"), "--yes")
    assert_refused(cp, tmp_path, "no such file", "nothing was changed")


def test_checksum_mismatch_exits_2_naming_the_file(tmp_path):
    db = snapshot_pair(tmp_path / "snaps")
    with open(db, "r+b") as fh:
        fh.seek(10)
        fh.write(b"\1")
    cp = run(tmp_path, "--snapshot", str(db), "--yes")
    assert_refused(cp, tmp_path, str(db), "sha256", "does not match", "nothing was changed")


def test_missing_sidecar_and_foreign_names_exit_2(tmp_path):
    db = snapshot_pair(tmp_path / "snaps")
    db.with_suffix(".json").unlink()
    assert_refused(run(tmp_path, "--snapshot", str(db), "--yes"), tmp_path, "sidecar missing")
    other = tmp_path / "snaps" / "backup.db"
    other.write_bytes(b"x")
    assert_refused(run(tmp_path, "--snapshot", str(other), "--yes"), tmp_path,
                   "not a snapshot name")
    assert_refused(run(tmp_path, "--snapshot", "latest", "--data-dir", "/var/lib/etcd"),
                   tmp_path, "--data-dir")


def test_no_confirmation_off_a_terminal_exits_2(tmp_path):
    inv = tmp_path / "hosts.yml"
    inv.write_text("all:\n  children:\n    control_plane:\n      hosts:\n        cp1:\n"
                   "          ansible_host: 127.0.0.1\n")
    db = snapshot_pair(tmp_path / "snaps")
    assert_refused(run(tmp_path, "--snapshot", str(db), inventory=inv), tmp_path,
                   "--yes", "nothing was changed")


def test_check_mode_is_refused(tmp_path):
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "XDG_STATE_HOME": str(tmp_path)}
    cp = subprocess.run([sys.executable, "-m", "provision", "-i", str(tmp_path / "x"), "--check",
                         "--json", "etcd", "restore", "--yes"], cwd=REPO, capture_output=True,
                        text=True, env=env, timeout=60, stdin=subprocess.DEVNULL)
    assert_refused(cp, tmp_path, "--check is not supported by `provision etcd restore`")
