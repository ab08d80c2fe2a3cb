#!/usr/bin/env python3
"""Benchmark `provision bootstrap --components base,docker` against its floor.

For each kind (container, vm) on fresh lab hosts, measures in ONE run, side by side:

(a) floor: what a person would do by hand over SSH: ``apt-get update``, ``apt-get install -y
    docker.io``, ``modprobe overlay br_netfilter`` and ``sysctl -w`` of the three sysctls
    (modprobe/sysctl are skipped on container hosts, like the role does);
(a') fair floor, on its own fresh host: the same packages base and docker install (read from
    roles/base/defaults and roles/docker/defaults, so the floor cannot drift from the roles:
    base_packages, the time sync service base_time_sync picks on a fresh host, and
    docker_distro_packages) in ONE ``apt-get install`` after ``apt-get update``, plus the kernel
    steps: the modules-load and sysctl files written, and on VMs the modules loaded and the
    sysctls applied;
(b) ``provision -i lab bootstrap --components base,docker`` on another fresh host of the
    same kind, with the role's defaults (production settings); with ``--verify-image`` the
    docker role also proves ``docker run`` with the offline proof image (its archive prepared
    before the clock starts, as the lab tests do);
(c) the no-op re-run of (b) (its changed count is reported; it must be 0).

Where the time goes: for (b) and (c) the slowest tasks, from ansible-runner's per-task event
timings (``job_events``: the ``duration`` of every task result, summed per task name), and the
number of task results; for (c) also a breakdown of its wall time (``rerun_breakdown``):
``cli_s`` from the command's start until ansible-runner starts ansible-playbook (Python
start-up, inventory loading and validation; the mtime of the run's ``artifacts/run/command``),
``ansible_startup_s`` from there to the first task's start event, ``tasks_sum_s`` (the summed
task durations), ``after_last_event_s`` (from the stats event to the command's exit:
ansible-playbook's exit, provision's scrubbing and summary) and ``rest_s`` (the remainder: the
controller's own work between tasks, plays and events); ``cpu_s`` is the CPU time (user+sys)
of the command and its children (a measure less sensitive to other load than wall time).

Prints one JSON object: the load average at start and end, per kind floor_s, fair_floor_s,
bootstrap_s, rerun_s, ratio_bootstrap_to_floor (b/a), ratio_bootstrap_to_fair_floor (b/a'),
the changed counts, the goals of issue 18 (ratio <= 2.0 against either floor, re-run <= 8 s),
the top tasks of each run and the re-run's breakdown. Needs docker (container) or qemu (vm);
a VM run takes 10+ minutes under TCG.

    python benchmarks/bootstrap.py                 # container and vm
    python benchmarks/bootstrap.py --kind container [--verify-image] [--top 15]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shlex
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parent.parent
MAKE_IMAGE = (REPO / "roles" / "docker" / "files" / "make_verify_image.py").read_text()
FLOOR_CONTAINER = ("sudo apt-get update -q && sudo DEBIAN_FRONTEND=noninteractive "
                   "apt-get install -y -q docker.io")
FLOOR_KERNEL = (" && sudo modprobe overlay && sudo modprobe br_netfilter && sudo sysctl -w "
                "net.ipv4.ip_forward=1 net.bridge.bridge-nf-call-iptables=1 "
                "net.bridge.bridge-nf-call-ip6tables=1")
FAIR_MODULES_FILE = "/etc/modules-load.d/provision.conf"
FAIR_SYSCTL_FILE = "/etc/sysctl.d/90-provision.conf"
GOAL_RATIO = 2.0
GOAL_RERUN_S = 8.0
RESULT_EVENTS = {"runner_on_ok", "runner_on_failed", "runner_on_skipped",
                 "runner_on_unreachable"}


def role_defaults(role: str) -> dict[str, Any]:
    return yaml.safe_load((REPO / "roles" / role / "defaults" / "main.yml").read_text())


def fair_packages(base: dict[str, Any], docker: dict[str, Any]) -> list[str]:
    """What base and docker install on a fresh host with their defaults (kube_proxy_mode
    iptables, docker_source distro): base_packages, the time sync service (chrony only when
    base_time_sync asks for it: a fresh host has no chrony for `auto` to keep) and
    docker_distro_packages. Pure: takes the two roles' defaults."""
    time_service = "chrony" if base["base_time_sync"] == "chrony" else "systemd-timesyncd"
    names = [*base["base_packages"], time_service, *docker["docker_distro_packages"]]
    return list(dict.fromkeys(names))


def fair_floor_command(kind: str, base: dict[str, Any], docker: dict[str, Any]) -> str:
    """The fair floor by hand: one apt call for every package of base and docker, the module
    and sysctl files written, and (not in a container) the modules loaded and sysctls applied.
    Pure: every value is quoted for the shell."""
    modules = "\\n".join(base["base_kernel_modules"])
    sysctls = "\\n".join(f"{k}={v}" for k, v in base["base_sysctls"].items())
    steps = [
        "sudo apt-get update -q",
        "sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -q "
        + " ".join(shlex.quote(p) for p in fair_packages(base, docker)),
        f"printf {shlex.quote(modules + chr(92) + 'n')} | sudo tee {FAIR_MODULES_FILE} >/dev/null",
        f"printf {shlex.quote(sysctls + chr(92) + 'n')} | sudo tee {FAIR_SYSCTL_FILE} >/dev/null",
    ]
    if kind != "container":
        steps += ["sudo modprobe --all " + " ".join(shlex.quote(m)
                                                    for m in base["base_kernel_modules"]),
                  f"sudo sysctl --load {FAIR_SYSCTL_FILE}"]
    return " && ".join(steps)


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


def event_time(event: dict[str, Any]) -> float:
    return datetime.fromisoformat(event["created"]).timestamp()


def breakdown(events: list[dict[str, Any]], started: float, ended: float,
              runner_started: float | None) -> dict[str, float | None]:
    """Where one run's wall time went (see the module docstring). Pure: takes the run's job
    events, the command's start and end (epoch seconds) and when ansible-runner started
    ansible-playbook (the mtime of ``artifacts/run/command``; None: unknown)."""
    tasks_sum = sum(task_times(events).values())
    starts = [event_time(e) for e in events if e.get("event") == "playbook_on_task_start"]
    stats = [event_time(e) for e in events if e.get("event") == "playbook_on_stats"]
    first_task = min(starts) if starts else None
    cli_s = runner_started - started if runner_started is not None else None
    startup = (first_task - runner_started if first_task is not None
               and runner_started is not None else None)
    after = ended - max(stats) if stats else None
    known = [v for v in (cli_s, startup, after) if v is not None]
    out = {"total_s": ended - started, "cli_s": cli_s, "ansible_startup_s": startup,
           "tasks_sum_s": tasks_sum, "after_last_event_s": after,
           "rest_s": ended - started - tasks_sum - sum(known)}
    return {k: None if v is None else round(v, 2) for k, v in out.items()}


def run_breakdown(result: dict[str, Any], started: float, ended: float) -> dict[str, Any]:
    log = Path(result.get("log", ""))
    command = log.parent / "command"
    runner_started = command.stat().st_mtime if command.is_file() else None
    return breakdown(read_events(str(log)), started, ended, runner_started)


def cpu_seconds() -> float:
    """CPU time (user+sys) of the finished children of this process (and theirs)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


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


def timed_rerun(host: LabHost, args: tuple[str, ...]) -> tuple[float, dict[str, Any],
                                                              dict[str, Any]]:
    """One run of provision with its wall time and breakdown (cpu_s included)."""
    cpu0, wall0 = cpu_seconds(), time.time()
    start = time.monotonic()
    result = json.loads(checked(cli(host.env, *args), "rerun"))
    elapsed = time.monotonic() - start
    parts = run_breakdown(result, wall0, wall0 + elapsed)
    parts["cpu_s"] = round(cpu_seconds() - cpu0, 2)
    return elapsed, result, parts


def bench_kind(kind: str, verify_image: bool, top: int) -> dict[str, Any]:
    floor_cmd = FLOOR_CONTAINER + ("" if kind == "container" else FLOOR_KERNEL)
    fair_cmd = fair_floor_command(kind, role_defaults("base"), role_defaults("docker"))
    with LabHost(kind) as host:
        floor_s, _ = timed(lambda: host.ssh(floor_cmd))
    with LabHost(kind) as host:
        fair_floor_s, _ = timed(lambda: host.ssh(fair_cmd))
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
        rerun_s, second, parts = timed_rerun(host, args)
        second_profile = profile(second, top)
    ratio = boot_s / floor_s
    fair_ratio = boot_s / fair_floor_s
    return {
        "floor_s": round(floor_s, 1),
        "fair_floor_s": round(fair_floor_s, 1),
        "fair_floor_packages": fair_packages(role_defaults("base"), role_defaults("docker")),
        "bootstrap_s": round(boot_s, 1),
        "rerun_s": round(rerun_s, 1),
        "ratio_bootstrap_to_floor": round(ratio, 2),
        "ratio_bootstrap_to_fair_floor": round(fair_ratio, 2),
        "first_run_changed": first["hosts"]["lab-1"]["changed"],
        "rerun_changed": second["hosts"]["lab-1"]["changed"],
        "goals": {f"ratio<={GOAL_RATIO}": ratio <= GOAL_RATIO,
                  f"fair_ratio<={GOAL_RATIO}": fair_ratio <= GOAL_RATIO,
                  f"rerun_s<={GOAL_RERUN_S}": rerun_s <= GOAL_RERUN_S,
                  "rerun_changed==0": second["hosts"]["lab-1"]["changed"] == 0},
        "bootstrap_profile": first_profile,
        "rerun_profile": second_profile,
        "rerun_breakdown": parts,
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
