"""Commands that need a cluster say in one line that there is none and what to run first
(issue 19): status, upgrade --plan, certs check, etcd snapshot, etcd list.

The fast tests run the real playbooks over a local connection against this machine, which
has no kubeadm cluster (no /etc/kubernetes/admin.conf, no etcd PKI, no minikube): the shared
check ``playbooks/tasks/cluster-present.yml`` stops each run before anything else, so
``etcd snapshot`` never reaches its etcd download. The lab test does the same on a fresh
(bare) lab host over SSH.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from provision import cluster

REPO = Path(__file__).resolve().parent.parent
LINE = "no cluster: run `provision -i {inv} bootstrap` first"


def _inventory(tmp_path: Path, mode: str = "kubeadm") -> Path:
    inv = tmp_path / "hosts.yml"
    inv.write_text(yaml.safe_dump({"all": {
        "vars": {"provision_mode": mode},
        "children": {"control_plane": {"hosts": {"localcp": {
            "ansible_connection": "local", "ansible_become": False,
            "ansible_user": "provision",  # minikube mode refuses root (DRV_AS_ROOT)
            "ansible_python_interpreter": sys.executable}}}}}}))
    return inv


def _cli(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {"XDG_STATE_HOME": str(tmp_path / "state"), "PATH": "/usr/bin:/bin",
           "HOME": str(tmp_path)}
    return subprocess.run([sys.executable, "-m", "provision", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=300, check=False)


@pytest.mark.parametrize("args", [
    ("status",), ("upgrade", "--to", "1.31", "--plan"), ("certs", "check"),
    ("etcd", "snapshot"), ("etcd", "list")])
def test_a_command_that_needs_a_cluster_says_there_is_none_in_one_line(
        args: tuple[str, ...], tmp_path: Path) -> None:
    inv = _inventory(tmp_path)
    proc = _cli(tmp_path, "-i", str(inv), *args)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    said = [ln for ln in (proc.stdout + proc.stderr).splitlines() if "no cluster:" in ln]
    assert len(said) == 1 and said[0].startswith(LINE.format(inv=inv)), said
    assert "FAIL" not in proc.stdout and "missing" not in proc.stdout  # no table of misses
    assert "Error executing command" not in proc.stderr
    assert "FAILED (" not in proc.stdout  # no failure summary on top of the line
    if args == ("etcd", "snapshot"):  # stopped before the role's install (its etcd download)
        log = "".join(p.read_text() for p in (tmp_path / "state").rglob("stdout")
                      if "etcd-snapshot" in str(p))
        assert "TASK [etcd_snapshot : Stop when bootstrap has not built a cluster]" in log
        assert "Install etcd" not in log and "Install the etcd-backup tool" not in log
        assert "Look for the installed etcd tools" not in log and "Download" not in log


def test_no_cluster_json_is_one_object_with_the_line_as_its_error(tmp_path: Path) -> None:
    inv = _inventory(tmp_path)
    proc = _cli(tmp_path, "-i", str(inv), "--json", "etcd", "list")
    assert proc.returncode == 1
    obj = json.loads(proc.stdout)
    assert (obj["ok"], obj["exit_code"], obj["cluster"], obj["command"]) == (
        False, 1, False, "etcd list")
    assert obj["errors"][0]["message"].startswith(LINE.format(inv=inv))
    jsonschema = pytest.importorskip("jsonschema")
    from provision.output import schema

    jsonschema.validate(obj, schema(), cls=jsonschema.Draft202012Validator)


def test_minikube_status_without_minikube_says_no_cluster(tmp_path: Path) -> None:
    if Path("/usr/local/bin/minikube").exists():
        pytest.skip("this machine has minikube installed")
    inv = _inventory(tmp_path, "minikube")
    proc = _cli(tmp_path, "-i", str(inv), "status")
    assert proc.returncode == 1, proc.stderr
    assert LINE.format(inv=inv) in proc.stderr and "/usr/local/bin/minikube" in proc.stderr


@pytest.mark.parametrize("args", [("etcd", "snapshot"), ("etcd", "list"), ("certs", "check")])
def test_kubeadm_only_commands_refuse_minikube_mode_before_any_contact(
        args: tuple[str, ...], tmp_path: Path) -> None:
    inv = _inventory(tmp_path, "minikube")
    proc = _cli(tmp_path, "-i", str(inv), *args)
    assert proc.returncode == 2, proc.stderr
    assert "provision_mode is minikube" in proc.stderr and str(inv) in proc.stderr
    assert not (tmp_path / "state" / "provision" / "runs").exists()  # nothing was run


def test_the_line_names_the_inventory_the_user_gave() -> None:
    from types import SimpleNamespace

    assert cluster.line(SimpleNamespace(inventory="lab")) == (
        "no cluster: run `provision -i lab bootstrap` first")
    assert cluster.line(None) == "no cluster: run `provision bootstrap` first"
    assert cluster.line(SimpleNamespace(inventory="my inv"), "why") == (
        "no cluster: run `provision -i 'my inv' bootstrap` first (why)")


def test_the_reason_comes_back_from_the_play_not_from_a_failure_message(tmp_path: Path) -> None:
    from types import SimpleNamespace

    from provision.runner import RunResult

    def run(**stats: object) -> RunResult:
        return RunResult(command="x", run_dir=tmp_path, status="failed", rc=2,
                         stats_data={"provision": stats} if stats else {})

    assert cluster.missing(run(no_cluster="cp1 has\n no x")) == "cp1 has no x"
    assert cluster.missing(run(older_than_cluster="older")) is None
    assert cluster.older_than_cluster(run(older_than_cluster="older than the cluster:\n x")) \
        == "older than the cluster: x"
    assert cluster.missing(run()) is None and cluster.older_than_cluster(run()) is None
    failed = SimpleNamespace(failures=[SimpleNamespace(message="no cluster: cp1 has no x")])
    assert cluster.missing(failed) is None  # a failure message is not read


@pytest.mark.container
@pytest.mark.slow
def test_bare_lab_host_every_cluster_command_says_no_cluster(lab_host) -> None:
    """A fresh lab host (nothing bootstrapped): each command prints the one line, exit 1."""
    lab = lab_host()
    for args in (("status",), ("certs", "check"), ("etcd", "list"), ("etcd", "snapshot")):
        cp = lab.cli("-i", "lab", *args, timeout=600)
        text = cp.stdout + cp.stderr
        said = [ln for ln in text.splitlines() if "no cluster:" in ln]
        assert cp.returncode == 1, (args, text)
        assert len(said) == 1 and said[0].startswith(LINE.format(inv="lab")), (args, said)
