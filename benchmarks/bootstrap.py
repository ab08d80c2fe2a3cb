#!/usr/bin/env python3
"""Benchmark `provision bootstrap --components base,docker` against its floor.

For each kind (container, vm) on fresh lab hosts, measures:

(a) floor: what a person would do by hand over SSH: ``apt-get update``, ``apt-get install -y
    docker.io``, ``modprobe overlay br_netfilter`` and ``sysctl -w`` of the three sysctls
    (modprobe/sysctl are skipped on container hosts, like the role does);
(b) ``provision -i lab bootstrap --components base,docker`` on another fresh host of the
    same kind (with the offline proof image prepared before the clock starts);
(c) the no-op re-run of (b) (its changed count is reported; it must be 0).

Prints one JSON object: per kind floor_s, bootstrap_s, rerun_s, ratio (b/a), rerun changed.
Needs docker (container) or qemu (vm); a VM run takes 10+ minutes under TCG.

    python benchmarks/bootstrap.py                 # container and vm
    python benchmarks/bootstrap.py --kind container
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
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
MAKE_IMAGE = (REPO / "roles" / "docker" / "files" / "make_verify_image.py").read_text()
FLOOR_CONTAINER = ("sudo apt-get update -q && sudo DEBIAN_FRONTEND=noninteractive "
                   "apt-get install -y -q docker.io")
FLOOR_KERNEL = (" && sudo modprobe overlay && sudo modprobe br_netfilter && sudo sysctl -w "
                "net.ipv4.ip_forward=1 net.bridge.bridge-nf-call-iptables=1 "
                "net.bridge.bridge-nf-call-ip6tables=1")


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


def bench_kind(kind: str) -> dict[str, Any]:
    floor_cmd = FLOOR_CONTAINER + ("" if kind == "container" else FLOOR_KERNEL)
    with LabHost(kind) as host:
        floor_s, _ = timed(lambda: host.ssh(floor_cmd))
    with LabHost(kind) as host:
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
        rerun_s, second = timed(lambda: json.loads(checked(cli(host.env, *args), "rerun")))
    return {
        "floor_s": round(floor_s, 1),
        "bootstrap_s": round(boot_s, 1),
        "rerun_s": round(rerun_s, 1),
        "ratio_bootstrap_to_floor": round(boot_s / floor_s, 2),
        "first_run_changed": first["hosts"]["lab-1"]["changed"],
        "rerun_changed": second["hosts"]["lab-1"]["changed"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kind", choices=["container", "vm", "both"], default="both")
    args = parser.parse_args()
    kinds = ["container", "vm"] if args.kind == "both" else [args.kind]
    result: dict[str, Any] = {"benchmark": "bootstrap base,docker", "cpus": os.cpu_count(),
                              "load_avg_start": os.getloadavg()[0]}
    for kind in kinds:
        print(f"benchmarking {kind} ...", file=sys.stderr)
        result[kind] = bench_kind(kind)
    result["load_avg_end"] = os.getloadavg()[0]
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
