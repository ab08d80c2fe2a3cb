"""Time the pure upgrade planner: plan 1.28 -> 1.37 and resume half-way, for 2/10/100 workers.
Prints JSON."""

import json
import time

from provision.upgrade.plan import plan_upgrade
from provision.upgrade.repository import repository_from_data
from provision.upgrade.state import ClusterState, Journal, Node, Packages

REPO = repository_from_data({m: [f"1.{m}.0", f"1.{m}.1"] for m in range(28, 38)})


def main() -> None:
    out = {}
    for workers in (2, 10, 100):
        v = (1, 28, 1)
        nodes = (Node("cp-1", "control-plane", v, Packages(v, v, v)),) + tuple(
            Node(f"w-{i}", "worker", v, Packages(v, v, v)) for i in range(workers))
        t = time.perf_counter()
        plan = plan_upgrade(ClusterState(v, nodes), "1.37", REPO)
        plan_s = time.perf_counter() - t
        journal = Journal(plan.target, list(plan.hops))
        planned = journal.planned_steps()
        for s in planned[: len(planned) // 2]:
            journal.record(s, "done")
        hop = journal.hop(journal.first_unfinished().hop)
        old = hop.from_version
        nodes = tuple(Node(n.name, n.role, old, Packages(old, old, old)) for n in nodes)
        state = ClusterState(hop.to_version, nodes, journal)
        t = time.perf_counter()
        resumed = plan_upgrade(state, "1.37", REPO)
        resume_s = time.perf_counter() - t
        out[str(workers)] = {"hops": len(plan.hops), "steps": len(planned),
                             "plan_ms": round(plan_s * 1000, 2),
                             "resume_plan_ms": round(resume_s * 1000, 2),
                             "next_step": str(resumed.resume)}
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
