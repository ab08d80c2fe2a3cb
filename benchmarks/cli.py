"""How fast the CLI answers: `provision --help` and `provision validate` (JSON output), and
what provision.playbook_main saves per playbook run (``playbook_exit``: the same one-task local
playbook through the plain ``ansible-playbook`` script and through provision.runner's
``quick_exit_command``, alternating, in the same run)."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
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
        "playbook_exit": playbook_exit(),
    }
    print(json.dumps(result, indent=2))


def timed_python(runs: int = 7) -> dict[str, float]:
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", "pass"], check=True)
        samples.append(time.perf_counter() - start)
    return {"median_s": round(statistics.median(samples), 4), "runs": runs}


def playbook_exit(runs: int = 9) -> dict[str, object]:
    """A one-task local playbook, plain ansible-playbook vs provision.playbook_main
    (alternating, which goes first too): medians, and the median of the paired differences."""
    sys.path.insert(0, str(ROOT))
    from provision.runner import quick_exit_command

    script = str(Path(sys.executable).parent / "ansible-playbook")
    variants = {"plain": [script], "quick_exit": quick_exit_command([script])}
    samples: dict[str, list[float]] = {name: [] for name in variants}
    with tempfile.TemporaryDirectory() as tmp:
        book = Path(tmp) / "one.yml"
        book.write_text("- hosts: localhost\n  gather_facts: false\n  tasks:\n"
                        "    - ansible.builtin.debug: {msg: one}\n")
        env = dict(os.environ, ANSIBLE_LOCAL_TEMP=tmp)
        for i in range(runs):
            order = list(variants) if i % 2 == 0 else list(variants)[::-1]
            for name in order:
                start = time.perf_counter()
                subprocess.run([*variants[name], "-i", "localhost,", "-c", "local", str(book)],
                               capture_output=True, check=True, env=env, cwd=tmp)
                samples[name].append(time.perf_counter() - start)
    saved = [p - q for p, q in zip(samples["plain"], samples["quick_exit"], strict=True)]
    return {**{f"{name}_median_s": round(statistics.median(v), 4)
               for name, v in samples.items()},
            "saved_median_s": round(statistics.median(saved), 4), "runs": runs,
            "load_avg_1m": round(os.getloadavg()[0], 2)}


if __name__ == "__main__":
    main()
