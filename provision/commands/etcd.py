"""`provision etcd snapshot|schedule|list|fetch|verify|restore`: verified etcd backups.

Each subcommand checks its flags (exit 2, nothing contacted), runs ``playbooks/etcd-*.yml``
through ``provision.runner`` and reads the per-host JSON reports the playbook writes to a
private temporary directory on the controller. The work on the nodes is done by the
``etcd-backup`` tool the ``etcd_snapshot`` role installs.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import click

from provision import output
from provision.commands._common import global_options, options, print_summary
from provision.errors import EXIT_FAILED, UsageError


def _run(command: str, playbook: str, extravars: dict[str, Any]
         ) -> tuple[Any, dict[str, dict[str, Any]]]:
    """Validate the inventory (minikube mode: exit 2), run the playbook, return (RunResult,
    reports by host); a run stopped by the cluster check ends the command with its line."""
    from provision.cluster import refuse_minikube
    from provision.runner import run_playbook
    from provision.validate import load_valid_inventory

    opts = options()
    inv = load_valid_inventory(opts.inventory)
    refuse_minikube(inv, command)  # before any contact (and any etcd download)
    with tempfile.TemporaryDirectory(prefix="provision-etcd-") as report_dir:
        os.chmod(report_dir, 0o700)
        result = run_playbook(command=command, playbook=playbook, inventory=inv,
                              extravars={**extravars, "etcd_report_dir": report_dir},
                              limit=opts.limit, check=opts.check, verbosity=opts.verbosity)
        reports: dict[str, dict[str, Any]] = {}
        for p in sorted(Path(report_dir).glob("*.json")):
            try:
                reports[p.stem] = json.loads(p.read_text() or "{}")
            except ValueError:
                reports[p.stem] = {"ok": False, "error": f"unreadable report: {p.read_text()!r}"}
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


@global_options("inventory", "limit", "check", "verbosity", "json")
@cli.command()
@click.option("--tag", default="", help="Tag in the file name (a-z, 0-9, '.'); kept by retention.")
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


@global_options("inventory", "limit", "check", "verbosity", "json")
@cli.command()
@click.option("--every", help="Interval: 30s, 15m, 1h, 6h, 1d, daily, weekly…")
@click.option("--calendar", help="A systemd OnCalendar expression, e.g. 'Mon,Thu 03:00'.")
@click.option("--keep", type=int, help="Untagged snapshots kept (>= 1).")
@click.option("--max-age", help="Untagged snapshots older than this are removed (30d, 12h).")
@click.option("--verify-restore/--no-verify-restore", default=None,
              help="Run the restore drill after each scheduled snapshot.")
@click.option("--randomized-delay", help="RandomizedDelaySec of the timer (e.g. 5min, 0).")
@click.option("--disable", is_flag=True, help="Stop and remove the timer (snapshots are kept).")
def schedule(every: str | None, calendar: str | None, keep: int | None, max_age: str | None,
             verify_restore: bool | None, randomized_delay: str | None, disable: bool) -> int:
    """Install the etcd-backup systemd service and timer on the control-plane nodes."""
    from provision.etcd import naming
    from provision.etcd.schedule import ScheduleError, every_to_calendar

    if every and calendar:
        raise UsageError("--every and --calendar: give one of them")
    extravars: dict[str, Any] = {"etcd_backup_schedule_enabled": not disable}
    try:
        if every:
            extravars["etcd_backup_schedule"] = every_to_calendar(every)
            if extravars["etcd_backup_schedule"].startswith("*:*:"):  # sub-minute interval
                extravars["etcd_backup_schedule_accuracy"] = "1s"
        if calendar:
            extravars["etcd_backup_schedule"] = calendar
    except ScheduleError as exc:
        raise UsageError(str(exc)) from exc
    if keep is not None:
        if keep < 1:
            raise UsageError(f"--keep {keep}: must be at least 1")
        extravars["etcd_backup_keep"] = keep
    if max_age is not None:
        try:
            naming.parse_duration(max_age)
        except ValueError as exc:
            raise UsageError(f"--max-age: {exc}") from exc
        extravars["etcd_backup_max_age"] = max_age
    if verify_restore is not None:
        extravars["etcd_backup_verify_restore"] = verify_restore
    if randomized_delay is not None:
        extravars["etcd_backup_schedule_randomized_delay"] = randomized_delay
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


@global_options("inventory", "limit", "check", "verbosity", "json")
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


def check_fetched(dest: Path) -> tuple[list[str], list[str]]:
    """SHA-256 and size of every fetched snapshot against its sidecar; 0600/0700 modes."""
    from provision.etcd import sidecar

    good, bad = [], []
    os.chmod(dest, 0o700)
    for host_dir in sorted(p for p in dest.iterdir() if p.is_dir()):
        os.chmod(host_dir, 0o700)
        for f in host_dir.iterdir():
            os.chmod(f, 0o600)
        for db in sorted(host_dir.glob("etcd-*.db")):
            try:
                sidecar.verify_file(db, sidecar.load(db.with_suffix(".json")))
                good.append(str(db))
            except sidecar.SidecarError as exc:
                bad.append(str(exc))
    return good, bad


@global_options("inventory", "limit", "check", "verbosity", "json")
@cli.command()
@click.option("--dest", type=click.Path(file_okay=False, path_type=Path),
              default=Path("etcd-snapshots"), show_default=True,
              help="Controller directory; one subdirectory per node.")
@click.option("--all", "fetch_all", is_flag=True, help="Every snapshot, not just the newest.")
def fetch(dest: Path, fetch_all: bool) -> int:
    """Copy the newest (or every) snapshot and its sidecar here; checksums verified."""
    dest = dest.resolve()
    dest.mkdir(parents=True, exist_ok=True, mode=0o700)
    result, reports = _run("etcd fetch", "etcd-fetch.yml",
                           {"etcd_fetch_dest": str(dest), "etcd_fetch_all": fetch_all})
    good, bad = check_fetched(dest)
    for path in good:
        output.echo(f"fetched {path} (sha256 matches its sidecar)")
    for problem in bad:
        output.echo(f"error: {problem}", err=True)
    obj = result.to_json()
    if bad and obj["exit_code"] == 0:
        obj.update(ok=False, exit_code=EXIT_FAILED)
    obj.update(fetched=good, checksum_errors=bad, dest=str(dest))
    return output.finish(obj)


@global_options("inventory", "limit", "check", "verbosity", "json")
@cli.command()
@click.option("--snapshot", "which", default="latest", show_default=True,
              help="Snapshot file name on the node, or 'latest'.")
def verify(which: str) -> int:
    """Restore drill: restore into a throwaway dir, serve on loopback, compare, clean up."""
    if which != "latest" and ("/" in which or not which.endswith(".db")):
        raise UsageError(f"--snapshot {which!r}: a snapshot file name (etcd-….db) or 'latest'")
    result, reports = _run("etcd verify", "etcd-verify.yml", {"etcd_verify_snapshot": which})
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


@global_options("inventory", "limit", "check", "verbosity", "json")
@cli.command()
@click.option("--snapshot", "which", default="latest", show_default=True,
              help="'latest' (the newest snapshot of any member), a snapshot file name "
                   "on the nodes, or a path on this machine (copied with its .json sidecar).")
@click.option("--data-dir", help="New etcd data dir (default /var/lib/etcd-restored-<time>); "
                                 "must not exist.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation (destructive).")
def restore(which: str, data_dir: str | None, yes: bool) -> int:
    """Restore a snapshot: kubeadm's procedure, one control-plane node at a time.

    \b
    Checks first (sha256 against the sidecar, `etcdutl snapshot status`) and refuses before
    touching anything; then moves the kube-apiserver and etcd manifests aside, restores into
    a NEW data dir (the old one is kept), points the etcd manifest at it (new cluster token),
    moves the manifests back, waits for etcd and the API server and restarts the kubelet;
    finally sets etcd.local.dataDir in the kubeadm-config ConfigMap to the new data dir.
    """
    from provision.validate import load_valid_inventory

    extravars: dict[str, Any] = {"etcd_restore_confirmed": True}
    if which == "latest" or ("/" not in which and not Path(which).exists()):
        if which != "latest" and not which.endswith(".db"):
            raise UsageError(f"--snapshot {which!r}: 'latest', a snapshot file name "
                             "(etcd-….db) or a path on this machine")
        extravars["etcd_restore_snapshot"] = which
    else:
        extravars["etcd_restore_snapshot"] = str(check_controller_snapshot(Path(which)))
    if data_dir is not None:
        if not data_dir.startswith("/") or data_dir.rstrip("/") in ("", "/var/lib/etcd"):
            raise UsageError(f"--data-dir {data_dir!r}: an absolute path of a NEW directory "
                             "(never the current data dir)")
        extravars["etcd_restore_data_dir"] = data_dir
    opts = options()
    if opts.check:
        raise UsageError("etcd restore has no --check mode (it would move nothing and prove "
                         "little); its checks always run first on every node and refuse before "
                         "anything is touched")
    inv = load_valid_inventory(opts.inventory)
    hosts = [h.name for h in inv.control_plane]
    if not hosts:
        raise UsageError(f"{inv.path}: no hosts in group 'control_plane'; nothing to restore")
    _confirm(hosts, extravars["etcd_restore_snapshot"], yes)
    result, reports = _run("etcd restore", "etcd-restore.yml", extravars)
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
