"""Time inventory loading + validation (``load_valid_inventory``, what every command runs
before contacting a host) for 100, 1,000 and 2,000 hosts, side by side in one run. Prints JSON.

Each inventory is a directory like ``inventory/kubeadm-ha`` scaled up: 3 control planes, the
rest workers, one ``ansible_host`` per host, ``group_vars/all.yml`` and ``workers.yml`` and a
``host_vars`` file for every 50th host. Each size is timed ``--repeat`` times (default 3) after
one warm-up run; the fastest run counts (the machine is shared; the minimum is the least
disturbed). One timed run of a smaller size loads it several times (2,000 / size: 20 loads of
100 hosts), so every run does about the same work and a few milliseconds of noise do not
decide the per-host ratio. Goal (issue 13): 2,000 hosts under 1 s on an idle machine and a
flat time per host (``per_host_ratio_2000_100`` <= 1.5).

    PYTHONPATH=. python benchmarks/validate_scale.py [--repeat N] [--sizes 100,1000,2000]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import tempfile
import time
from pathlib import Path

GROUP_VARS_ALL = """\
provision_mode: kubeadm
kubernetes_version: "1.31.2"
ansible_user: ubuntu
control_plane_endpoint: k8s-api.example.internal:6443
kube_proxy_mode: ipvs
pod_cidr: 10.244.0.0/16
service_cidr: 10.96.0.0/12
cni_plugin: flannel
metallb_addresses: [10.0.0.200-10.0.0.210]
etcd_backup_dir: /var/backups/etcd
etcd_backup_keep: 14
etcd_backup_max_age: 30d
"""


def _address(i: int) -> str:
    return f"10.{1 + i // 62500}.{(i // 250) % 250}.{i % 250 + 1}"


def write_inventory(root: Path, hosts: int) -> Path:
    """An inventory directory with ``hosts`` hosts under ``root``; returns its path."""
    inv = root / f"inv-{hosts}"
    (inv / "group_vars").mkdir(parents=True)
    (inv / "host_vars").mkdir()
    (inv / "group_vars" / "all.yml").write_text(GROUP_VARS_ALL)
    (inv / "group_vars" / "workers.yml").write_text("ansible_port: 22\n")
    lines = ["all:", "  children:", "    control_plane:", "      hosts:"]
    names = [f"cp{i}" for i in range(3)] + [f"w{i}" for i in range(hosts - 3)]
    for i, name in enumerate(names):
        if i == 3:
            lines += ["    workers:", "      hosts:"]
        lines.append(f"        {name}: {{ansible_host: {_address(i)}}}")
        if i % 50 == 0:
            (inv / "host_vars" / f"{name}.yml").write_text("ansible_user: admin\n")
    (inv / "hosts.yml").write_text("\n".join(lines) + "\n")
    return inv


def _time_once(inv: Path, number: int = 1) -> float:
    """Seconds per load of ``inv``, averaged over ``number`` consecutive loads."""
    from provision.validate import load_valid_inventory

    start = time.perf_counter()
    with contextlib.redirect_stderr(io.StringIO()):  # warnings (none expected) stay quiet
        for _ in range(number):
            loaded = load_valid_inventory(str(inv))
    seconds = (time.perf_counter() - start) / number
    assert len(loaded.hosts) > 0
    return seconds


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--sizes", default="100,1000,2000")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    import provision

    out: dict[str, object] = {"provision": str(Path(provision.__file__).parent),
                              "repeat": args.repeat,
                              "loadavg_before": [round(x, 2) for x in os.getloadavg()]}
    with tempfile.TemporaryDirectory(prefix="validate-scale-") as tmp:
        invs = {n: write_inventory(Path(tmp), n) for n in sizes}
        _time_once(write_inventory(Path(tmp) / "warm", 10))  # role specs read and cached
        results: dict[str, dict[str, object]] = {}
        for n in sizes:
            number = max(1, max(sizes) // n)
            runs = [_time_once(invs[n], number) for _ in range(args.repeat)]
            best = min(runs)
            results[str(n)] = {"seconds": round(best, 4),
                               "per_host_ms": round(best * 1000 / n, 4),
                               "loads_per_run": number,
                               "runs_s": [round(r, 4) for r in runs]}
    out["hosts"] = results
    lo, hi = str(min(sizes)), str(max(sizes))
    out[f"per_host_ratio_{hi}_{lo}"] = round(
        results[hi]["per_host_ms"] / results[lo]["per_host_ms"], 2)
    out["loadavg_after"] = [round(x, 2) for x in os.getloadavg()]
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
