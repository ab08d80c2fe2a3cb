#!/usr/bin/env python3
"""Remove one etcd member by name, refusing when the rest could not keep quorum.

    etcd_member.py --etcdctl PATH --endpoints URL[,URL] [--cacert F --cert F --key F]
                   --name NODE [--remove]

Reads ``etcdctl member list`` and the health of every member's client URL, then decides
(:func:`decide`, pure): ``absent`` (no member of that name: nothing to do), ``refuse`` (it is
the last member, or fewer healthy members would remain than the smaller cluster's quorum), or
``remove``; with ``--remove`` a ``remove`` decision runs ``etcdctl member remove ID``.
Prints one JSON object; exit 0 (absent/remove/planned), 3 (refused), 1 (etcd unreadable).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from typing import Any

EXIT_REFUSED = 3


def decide(members: list[dict[str, Any]], healthy: set[str], name: str) -> dict[str, Any]:
    """``members``: etcdctl's member list (name, ID, clientURLs); ``healthy``: client URLs
    that answered. Removing a member leaves N-1 members whose quorum is (N-1)//2+1: at least
    that many of the others must be healthy, else the cluster would stop accepting writes."""
    target = [m for m in members if m.get("name") == name]
    if not target:
        return {"action": "absent", "members": len(members),
                "reason": f"no etcd member named {name} (already removed?)"}
    member = target[0]
    others = [m for m in members if m is not member]
    healthy_others = [m for m in others if set(m.get("clientURLs") or []) & healthy]
    after = len(others)
    quorum = after // 2 + 1
    result = {"member_id": format(int(member["ID"]), "x"), "members": len(members),
              "healthy_others": len(healthy_others), "quorum_after": quorum if after else 0}
    if after == 0:
        return {**result, "action": "refuse",
                "reason": f"{name} is the only etcd member: removing it would end the "
                          "cluster (use `provision reset` to take the cluster down)"}
    if len(healthy_others) < quorum:
        unhealthy = sorted(m.get("name") or format(int(m["ID"]), "x") for m in others
                           if m not in healthy_others)
        return {**result, "action": "refuse",
                "reason": f"refusing to break etcd quorum: after removing {name} the cluster "
                          f"has {after} member(s) and needs {quorum} healthy, but only "
                          f"{len(healthy_others)} of the others answer (unhealthy: "
                          f"{', '.join(unhealthy)}); repair them first"}
    return {**result, "action": "remove",
            "reason": f"{after} member(s) remain, {len(healthy_others)} healthy "
                      f"(quorum {quorum})"}


def etcdctl(args: argparse.Namespace, *words: str, endpoints: str | None = None
            ) -> subprocess.CompletedProcess[str]:
    cmd = [args.etcdctl, f"--endpoints={endpoints or args.endpoints}", "--dial-timeout=3s",
           "--command-timeout=10s"]
    for flag in ("cacert", "cert", "key"):
        if getattr(args, flag):
            cmd.append(f"--{flag}={getattr(args, flag)}")
    return subprocess.run([*cmd, *words], capture_output=True, text=True, check=False)


def health(args: argparse.Namespace, members: list[dict[str, Any]]) -> set[str]:
    urls = sorted({u for m in members for u in m.get("clientURLs") or []})
    if not urls:
        return set()
    proc = etcdctl(args, "endpoint", "health", "-w", "json", endpoints=",".join(urls))
    try:
        rows = json.loads(proc.stdout or "[]")
    except ValueError:
        return set()
    return {r["endpoint"] for r in rows if r.get("health")}


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--etcdctl", default="etcdctl")
    ap.add_argument("--endpoints", required=True)
    ap.add_argument("--cacert", default="")
    ap.add_argument("--cert", default="")
    ap.add_argument("--key", default="")
    ap.add_argument("--name", required=True)
    ap.add_argument("--remove", action="store_true")
    args = ap.parse_args(argv)
    listed = etcdctl(args, "member", "list", "-w", "json")
    try:
        members = json.loads(listed.stdout)["members"]
    except (ValueError, KeyError):
        print(json.dumps({"action": "error", "reason": "etcdctl member list failed: "
                          + (listed.stderr.strip() or listed.stdout.strip())[-500:]}))
        return 1
    result = decide(members, health(args, members), args.name)
    if result["action"] == "refuse":
        print(json.dumps(result))
        return EXIT_REFUSED
    if result["action"] == "remove" and args.remove:
        proc = etcdctl(args, "member", "remove", result["member_id"])
        if proc.returncode != 0:
            print(json.dumps({**result, "action": "error",
                              "reason": f"etcdctl member remove failed: {proc.stderr.strip()}"}))
            return 1
        result["removed"] = True
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
