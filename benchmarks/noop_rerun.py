#!/usr/bin/env python3
"""Benchmark no-op re-runs (changed=0): 16 hosts ÷ 1 host, and the full kubeadm default chain.

(a) ``scale``: one lab of 16 systemd containers (``provision lab up --nodes 16``); after one
    ``bootstrap --components base`` on all of them, the no-op re-run is timed on 1 host
    (``--limit lab-1``) and on all 16, alternating, in the same run; the ratio is
    min(16 hosts) ÷ min(1 host). Goal ≤ 1.5.
(b) ``kubeadm``: one lab host, the Kubernetes simulator (tests/simulator: simulated
    kubeadm/kubelet/kubectl and API server, signed apt repository served from this machine);
    ``provision bootstrap`` with kubeadm mode's default components (base, containerd,
    cluster, addons), then its no-op re-runs are timed. Goal ≤ 30 s.

Each re-run's changed count is reported (it must be 0) with the slowest tasks (from the run's
ansible-runner events), for the kubeadm chain also the seconds and task count per role
("by_role"), and the load average. Prints one JSON object.

Opt-in (the first runs take well over 10 minutes on a 2-core machine): without
PROVISION_BENCH_NOOP=1 it prints {"skipped": ...} and exits 0, so `make bench` stays short.

    PROVISION_BENCH_NOOP=1 python benchmarks/noop_rerun.py
    PROVISION_BENCH_NOOP=1 python benchmarks/noop_rerun.py --only kubeadm --reps 3
    PROVISION_BENCH_NOOP=1 python benchmarks/noop_rerun.py --baseline ../provision-main

With --baseline, every timed re-run is made by both trees on the same lab (alternating which
goes first): a before/after comparison under the same load. The first run uses this tree.

Needs what the lab tests need: docker and the lab image (scripts/testenv.sh).
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))
OPT_IN = "PROVISION_BENCH_NOOP"
LAB_UP = ("import sys\nfrom provision.lab import manager\n"
          "manager.SSH_TIMEOUT[('container', 'amd64')] = 900\n"
          "from provision.cli import main\nmain(['lab', 'up', '--nodes', sys.argv[1]])\n")


def cli(env: dict[str, str], *args: str, timeout: float = 3600, tree: Path = REPO
        ) -> subprocess.CompletedProcess[str]:
    """``python -m provision ARGS`` from ``tree`` (this checkout, or --baseline's)."""
    return subprocess.run([sys.executable, "-m", "provision", *args], cwd=tree,
                          env={**env, "PYTHONPATH": str(tree)}, capture_output=True, text=True,
                          timeout=timeout, check=False)


def bootstrap(env: dict[str, str], *args: str, tree: Path = REPO
              ) -> tuple[float, dict[str, Any]]:
    """One ``provision -i lab --json bootstrap ARGS``: (seconds, its JSON)."""
    start = time.monotonic()
    proc = cli(env, "-i", "lab", "--json", *args, tree=tree)
    seconds = time.monotonic() - start
    try:
        out = json.loads(proc.stdout)
    except json.JSONDecodeError:
        raise SystemExit(f"bootstrap {args}: no JSON (exit {proc.returncode}):\n"
                         f"{proc.stderr[-3000:]}") from None
    if proc.returncode != 0:
        raise SystemExit(f"bootstrap {args} failed (exit {proc.returncode}): "
                         f"{out.get('errors')}\n{proc.stderr[-3000:]}")
    return seconds, out


def slowest_tasks(run_dir: str, top: int = 8) -> list[list[Any]]:
    """[task, seconds summed over hosts and loop items] of the slowest tasks of a run."""
    totals: dict[str, float] = defaultdict(float)
    for path in (Path(run_dir) / "artifacts" / "run" / "job_events").glob("*.json"):
        try:
            ev = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            continue
        data = ev.get("event_data") or {}
        if ev.get("event") in ("runner_on_ok", "runner_on_skipped", "runner_on_failed") \
                and isinstance(data.get("duration"), int | float):
            totals[f"{data.get('role') or '-'}: {data.get('task')}"] += data["duration"]
    return [[t, round(s, 2)] for t, s in sorted(totals.items(), key=lambda x: -x[1])[:top]]


def role_seconds(run_dir: str) -> dict[str, list[float | int]]:
    """{role: [seconds, tasks]} of a run (task durations summed; "-" = tasks outside roles),
    slowest role first: which role's owner a re-run's time belongs to."""
    totals: dict[str, list[float | int]] = defaultdict(lambda: [0.0, 0])
    for path in (Path(run_dir) / "artifacts" / "run" / "job_events").glob("*.json"):
        try:
            ev = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            continue
        data = ev.get("event_data") or {}
        if ev.get("event") in ("runner_on_ok", "runner_on_skipped", "runner_on_failed") \
                and isinstance(data.get("duration"), int | float):
            entry = totals[data.get("role") or "-"]
            entry[0] += data["duration"]
            entry[1] += 1
    return {r: [round(s, 1), n] for r, (s, n) in sorted(totals.items(), key=lambda x: -x[1][0])}


def rerun_record(seconds: float, out: dict[str, Any]) -> dict[str, Any]:
    record = {"s": round(seconds, 1),
              "changed": sum(h["changed"] for h in out["hosts"].values()),
              "hosts": len(out["hosts"]), "slowest": slowest_tasks(out["run_dir"]),
              "load_avg": round(os.getloadavg()[0], 1)}
    print(json.dumps({"rerun": {k: v for k, v in record.items() if k != "slowest"}}),
          file=sys.stderr)  # progress: each re-run as it ends
    return record


class LabState:
    """A lab in a private XDG_STATE_HOME (``provision lab up``; down and removed on exit)."""

    def __init__(self, base: Path, nodes: int) -> None:
        self.home = base / f"state-{nodes}"
        self.home.mkdir()
        self.nodes = nodes
        self.env = dict(os.environ, XDG_STATE_HOME=str(self.home))

    def __enter__(self) -> LabState:
        try:
            # `lab up`, waiting up to 15 min for SSH (16 containers booting on a loaded
            # 2-core machine can take longer than the CLI's 180 s)
            proc = subprocess.run(
                [sys.executable, "-c", LAB_UP, str(self.nodes)], cwd=REPO,
                env={**self.env, "PYTHONPATH": str(REPO)}, capture_output=True, text=True,
                timeout=1800, check=False)
        except BaseException:  # Ctrl-C during lab up: remove what it started
            cli(self.env, "lab", "down")
            raise
        if proc.returncode != 0:
            cli(self.env, "lab", "down")
            raise SystemExit(f"lab up --nodes {self.nodes} failed:\n{proc.stderr[-3000:]}")
        return self

    def __exit__(self, *exc: object) -> None:
        cli(self.env, "lab", "down")

    def lab(self) -> Any:
        from lab_fixtures import Lab

        return Lab(state_home=self.home, kind="container", arch="amd64",
                   hosts=[f"lab-{i}" for i in range(1, self.nodes + 1)])


def bench_scale(base: Path, reps: int, nodes: int, trees: dict[str, Path]) -> dict[str, Any]:
    """(a): no-op `bootstrap --components base`, 1 host and `nodes` hosts, same lab; with a
    baseline, each rep runs both trees (alternating which goes first)."""
    runs: dict[str, dict[str, list[dict[str, Any]]]] = {t: {"1": [], "n": []} for t in trees}
    with LabState(base, nodes) as lab:
        first_s, first = bootstrap(lab.env, "bootstrap", "--components", "base")
        for rep in range(reps):  # alternating, so a load change hits both sizes alike
            order = list(trees.items()) if rep % 2 == 0 else list(trees.items())[::-1]
            for name, tree in order:
                runs[name]["1"].append(rerun_record(*bootstrap(
                    lab.env, "--limit", "lab-1", "bootstrap", "--components", "base",
                    tree=tree)))
                runs[name]["n"].append(rerun_record(*bootstrap(
                    lab.env, "bootstrap", "--components", "base", tree=tree)))
    out: dict[str, Any] = {"component": "base", "nodes": nodes,
                           "first_run_s": round(first_s, 1),
                           "first_run_changed": sum(h["changed"] for h in first["hosts"].values())}
    for name, sizes in runs.items():
        best_one = min(r["s"] for r in sizes["1"])
        best_many = min(r["s"] for r in sizes["n"])
        out[name] = {"rerun_1_host": sizes["1"], f"rerun_{nodes}_hosts": sizes["n"],
                     "rerun_1_host_min_s": best_one, f"rerun_{nodes}_hosts_min_s": best_many,
                     f"ratio_{nodes}_to_1": round(best_many / best_one, 2)}
    out["goal_ratio"] = 1.5
    return out


def bench_kubeadm(base: Path, reps: int, trees: dict[str, Path]) -> dict[str, Any]:
    """(b): the kubeadm default chain, simulated cluster, one host (as
    tests/test_bootstrap_full_simulated.py sets it up)."""
    from simulator.fixtures import K8sSim, build_sim_repo
    from test_addons_roles import DATA, FIXTURE_DIR, FIXTURES, addon_vars
    from test_cluster_kubeadm import cluster_vars

    with LabState(base, 1) as state:
        lab = state.lab()
        sim = K8sSim(*build_sim_repo(base / "sim"))
        try:
            for name in FIXTURES.values():
                data = base64.b64encode((DATA / name).read_bytes()).decode()
                proc = lab.ssh("lab-1", f"sudo -n sh -c 'mkdir -p {FIXTURE_DIR} && echo {data}"
                                        f" | base64 -d > {FIXTURE_DIR}/{name}'")
                if proc.returncode != 0:
                    raise SystemExit(f"copying {name}: {proc.stderr}")
            sim.settings(deployment_ready_seconds=4.0)
            cluster_vars(lab, sim, require_cri=True, **addon_vars())
            first_s, first = bootstrap(state.env, "bootstrap")
            reruns: dict[str, list[dict[str, Any]]] = {t: [] for t in trees}
            for rep in range(reps):
                order = list(trees.items()) if rep % 2 == 0 else list(trees.items())[::-1]
                for name, tree in order:
                    seconds, result = bootstrap(state.env, "bootstrap", tree=tree)
                    reruns[name].append({**rerun_record(seconds, result),
                                         "by_role": role_seconds(result["run_dir"])})
        finally:
            sim.stop()
    out: dict[str, Any] = {
        "components": "base,containerd,cluster,addons (default, kubeadm mode)",
        "cluster": "simulated (tests/simulator)", "hosts": 1,
        "first_run_s": round(first_s, 1),
        "first_run_changed": sum(h["changed"] for h in first["hosts"].values()),
        "goal_s": 30}
    for name, runs in reruns.items():
        out[name] = {"reruns": runs, "rerun_min_s": min(r["s"] for r in runs),
                     "rerun_median_s": round(statistics.median(r["s"] for r in runs), 1)}
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", choices=["scale", "kubeadm"])
    ap.add_argument("--reps", type=int, default=2, help="timed re-runs per size (default 2)")
    ap.add_argument("--nodes", type=int, default=16, help="the larger lab (default 16)")
    ap.add_argument("--baseline", type=Path, metavar="DIR",
                    help="another checkout of provision (e.g. `git worktree add DIR main`): "
                         "its re-runs alternate with this tree's on the same lab")
    args = ap.parse_args()
    trees = {"current": REPO}
    if args.baseline is not None:
        if not (args.baseline / "provision" / "__init__.py").is_file():
            ap.error(f"--baseline {args.baseline}: not a provision checkout")
        trees["baseline"] = args.baseline.resolve()
    if os.environ.get(OPT_IN) != "1":
        print(json.dumps({"benchmark": "noop_rerun", "skipped":
                          f"opt-in: set {OPT_IN}=1 (takes 20+ minutes on 2 cores)"}))
        return 0
    out: dict[str, Any] = {"benchmark": "noop_rerun", "cpus": os.cpu_count(),
                           "trees": {k: str(v) for k, v in trees.items()},
                           "load_avg_start": [round(x, 2) for x in os.getloadavg()]}
    with tempfile.TemporaryDirectory(prefix="provision-bench-noop-") as tmp:
        if args.only in (None, "scale"):
            print("benchmarking scale ...", file=sys.stderr)
            out["scale"] = bench_scale(Path(tmp), args.reps, args.nodes, trees)
        if args.only in (None, "kubeadm"):
            print("benchmarking kubeadm ...", file=sys.stderr)
            out["kubeadm"] = bench_kubeadm(Path(tmp), args.reps, trees)
    out["load_avg_end"] = [round(x, 2) for x in os.getloadavg()]
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
