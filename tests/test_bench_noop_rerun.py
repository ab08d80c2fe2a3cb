"""benchmarks/noop_rerun.py's bookkeeping: what it reads from a run's ansible-runner events and
how it splits CPU time (fast; the benchmark itself is opt-in and takes 20+ minutes).

The event files are written by the test in ansible-runner's layout (simulated runs)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "benchmarks"))
import noop_rerun  # noqa: E402


def _events(run_dir: Path, events: list[dict]) -> None:
    jobs = run_dir / "artifacts" / "run" / "job_events"
    jobs.mkdir(parents=True)
    for i, ev in enumerate(events, 1):
        (jobs / f"{i}-uuid{i}.json").write_text(json.dumps(ev))
    (jobs / "broken.json").write_text("{")  # a partial write: skipped, not fatal


def _result(kind: str, host: str, task: str, uuid: str, seconds: float,
            changed: bool = False) -> dict:
    return {"event": kind, "event_data": {"host": host, "task": task, "task_uuid": uuid,
                                          "role": "base", "duration": seconds,
                                          "res": {"changed": changed}}}


def test_run_events_and_changed_tasks_simulated_run(tmp_path: Path) -> None:
    _events(tmp_path, [
        {"event": "playbook_on_task_start", "event_data": {"task": "Read", "task_uuid": "t1"}},
        _result("runner_on_ok", "lab-1", "Read", "t1", 1.0),
        _result("runner_on_ok", "lab-2", "Read", "t1", 3.0),
        _result("runner_on_skipped", "lab-1", "Install", "t2", 0.5),
        _result("runner_on_skipped", "lab-2", "Install", "t2", 0.5),
        _result("runner_on_ok", "lab-2", "Write /etc/hosts", "t3", 2.0, changed=True),
    ])
    got = noop_rerun.run_events(str(tmp_path), top=2)
    assert got["task_results"] == 5
    assert got["tasks"] == 3
    assert got["task_s_per_host"] == 3.5  # lab-1 1.5 s, lab-2 5.5 s
    assert got["slowest"] == [["base: Read", 4.0], ["base: Write /etc/hosts", 2.0]]
    assert got["changed_tasks"] == ["lab-2: base: Write /etc/hosts"]
    assert got["by_role"] == {"base": [7.0, 5]}


def test_cpu_split_of_a_run(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(noop_rerun.os, "cpu_count", lambda: 2)
    before = {"controller": 10.0, "hosts": 5.0, "machine": 100.0}
    after = {"controller": 40.0, "hosts": 25.0, "machine": 250.0}
    assert noop_rerun.cpu_spent(before, after, 90.0) == {
        "controller_s": 30.0, "hosts_s": 20.0, "rest_of_machine_s": 100.0,
        "machine_capacity_s": 180.0, "floor_s": 25.0}


def test_cgroup_cpu_files_of_both_cgroup_versions(tmp_path: Path) -> None:
    v1 = tmp_path / "cpuacct.usage"
    v1.write_text("2500000000\n")
    v2 = tmp_path / "cpu.stat"
    v2.write_text("usage_usec 1500000\nuser_usec 1000000\nsystem_usec 500000\n")
    assert noop_rerun._cgroup_cpu_s(v1) == 2.5
    assert noop_rerun._cgroup_cpu_s(v2) == 1.5
    assert noop_rerun.cgroup_cpu_file("no-such-container-id") is None


def test_without_opt_in_it_prints_skipped_and_starts_nothing() -> None:
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO)}
    proc = subprocess.run([sys.executable, str(REPO / "benchmarks" / "noop_rerun.py"),
                           "--only", "scale"], env=env, capture_output=True, text=True,
                          timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    assert "PROVISION_BENCH_NOOP=1" in json.loads(proc.stdout)["skipped"]


def test_cpu_per_extra_host_and_the_ratio_cpu_allows() -> None:
    """Figures of simulated re-runs: 1 host 29 results, 16 hosts 374 (15 extra hosts)."""
    def run(s: float, hosts: int, results: int, controller: float, on_hosts: float) -> dict:
        return {"s": s, "hosts": hosts, "task_results": results,
                "cpu": {"controller_s": controller, "hosts_s": on_hosts}}
    one = [run(8.0, 1, 29, 4.0, 1.0), run(10.0, 1, 29, 6.0, 2.0)]
    many = [run(50.0, 16, 374, 34.0, 19.0), run(52.0, 16, 374, 36.0, 21.0)]
    got = noop_rerun.cpu_per_host(one, many, cpus=2)
    assert got == {"extra_hosts": 15, "results_per_host": 23.4,
                   "controller_cpu_s_per_host": 2.0, "hosts_cpu_s_per_host": 1.23,
                   "controller_cpu_s_per_result": 0.087, "hosts_cpu_s_per_result": 0.054,
                   # extra CPU: controller 35 - 5 = 30 s, hosts 20 - 1.5 = 18.5 s (345 results);
                   # 8 s + 48.5 / 2 cores = 32.25 s; remote hosts: 8 + 30 / 2 = 23 s
                   "cpu_bound_ratio": 4.03, "cpu_bound_ratio_remote_hosts": 2.88}
    assert noop_rerun.cpu_per_host(one, [{"s": 1.0, "hosts": 16, "task_results": 1}], 2) == {}


def test_settle_load_waits_for_the_load_to_drop_and_never_past_its_limit(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The load is read until it is at most half the CPUs (here 2 -> 1.0); the wait ends at
    its limit when it does not drop (the clock and the load are the test's)."""
    clock = [0.0]
    monkeypatch.setattr(noop_rerun.os, "cpu_count", lambda: 2)
    monkeypatch.setattr(noop_rerun.time, "monotonic", lambda: clock[0])
    monkeypatch.setattr(noop_rerun.time, "sleep", lambda s: clock.__setitem__(0, clock[0] + s))
    loads = iter([7.5, 4.0, 2.1, 0.9, 0.9, 0.9])
    monkeypatch.setattr(noop_rerun.os, "getloadavg", lambda: (next(loads), 0.0, 0.0))
    assert noop_rerun.settle_load(limit_s=60, poll_s=5) == {
        "waited_s": 15.0, "load_avg_1m": 0.9, "target": 1.0}
    clock[0] = 0.0
    monkeypatch.setattr(noop_rerun.os, "getloadavg", lambda: (6.0, 0.0, 0.0))
    assert noop_rerun.settle_load(limit_s=12, poll_s=5) == {
        "waited_s": 15.0, "load_avg_1m": 6.0, "target": 1.0}


def test_kex_variant_edits_only_the_lab_ssh_args_and_restores_them(tmp_path: Path) -> None:
    """--kex: the lab's group_vars get ``-o KexAlgorithms=KEX`` added to
    ansible_ssh_common_args (replacing one set before) and removed again; every other
    variable and option stays as `lab up` wrote it. Each tree gets a ``+kex`` variant."""
    import yaml

    path = noop_rerun.lab_group_vars(tmp_path)
    path.parent.mkdir(parents=True)
    lab = {"provision_mode": "kubeadm", "ansible_user": "provision",
           "ansible_ssh_common_args": "-o UserKnownHostsFile=/x/known_hosts "
                                      "-o StrictHostKeyChecking=yes -o IdentitiesOnly=yes"}
    path.write_text(yaml.safe_dump(lab))
    noop_rerun.set_kex(path, "curve25519-sha256")
    noop_rerun.set_kex(path, "curve25519-sha256")
    got = yaml.safe_load(path.read_text())
    assert got["ansible_ssh_common_args"] == (lab["ansible_ssh_common_args"]
                                              + " -o KexAlgorithms=curve25519-sha256")
    assert {k: v for k, v in got.items() if k != "ansible_ssh_common_args"} == {
        k: v for k, v in lab.items() if k != "ansible_ssh_common_args"}
    noop_rerun.set_kex(path, None)
    assert yaml.safe_load(path.read_text()) == lab
    trees = {"current": tmp_path / "a", "baseline": tmp_path / "b"}
    assert noop_rerun.variants(trees, None) == {k: (v, None) for k, v in trees.items()}
    assert noop_rerun.variants(trees, "curve25519-sha256") == {
        "current": (tmp_path / "a", None), "baseline": (tmp_path / "b", None),
        "current+kex": (tmp_path / "a", "curve25519-sha256"),
        "baseline+kex": (tmp_path / "b", "curve25519-sha256")}


def test_kex_value_is_checked_before_anything_runs() -> None:
    """A --kex that is not a KexAlgorithms list is refused (exit 2), before any lab starts."""
    proc = subprocess.run([sys.executable, str(REPO / "benchmarks" / "noop_rerun.py"),
                           "--kex", "curve25519-sha256 -o ProxyCommand=x"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "--kex" in proc.stderr, proc.stderr
