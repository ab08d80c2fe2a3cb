"""How fast the CLI answers: `provision --help` and `provision validate` (JSON output)."""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def timed(args: list[str], runs: int = 7) -> dict[str, float]:
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "provision", *args], capture_output=True,
                       check=False, cwd=ROOT)
        samples.append(time.perf_counter() - start)
    return {"median_s": round(statistics.median(samples), 4), "min_s": round(min(samples), 4),
            "max_s": round(max(samples), 4), "runs": runs}


def main() -> None:
    baseline = timed(["--version"])
    result = {
        "python_startup": timed_python(),
        "version": baseline,
        "help": timed(["--help"]),
        "validate_example_ha": timed(["-i", str(ROOT / "inventory/kubeadm-ha"), "validate"]),
    }
    print(json.dumps(result, indent=2))


def timed_python(runs: int = 7) -> dict[str, float]:
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", "pass"], check=True)
        samples.append(time.perf_counter() - start)
    return {"median_s": round(statistics.median(samples), 4), "runs": runs}


if __name__ == "__main__":
    main()
