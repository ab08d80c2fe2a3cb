"""`provision etcd snapshot|schedule|list|fetch|verify|restore`: verified etcd backups.

Each subcommand checks its flags (exit 2, nothing contacted), runs ``playbooks/etcd-*.yml``
through ``provision.runner`` and reads the per-host results the playbook returns with
``set_stats`` (``provision.runner.run_report``: no report files). The work on the nodes is
done by the ``etcd-backup`` tool the ``etcd_snapshot`` role installs.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from provision import output
from provision.commands._common import global_options, options, print_summary
from provision.errors import EXIT_FAILED, UsageError

# Global options a subcommand refuses (exit 2 naming the option, nothing contacted), and why.
# Every other global option is honoured: --limit by _etcd_hosts, --json and -v by the runner.
REFUSED: dict[str, dict[str, str]] = {
    "snapshot": {"--check": "check mode would only skip the snapshot; `etcd list` shows "
                            "what exists"},
    "schedule": {"--check": "the timer values are checked against their patterns before any "
                            "host is contacted; run without --check to install the timer"},
    "list": {"--check": "it changes nothing anyway"},
    "fetch": {"--check": "it changes nothing on the nodes and checks each file it writes"},
    "verify": {"--check": "the restore drill is itself the check and changes no cluster "
                          "state"},
    "restore": {"--check": "it would move nothing and prove little; its checks always run "
                           "first on every node and refuse before anything is touched",
                "--limit": "every control-plane member is restored together (one new cluster "
                           "from one snapshot); a partial restore would split the cluster"},
}


def _refuse_options(sub: str, opts: Any) -> None:
    """Exit 2 naming the first given global option that ``etcd sub`` refuses."""
    given = {"--check": opts.check, "--limit": opts.limit is not None}
    for option, why in REFUSED.get(sub, {}).items():
        if given[option]:
            raise UsageError(f"etcd {sub} does not support {option}: {why}; nothing was "
                             "contacted")


def _etcd_hosts(inv: Any, opts: Any) -> list[str]:
    """The control-plane hosts this run touches: all, or those ``--limit`` selects (a pattern
    selecting no control-plane host is exit 2 naming --limit)."""
    from provision.validate import check_limit

    cps = [h.name for h in inv.control_plane]
    if opts.limit is None:
        return cps
    if not any(p.strip().lstrip("!") for p in opts.limit.replace(":", ",").split(",")):
        raise UsageError(f"--limit {opts.limit!r}: names no host or group")
    chosen = [h.name for h in check_limit(inv, opts.limit) if h.name in cps]
    if not chosen:
        raise UsageError(f"--limit {opts.limit}: selects no control-plane host (etcd runs on "
                         f"{', '.join(cps) or 'none'}); nothing was contacted")
    return chosen


def _inventory(sub: str) -> tuple[Any, Any, list[str]]:
    """(options, validated inventory, etcd hosts of this run); exit 2 before any contact
    (minikube mode too: there is no etcd to reach, and nothing is downloaded)."""
    from provision.cluster import refuse_minikube
    from provision.validate import load_valid_inventory

    opts = options()
    _refuse_options(sub, opts)
    inv = load_valid_inventory(opts.inventory)
    refuse_minikube(inv, f"etcd {sub}")
    return opts, inv, _etcd_hosts(inv, opts)


def host_reports(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Per-host results from what the playbook returned (``run_report``: ``{'etcd': {host:
    value}}``); a value is etcd-backup's JSON answer (text) or a dict the play built (pure)."""
    reports: dict[str, dict[str, Any]] = {}
    for host, value in sorted((report.get("etcd") or {}).items()):
        if isinstance(value, dict):
            reports[host] = value
            continue
        try:
            parsed = json.loads(value or "{}")
        except (TypeError, ValueError):
            parsed = None
        reports[host] = (parsed if isinstance(parsed, dict) else
                         {"ok": False, "error": f"unreadable report: {value!r}"})
    return reports


def _run(command: str, playbook: str, extravars: dict[str, Any],
         checked: tuple[Any, Any, list[str]] | None = None
         ) -> tuple[Any, dict[str, dict[str, Any]]]:
    """Run the playbook on the etcd hosts (``checked``: what _inventory returned; else it is
    called here) and return (RunResult, reports by host: what the play returned with
    set_stats, see :func:`host_reports`)."""
    from provision.inventory_cache import store
    from provision.runner import run_playbook, run_report

    opts, inv, _ = checked or _inventory(command.split()[-1])
    store(inv)  # every check passed: the next command reuses this load (no Ansible import)
    result = run_playbook(command=command, playbook=playbook, inventory=inv,
                          extravars=extravars, limit=opts.limit, check=opts.check,
                          verbosity=opts.verbosity)
    reports = host_reports(run_report(result))
    from provision.cluster import finish_if_missing

    if (code := finish_if_missing(result, opts)) is not None:  # no cluster: one line, exit 1
        click.get_current_context().exit(code)
    print_summary(result)
    return result, reports


def _finish(result: Any, **extra: Any) -> int:
    obj = result.to_json()
    obj.update(extra)
    return output.finish(obj)


def _mib(n: int | None) -> str:
    return "-" if n is None else f"{n / 1048576:.1f} MiB"


@click.group(name="etcd")
def cli() -> None:
    """etcd snapshots: take, schedule, list, fetch, verify (restore drill), restore.

    --limit selects control-plane hosts (exit 2 when it selects none; restore refuses it:
    every member is restored together); --check is refused by every subcommand (exit 2).

    \b
    Examples:
      provision etcd snapshot --tag pre.upgrade
      provision etcd schedule --every 6h --keep 14 --max-age 30d --verify-restore
      provision etcd list
      provision etcd fetch --dest ./backups --all
      provision etcd verify
      provision etcd restore --snapshot latest
      provision etcd restore --snapshot ./etcd-snapshots/cp1/etcd-prod-cp1-20261121T030000Z.db
    """


@global_options("inventory", "limit", "verbosity", "json",
                refuses={"check": REFUSED["snapshot"]["--check"]})
@cli.command()
@click.option("--tag", default="",
              help="Tag in the file name (1-32 of a-z, 0-9, '.'); kept by retention.")
@click.option("--all-members", is_flag=True, help="Snapshot every healthy member, not just one.")
@click.option("--verify-restore", is_flag=True, help="Run the restore drill on the new snapshot.")
def snapshot(tag: str, all_members: bool, verify_restore: bool) -> int:
    """Take a verified snapshot (temp name, `etcdutl snapshot status`, sidecar, rename)."""
    from provision.etcd import naming

    try:
        naming.validate_tag(tag)
    except ValueError as exc:
        raise UsageError(f"--tag: {exc}") from exc
    result, reports = _run("etcd snapshot", "etcd-snapshot.yml", {
        "etcd_snapshot_tag": tag, "etcd_snapshot_all_members": all_members,
        "etcd_snapshot_verify_restore": verify_restore})
    snaps = {h: r for h, r in reports.items() if r.get("snapshot")}
    for host, r in sorted(snaps.items()):
        sc = r["sidecar"]
        drill = r.get("restore_check")
        output.echo(f"{host}: {r['snapshot']} ({_mib(sc['size'])}, revision {sc['revision']}, "
                    f"{sc['keys']} keys, sha256 {sc['sha256'][:12]}…)"
                    + (f", restore drill {'ok' if drill['ok'] else 'FAILED'}" if drill else ""))
    return _finish(result, snapshots=snaps)


@global_options("inventory", "limit", "verbosity", "json",
                refuses={"check": REFUSED["schedule"]["--check"]})
@cli.command()
@click.option("--every", help="Interval: 30s, 15m, 1h, 6h, 1d, daily, weekly…")
@click.option("--calendar", help="A systemd OnCalendar expression, e.g. 'Mon,Thu 03:00'.")
@click.option("--keep", metavar="N", help="Untagged snapshots kept (1..100000).")
@click.option("--max-age", help="Untagged snapshots older than this are removed (30d, 12h).")
@click.option("--verify-restore/--no-verify-restore", default=None,
              help="Run the restore drill after each scheduled snapshot.")
@click.option("--randomized-delay",
              help="RandomizedDelaySec of the timer: a systemd time span (e.g. 5min, 0).")
@click.option("--disable", is_flag=True, help="Stop and remove the timer (snapshots are kept).")
def schedule(every: str | None, calendar: str | None, keep: str | None, max_age: str | None,
             verify_restore: bool | None, randomized_delay: str | None, disable: bool) -> int:
    """Install the etcd-backup systemd service and timer on the control-plane nodes.

    Each value written into the timer is checked against its pattern before any host is
    contacted (exit 2 naming the flag): --calendar is a systemd calendar expression in ASCII
    letters, digits, space and , : * / ~ . _ + -; --randomized-delay a systemd time span;
    numbers are ASCII digits. The role checks them again and escapes them in the unit files.
    """
    from provision.etcd.schedule import ScheduleError, schedule_vars

    try:
        extravars = schedule_vars(every, calendar, keep, max_age, randomized_delay, disable)
    except ScheduleError as exc:
        raise UsageError(str(exc)) from exc
    if verify_restore is not None:
        extravars["etcd_backup_verify_restore"] = verify_restore
    result, _ = _run("etcd schedule", "etcd-schedule.yml", extravars)
    if result.ok and not disable:
        when = extravars.get("etcd_backup_schedule", "the inventory's etcd_backup_schedule")
        output.echo(f"etcd-backup.timer runs {when}; see: systemctl list-timers etcd-backup.timer")
    return _finish(result, schedule=extravars.get("etcd_backup_schedule"))


def list_rows(reports: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """Table rows from the per-host `etcd-backup list --remote` reports (pure)."""
    rows: list[dict[str, Any]] = []
    for host, rep in sorted(reports.items()):
        for s in rep.get("snapshots") or []:
            sc = s.get("sidecar") or {}
            drill = sc.get("restore_check") or {}
            rows.append({"where": host, "file": s["file"], "created": s["created"],
                         "size": s["size"], "revision": sc.get("revision"),
                         "keys": sc.get("keys"), "tag": s.get("tag", ""),
                         "verified": ("restored" if drill.get("ok") else
                                      "FAILED" if drill.get("ok") is False else
                                      "status" if s.get("verified") else "no")})
        for s in rep.get("remote") or []:
            rows.append({"where": f"{host}:remote", "file": s["file"], "created": s["created"],
                         "size": s.get("size"), "revision": None, "keys": None,
                         "tag": s.get("tag", ""),
                         "verified": "status" if s.get("verified") else "no"})
    return rows


@global_options("inventory", "limit", "verbosity", "json",
                refuses={"check": REFUSED["list"]["--check"]})
@cli.command(name="list")
def list_() -> int:
    """Snapshots per node and on the remote: time, size, revision, keys, verified, tag."""
    result, reports = _run("etcd list", "etcd-list.yml", {})
    rows = list_rows(reports)
    for host, rep in sorted(reports.items()):
        if rep.get("ok") is False:
            output.echo(f"{host}: {rep.get('error')}")
    if rows:
        output.echo(f"{'WHERE':<16} {'CREATED (UTC)':<26} {'SIZE':>10} {'REVISION':>9} "
                    f"{'KEYS':>8} {'VERIFIED':<9} {'TAG':<12} FILE")
        for r in rows:
            output.echo(f"{r['where']:<16} {r['created']:<26} {_mib(r['size']):>10} "
                        f"{r['revision'] if r['revision'] is not None else '-':>9} "
                        f"{r['keys'] if r['keys'] is not None else '-':>8} {r['verified']:<9} "
                        f"{r['tag'] or '-':<12} {r['file']}")
    elif result.ok:
        output.echo("no snapshots")
    return _finish(result, snapshots=rows)


@global_options("inventory", "limit", "verbosity", "json",
                refuses={"check": REFUSED["fetch"]["--check"]})
@cli.command()
@click.option("--dest", type=click.Path(path_type=Path), default=Path("etcd-snapshots"),
              show_default=True,
              help="Controller directory (created 0700 when missing; never a symbolic link); "
                   "one subdirectory per node.")
@click.option("--all", "fetch_all", is_flag=True, help="Every snapshot, not just the newest.")
def fetch(dest: Path, fetch_all: bool) -> int:
    """Copy the newest (or every) snapshot and its sidecar here; checksums verified.

    Only the files it writes are set to 0600; nothing else in --dest is touched.
    """
    from provision.etcd import fetchdest

    dest = fetchdest.check_dest(dest)
    checked = _inventory("fetch")
    fetchdest.check_host_dirs(dest, checked[2])
    fetchdest.make_dest(dest)
    with fetchdest.private_umask():
        result, reports = _run("etcd fetch", "etcd-fetch.yml",
                               {"etcd_fetch_dest": str(dest), "etcd_fetch_all": fetch_all},
                               checked)
    good, bad = fetchdest.check_fetched(dest, reports)
    for path in good:
        output.echo(f"fetched {path} (sha256 matches its sidecar)")
    for problem in bad:
        output.echo(f"error: {problem}", err=True)
    obj = result.to_json()
    if bad and obj["exit_code"] == 0:
        obj.update(ok=False, exit_code=EXIT_FAILED)
    obj.update(fetched=good, checksum_errors=bad, dest=str(dest))
    return output.finish(obj)


def _snapshot_name(which: str) -> str:
    """'latest' or a snapshot file name (etcd-<cluster>-<node>-<time>[-<tag>].db)."""
    from provision.etcd import naming

    if which != "latest" and naming.parse(which) is None:
        raise UsageError(f"--snapshot {naming.shown(which)}: a snapshot file name "
                         "(etcd-<cluster>-<node>-<UTC time>[-<tag>].db) or 'latest'")
    return which


@global_options("inventory", "limit", "verbosity", "json",
                refuses={"check": REFUSED["verify"]["--check"]})
@cli.command()
@click.option("--snapshot", "which", default="latest", show_default=True,
              help="Snapshot file name on the node, or 'latest'.")
def verify(which: str) -> int:
    """Restore drill: restore into a throwaway dir, serve on loopback, compare, clean up."""
    result, reports = _run("etcd verify", "etcd-verify.yml",
                           {"etcd_verify_snapshot": _snapshot_name(which)})
    for host, r in sorted(reports.items()):
        d = r.get("restore_check")
        if d:
            output.echo(f"{host}: {Path(r['snapshot']).name}: restored revision {d['revision']}, "
                        f"{d['keys']} keys, {d['prefix_keys']} under {d['prefix']} "
                        f"in {d['seconds']}s: {'ok' if d['ok'] else 'FAILED'}")
        else:
            output.echo(f"{host}: verify failed: {r.get('error')}")
    return _finish(result, drills=reports)


def check_controller_snapshot(path: Path) -> Path:
    """A snapshot file on the controller: named like ours, with a sidecar that matches it.

    Raises UsageError (exit 2, nothing contacted) naming the file and the problem.
    """
    from provision.etcd import naming, sidecar

    path = path.expanduser().resolve()
    if not path.is_file():
        raise UsageError(f"--snapshot {path}: no such file on this machine; nothing was changed")
    if naming.parse(path.name) is None:
        raise UsageError(f"--snapshot {path}: not a snapshot name "
                         "(etcd-<cluster>-<node>-<UTC time>[-<tag>].db, as `provision etcd "
                         "fetch` writes them); nothing was changed")
    try:
        sidecar.verify_file(path, sidecar.load(path.with_suffix(".json")))
    except sidecar.SidecarError as exc:
        raise UsageError(f"--snapshot: refusing {exc}; nothing was changed") from exc
    return path


CURRENT_DATA_DIR = "/var/lib/etcd"  # kubeadm's; the role compares with each member's own


def check_data_dir(value: str) -> str:
    """--data-dir: absolute, normalised, a directory of its own, not (in, around) the current
    data dir. Two spellings of one directory (``//var/lib/etcd``, ``/var/lib/etcd/../etcd``)
    are refused as not normalised before any comparison."""
    from provision.etcd import paths

    problem = paths.dedicated_dir_problem(value)
    if problem is None and paths.overlaps(value, CURRENT_DATA_DIR):
        problem = (f"{value} is, contains or is inside the current data dir "
                   f"{CURRENT_DATA_DIR}")
    if problem:
        raise UsageError(f"--data-dir: {problem}; give a NEW directory, e.g. "
                         "/var/lib/etcd-restored; nothing was changed")
    return value


def _confirm(hosts: list[str], which: str, yes: bool) -> None:
    import sys

    if yes:
        return
    if not sys.stdin.isatty():
        raise UsageError("etcd restore replaces the cluster's state: confirm with --yes when "
                         "not running on a terminal; nothing was changed")
    click.confirm(f"Restore etcd on {', '.join(hosts) or 'the control-plane nodes'} from "
                  f"{which}? Everything written after the snapshot is lost (the old data dir "
                  "is kept).", abort=True, err=True)


@global_options("inventory", "verbosity", "json",
                refuses={"check": REFUSED["restore"]["--check"],
                         "limit": REFUSED["restore"]["--limit"]})
@cli.command()
@click.option("--snapshot", "which", default="latest", show_default=True,
              help="'latest' (the newest snapshot of any member), a snapshot file name "
                   "on the nodes, or a path on this machine (copied with its .json sidecar).")
@click.option("--data-dir", help="New etcd data dir (default /var/lib/etcd-restored-<time>); "
                                 "must not exist; absolute and normalised, never a system "
                                 "directory nor the current data dir (or in/around it).")
@click.option("--yes", is_flag=True, allow_from_autoenv=False,
              help="Do not ask for confirmation (destructive). Only this flag skips the "
                   "question: no environment variable does (PROVISION_ETCD_RESTORE_YES is "
                   "ignored).")
def restore(which: str, data_dir: str | None, yes: bool) -> int:
    """Restore a snapshot: kubeadm's procedure, one control-plane node at a time.

    \b
    Checks first (sha256 against the sidecar, `etcdutl snapshot status`) and refuses before
    touching anything; then moves the kube-apiserver and etcd manifests aside, restores into
    a NEW data dir (the old one is kept), points the etcd manifest at it (new cluster token),
    moves the manifests back, waits for etcd and the API server and restarts the kubelet;
    finally sets etcd.local.dataDir in the kubeadm-config ConfigMap to the new data dir.
    """
    extravars: dict[str, Any] = {"etcd_restore_confirmed": True}
    if which == "latest" or ("/" not in which and not Path(which).exists()):
        extravars["etcd_restore_snapshot"] = _snapshot_name(which)
    else:
        extravars["etcd_restore_snapshot"] = str(check_controller_snapshot(Path(which)))
    if data_dir is not None:
        extravars["etcd_restore_data_dir"] = check_data_dir(data_dir)
    checked = _inventory("restore")
    opts, inv, hosts = checked
    if not hosts:
        raise UsageError(f"{inv.path}: no hosts in group 'control_plane'; nothing to restore")
    _confirm(hosts, extravars["etcd_restore_snapshot"], yes)
    result, reports = _run("etcd restore", "etcd-restore.yml", extravars, checked)
    for host, r in sorted(reports.items()):
        output.echo(f"{host}: restored {Path(r['snapshot']).name} (revision {r['revision']}) "
                    f"into {r['data_dir']}; kept the old data dir {r['old_data_dir']} and the "
                    f"old manifests in {r['manifests_aside']}")
    kc = next((r["kubeadm_config"] for r in reports.values() if r.get("kubeadm_config")), None)
    if kc:
        output.echo(f"kubeadm-config: etcd.local.dataDir is {kc['data_dir']} "
                    f"({'changed' if kc['changed'] else 'already right'})")
    elif reports:
        output.echo("kubeadm-config was not changed (no API server step): if kubeadm manages "
                    "this etcd, set etcd.local.dataDir there to the new data dir by hand.")
    return _finish(result, restored=reports)
