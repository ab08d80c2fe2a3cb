"""`provision etcd`: bad flags exit 2 before any host is contacted; controller-side checks."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from provision.commands.etcd import host_reports, list_rows
from provision.etcd import naming, sidecar
from provision.etcd.fetchdest import check_fetched

REPO = Path(__file__).resolve().parent.parent


def run(*args: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "XDG_STATE_HOME": str(tmp_path)}
    return subprocess.run([sys.executable, "-m", "provision", "-i", str(tmp_path / "nowhere"),
                           "--json", "etcd", *args], cwd=REPO, capture_output=True, text=True,
                          env=env, timeout=60)


@pytest.mark.parametrize(("args", "message"), [
    (["schedule", "--every", "7m"], "minutes must divide 60"),
    (["schedule", "--every", "1h", "--calendar", "daily"], "give one of them"),
    (["schedule", "--keep", "0"], "--keep 0"),
    (["schedule", "--max-age", "soon"], "--max-age"),
    (["snapshot", "--tag", "Bad-Tag"], "--tag"),
    (["verify", "--snapshot", "../etc/passwd"], "--snapshot"),
    (["restore", "--snapshot", "nope"], "--snapshot"),
])
def test_bad_flags_exit_2_and_touch_nothing(tmp_path, args, message):
    cp = run(*args, tmp_path=tmp_path)
    assert cp.returncode == 2, cp.stderr
    obj = json.loads(cp.stdout)
    said = " ".join(e["message"] for e in obj["errors"]) + cp.stderr
    assert obj["exit_code"] == 2 and message in said
    assert not (tmp_path / "provision").exists(), "a run directory was created"


def test_missing_inventory_is_a_usage_error(tmp_path):
    cp = run("list", tmp_path=tmp_path)
    assert cp.returncode == 2
    assert "nowhere" in cp.stdout + cp.stderr


def test_list_rows_show_verification_state():
    reports = {"cp1": {"snapshots": [
        {"file": "a.db", "created": "t1", "size": 10, "tag": "", "verified": True,
         "sidecar": {"revision": 5, "keys": 3, "restore_check": {"ok": True}}},
        {"file": "b.db", "created": "t2", "size": 10, "tag": "x", "verified": True,
         "sidecar": {"revision": 6, "keys": 4, "restore_check": None}},
        {"file": "c.db", "created": "t3", "size": 10, "tag": "", "verified": False,
         "sidecar": None}],
        "remote": [{"file": "a.db", "created": "t1", "size": 10, "tag": "", "verified": True}]}}
    rows = list_rows(reports)
    assert [(r["where"], r["file"], r["verified"]) for r in rows] == [
        ("cp1", "a.db", "restored"), ("cp1", "b.db", "status"), ("cp1", "c.db", "no"),
        ("cp1:remote", "a.db", "status")]


def test_host_reports_read_what_the_play_returned():
    """The playbooks return {'etcd': {host: value}} with set_stats: etcd-backup's JSON answer
    (text) or a dict the play built; anything else becomes a named error for that host."""
    report = {"etcd": {"cp2": '{"ok": true, "snapshot": "/b/x.db"}', "cp1": {"fetched": []},
                       "cp3": "Traceback (most recent call last)", "cp4": "[1]", "cp5": ""},
              "other": {"ignored": True}}
    assert host_reports(report) == {
        "cp1": {"fetched": []}, "cp2": {"ok": True, "snapshot": "/b/x.db"},
        "cp3": {"ok": False, "error": "unreadable report: 'Traceback (most recent call last)'"},
        "cp4": {"ok": False, "error": "unreadable report: '[1]'"}, "cp5": {}}
    assert list(host_reports(report)) == ["cp1", "cp2", "cp3", "cp4", "cp5"]
    assert host_reports({}) == {}


def test_fetched_files_are_checked_against_their_sidecars(tmp_path):
    """Only the files this run fetched (the reports name them) are checked and set to 0600;
    an unrelated file in the same directory keeps its mode."""
    import datetime as dt

    host = tmp_path / "cp1"
    host.mkdir()
    good = naming.make("c", "cp1", dt.datetime(2026, 1, 1, tzinfo=dt.UTC))
    bad = naming.make("c", "cp1", dt.datetime(2026, 1, 2, tzinfo=dt.UTC))
    for name, content in ((good, b"snapshot-1"), (bad, b"snapshot-2")):
        db = host / name.filename
        db.write_bytes(content)
        data = sidecar.build(file=db.name, cluster="c", node="cp1", tag="", created="t",
                             size=db.stat().st_size, sha256=sidecar.sha256_file(db),
                             revision=1, total_keys=1, keys=1, hash=1, etcd_version="3.5.1",
                             cluster_id="1", member_id="1", endpoint="e")
        (host / name.sidecar).write_text(sidecar.dumps(data))
    (host / bad.filename).write_bytes(b"snapshot-X")  # corrupted in transit
    (host / "notes.txt").write_text("mine")
    (host / "notes.txt").chmod(0o644)
    ok, problems = check_fetched(tmp_path, {"cp1": {"fetched": [good.filename, bad.filename]}})
    assert ok == [str(host / good.filename)]
    assert len(problems) == 1 and bad.filename in problems[0] and "sha256" in problems[0]
    modes = {p.name: p.stat().st_mode & 0o777 for p in host.iterdir()}
    assert modes.pop("notes.txt") == 0o644
    assert set(modes.values()) == {0o600}
