#!/usr/bin/env python3
"""The upgrade journal on the first control-plane node (Python 3 standard library only).

provision writes one record per step and node ("started", "done", "failed") so that a re-run
continues from the first unfinished step; one call may write several records of one node (the
previous step "done" and the next one "started": one round trip per step). The file is written
atomically (temp file + rename, under an flock), mode 0600, directory 0700. Every command
prints {"provision_upgrade_journal": 2, "changed": ..., "journal": ...} on one line of stdout:
the controller recognises that output (not a task name) and keeps a copy of the journal.

    upgrade-journal [--file F] init HEADER_JSON     start (or keep) the journal of an upgrade
    upgrade-journal [--file F] record --hop N --node X --records '[["drain","done"],...]'
    upgrade-journal [--file F] record --hop N --node X --step S --status started|done|failed
    upgrade-journal [--file F] show
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import fcntl
import json
import os
import sys
import tempfile

DEFAULT = "/var/lib/provision/upgrade.json"
STATUSES = ("started", "done", "failed")
PROTOCOL = 2  # the output's first key: what the controller looks for


def now() -> str:
    # datetime.UTC needs Python 3.11; nodes may run 3.10 (Ubuntu 22.04)
    return dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")  # noqa: UP017


@contextlib.contextmanager
def locked(path: str):
    d = os.path.dirname(path) or "."
    os.makedirs(d, mode=0o700, exist_ok=True)
    os.chmod(d, 0o700)
    with open(os.path.join(d, ".upgrade-journal.lock"), "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        yield


def load(path: str) -> dict | None:
    try:
        with open(path) as fh:
            return json.load(fh)
    except FileNotFoundError:
        return None


def save(path: str, data: dict) -> None:
    fd, tmp = tempfile.mkstemp(prefix=".upgrade-journal-", dir=os.path.dirname(path) or ".")
    try:
        with os.fdopen(fd, "w") as fh:
            json.dump(data, fh, indent=2)
            fh.write("\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def init(path: str, header: dict) -> tuple[dict, bool]:
    """Keep the journal of the same upgrade (same "started"); set a different one aside
    (renamed, never deleted) and start the new one."""
    current = load(path)
    if current is not None and current.get("started") == header.get("started"):
        return current, False
    if current is not None:
        stamp = str(current.get("started") or "unknown").replace(":", "")
        os.replace(path, f"{path}.{stamp}")
    data = {**header, "steps": []}
    save(path, data)
    return data, True


def records_of(args: argparse.Namespace) -> list[tuple[str, str]]:
    """The (step, status) pairs of a record call: --records JSON or one --step/--status."""
    if args.records is None:
        if not args.step or not args.status:
            raise SystemExit("upgrade-journal record: give --records or --step and --status")
        return [(args.step, args.status)]
    try:
        pairs = json.loads(args.records)
    except ValueError as exc:
        raise SystemExit(f"upgrade-journal record: --records is not JSON: {exc}") from None
    if not isinstance(pairs, list) or not pairs or not all(
            isinstance(p, list) and len(p) == 2 and isinstance(p[0], str) and p[0]
            and p[1] in STATUSES for p in pairs):
        raise SystemExit("upgrade-journal record: --records must be a list of [step, status] "
                         f"pairs, status one of {', '.join(STATUSES)}")
    return [(p[0], p[1]) for p in pairs]


def record(path: str, args: argparse.Namespace) -> dict:
    pairs = records_of(args)
    data = load(path)
    if data is None:
        raise SystemExit(f"upgrade-journal: {path} does not exist: run `init` first")
    at = now()
    for step, status in pairs:
        data.setdefault("steps", []).append({
            "hop": args.hop, "step": step, "node": args.node, "status": status, "at": at,
            "error": args.error if status == "failed" else ""})
    save(path, data)
    return data


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="upgrade-journal")
    p.add_argument("--file", default=DEFAULT)
    sub = p.add_subparsers(dest="command", required=True)
    i = sub.add_parser("init")
    i.add_argument("header", help="the journal header as JSON (format, target, started, hops)")
    r = sub.add_parser("record")
    r.add_argument("--hop", type=int, required=True)
    r.add_argument("--node", required=True)
    r.add_argument("--records", help='JSON: [["step", "started|done|failed"], ...], in order')
    r.add_argument("--step")
    r.add_argument("--status", choices=STATUSES)
    r.add_argument("--error", default="")
    sub.add_parser("show")
    args = p.parse_args(argv)
    changed = False
    with locked(args.file):
        if args.command == "init":
            data, changed = init(args.file, json.loads(args.header))
        elif args.command == "record":
            data, changed = record(args.file, args), True
        else:
            data = load(args.file)
    json.dump({"provision_upgrade_journal": PROTOCOL, "changed": changed, "journal": data},
              sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
