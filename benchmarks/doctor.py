"""How long `provision doctor` takes against N = 1 and N = 5 real sshd hosts on loopback.

Prints JSON: the whole CLI (`python -m provision ... doctor --json`, Python start-up and
paramiko import included) and the engine alone (run_doctor in this process), in parallel (the
default) and one host at a time, to show what the thread pool buys. The HTTPS checks are off
(they would need the internet; on real hosts they add at most their 5 s timeout, run in
parallel on each host).
"""

from __future__ import annotations

import contextlib
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))

from sshd_fixtures import start_sshd, write_inventory  # noqa: E402

from provision.doctor.engine import run_doctor  # noqa: E402
from provision.inventory import load_inventory  # noqa: E402

RUNS = 5


def stats(samples: list[float]) -> dict[str, float]:
    return {"median_s": round(statistics.median(samples), 3), "min_s": round(min(samples), 3),
            "max_s": round(max(samples), 3), "runs": len(samples)}


def bench(n: int, tmp: Path) -> dict[str, object]:
    with contextlib.ExitStack() as stack:
        servers = [stack.enter_context(start_sshd(tmp / f"n{n}-s{i}")) for i in range(n)]
        inv_dir = write_inventory(tmp / f"inv{n}", {f"h{i}": s.host_vars()
                                                    for i, s in enumerate(servers)})
        cli = []
        for _ in range(RUNS):
            start = time.perf_counter()
            proc = subprocess.run([sys.executable, "-m", "provision", "-i", str(inv_dir),
                                   "--json", "doctor", "--skip-network-checks"],
                                  capture_output=True, text=True, cwd=ROOT)
            cli.append(time.perf_counter() - start)
            if proc.returncode not in (0, 1):
                raise SystemExit(f"doctor exited {proc.returncode}: {proc.stderr}")
        hosts = list(load_inventory(inv_dir).hosts.values())
        run_doctor(hosts, urls=())  # warm up imports
        engine: dict[str, list[float]] = {"parallel": [], "sequential": []}
        per_host: list[float] = []
        for _ in range(RUNS):
            for mode, workers in (("parallel", 32), ("sequential", 1)):
                start = time.perf_counter()
                report = run_doctor(hosts, urls=(), max_workers=workers)
                engine[mode].append(time.perf_counter() - start)
                per_host += [g.seconds for g in report.gathered.values()]
        return {"hosts": n, "cli": stats(cli),
                "engine_parallel": stats(engine["parallel"]),
                "engine_sequential": stats(engine["sequential"]),
                "one_host_session": stats(per_host)}


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="doctor-bench-") as tmp:
        results = [bench(n, Path(tmp)) for n in (1, 5)]
    print(json.dumps({"benchmark": "doctor", "results": results}, indent=2))


if __name__ == "__main__":
    main()
