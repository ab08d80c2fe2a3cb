"""Messages a role reports to the user, taken from the data the play returned (pure).

Some facts a run finds belong in the command's own output, not only in the run's log: the old
and new size of a root filesystem the base role grew, a disk an online-resize rescan found
bigger, firewall rules that are never reached. The role prints each with a ``debug`` task (for
the log) and returns it with ``set_stats`` (see ``provision.runner.run_report``)::

    provision: {reports: {<title>: {<host>: [<message>, ...]}}}

The reports are surfaced, per host, in the end-of-run summary and as ``reports`` in
``--json`` (``{"host", "task": <title>, "message"}``), in the order the play returned them,
hosts sorted. No task name is matched here: the title is data the role sends.
"""

from __future__ import annotations

from typing import Any


def reports_from_stats(report: Any) -> list[dict[str, str]]:
    """``[{"host", "task", "message"}]`` from the ``reports`` of a run's report; [] when none."""
    sent = report.get("reports") if isinstance(report, dict) else None
    out: list[dict[str, str]] = []
    for title, hosts in (sent or {}).items() if isinstance(sent, dict) else ():
        for host, messages in sorted(hosts.items()) if isinstance(hosts, dict) else ():
            for m in messages if isinstance(messages, list) else [messages]:
                if isinstance(m, str) and m.strip():
                    out.append({"host": str(host), "task": str(title),
                                "message": " ".join(m.split())})
    return out
