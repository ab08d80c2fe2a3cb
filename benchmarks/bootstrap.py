#!/usr/bin/env python3
"""Benchmark `provision bootstrap --components base,docker` against its floor.

For each kind (container, vm) on fresh lab hosts, measures in ONE run, side by side:

(a) floor: what a person would do by hand over SSH: ``apt-get update``, ``apt-get install -y
    docker.io``, ``modprobe overlay br_netfilter`` and ``sysctl -w`` of the three sysctls
    (modprobe/sysctl are skipped on container hosts, like the role does);
(b) ``provision -i lab bootstrap --components base,docker`` on another fresh host of the
    same kind, with the role's defaults (production settings); with ``--verify-image`` the
    docker role also proves ``docker run`` with the offline proof image (its archive prepared
    before the clock starts, as the lab tests do);
(c) the no-op re-run of (b) (its changed count is reported; it must be 0).

Where the time goes: for (b) and (c) the slowest tasks, from ansible-runner's per-task event
timings (``job_events``: the ``duration`` of every task result, summed per task name), and the
number of task results.

Prints one JSON object: the load average at start and end, per kind floor_s, bootstrap_s,
rerun_s, ratio (b/a), the changed counts, the goals of issue 18 (ratio <= 2.0, re-run <= 8 s)
and the top tasks of each run. Needs docker (container) or qemu (vm); a VM run takes 10+
minutes under TCG.

    python benchmarks/bootstrap.py                 # container and vm
    python benchmarks/bootstrap.py --kind container [--verify-image] [--top 15]
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
MAKE_IMAGE = (REPO / "roles" / "docker" / "files" / "make_verify_image.py").read_text()
FLOOR_CONTAINER = ("sudo apt-get update -q && sudo DEBIAN_FRONTEND=noninteractive "
                   "apt-get install -y -q docker.io")
FLOOR_KERNEL = (" && sudo modprobe overlay && sudo modprobe br_netfilter && sudo sysctl -w "
                "net.ipv4.ip_forward=1 net.bridge.bridge-nf-call-iptables=1 "
                "net.bridge.bridge-nf-call-ip6tables=1")
GOAL_RATIO = 2.0
GOAL_RERUN_S = 8.0
RESULT_EVENTS = {"runner_on_ok", "runner_on_failed", "runner_on_skipped",
                 "runner_on_unreachable"}


def cli(env: dict[str, str], *args: str, timeout: float = 3600) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "provision", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=timeout, check=False)


def checked(proc: subprocess.CompletedProcess[str], what: str) -> str:
    if proc.returncode != 0:
        raise SystemExit(f"{what} failed (exit {proc.returncode}):\n{proc.stdout[-2000:]}\n"
                         f"{proc.stderr[-2000:]}")
    return proc.stdout


class LabHost:
    """One fresh lab host in a private XDG_STATE_HOME (removed on exit)."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.tmp = tempfile.TemporaryDirectory(prefix="provision-bench-bootstrap-")
        self.env = dict(os.environ, XDG_STATE_HOME=self.tmp.name)

    def __enter__(self) -> LabHost:
        checked(cli(self.env, "lab", "up", "--kind", self.kind, "--mode", "minikube"),
                f"lab up --kind {self.kind}")
        return self

    def __exit__(self, *exc: object) -> None:
        cli(self.env, "lab", "down")
        self.tmp.cleanup()

    def ssh(self, command: str, timeout: float = 3600) -> str:
        return checked(cli(self.env, "lab", "ssh", "lab-1", "--", "sh", "-c", command,
                           timeout=timeout), f"ssh {command[:60]}")


def timed(fn: Any) -> tuple[float, Any]:
    start = time.monotonic()
    value = fn()
    return time.monotonic() - start, value


def task_times(events: list[dict[str, Any]]) -> dict[str, float]:
    """Seconds per task name: the summed ``duration`` of its result events (loop items and
    hosts included). Pure: takes ansible-runner's job events."""
    total: dict[str, float] = defaultdict(float)
    for event in events:
        if event.get("event") not in RESULT_EVENTS:
            continue
        data = event.get("event_data", {})
        name = f"{data.get('role') + ' : ' if data.get('role') else ''}{data.get('task', '?')}"
        total[name] += float(data.get("duration") or 0.0)
    return dict(total)


def read_events(log: str) -> list[dict[str, Any]]:
    """The job events of the run whose log is ``log`` (``<run_dir>/artifacts/run/stdout``)."""
    folder = Path(log).parent / "job_events"
    if not folder.is_dir():
        return []
    return [json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))]


def profile(result: dict[str, Any], top: int) -> dict[str, Any]:
    """Per-task timings of one bootstrap run: the slowest tasks and the totals."""
    events = read_events(result.get("log", ""))
    times = task_times(events)
    slowest = sorted(times.items(), key=lambda kv: kv[1], reverse=True)[:top]
    return {
        "task_results": sum(e.get("event") in RESULT_EVENTS for e in events),
        "tasks_sum_s": round(sum(times.values()), 1),
        "top_tasks": [{"task": name, "s": round(s, 2)} for name, s in slowest],
    }


def bench_kind(kind: str, verify_image: bool, top: int) -> dict[str, Any]:
    floor_cmd = FLOOR_CONTAINER + ("" if kind == "container" else FLOOR_KERNEL)
    with LabHost(kind) as host:
        floor_s, _ = timed(lambda: host.ssh(floor_cmd))
    with LabHost(kind) as host:
        if verify_image:
            host.ssh("OUT=/var/tmp/provision-verify.tar TAG=provision-verify:1 python3 -c "
                     + shlex.quote(MAKE_IMAGE))
            hv = Path(host.tmp.name) / "provision" / "lab" / "inventory" / "host_vars"
            hv.mkdir(parents=True, exist_ok=True)
            (hv / "lab-1.yml").write_text(
                "docker_verify_image: provision-verify:1\n"
                "docker_verify_command: [/echo, proof]\n"
                "docker_verify_image_archive: /var/tmp/provision-verify.tar\n")
        args = ("-i", "lab", "--json", "bootstrap", "--components", "base,docker")
        boot_s, first = timed(lambda: json.loads(checked(cli(host.env, *args), "bootstrap")))
        first_profile = profile(first, top)
        rerun_s, second = timed(lambda: json.loads(checked(cli(host.env, *args), "rerun")))
        second_profile = profile(second, top)
    ratio = boot_s / floor_s
    return {
        "floor_s": round(floor_s, 1),
        "bootstrap_s": round(boot_s, 1),
        "rerun_s": round(rerun_s, 1),
        "ratio_bootstrap_to_floor": round(ratio, 2),
        "first_run_changed": first["hosts"]["lab-1"]["changed"],
        "rerun_changed": second["hosts"]["lab-1"]["changed"],
        "goals": {f"ratio<={GOAL_RATIO}": ratio <= GOAL_RATIO,
                  f"rerun_s<={GOAL_RERUN_S}": rerun_s <= GOAL_RERUN_S,
                  "rerun_changed==0": second["hosts"]["lab-1"]["changed"] == 0},
        "bootstrap_profile": first_profile,
        "rerun_profile": second_profile,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kind", choices=["container", "vm", "both"], default="both")
    parser.add_argument("--verify-image", action="store_true",
                        help="also prove `docker run` with the offline proof image")
    parser.add_argument("--top", type=int, default=12, help="slowest tasks listed per run")
    args = parser.parse_args()
    kinds = ["container", "vm"] if args.kind == "both" else [args.kind]
    result: dict[str, Any] = {"benchmark": "bootstrap base,docker", "cpus": os.cpu_count(),
                              "verify_image": args.verify_image,
                              "load_avg_start": list(os.getloadavg())}
    for kind in kinds:
        print(f"benchmarking {kind} ...", file=sys.stderr)
        result[kind] = bench_kind(kind, args.verify_image, args.top)
    result["load_avg_end"] = list(os.getloadavg())
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
