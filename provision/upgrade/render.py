"""The plan as a table (hop, kind, from, to, nodes, snapshot) and as a JSON object."""

from __future__ import annotations

from typing import Any

from provision.upgrade import steps
from provision.upgrade.plan import Plan
from provision.upgrade.state import Hop, hop_to_dict
from provision.versions import format_release

HEADERS = ("HOP", "KIND", "FROM", "TO", "NODES", "SNAPSHOT")
MAX_NODES_SHOWN = 4



def runbook_text(runbook: steps.Runbook = steps.RUNBOOK) -> str:
    """The hop's steps in words, from the runbook's sequences (the table or a journal's)."""
    return (f"Each hop: {steps.SNAPSHOT} (not for level hops), then one node at a time "
            f"(workers in batches): first control plane {', '.join(runbook.first_control_plane)}"
            f"; other control planes {', '.join(runbook.other_control_plane)}; workers "
            f"{', '.join(runbook.worker)}; then {steps.VERIFY}.")


def _nodes(hop: Hop) -> str:
    names = list(hop.nodes)
    if len(names) <= MAX_NODES_SHOWN:
        return ", ".join(names)
    return f"{', '.join(names[:MAX_NODES_SHOWN - 1])} +{len(names) - MAX_NODES_SHOWN + 1} more"


def hop_status(plan: Plan, hop: Hop) -> str:
    """Resuming: 'done', 'in progress' or 'pending' from the steps already done."""
    done = sum(1 for s in hop.steps() if s in plan.done)
    return "done" if done == len(hop.steps()) else "in progress" if done else "pending"


def rows(plan: Plan) -> list[tuple[str, ...]]:
    resuming = plan.resume is not None
    return [(str(h.index), h.kind, format_release(h.from_version), format_release(h.to_version),
             _nodes(h), h.snapshot or "-") + ((hop_status(plan, h),) if resuming else ())
            for h in plan.hops]


def table(plan: Plan) -> str:
    """Fixed-width plain text, one row per hop (and its status when resuming)."""
    headers = HEADERS + (("STATUS",) if plan.resume is not None else ())
    body = [headers, *rows(plan)]
    widths = [max(len(r[i]) for r in body) for i in range(len(headers))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
                     for r in body)


def text(plan: Plan) -> str:
    """The whole plan as the user sees it before anything runs."""
    cur, tgt = format_release(plan.current), format_release(plan.target)
    if plan.nothing_to_do:
        return f"Nothing to do: the cluster is at {cur} and every node is level."
    n = len(plan.hops)
    hops = f"{n} hop{'s' if n != 1 else ''}"
    if plan.resume is not None:
        start = format_release(plan.hops[0].from_version)
        head = f"Resuming upgrade plan: {start} -> {tgt} in {hops} (the cluster is at {cur})"
    else:
        head = f"Upgrade plan: {cur} -> {tgt} in {hops} (workers {plan.batch} at a time)"
    runbook = plan.hops[0].runbook if plan.hops else steps.RUNBOOK
    lines = [head, "", table(plan), "", runbook_text(runbook)]
    if plan.notes:
        lines += ["", "Notes:", *(f"  - {note}" for note in plan.notes)]
    if plan.resume is not None:
        hop = next(h for h in plan.hops if h.index == plan.resume.hop)
        lines += ["", f"Resume: next step is hop {hop.index} {plan.resume.name} on "
                      f"{plan.resume.node} ({plan.resume.describe(hop.target)})"]
    return "\n".join(lines)


def to_json(plan: Plan) -> dict[str, Any]:
    """The plan for --json: hops with their full node lists and every step in order."""
    done = plan.done
    return {
        "current": format_release(plan.current),
        "target": format_release(plan.target),
        "batch": str(plan.batch),
        "nothing_to_do": plan.nothing_to_do,
        "hops": [hop_to_dict(h) | {"nodes": list(h.nodes), "steps": [
            {"step": s.name, "node": s.node} | ({"done": s in done} if plan.resume else {})
            for s in h.steps()]} for h in plan.hops],
        "notes": list(plan.notes),
        "resume": ({"hop": plan.resume.hop, "step": plan.resume.name, "node": plan.resume.node}
                   if plan.resume else None),
        "steps_done": plan.steps_done,
    }
