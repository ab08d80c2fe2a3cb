#!/usr/bin/env python3
"""Benchmark no-op re-runs (changed=0): 16 hosts ÷ 1 host, and the full kubeadm default chain.

(a) ``scale``: ONE lab host is bootstrapped (``--components base``, or --components) and its
    container committed as a docker image; 16 lab hosts are started from that image (``provision
    lab up --nodes 16 --image``: own names, SSH host keys, known_hosts entries). Their first run
    must already be changed=0 (the tasks that changed are listed when not); the load that boot
    and run leave is let settle (``settled_before_reruns``: at most 2 minutes, to half the
    CPUs); then the no-op re-run is timed on 1 host (``--limit lab-1``) and on all 16,
    alternating, in the same run; the ratio is min(16 hosts) ÷ min(1 host). Goal ≤ 1.5. With the
    CPU each re-run took (controller, lab containers): ``cpu_per_extra_host``, the controller
    and host CPU-s each host beyond the first costs (per host and per task result) and the ratio
    that CPU alone allows on this machine's cores, with the hosts here and with remote hosts
    (controller CPU only). At most 16 containers run at once (the seed host is removed first);
    all are removed at the end.
(b) ``kubeadm``: one lab host, the Kubernetes simulator (tests/simulator: simulated
    kubeadm/kubelet/kubectl and API server, signed apt repository served from this machine);
    ``provision bootstrap`` with kubeadm mode's default components (base, containerd, cluster,
    addons), then its no-op re-runs are timed. Goal ≤ 30 s.

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
With --kex KEX (scale), every timed re-run is also made with ``-o KexAlgorithms=KEX`` added to
the lab's ``ansible_ssh_common_args`` (variant ``<tree>+kex``, same lab, alternating): each
host's SSH login is one key exchange per run, and OpenSSH 9.0-9.8's default,
``sntrup761x25519-sha512``, is most of a host's controller CPU (README, Security); e.g.
``--kex curve25519-sha256`` shows the ratio without it, side by side.

Needs what the lab tests need: docker and the lab image (scripts/testenv.sh).
The 16 systemd containers need about 96 of root's inotify instances (128 by default, shared
with every other container on the machine): `lab up` refuses with exit 2 when they would not
fit (then raise fs.inotify.max_user_instances, or run with --nodes 8).
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import os
import re
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))
OPT_IN = "PROVISION_BENCH_NOOP"
# `lab up --ssh-timeout`: 16 containers booting on a loaded 2-core machine need longer than
# the one-host default
SSH_WAIT_S = 1800


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


def run_events(run_dir: str, top: int = 8) -> dict[str, Any]:
    """From a run's ansible-runner events, read once: task results (host × task), distinct
    tasks, the task seconds summed per host (mean over hosts), the slowest tasks ([task,
    seconds summed over hosts and loop items]), ``by_role`` ({role: [seconds, results]},
    slowest first, "-" = tasks outside roles: whose owner a re-run's time belongs to) and
    ``changed_tasks`` (``host: role: task`` of every result that reported a change)."""
    totals: dict[str, float] = defaultdict(float)
    per_host: dict[str, float] = defaultdict(float)
    roles: dict[str, list[float | int]] = defaultdict(lambda: [0.0, 0])
    changed: list[str] = []
    results = 0
    tasks: set[str] = set()
    for path in sorted((Path(run_dir) / "artifacts" / "run" / "job_events").glob("*.json")):
        try:
            ev = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            continue
        data = ev.get("event_data") or {}
        if ev.get("event") not in ("runner_on_ok", "runner_on_skipped", "runner_on_failed"):
            continue
        role = data.get("role") or "-"
        results += 1
        tasks.add(str(data.get("task_uuid")))
        if ev.get("event") == "runner_on_ok" and (data.get("res") or {}).get("changed"):
            changed.append(f"{data.get('host')}: {role}: {data.get('task')}")
        if isinstance(data.get("duration"), int | float):
            totals[f"{role}: {data.get('task')}"] += data["duration"]
            per_host[str(data.get("host"))] += data["duration"]
            roles[role][0] += data["duration"]
            roles[role][1] += 1
    return {"task_results": results, "tasks": len(tasks),
            "task_s_per_host": round(statistics.mean(per_host.values()), 1) if per_host else 0,
            "slowest": [[t, round(x, 2)] for t, x in
                        sorted(totals.items(), key=lambda kv: -kv[1])[:top]],
            "by_role": {r: [round(x, 1), n] for r, (x, n) in
                        sorted(roles.items(), key=lambda kv: -kv[1][0])},
            "changed_tasks": changed}


def cgroup_cpu_file(container_id: str) -> Path | None:
    """The file holding a docker container's CPU time (cgroup v1 cpuacct, or v2)."""
    for path in (Path(f"/sys/fs/cgroup/cpuacct/docker/{container_id}/cpuacct.usage"),
                 Path(f"/sys/fs/cgroup/system.slice/docker-{container_id}.scope/cpu.stat"),
                 Path(f"/sys/fs/cgroup/docker/{container_id}/cpu.stat")):
        if path.is_file():
            return path
    return None


def _cgroup_cpu_s(path: Path) -> float:
    text = path.read_text()
    if path.name == "cpuacct.usage":
        return int(text) / 1e9
    usage = dict(line.split() for line in text.splitlines() if line.strip())
    return int(usage.get("usage_usec", 0)) / 1e6


def cpu_now(host_files: list[Path]) -> dict[str, float]:
    """CPU seconds so far: this process's waited-for children (provision, ansible-playbook,
    its workers, ssh clients: the controller), the lab containers (the hosts: sshd, sudo, the
    modules' python) and the whole machine (/proc/stat: everyone's busy time)."""
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    with open("/proc/stat") as f:
        ticks = [int(x) for x in f.readline().split()[1:9]]
    busy = (sum(ticks) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")  # minus idle, iowait
    return {"controller": ru.ru_utime + ru.ru_stime,
            "hosts": sum(_cgroup_cpu_s(p) for p in host_files), "machine": busy}


def cpu_spent(before: dict[str, float], after: dict[str, float], wall_s: float
              ) -> dict[str, float]:
    """Where a run's CPU went: controller, hosts, everything else on the machine (other
    users; and the ssh ControlPersist masters, which are not waited for), and ``floor_s``:
    the wall time our own CPU work needs on this machine's cores if nothing else ran."""
    controller = after["controller"] - before["controller"]
    hosts = after["hosts"] - before["hosts"]
    machine = after["machine"] - before["machine"]
    return {"controller_s": round(controller, 1), "hosts_s": round(hosts, 1),
            "rest_of_machine_s": round(machine - controller - hosts, 1),
            "machine_capacity_s": round(wall_s * (os.cpu_count() or 1), 1),
            "floor_s": round((controller + hosts) / (os.cpu_count() or 1), 1)}


def cpu_per_host(one: list[dict[str, Any]], many: list[dict[str, Any]], cpus: int
                 ) -> dict[str, Any]:
    """What each host beyond the first costs, from the mean CPU of the 1-host and the n-host
    re-runs: controller and host CPU-s per extra host and per extra task result (host x task),
    and the ratio the CPU alone allows: (1-host wall + extra CPU / cpus) / 1-host wall, here
    (hosts on this machine) and with remote hosts (the controller's CPU only). {} without CPU
    figures."""
    if not one or not many or not all("cpu" in r for r in one + many):
        return {}

    def mean(runs: list[dict[str, Any]], key: str) -> float:
        return statistics.mean(r["cpu"][key] if key.endswith("_s") else r[key] for r in runs)

    hosts = many[0]["hosts"] - one[0]["hosts"]
    results = mean(many, "task_results") - mean(one, "task_results")
    controller = mean(many, "controller_s") - mean(one, "controller_s")
    on_hosts = mean(many, "hosts_s") - mean(one, "hosts_s")
    best_one = min(r["s"] for r in one)
    return {"extra_hosts": hosts, "results_per_host": round(mean(many, "task_results")
                                                            / many[0]["hosts"], 1),
            "controller_cpu_s_per_host": round(controller / hosts, 2),
            "hosts_cpu_s_per_host": round(on_hosts / hosts, 2),
            "controller_cpu_s_per_result": round(controller / results, 3) if results else None,
            "hosts_cpu_s_per_result": round(on_hosts / results, 3) if results else None,
            "cpu_bound_ratio": round((best_one + (controller + on_hosts) / cpus) / best_one, 2),
            "cpu_bound_ratio_remote_hosts": round((best_one + controller / cpus) / best_one, 2)}


def rerun_record(seconds: float, out: dict[str, Any], cpu: dict[str, float] | None = None
                 ) -> dict[str, Any]:
    record = {"s": round(seconds, 1),
              "changed": sum(h["changed"] for h in out["hosts"].values()),
              "hosts": len(out["hosts"]), **run_events(out["run_dir"]),
              **({"cpu": cpu} if cpu else {}),
              "load_avg": round(os.getloadavg()[0], 1)}
    print(json.dumps({"rerun": {k: v for k, v in record.items() if k != "slowest"}}),
          file=sys.stderr)  # progress: each re-run as it ends
    return record


class LabState:
    """A lab in a private XDG_STATE_HOME (``provision lab up``; down and removed on exit,
    also when the benchmark fails or is interrupted)."""

    def __init__(self, base: Path, nodes: int, name: str = "", image: str | None = None
                 ) -> None:
        self.home = base / f"state-{name or nodes}"
        self.home.mkdir()
        self.nodes = nodes
        self.image = image
        self.env = dict(os.environ, XDG_STATE_HOME=str(self.home))

    def __enter__(self) -> LabState:
        args = ["lab", "up", "--nodes", str(self.nodes), "--ssh-timeout", str(SSH_WAIT_S)]
        if self.image:
            args += ["--image", self.image]
        try:
            proc = cli(self.env, *args, timeout=SSH_WAIT_S + 600)
        except BaseException:  # Ctrl-C or a hang during lab up: remove what it started
            cli(self.env, "lab", "down")
            raise
        if proc.returncode != 0:
            cli(self.env, "lab", "down")
            raise SystemExit(f"lab up --nodes {self.nodes} failed:\n{proc.stderr[-3000:]}")
        return self

    def __exit__(self, *exc: object) -> None:
        cli(self.env, "lab", "down")

    def container(self, host: str) -> str:
        """The docker container of lab host ``host`` (from `lab status`)."""
        proc = cli(self.env, "--json", "lab", "status")
        return str(json.loads(proc.stdout)["hosts"][host]["ident"])

    def cpu_files(self) -> list[Path]:
        """The CPU-time files of the lab's containers ([] where cgroups are not readable)."""
        proc = cli(self.env, "--json", "lab", "status")
        names = [h["ident"] for h in json.loads(proc.stdout)["hosts"].values()]
        ids = docker("inspect", "-f", "{{.Id}}", *names).stdout.split()
        files = [cgroup_cpu_file(i) for i in ids]
        return [f for f in files if f is not None] if all(files) else []

    def lab(self) -> Any:
        from lab_fixtures import Lab

        return Lab(state_home=self.home, kind="container", arch="amd64",
                   hosts=[f"lab-{i}" for i in range(1, self.nodes + 1)])


def docker(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["docker", *args], capture_output=True, text=True, timeout=600,
                          check=False)


@contextlib.contextmanager
def bootstrapped_image(base: Path, components: str) -> Iterator[dict[str, Any]]:
    """Bootstrap ONE lab host with ``components`` and commit its container as a docker image
    (removed on exit; its /etc/machine-id emptied first); yields {"image",
    "seed_first_run_s", "seed_first_run_changed"}.
    What a commit does not carry: the container's anonymous volumes (/var/lib/docker,
    /var/lib/containerd) and its tmpfs (/run, /tmp). Each clone gets its own name, SSH host
    keys and known_hosts entries from `lab up` (the lab's setup unit installs them at boot)."""
    image = f"provision-bench-noop-seed:{os.getpid()}"
    try:
        with LabState(base, 1, name="seed") as seed:
            seconds, out = bootstrap(seed.env, "bootstrap", "--components", components)
            # each clone gets its own machine id at boot (as the lab image does): without
            # this, all 16 share the seed's (journal directory, D-Bus, DHCP client id)
            docker("exec", seed.container("lab-1"), "truncate", "-s", "0", "/etc/machine-id")
            proc = docker("commit", "-m", f"provision bootstrap --components {components}",
                          seed.container("lab-1"), image)
            if proc.returncode != 0:
                raise SystemExit(f"docker commit failed: {proc.stderr}")
        yield {"image": image, "seed_first_run_s": round(seconds, 1),
               "seed_first_run_changed": sum(h["changed"] for h in out["hosts"].values())}
    finally:
        docker("rmi", "-f", image)


def settle_load(limit_s: float = 120.0, poll_s: float = 5.0) -> dict[str, float]:
    """Wait (at most ``limit_s``) until the 1-minute load average is at most half the CPUs
    (or 1): the 16 clones' boot and first run leave a load of 6-9 on 2 cores, which the first
    timed re-runs paid for (and the 16-host ones more: they are CPU-bound). Returns the wait
    and the load when the re-runs start."""
    target = max(1.0, (os.cpu_count() or 1) / 2)
    start = time.monotonic()
    while os.getloadavg()[0] > target and time.monotonic() - start < limit_s:
        time.sleep(poll_s)
    return {"waited_s": round(time.monotonic() - start, 1),
            "load_avg_1m": round(os.getloadavg()[0], 2), "target": target}


def lab_group_vars(home: Path) -> Path:
    """The lab inventory's group_vars/all.yml (written by `lab up`) under XDG_STATE_HOME."""
    return home / "provision" / "lab" / "inventory" / "group_vars" / "all.yml"


def set_kex(group_vars: Path, kex: str | None) -> None:
    """The lab's ``ansible_ssh_common_args`` with ``-o KexAlgorithms=KEX`` (None: without)."""
    import yaml

    data = yaml.safe_load(group_vars.read_text())
    args = re.sub(r"\s*-o\s*KexAlgorithms=\S+", "", str(data["ansible_ssh_common_args"]))
    data["ansible_ssh_common_args"] = args + (f" -o KexAlgorithms={kex}" if kex else "")
    group_vars.write_text(yaml.safe_dump(data, sort_keys=False))


def variants(trees: dict[str, Path], kex: str | None) -> dict[str, tuple[Path, str | None]]:
    """Name -> (tree, key exchange or None for the SSH client's default)."""
    out: dict[str, tuple[Path, str | None]] = {name: (tree, None) for name, tree in trees.items()}
    if kex:
        out.update({f"{name}+kex": (tree, kex) for name, tree in trees.items()})
    return out


def bench_scale(base: Path, reps: int, nodes: int, trees: dict[str, Path],
                components: str = "base", kex: str | None = None) -> dict[str, Any]:
    """(a): bootstrap one host with ``components``, make ``nodes`` lab hosts from its
    committed image, check their first run is already a no-op, then time no-op re-runs on
    1 host (``--limit lab-1``) and on all, alternating; with a baseline, each rep runs both
    trees (alternating which goes first); with ``kex``, each also with that key exchange."""
    kinds = variants(trees, kex)
    runs: dict[str, dict[str, list[dict[str, Any]]]] = {v: {"1": [], "n": []} for v in kinds}
    comp = ("--components", components)
    with bootstrapped_image(base, components) as seed, \
            LabState(base, nodes, image=seed["image"]) as lab:
        cpu_files = lab.cpu_files()
        first_s, first = bootstrap(lab.env, "bootstrap", *comp)
        first_changed = run_events(first["run_dir"])["changed_tasks"]
        print(json.dumps({"clones_first_run": {"s": round(first_s, 1),
                                               "changed": first_changed[:20]}}),
              file=sys.stderr)
        settled = settle_load()  # the clones' boot and first run are not the re-runs' load
        group_vars = lab_group_vars(lab.home)
        for rep in range(reps):  # alternating, so a load change hits both sizes alike
            order = list(kinds.items()) if rep % 2 == 0 else list(kinds.items())[::-1]
            sizes = (("1", ("--limit", "lab-1")), ("n", ()))
            for name, (tree, with_kex) in order:
                set_kex(group_vars, with_kex)
                for size, limit in sizes if rep % 2 == 0 else sizes[::-1]:
                    before = cpu_now(cpu_files)
                    seconds, rerun = bootstrap(lab.env, *limit, "bootstrap", *comp, tree=tree)
                    runs[name][size].append(rerun_record(
                        seconds, rerun, cpu_spent(before, cpu_now(cpu_files), seconds)))
    out: dict[str, Any] = {
        "components": components, "nodes": nodes,
        "hosts_made_by": "docker commit of one bootstrapped lab host, "
                         f"`lab up --nodes {nodes} --image` from it",
        "seed_first_run_s": seed["seed_first_run_s"],
        "seed_first_run_changed": seed["seed_first_run_changed"],
        "clones_first_run_s": round(first_s, 1),
        "clones_first_run_changed": len(first_changed),
        "clones_first_run_changed_tasks": first_changed,
        "settled_before_reruns": settled, "kex": kex}
    for name, sizes in runs.items():
        best_one = min(r["s"] for r in sizes["1"])
        best_many = min(r["s"] for r in sizes["n"])
        out[name] = {"rerun_1_host": sizes["1"], f"rerun_{nodes}_hosts": sizes["n"],
                     "rerun_1_host_min_s": best_one, f"rerun_{nodes}_hosts_min_s": best_many,
                     f"ratio_{nodes}_to_1": round(best_many / best_one, 2),
                     "cpu_per_extra_host": cpu_per_host(sizes["1"], sizes["n"],
                                                        os.cpu_count() or 1)}
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
                    reruns[name].append(rerun_record(seconds, result))
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
    ap.add_argument("--kex", metavar="KEX",
                    help="scale: also time every re-run with this SSH key exchange "
                         "(e.g. curve25519-sha256), side by side")
    ap.add_argument("--components", default="base",
                    help="scale: what is bootstrapped and re-run (default base)")
    ap.add_argument("--baseline", type=Path, metavar="DIR",
                    help="another checkout of provision (e.g. `git worktree add DIR main`): "
                         "its re-runs alternate with this tree's on the same lab")
    args = ap.parse_args()
    if args.kex is not None and not re.fullmatch(r"[a-z0-9][a-z0-9@.,+-]{0,200}", args.kex):
        ap.error(f"--kex {args.kex!r}: not an OpenSSH KexAlgorithms list")
    # a `kill` ends the run through the labs' clean-up (lab down, docker rmi), as Ctrl-C does
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
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
            out["scale"] = bench_scale(Path(tmp), args.reps, args.nodes, trees,
                                       args.components, args.kex)
        if args.only in (None, "kubeadm"):
            print("benchmarking kubeadm ...", file=sys.stderr)
            out["kubeadm"] = bench_kubeadm(Path(tmp), args.reps, trees)
    out["load_avg_end"] = [round(x, 2) for x in os.getloadavg()]
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
