#!/usr/bin/env python3
"""Benchmark `provision lab`: image build time (cold and cached) and time to a ready host
(SSH answering with the recorded host key, `sudo -n true` passing), for 1 and 3 nodes.
Prints one JSON object. Needs root (debootstrap) and docker; arm64 needs qemu-aarch64 binfmt.

    python benchmarks/lab.py                          # container amd64+arm64, cached image
    python benchmarks/lab.py --cold                   # also a cold image build (minutes)
    python benchmarks/lab.py --kind vm --arch amd64 --nodes 1

Hook for other kinds: ``bench_kind()`` works for any backend through the manager; a backend
module may provide ``benchmark_cold_build(arch) -> float`` (seconds) for the cold build.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def cold_container_build(arch: str) -> float:
    """A from-scratch image build: fresh debootstrap with an empty package cache."""
    from provision.lab import images

    with tempfile.TemporaryDirectory(prefix="provision-bench-debs-") as debs:
        start = time.monotonic()
        images.build(arch, deb_cache=Path(debs))
        return time.monotonic() - start


def bench_image(kind: str, arch: str, cold: bool) -> dict[str, Any]:
    from provision.lab import manager

    be = manager.backend(kind)
    out: dict[str, Any] = {}
    if cold:
        fn = cold_container_build if kind == "container" else getattr(
            be, "benchmark_cold_build", None)
        out["image_build_cold_s"] = round(fn(arch), 2) if fn else None
    start = time.monotonic()
    kwargs = {"progress": lambda m: print(m, file=sys.stderr)} if kind == "container" else {}
    be.ensure_image(arch, None, **kwargs)  # builds once when missing
    first = time.monotonic() - start
    start = time.monotonic()
    be.ensure_image(arch, None, **kwargs)
    out["image_first_ensure_s"] = round(first, 2)
    out["image_cached_s"] = round(time.monotonic() - start, 3)
    return out


def bench_kind(kind: str, arch: str, nodes: int) -> dict[str, Any]:
    """`lab up` (image cached) until every host answers SSH, then `lab down`."""
    from provision.lab import manager

    with tempfile.TemporaryDirectory(prefix="provision-bench-lab-") as home:
        old = os.environ.get("XDG_STATE_HOME")
        os.environ["XDG_STATE_HOME"] = home
        try:
            plan = manager.make_plan(nodes=nodes, kind=kind, arch=arch)
            start = time.monotonic()
            try:
                _, timings = manager.up(plan, progress=lambda m: print(m, file=sys.stderr))
                total = time.monotonic() - start
            finally:
                down_start = time.monotonic()
                manager.down(progress=lambda m: None)
                down = time.monotonic() - down_start
        finally:
            if old is None:
                os.environ.pop("XDG_STATE_HOME", None)
            else:
                os.environ["XDG_STATE_HOME"] = old
    return {"nodes": nodes, "up_total_s": round(total, 2), "start_s": timings["start_s"],
            "ready_s": timings["ready_s"], "ssh_wait_s": timings["ssh_wait_s"],
            "down_s": round(down, 2)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kind", default="container", choices=["container", "vm"])
    ap.add_argument("--arch", default="amd64,arm64")
    ap.add_argument("--nodes", default="1,3")
    ap.add_argument("--cold", action="store_true", help="also time a from-scratch image build")
    args = ap.parse_args()
    result: dict[str, Any] = {"kind": args.kind, "cpus": os.cpu_count(), "arches": {}}
    for arch in args.arch.split(","):
        entry = bench_image(args.kind, arch, args.cold)
        entry["ready"] = [bench_kind(args.kind, arch, int(n)) for n in args.nodes.split(",")]
        result["arches"][arch] = entry
    json.dump(result, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
