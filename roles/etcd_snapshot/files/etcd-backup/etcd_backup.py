#!/usr/bin/env python3
"""etcd-backup: take, verify, retain and copy off-host etcd snapshots on this node.

Installed by the provision roles ``etcd_snapshot`` and ``etcd_backup_schedule``; run by hand,
by ``provision etcd ...`` and by ``etcd-backup.timer``. Python 3.8+ standard library only.

  etcd-backup [--config FILE] snapshot [--tag T] [--verify-restore] [--no-upload]
                                       [--no-retention] [--if-current INPUTS
                                       [--etcd-version V]]
  etcd-backup [--config FILE] verify [NAME|latest]
  etcd-backup [--config FILE] list [--remote]
  etcd-backup [--config FILE] show [NAME|latest]
  etcd-backup [--config FILE] restore NAME|latest --data-dir NEW --name N
                                      --initial-advertise-peer-urls URL
                                      [--initial-cluster LIST] [--token T]
  etcd-backup [--config FILE] restore NAME|latest --data-dir NEW --check
  etcd-backup [--config FILE] health
  etcd-backup [--config FILE] prune
  etcd-backup [--config FILE] prepare
  etcd-backup [--config FILE] install-state [--inputs INPUTS] [--etcd-version V]
                                            [--record INPUTS --file F.. --dir D.. --binary B..]

Every command prints one JSON object on stdout; progress goes to stderr (the journal).
Exit codes: 0 ok, 1 failed (nothing that looks like a valid snapshot is left behind, earlier
snapshots are untouched), 2 bad configuration or arguments, 3 (snapshot --if-current only) the
install is not current (needs_install) or the member is not healthy: nothing was done, the
answer is install-state's (the role then installs, and snapshots the first healthy member).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import datetime as dt
import fcntl
import hashlib
import json
import os
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import naming  # noqa: E402
import paths  # noqa: E402
import retention  # noqa: E402
import sidecar  # noqa: E402

UTC = naming.UTC
DEFAULT_CONFIG = "/etc/etcd-backup/config.json"
DEFAULTS: dict[str, Any] = {
    "cluster": "provision",
    "node": socket.gethostname().split(".")[0],
    "backup_dir": "/var/backups/etcd",
    "endpoints": ["https://127.0.0.1:2379"],
    "cacert": "/etc/kubernetes/pki/etcd/ca.crt",
    "cert": "/etc/kubernetes/pki/etcd/healthcheck-client.crt",
    "key": "/etc/kubernetes/pki/etcd/healthcheck-client.key",
    "etcdctl": "/usr/local/bin/etcdctl",
    "etcdutl": "/usr/local/bin/etcdutl",
    "etcd": "/usr/local/bin/etcd",
    "keep": 14,
    "max_age": "30d",
    "space_margin": 1.5,
    "verify_restore": False,
    "verify_prefix": "/registry/namespaces/",
    "verify_min_keys": 1,
    "webhook_url": "",
    "remote": "",  # rclone target, e.g. "s3:bucket/prefix"; "" = no off-host upload
    "rclone": "/usr/bin/rclone",
    "rclone_config": "/etc/etcd-backup/rclone.conf",
    "timeout": 600,
    "connect_timeout": 15,  # seconds for one etcd request (status, health, count)
}


class Failure(Exception):
    """A run that failed; the message says what and where."""


class ConfigError(Failure):
    pass


def log(msg: str) -> None:
    print(f"etcd-backup: {msg}", file=sys.stderr, flush=True)


def now_utc() -> dt.datetime:
    return dt.datetime.now(UTC)


# --- configuration ------------------------------------------------------------------------

def load_config(path: str, overrides: dict[str, Any]) -> dict[str, Any]:
    cfg = dict(DEFAULTS)
    p = Path(path)
    if p.exists():
        try:
            data = json.loads(p.read_text())
        except ValueError as exc:
            raise ConfigError(f"{p}: not valid JSON: {exc}") from exc
        if not isinstance(data, dict):
            raise ConfigError(f"{p}: expected a JSON object")
        unknown = sorted(set(data) - set(DEFAULTS))
        if unknown:
            raise ConfigError(f"{p}: unknown key(s): {', '.join(unknown)}")
        cfg.update(data)
    elif path != DEFAULT_CONFIG:
        raise ConfigError(f"{p}: config file not found")
    cfg.update({k: v for k, v in overrides.items() if v is not None})
    if isinstance(cfg["endpoints"], str):
        cfg["endpoints"] = [e for e in cfg["endpoints"].split(",") if e]
    try:
        cfg["series"] = naming.series(cfg["cluster"], cfg["node"])
        cfg["max_age_td"] = naming.parse_duration(cfg["max_age"]) if cfg["max_age"] else None
        cfg["policy"] = retention.Policy(int(cfg["keep"]), cfg["max_age_td"])
    except ValueError as exc:
        raise ConfigError(f"{p}: {exc}") from exc
    if float(cfg["space_margin"]) < 1.0:
        raise ConfigError(f"{p}: key 'space_margin' must be >= 1.0")
    return cfg


# --- running etcdctl / etcdutl ---------------------------------------------------------------

def run(args: list[str], cfg: dict[str, Any], what: str, timeout: float | None = None,
        env: dict[str, str] | None = None, pass_fds: tuple[int, ...] = ()
        ) -> subprocess.CompletedProcess[str]:
    env = dict(env or os.environ, ETCDCTL_API="3")
    try:
        cp = subprocess.run(args, capture_output=True, text=True, env=env,
                            timeout=timeout or float(cfg["timeout"]), pass_fds=pass_fds)
    except FileNotFoundError as exc:
        raise Failure(f"{what}: {args[0]} is not installed") from exc
    except subprocess.TimeoutExpired as exc:
        raise Failure(f"{what}: timed out after {exc.timeout:.0f}s") from exc
    if cp.returncode != 0:
        detail = _last_error(cp.stderr) or _last_error(cp.stdout) or f"exit {cp.returncode}"
        raise Failure(f"{what}: {detail}")
    return cp


def _last_error(text: str) -> str:
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    for ln in reversed(lines):
        if ln.lower().startswith(("error", "{\"level\":\"warn\"", "{\"level\":\"error\"")):
            return ln[:400]
    return lines[-1][:400] if lines else ""


def etcdctl(cfg: dict[str, Any], *args: str, endpoint: str | None = None,
            tls: bool = True, command_timeout: int | None = None) -> list[str]:
    limit = command_timeout or int(cfg["connect_timeout"])
    cmd = [cfg["etcdctl"], "--endpoints", endpoint or cfg["endpoints"][0],
           "--command-timeout", f"{limit}s", "--dial-timeout",
           f"{min(5, int(cfg['connect_timeout']))}s"]
    if tls:
        cmd += ["--cacert", cfg["cacert"], "--cert", cfg["cert"], "--key", cfg["key"]]
    return cmd + list(args)


# --- which tool checks and restores a snapshot (etcd 3.4 to 3.7) ------------------------------
# etcd-io/etcd CHANGELOG/CHANGELOG-3.6.md: "Removed etcdctl snapshot status" and "Removed etcdctl
# snapshot restore" (etcd PR #13809): from 3.6 only etcdutl does them; 3.5 has both; 3.4 has no
# etcdutl (etcdctl does both). --bump-revision and --mark-compacted on snapshot restore: etcdutl
# from 3.5.10 (CHANGELOG-3.5.md, v3.5.10, PR #16165) and in 3.6 (CHANGELOG-3.6.md, PR #16029);
# etcdctl 3.4 from 3.4.27 (CHANGELOG-3.4.md, v3.4.27, PR #16193). etcd's disaster-recovery guide
# (etcd-io/website content/en/docs/v3.6/op-guide/recovery.md, "Restoring with revision bump")
# asks for both with Kubernetes: revisions never go backwards and every watch is ended, so the
# informers' caches are rebuilt; its example bumps by 1'000'000'000 (a week at < 1500 writes/s).
RESTORE_BUMP_REVISION = 1_000_000_000
BUMP_SINCE = {"etcdutl": (3, 5, 10), "etcdctl": (3, 4, 27)}


def parse_tool_version(text: str) -> tuple[int, int, int] | None:
    """'etcdutl version: 3.6.5\nAPI version: 3.6' -> (3, 6, 5); None when there is none."""
    for line in text.splitlines():
        name, _, value = line.partition(" version:")
        if name.strip() in ("etcdutl", "etcdctl") and value.strip():
            parts = value.strip().split("-")[0].split(".")
            if len(parts) == 3 and all(p.isdigit() for p in parts):
                return int(parts[0]), int(parts[1]), int(parts[2])
    return None


_VERSIONS: dict[str, tuple[int, int, int] | None] = {}


def tool_version(cfg: dict[str, Any], name: str) -> tuple[int, int, int] | None:
    """`<name> version` of the configured etcdctl/etcdutl, asked once per run."""
    if cfg[name] not in _VERSIONS:
        _VERSIONS[cfg[name]] = parse_tool_version(
            run([cfg[name], "version"], cfg, f"{name} version").stdout)
    return _VERSIONS[cfg[name]]


def offline_tool(cfg: dict[str, Any], what: str, *, need_version: bool = False
                 ) -> tuple[str, str, tuple[int, int, int] | None]:
    """(path, 'etcdutl' or 'etcdctl', version) of the tool for `snapshot status|restore`:
    etcdutl whenever it is installed; etcdctl only before 3.6 (3.4 has no etcdutl). etcdutl
    is asked for its version only when the caller needs it (the restore's revision bump)."""
    for name in ("etcdutl", "etcdctl"):
        if name == "etcdutl" and not Path(cfg["etcdutl"]).exists():
            continue
        if name == "etcdutl" and not need_version:
            return cfg[name], name, None
        version = tool_version(cfg, name)
        if name == "etcdctl" and (version is None or version >= (3, 6, 0)):
            shown = ".".join(map(str, version)) if version else "of unknown version"
            raise Failure(f"snapshot {what}: {cfg['etcdutl']} is not installed and etcdctl "
                          f"{shown} has no 'snapshot {what}' (etcdutl's since etcd 3.6)")
        return cfg[name], name, version
    raise Failure(f"snapshot {what}: no etcdutl or etcdctl")  # pragma: no cover


def bump_flags(name: str, version: tuple[int, int, int] | None) -> list[str]:
    """The revision bump etcd recommends for a restore under Kubernetes, when the tool has it."""
    if version is None or version < BUMP_SINCE[name]:
        return []
    return ["--bump-revision", str(RESTORE_BUMP_REVISION), "--mark-compacted"]


def snapshot_status(cfg: dict[str, Any], path: Path | None, fd: int | None = None
                    ) -> dict[str, Any]:
    """`etcdutl snapshot status -w json` (3.5+; the only one from 3.6), etcdctl's on 3.4: of
    ``path``, or of the file open as ``fd`` here (/proc/self/fd/N in the tool's process: the
    same file whatever its name is now)."""
    tool, _, _ = offline_tool(cfg, "status")
    target, fds = (str(path), ()) if fd is None else (f"/proc/self/fd/{fd}", (fd,))
    cp = run([tool, "snapshot", "status", target, "-w", "json"], cfg, "snapshot status",
             pass_fds=fds)
    try:
        st = json.loads(cp.stdout)
        return {"hash": int(st["hash"]), "revision": int(st["revision"]),
                "total_keys": int(st["totalKey"]), "total_size": int(st["totalSize"])}
    except (ValueError, KeyError) as exc:
        raise Failure(f"snapshot status: unexpected output {cp.stdout[:200]!r}") from exc


def endpoint_status(cfg: dict[str, Any], endpoint: str) -> dict[str, Any]:
    cp = run(etcdctl(cfg, "endpoint", "status", "-w", "json", endpoint=endpoint), cfg,
             f"etcd at {endpoint}", timeout=int(cfg["connect_timeout"]) + 10)
    try:
        st = json.loads(cp.stdout)[0]["Status"]
        return {"version": st["version"], "db_size": int(st["dbSize"]),
                "cluster_id": str(st["header"]["cluster_id"]),
                "member_id": str(st["header"]["member_id"]),
                "revision": int(st["header"]["revision"])}
    except (ValueError, KeyError, IndexError) as exc:
        raise Failure(f"etcd at {endpoint}: unexpected status {cp.stdout[:200]!r}") from exc


def count_keys(cfg: dict[str, Any], endpoint: str, *, rev: int | None = None,
               tls: bool = True, prefix: str = "") -> tuple[int, int]:
    """(keys under prefix (all keys when ""), revision).

    `get --limit 1 -w json`: etcd's range response carries the count of the whole range
    whatever the limit; this works with etcdctl 3.4, which has no --count-only (3.5+).
    """
    args = ["get", prefix or "", "--prefix", "--keys-only", "--limit", "1", "-w", "json"]
    if rev:
        args += ["--rev", str(rev)]
    cp = run(etcdctl(cfg, *args, endpoint=endpoint, tls=tls), cfg, "count keys", timeout=120)
    try:
        out = json.loads(cp.stdout)
        return int(out.get("count", 0)), int(out["header"]["revision"])
    except (ValueError, KeyError, TypeError) as exc:
        raise Failure(f"count keys: unexpected output {cp.stdout[:200]!r}") from exc


# --- the backup directory -----------------------------------------------------------------

def ours(name: str) -> bool:
    """A name this tool writes in the backup directory (snapshot, sidecar, temp, lock)."""
    if name.endswith(".json"):
        name = name[:-5] + ".db"
    return (naming.parse(name) is not None or name.startswith(naming.TEMP_PREFIX)
            or name == LOCK_NAME)


def prepare_dir(path: Path) -> dict[str, Any]:
    """Create the backup directory 0700, or make an existing one 0700 root:root -- only when
    it is dedicated (holds nothing but this tool's files). Refuses a system directory, a path
    that is not normalised, a symbolic link and a shared directory it would have to chmod."""
    problem = paths.dedicated_dir_problem(str(path))
    if problem:
        raise ConfigError(f"backup_dir: {problem}")
    if path.is_symlink():
        raise Failure(f"{path} is a symbolic link: give the real directory as backup_dir")
    if not path.exists():
        path.mkdir(parents=True, mode=0o700)
        os.chmod(path, 0o700)  # mkdir's mode is masked by the umask
        return {"backup_dir": str(path), "created": True, "changed": True}
    if not path.is_dir():
        raise Failure(f"{path} exists and is not a directory")
    st = path.stat()
    if stat.S_IMODE(st.st_mode) == 0o700 and (st.st_uid, st.st_gid) == (0, 0):
        return {"backup_dir": str(path), "created": False, "changed": False}
    foreign = sorted(p.name for p in path.iterdir() if not ours(p.name))
    if foreign:
        raise Failure(f"{path} is mode {stat.S_IMODE(st.st_mode):04o} (uid {st.st_uid}) and "
                      f"holds files etcd-backup did not write ({', '.join(foreign[:3])}): "
                      "refusing to chmod a directory that is not dedicated to snapshots; "
                      "choose another backup_dir (etcd_backup_dir)")
    os.chown(path, 0, 0)
    os.chmod(path, 0o700)
    log(f"made the snapshot directory {path} 0700 root:root")
    return {"backup_dir": str(path), "created": False, "changed": True}


LOCK_NAME = ".etcd-backup.lock"


@contextlib.contextmanager
def locked(backup_dir: Path):
    prepare_dir(backup_dir)
    fd = os.open(backup_dir / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            raise Failure(f"{backup_dir}: another etcd-backup run holds the lock") from exc
        yield
    finally:
        os.close(fd)


def clean_leftovers(cfg: dict[str, Any], backup_dir: Path) -> list[str]:
    """Remove what an interrupted run of this tool left: temp files/dirs, orphan sidecars."""
    removed = []
    for p in sorted(backup_dir.iterdir()):
        if p.name.startswith(naming.TEMP_PREFIX):
            if p.is_dir():
                shutil.rmtree(p, ignore_errors=True)
            else:
                p.unlink(missing_ok=True)
            removed.append(p.name)
        elif p.suffix == ".json":
            parsed = naming.parse(p.name[:-5] + ".db")
            if parsed and parsed.series == cfg["series"] and not p.with_suffix(".db").exists():
                with contextlib.suppress(sidecar.SidecarError):
                    sidecar.load(p)  # only our own sidecars
                    p.unlink()
                    removed.append(p.name)
    for name in removed:
        log(f"removed leftover of an interrupted run: {backup_dir / name}")
    return removed


def local_snapshots(backup_dir: Path, series: str | None = None) -> list[dict[str, Any]]:
    """Every snapshot file of ours in the directory with its sidecar (or the sidecar error)."""
    out = []
    if not backup_dir.is_dir():
        return out
    for p in sorted(backup_dir.glob("etcd-*.db")):
        parsed = naming.parse(p.name)
        if parsed is None or (series and parsed.series != series):
            continue
        entry: dict[str, Any] = {"file": p.name, "path": str(p), "series": parsed.series,
                                 "created": parsed.created.isoformat(), "tag": parsed.tag,
                                 "size": p.stat().st_size, "verified": False, "sidecar": None}
        try:
            data = sidecar.load(p.with_suffix(".json"))
            entry["sidecar"] = data
            rc = data.get("restore_check") or {}
            entry["verified"] = data["file"] == p.name and rc.get("ok", True) is not False
            entry["restore_verified"] = bool(rc.get("ok"))
        except sidecar.SidecarError as exc:
            entry["error"] = str(exc)
        out.append(entry)
    return out


def write_atomic(path: Path, text: str) -> None:
    tmp = path.parent / f"{naming.TEMP_PREFIX}{path.name}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def check_space(cfg: dict[str, Any], backup_dir: Path, db_size: int) -> dict[str, Any]:
    ours = [s for s in local_snapshots(backup_dir, cfg["series"]) if s["sidecar"]]
    last = max(ours, key=lambda s: s["created"])["size"] if ours else db_size
    basis = "last snapshot" if ours else "etcd database"
    need = int(max(last, db_size if not ours else 0) * float(cfg["space_margin"]))
    free = shutil.disk_usage(backup_dir).free
    if free < need:
        raise Failure(
            f"refusing to snapshot: {_mib(free)} free in {backup_dir}, need {_mib(need)} "
            f"({basis} {_mib(last)} x margin {cfg['space_margin']}); free space or lower "
            "etcd_backup_keep")
    return {"free": free, "need": need}


def _mib(n: int) -> str:
    return f"{n / 1048576:.1f} MiB"


# --- snapshot -------------------------------------------------------------------------------

class StreamHash:
    """The SHA-256 of a snapshot file fed front to back, and whether the file ends with the
    SHA-256 of what precedes it: etcd sends the database followed by its SHA-256
    (server/etcdserver/api/v3rpc/maintenance.go, Snapshot: "send SHA digest for integrity
    checks during snapshot restore operation"; etcdserver/api/v3rpc in 3.4), and etcdutl
    snapshot restore refuses a file whose last 32 bytes do not match (etcdutl/snapshot/
    v3_snapshot.go, copyAndVerifyDB). One pass: the body's digest lags 32 bytes behind."""

    def __init__(self) -> None:
        self.body = hashlib.sha256()  # every byte fed but the last 32
        self.tail = b""
        self.size = 0

    def update(self, block: bytes) -> None:
        self.size += len(block)
        if len(block) >= 32:
            self.body.update(self.tail)
            self.body.update(memoryview(block)[:-32])
            self.tail = block[-32:]
        else:
            joined = self.tail + block
            self.body.update(joined[:-32])
            self.tail = joined[-32:]

    def complete(self) -> bool:
        """The bytes fed are a whole snapshot stream: etcdctl's length rule (hasChecksum:
        size % 512 == 32, client/v3/snapshot/v3_snapshot.go) and etcd's digest at the end."""
        return self.size % 512 == 32 and self.body.digest() == self.tail

    def hexdigest(self) -> str:
        h = self.body.copy()
        h.update(self.tail)
        return h.hexdigest()


def save_checked(cfg: dict[str, Any], endpoint: str, tmp_db: Path
                 ) -> tuple[str, dict[str, Any], float]:
    """`etcdctl snapshot save tmp_db` and `snapshot status` of the saved file; returns its
    SHA-256, the status and the seconds etcdctl took. Fails when the file does not end with
    the digest etcd sent.

    etcdctl (3.4 to 3.6) writes the stream to ``<tmp_db>.part`` front to back, checks only its
    length, fsyncs it and renames it to tmp_db (client/v3/snapshot/v3_snapshot.go,
    clientv3/snapshot in 3.4). This follows the part file and hashes what is new, so after the
    save only the last bytes are read. Once the bytes read are a whole stream (etcd's digest
    at the end, StreamHash.complete) `snapshot status` reads that file, open here, while
    etcdctl is still syncing it to disk. The digest and the status count only when the file
    followed is the saved file (same inode) and every byte of it was hashed; otherwise the
    saved file is hashed and checked again."""
    part = Path(f"{tmp_db}.part")
    part.unlink(missing_ok=True)
    cmd = etcdctl(cfg, "snapshot", "save", str(tmp_db), endpoint=endpoint,
                  command_timeout=int(cfg["timeout"]))
    h, f, checking, started = StreamHash(), None, None, time.monotonic()
    try:
        with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
            saving = pool.submit(run, cmd, cfg, "snapshot save")
            while True:
                done = saving.done()  # before reading: what etcdctl wrote is then all there
                if f is None:
                    for candidate in (part, tmp_db):
                        with contextlib.suppress(FileNotFoundError):
                            f = open(candidate, "rb")  # noqa: SIM115 - closed below
                            break
                while f is not None and (block := f.read(1 << 20)):
                    h.update(block)
                if checking is None and f is not None and h.complete():
                    checking = pool.submit(snapshot_status, cfg, None, f.fileno())
                if done:
                    saved = time.monotonic() - started
                    break
                time.sleep(0.02)
            saving.result()  # raises Failure when the save failed
            followed = f is not None and h.size == tmp_db.stat().st_size and \
                os.fstat(f.fileno()).st_ino == tmp_db.stat().st_ino
            status = checking.result() if checking is not None else None
    finally:  # after the pool: no status is started on a closed descriptor
        if f is not None:
            f.close()
    if not followed:
        log(f"{tmp_db.name}: not followed while written; hashing it again")
        h, status = StreamHash(), None
        with open(tmp_db, "rb") as g:
            while block := g.read(1 << 20):
                h.update(block)
    if not h.complete():
        raise Failure(f"snapshot save: {tmp_db.name} ({h.size} bytes) does not end with the "
                      "SHA-256 etcd sent of its content: the transfer is incomplete or corrupt")
    return h.hexdigest(), status or snapshot_status(cfg, tmp_db), saved


def take_snapshot(cfg: dict[str, Any], tag: str, temps: list[Path],
                  status: dict[str, Any] | None = None) -> dict[str, Any]:
    """Save, check and record one snapshot. ``status``: the member's endpoint status when the
    caller has just asked for it (snapshot --if-current), else it is asked here."""
    backup_dir = Path(cfg["backup_dir"])
    endpoint = cfg["endpoints"][0]
    status = status or endpoint_status(cfg, endpoint)
    log(f"etcd {status['version']} at {endpoint}: revision {status['revision']}, "
        f"db {_mib(status['db_size'])}")
    space = check_space(cfg, backup_dir, status["db_size"])
    name = naming.make(cfg["cluster"], cfg["node"], now_utc(), tag)
    final_db = backup_dir / name.filename
    final_json = backup_dir / name.sidecar
    if final_db.exists() or final_json.exists():
        raise Failure(f"{final_db} already exists (two snapshots in the same second?)")
    tmp_db = backup_dir / f"{naming.TEMP_PREFIX}{name.filename}"
    temps += [tmp_db, Path(f"{tmp_db}.part"), backup_dir / f"{naming.TEMP_PREFIX}{name.sidecar}"]
    # hashed while etcdctl writes it, etcd's digest at its end checked, `snapshot status`
    # (the second and last read) while etcdctl syncs it; etcd counts the live keys at the
    # snapshot's revision
    sha256, st, saved = save_checked(cfg, endpoint, tmp_db)
    os.chmod(tmp_db, 0o600)
    try:
        keys, _ = count_keys(cfg, endpoint, rev=st["revision"])
    except Failure as exc:  # compacted past the snapshot revision in the meantime
        log(f"live key count at revision {st['revision']} unavailable: {exc}")
        keys = None
    data = sidecar.build(
        file=name.filename, cluster=cfg["cluster"], node=cfg["node"], tag=tag,
        created=name.created.isoformat(), size=tmp_db.stat().st_size,
        sha256=sha256, revision=st["revision"],
        total_keys=st["total_keys"], keys=keys, hash=st["hash"],
        etcd_version=status["version"], cluster_id=status["cluster_id"],
        member_id=status["member_id"], endpoint=endpoint)
    write_atomic(final_json, sidecar.dumps(data))
    with open(tmp_db, "rb") as f:
        os.fsync(f.fileno())
    os.replace(tmp_db, final_db)
    fsync_dir(backup_dir)
    log(f"saved {final_db} ({_mib(data['size'])}, revision {data['revision']}, "
        f"{keys} keys) in {saved:.1f}s")
    return {"snapshot": str(final_db), "sidecar": data, "save_seconds": round(saved, 3),
            "space": space}


# --- restore drill --------------------------------------------------------------------------

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def restore_drill(cfg: dict[str, Any], db: Path, data: dict[str, Any], *,
                  hashed: bool = False) -> dict[str, Any]:
    """Restore into a throwaway dir, serve it on loopback, compare with the sidecar.

    ``hashed``: the sidecar was computed from this very file in this run (snapshot
    --verify-restore), so its SHA-256 is not read a second time."""
    started = time.monotonic()
    if not hashed:
        sidecar.verify_file(db, data)
    work = Path(tempfile.mkdtemp(prefix=naming.TEMP_PREFIX + "verify-", dir=db.parent))
    proc: subprocess.Popen[bytes] | None = None
    try:
        client, peer = _free_port(), _free_port()
        peer_url, client_url = f"http://127.0.0.1:{peer}", f"http://127.0.0.1:{client}"
        tool, _, _ = offline_tool(cfg, "restore")  # no bump: compared with the sidecar below
        run([tool, "snapshot", "restore", str(db), "--data-dir", str(work / "data"),
             "--name", "verify", "--initial-cluster", f"verify={peer_url}",
             "--initial-cluster-token", "etcd-backup-verify",
             "--initial-advertise-peer-urls", peer_url], cfg, "snapshot restore")
        with open(work / "etcd.log", "wb") as logf:
            proc = subprocess.Popen(
                [cfg["etcd"], "--name", "verify", "--data-dir", str(work / "data"),
                 "--listen-client-urls", client_url, "--advertise-client-urls", client_url,
                 "--listen-peer-urls", peer_url, "--initial-advertise-peer-urls", peer_url,
                 "--initial-cluster", f"verify={peer_url}", "--listen-metrics-urls", "",
                 "--quota-backend-bytes", str(8 * 1024**3)],
                stdout=logf, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                raise Failure("temporary etcd exited: "
                              + _last_error((work / "etcd.log").read_text(errors="replace")))
            try:
                keys, rev = count_keys(cfg, client_url, tls=False)
                break
            except Failure:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        ns, _ = count_keys(cfg, client_url, tls=False, prefix=cfg["verify_prefix"])
        problems = []
        if rev != data["revision"]:
            problems.append(f"revision {rev} != sidecar {data['revision']}")
        if data["keys"] is not None and keys != data["keys"]:
            problems.append(f"{keys} keys != sidecar {data['keys']}")
        if ns < int(cfg["verify_min_keys"]):
            problems.append(f"{ns} keys under {cfg['verify_prefix']} (expected at least "
                            f"{cfg['verify_min_keys']})")
        result = {"ok": not problems, "at": now_utc().replace(microsecond=0).isoformat(),
                  "revision": rev, "keys": keys, "prefix": cfg["verify_prefix"],
                  "prefix_keys": ns, "seconds": round(time.monotonic() - started, 3),
                  "problems": problems}
        return result
    finally:
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        shutil.rmtree(work, ignore_errors=True)


def record_drill(db: Path, data: dict[str, Any], result: dict[str, Any]) -> None:
    data = dict(data, restore_check=result)
    write_atomic(db.with_suffix(".json"), sidecar.dumps(data))


# --- off-host copies (rclone) ---------------------------------------------------------------

def rclone(cfg: dict[str, Any], *args: str) -> subprocess.CompletedProcess[str]:
    # only the rclone config counts: AWS_* variables of the caller must not change the target
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "RCLONE_"))}
    return run([cfg["rclone"], "--config", cfg["rclone_config"], "--retries", "3", *args],
               cfg, f"rclone {args[0]}", env=env)


def remote_path(cfg: dict[str, Any], name: str = "") -> str:
    target = cfg["remote"].rstrip("/")
    return f"{target}/{name}" if name else target


def upload(cfg: dict[str, Any], db: Path) -> list[str]:
    """Snapshot first, sidecar last: a remote sidecar means the remote snapshot is complete."""
    sent = []
    for p in (db, db.with_suffix(".json")):
        rclone(cfg, "copyto", str(p), remote_path(cfg, p.name))
        sent.append(remote_path(cfg, p.name))
    log(f"uploaded {db.name} to {remote_path(cfg)}")
    return sent


def remote_snapshots(cfg: dict[str, Any]) -> list[dict[str, Any]]:
    try:
        cp = rclone(cfg, "lsjson", "--files-only", remote_path(cfg))
    except Failure as exc:
        if "directory not found" in str(exc):
            return []
        raise
    entries = {e["Name"]: e for e in json.loads(cp.stdout or "[]")}
    out = []
    for name, e in sorted(entries.items()):
        parsed = naming.parse(name)
        if parsed is None:
            continue
        out.append({"file": name, "series": parsed.series, "created": parsed.created.isoformat(),
                    "tag": parsed.tag, "size": e.get("Size"),
                    "verified": naming.sidecar_name(name) in entries,
                    "location": remote_path(cfg, name)})
    return out


def prune_remote(cfg: dict[str, Any], after: str) -> list[str]:
    snaps = [retention.Snapshot(s["file"], naming.parse(s["file"]).created, s["verified"],
                                s["series"] == cfg["series"], s["tag"])
             for s in remote_snapshots(cfg)]
    doomed = retention.plan(snaps, cfg["policy"], after=after, now=now_utc())
    for name in doomed:
        rclone(cfg, "deletefile", remote_path(cfg, naming.sidecar_name(name)))
        rclone(cfg, "deletefile", remote_path(cfg, name))
        log(f"retention removed remote {remote_path(cfg, name)}")
    return doomed


def prune_local(cfg: dict[str, Any], after: str) -> list[str]:
    backup_dir = Path(cfg["backup_dir"])
    snaps = []
    for s in local_snapshots(backup_dir):
        data = s["sidecar"]
        ours = bool(data) and s["series"] == cfg["series"] and data.get("tool") == sidecar.TOOL
        snaps.append(retention.Snapshot(s["file"], naming.parse(s["file"]).created,
                                        s["verified"], ours, s["tag"]))
    doomed = retention.plan(snaps, cfg["policy"], after=after, now=now_utc())
    for name in doomed:
        (backup_dir / name).unlink(missing_ok=True)
        (backup_dir / naming.sidecar_name(name)).unlink(missing_ok=True)
        log(f"retention removed {backup_dir / name}")
    return doomed


# --- webhook --------------------------------------------------------------------------------

def notify(cfg: dict[str, Any], command: str, error: str) -> None:
    url = cfg.get("webhook_url")
    if not url:
        return
    import urllib.request  # only here: keeps every other command's start short
    body = json.dumps({"event": "etcd-backup-failed", "command": command,
                       "cluster": cfg["cluster"], "node": cfg["node"], "error": error,
                       "time": now_utc().isoformat()}).encode()
    req = urllib.request.Request(url, data=body, method="POST",
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:  # noqa: S310 (operator's URL)
            log(f"webhook answered HTTP {resp.status}")
    except OSError as exc:
        log(f"webhook failed: {exc}")


# --- commands -------------------------------------------------------------------------------

class NotCurrent(Exception):  # noqa: N818 - not a failure: the answer of --if-current
    """snapshot --if-current: the install is not current or the member not healthy; carries
    install-state's answer."""

    def __init__(self, state: dict[str, Any]) -> None:
        super().__init__("the install is not current")
        self.state = state


def cmd_snapshot(cfg: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    backup_dir = Path(cfg["backup_dir"])
    tag = naming.validate_tag(args.tag or "")
    status = None
    current: dict[str, Any] = {}
    if args.if_current is not None:  # the role's one round trip: check the stamp, then save
        state = install_state(cfg, args.config, args.if_current, args.etcd_version)
        if not (state["current"] and state["health"]["healthy"]):  # else another member
            raise NotCurrent(state)
        status = {k: v for k, v in state["health"].items() if k not in ("healthy", "endpoint")}
        current = {"install": {k: state[k] for k in ("inputs", "drift", "etcdctl_version",
                                                     "current")}, "health": state["health"]}
    temps: list[Path] = []
    with locked(backup_dir):
        leftovers = clean_leftovers(cfg, backup_dir)
        try:
            result = take_snapshot(cfg, tag, temps, status)
        finally:
            for p in temps:
                if p.exists():
                    p.unlink()
        db = Path(result["snapshot"])
        result["leftovers_removed"] = leftovers
        if args.verify_restore or (cfg["verify_restore"] and args.verify_restore is None):
            drill = restore_drill(cfg, db, result["sidecar"], hashed=True)
            record_drill(db, result["sidecar"], drill)
            result["restore_check"] = drill
            if not drill["ok"]:
                raise Failure(f"restore drill of {db} failed: {'; '.join(drill['problems'])}")
            log(f"restore drill ok: revision {drill['revision']}, {drill['keys']} keys, "
                f"{drill['prefix_keys']} under {drill['prefix']} ({drill['seconds']}s)")
        if cfg["remote"] and not args.no_upload:
            result["uploaded"] = upload(cfg, db)
        if not args.no_retention:
            result["removed"] = prune_local(cfg, db.name)
            if cfg["remote"] and not args.no_upload:
                result["removed_remote"] = prune_remote(cfg, db.name)
    return {**current, **result}


def pick(cfg: dict[str, Any], which: str) -> dict[str, Any]:
    snaps = local_snapshots(Path(cfg["backup_dir"]))
    if which in ("", "latest"):
        good = [s for s in snaps if s["sidecar"] and s["series"] == cfg["series"]]
        if not good:
            raise Failure(f"no snapshot with a sidecar in {cfg['backup_dir']}")
        return max(good, key=lambda s: (s["created"], s["file"]))
    for s in snaps:
        if which in (s["file"], s["path"]):
            if not s["sidecar"]:
                raise Failure(f"{s['path']}: {s.get('error', 'no sidecar')}")
            return s
    raise Failure(f"{which}: no such snapshot in {cfg['backup_dir']}")


def cmd_verify(cfg: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    with locked(Path(cfg["backup_dir"])):
        snap = pick(cfg, args.snapshot)
        db = Path(snap["path"])
        drill = restore_drill(cfg, db, snap["sidecar"])
        record_drill(db, snap["sidecar"], drill)
    if not drill["ok"]:
        raise Failure(f"restore drill of {db} failed: {'; '.join(drill['problems'])}")
    log(f"restore drill of {db.name} ok: revision {drill['revision']}, {drill['keys']} keys")
    return {"snapshot": str(db), "restore_check": drill}


def cmd_restore(cfg: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    """Restore a checked snapshot into a NEW data dir (the kubeadm procedure's etcd step).

    Refuses a snapshot whose size/SHA-256 do not match its sidecar or whose `snapshot status`
    fails, and a data dir that already exists (the old one is never written over). With
    ``--check`` it stops after these checks and changes nothing (the restore playbook runs it
    on every node before any manifest is moved).
    """
    problem = paths.dedicated_dir_problem(args.data_dir)
    if problem:
        raise ConfigError(f"--data-dir: {problem}")
    target = Path(args.data_dir)
    if target.exists() or target.is_symlink():
        raise Failure(f"{target} exists: restore only into a new data dir (the old one is kept)")
    current = args.current_data_dir
    if current and paths.overlaps(args.data_dir, current):
        raise ConfigError(f"--data-dir {args.data_dir}: is (or is inside, or contains) the "
                          f"current data dir {current}; restore only into a new data dir")
    snap = pick(cfg, args.snapshot)
    db = Path(snap["path"])
    sidecar.verify_file(db, snap["sidecar"])
    st = snapshot_status(cfg, db)
    if st["revision"] != snap["sidecar"]["revision"]:
        raise Failure(f"{db}: status revision {st['revision']} != sidecar "
                      f"{snap['sidecar']['revision']}")
    if args.check:
        log(f"{db.name} passes its checks (sha256, snapshot status, revision "
            f"{st['revision']}); {target} is free")
        return {"snapshot": str(db), "data_dir": str(target), "revision": st["revision"],
                "keys": snap["sidecar"]["keys"], "checked": True,
                "sha256": snap["sidecar"]["sha256"]}
    peer = args.initial_advertise_peer_urls
    if not args.name or not peer:
        raise ConfigError("restore: --name and --initial-advertise-peer-urls are required")
    tool, name, version = offline_tool(cfg, "restore", need_version=True)
    bump = bump_flags(name, version)
    run([tool, "snapshot", "restore", str(db), "--data-dir", str(target), "--name", args.name,
         "--initial-cluster", args.initial_cluster or f"{args.name}={peer}",
         "--initial-cluster-token", args.token, "--initial-advertise-peer-urls", peer, *bump],
        cfg, "snapshot restore")
    os.chmod(target, 0o700)
    if bump:
        log(f"restored {db.name} (revision {st['revision']}, bumped by "
            f"{RESTORE_BUMP_REVISION} and marked compacted) into {target}")
    else:
        log(f"restored {db.name} (revision {st['revision']}) into {target}; {name} "
            f"{'.'.join(map(str, version or ()))} cannot bump the revision (needs "
            f"{'.'.join(map(str, BUMP_SINCE[name]))}+): watchers may see old revisions again")
    return {"snapshot": str(db), "data_dir": str(target), "revision": st["revision"],
            "keys": snap["sidecar"]["keys"], "token": args.token, "checked": True,
            "sha256": snap["sidecar"]["sha256"],
            "bump_revision": RESTORE_BUMP_REVISION if bump else 0}


def cmd_show(cfg: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    """One snapshot (a file name or 'latest') with its sidecar; fails when there is none."""
    return pick(cfg, args.snapshot)


def cmd_list(cfg: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    out: dict[str, Any] = {"node": cfg["node"], "backup_dir": cfg["backup_dir"],
                           "snapshots": local_snapshots(Path(cfg["backup_dir"]))}
    if args.remote and cfg["remote"]:
        out["remote"] = remote_snapshots(cfg)
    return out


def cmd_health(cfg: dict[str, Any], args: argparse.Namespace | None) -> dict[str, Any]:
    endpoint = cfg["endpoints"][0]
    try:
        return {"healthy": True, "endpoint": endpoint, **endpoint_status(cfg, endpoint)}
    except Failure as exc:
        return {"healthy": False, "endpoint": endpoint, "error": str(exc)}


def cmd_prune(cfg: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    with locked(Path(cfg["backup_dir"])):
        latest = pick(cfg, "latest")
        out = {"removed": prune_local(cfg, latest["file"])}
        if cfg["remote"]:
            out["removed_remote"] = prune_remote(cfg, latest["file"])
    return out


# --- the install stamp -------------------------------------------------------------------
# The etcd_snapshot role installs the tool, its configuration and the etcd binaries, then
# records here what it installed: a hash of its inputs (computed on the controller) and the
# state of every file it manages. On the next run `install-state` compares the files with the
# record; the role skips its install steps only when the inputs are the same, nothing drifted
# (a file edited, removed, chmod-ed; a binary replaced) and etcdctl still matches etcd.
STAMP_NAME = "install-stamp.json"
STAMP_FORMAT = 1


def path_state(path: str, kind: str) -> dict[str, Any] | None:
    """What is compared for one managed path (None when it is missing): owner, mode and type;
    the SHA-256 of a file; size and mtime of a binary (not hashed: etcd is ~25 MB)."""
    p = Path(path)
    try:
        st = p.stat() if kind == "binary" else p.lstat()
    except OSError:
        return None
    out: dict[str, Any] = {"kind": kind, "mode": f"{stat.S_IMODE(st.st_mode):04o}",
                           "uid": st.st_uid, "gid": st.st_gid,
                           "type": ("dir" if stat.S_ISDIR(st.st_mode) else
                                    "file" if stat.S_ISREG(st.st_mode) else "other")}
    if kind == "file" and out["type"] == "file":
        out["sha256"] = sidecar.sha256_file(p)
    elif kind == "binary":
        out.update(size=st.st_size, mtime_ns=st.st_mtime_ns)
    return out


def stamp_path(config: str) -> Path:
    return Path(config).parent / STAMP_NAME


def minor(version: str | None) -> str:
    """'3.5.1' -> '3.5'; anything that is not X.Y[.Z] -> ''."""
    parts = (version or "").strip().lstrip("v").split("-")[0].split(".")
    return ".".join(parts[:2]) if len(parts) in (2, 3) and all(p.isdigit() for p in parts) \
        else ""


def is_current(state: dict[str, Any], inputs: str | None, etcd_version: str = "") -> bool:
    """The rule the role skips its install steps by: the recorded inputs are this run's,
    nothing drifted, and etcdctl's major.minor is etcd's (``etcd_version`` when given, else
    the healthy local member's; unknown -> not current)."""
    health = state.get("health") or {}
    want = etcd_version or (health.get("version", "") if health.get("healthy") else "")
    return (inputs is not None and state.get("inputs") == inputs and state.get("drift") == []
            and minor(want) != "" and minor(state.get("etcdctl_version")) == minor(want))


def install_state(cfg: dict[str, Any], config: str, inputs: str | None = None,
                  etcd_version: str = "") -> dict[str, Any]:
    """What drifted since the stamp, etcdctl's version, the member's health and, given this
    run's ``inputs``, whether the install is current (:func:`is_current`)."""
    stamp = stamp_path(config)
    try:
        recorded = json.loads(stamp.read_text())
        entries = recorded["entries"]
        recorded_inputs = recorded["inputs"] if recorded.get("format") == STAMP_FORMAT else None
        drift = sorted(p for p, e in entries.items()
                       if path_state(p, e["kind"]) != {k: v for k, v in e.items()
                                                       if k != "version"})
        version = (entries.get(cfg["etcdctl"]) or {}).get("version")
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        recorded_inputs, drift, version = None, [str(stamp)], None
    if not version or drift:
        try:
            version = _version_text(tool_version(cfg, "etcdctl"))
        except Failure:
            version = None
    state = {"inputs": recorded_inputs, "drift": drift, "etcdctl_version": version,
             "health": cmd_health(cfg, None)}
    return {**state, "current": is_current(state, inputs, etcd_version)}


def cmd_install_state(cfg: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    """The recorded inputs, the managed paths that drifted, etcdctl's version, the local
    member's health (its version is the one the tools must match) and whether the install is
    current for ``--inputs`` (and ``--etcd-version``). ``--record INPUTS`` first writes the
    stamp (0600) from the paths as they are now."""
    if args.record:
        wanted = ([(f, "file") for f in args.file] + [(d, "dir") for d in args.dir]
                  + [(b, "binary") for b in args.binary])
        entries = {p: path_state(p, kind) for p, kind in wanted}
        missing = sorted(p for p, e in entries.items() if e is None)
        if missing:
            raise Failure(f"install-state --record: missing {', '.join(missing)}")
        if cfg["etcdctl"] in entries:  # the same file (size, mtime) answers the same version
            entries[cfg["etcdctl"]]["version"] = _version_text(tool_version(cfg, "etcdctl"))
        write_atomic(stamp_path(args.config), json.dumps(
            {"format": STAMP_FORMAT, "inputs": args.record, "entries": entries},
            indent=1, sort_keys=True))
    return install_state(cfg, args.config, args.inputs or args.record, args.etcd_version)


def _version_text(version: tuple[int, int, int] | None) -> str | None:
    return ".".join(map(str, version)) if version else None


def parse_args(argv: list[str]) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="etcd-backup", description=__doc__.split("\n")[0])
    ap.add_argument("--config", default=os.environ.get("ETCD_BACKUP_CONFIG", DEFAULT_CONFIG))
    ap.add_argument("--backup-dir")
    ap.add_argument("--endpoint", help="etcd client URL (default from the config)")
    sub = ap.add_subparsers(dest="command", required=True)
    s = sub.add_parser("snapshot", help="take, check, retain and upload a snapshot")
    s.add_argument("--tag", default="")
    s.add_argument("--verify-restore", action="store_true", default=None)
    s.add_argument("--no-upload", action="store_true")
    s.add_argument("--no-retention", action="store_true")
    s.add_argument("--if-current", metavar="INPUTS",
                   help="only when the install is current for INPUTS (install-state's rule), "
                        "else exit 3 with install-state's answer and do nothing")
    s.add_argument("--etcd-version", default="",
                   help="the etcd version the tools must match (default: the member's)")
    v = sub.add_parser("verify", help="restore drill of a snapshot")
    v.add_argument("snapshot", nargs="?", default="latest")
    li = sub.add_parser("list", help="snapshots here (and remote)")
    li.add_argument("--remote", action="store_true")
    r = sub.add_parser("restore", help="restore a checked snapshot into a new data dir")
    r.add_argument("snapshot", help="snapshot file name, path or 'latest'")
    r.add_argument("--data-dir", required=True, help="new data dir (must not exist)")
    r.add_argument("--current-data-dir", default="",
                   help="the member's data dir now (refused as, in or around --data-dir)")
    r.add_argument("--check", action="store_true",
                   help="only check the snapshot and the target; change nothing")
    r.add_argument("--name", default="", help="member name (kubeadm: the node name)")
    r.add_argument("--initial-advertise-peer-urls", default="")
    r.add_argument("--initial-cluster", default="", help="default: NAME=PEER_URL")
    r.add_argument("--token", default=f"restore-{int(time.time())}",
                   help="new initial-cluster token (default: restore-<unix time>)")
    sh = sub.add_parser("show", help="one snapshot and its sidecar")
    sh.add_argument("snapshot", nargs="?", default="latest")
    sub.add_parser("health", help="is the local etcd member reachable")
    sub.add_parser("prune", help="apply retention now")
    sub.add_parser("prepare", help="create the backup directory 0700 (only a dedicated one)")
    st = sub.add_parser("install-state", help="what drifted since the role installed the tool")
    st.add_argument("--inputs", metavar="INPUTS", help="say whether the install is current")
    st.add_argument("--etcd-version", default="",
                    help="the etcd version the tools must match (default: the member's)")
    st.add_argument("--record", metavar="INPUTS", help="write the stamp first (the role does)")
    st.add_argument("--file", action="append", default=[], help="a managed file (hashed)")
    st.add_argument("--dir", action="append", default=[], help="a managed directory")
    st.add_argument("--binary", action="append", default=[], help="an installed binary")
    return ap.parse_args(argv)


COMMANDS = {"snapshot": cmd_snapshot, "verify": cmd_verify, "list": cmd_list,
            "health": cmd_health, "prune": cmd_prune, "restore": cmd_restore,
            "show": cmd_show, "prepare": lambda cfg, args: prepare_dir(Path(cfg["backup_dir"])),
            "install-state": cmd_install_state}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # run finally: blocks, clean up
    os.umask(0o077)
    try:
        cfg = load_config(args.config, {"backup_dir": args.backup_dir,
                                        "endpoints": args.endpoint})
    except ConfigError as exc:
        log(f"error: {exc}")
        print(json.dumps({"ok": False, "command": args.command, "error": str(exc)}))
        return 2
    try:
        result = COMMANDS[args.command](cfg, args)
    except NotCurrent as exc:  # nothing was done; the role installs and/or picks a member
        state = exc.state
        log("nothing done: " + ("the install is not current (the role installs, then "
                                "snapshots)" if not state["current"] else
                                f"the member is not healthy ({state['health'].get('error')})"))
        print(json.dumps({"ok": False, "command": args.command, "node": cfg["node"],
                          "needs_install": not state["current"], **state}))
        return 3
    except (Failure, ValueError, OSError) as exc:
        msg = str(exc)
        log(f"error: {args.command} failed on {cfg['node']}: {msg}")
        if args.command != "install-state":  # the role's bookkeeping, not a backup failure
            notify(cfg, args.command, msg)
        print(json.dumps({"ok": False, "command": args.command, "node": cfg["node"],
                          "error": msg}))
        return 1
    print(json.dumps({"ok": True, "command": args.command, "node": cfg["node"], **result},
                     default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
