"""Pure planning of etcd snapshots: names, sidecars, retention rules, schedules (no I/O)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from provision.etcd import naming, retention, schedule, sidecar

UTC = dt.UTC
NOW = dt.datetime(2026, 11, 21, 12, 0, 0, tzinfo=UTC)


def snap(hours_ago: float, *, tag: str = "", verified: bool = True, ours: bool = True,
         name: str | None = None) -> retention.Snapshot:
    created = (NOW - dt.timedelta(hours=hours_ago)).replace(microsecond=0)
    n = name or naming.make("prod", "cp1", created, tag).filename
    return retention.Snapshot(n, created, verified, ours, tag)


# --- names ------------------------------------------------------------------------------------

def test_name_round_trips_with_hyphens_and_tag():
    n = naming.make("Prod-EU", "cp-1.example", NOW, "pre.upgrade")
    assert n.filename == "etcd-prod-eu-cp-1.example-20261121T120000Z-pre.upgrade.db"
    assert n.sidecar.endswith("-pre.upgrade.json")
    assert naming.parse(n.filename) == n


def test_parse_rejects_foreign_and_temporary_files():
    assert naming.parse("etcd-prod-cp1-20261121T120000Z.db.part") is None
    assert naming.parse(naming.TEMP_PREFIX + "etcd-prod-cp1-20261121T120000Z.db") is None
    assert naming.parse("snapshot.db") is None
    assert naming.parse("etcd-prod-cp1-2026-11-21.db") is None


@pytest.mark.parametrize("tag", ["has-hyphen", "UPPER", "x" * 33, "sp ace", "-x"])
def test_bad_tags_are_refused(tag):
    with pytest.raises(ValueError, match="tag"):
        naming.validate_tag(tag)


def test_naive_time_is_refused():
    with pytest.raises(ValueError, match="timezone"):
        naming.make("c", "n", dt.datetime(2026, 1, 1), "")


@pytest.mark.parametrize(("text", "seconds"), [("30d", 30 * 86400), ("12h", 43200),
                                               ("15m", 900), ("2w", 1209600)])
def test_durations(text, seconds):
    assert naming.parse_duration(text).total_seconds() == seconds


@pytest.mark.parametrize("text", ["", "0d", "30", "3x", "-1d"])
def test_bad_durations(text):
    with pytest.raises(ValueError, match="duration"):
        naming.parse_duration(text)


# --- retention --------------------------------------------------------------------------------

def test_keep_n_deletes_the_oldest_verified_untagged():
    snaps = [snap(h) for h in (0, 1, 2, 3, 4)]
    doomed = retention.plan(snaps, retention.Policy(keep=3), after=snaps[0].name, now=NOW)
    assert doomed == [snaps[4].name, snaps[3].name]


def test_max_age_deletes_old_ones_but_never_the_newest_verified():
    snaps = [snap(24 * 40), snap(24 * 50)]
    policy = retention.Policy(keep=10, max_age=dt.timedelta(days=30))
    assert retention.plan(snaps, policy, after=snaps[0].name, now=NOW) == [snaps[1].name]


def test_never_deletes_what_it_did_not_create_nor_tagged_nor_unverified():
    foreign = snap(10, ours=False)
    tagged = snap(9, tag="pre.upgrade")
    unverified = snap(8, verified=False)
    new = snap(0)
    old = snap(5)
    doomed = retention.plan([foreign, tagged, unverified, new, old],
                            retention.Policy(keep=1, max_age=dt.timedelta(hours=1)),
                            after=new.name, now=NOW)
    assert doomed == [old.name]


def test_nothing_is_deleted_unless_the_new_snapshot_is_verified():
    new = snap(0, verified=False)
    with pytest.raises(retention.RetentionError, match="verified"):
        retention.plan([new, snap(1), snap(2)], retention.Policy(keep=1), after=new.name,
                       now=NOW)
    with pytest.raises(retention.RetentionError):
        retention.plan([snap(1)], retention.Policy(keep=1), after="missing.db", now=NOW)


def test_keep_must_be_positive():
    with pytest.raises(retention.RetentionError, match="keep"):
        retention.Policy(keep=0)


def test_newest_verified_is_protected_even_if_tagged_is_newer():
    tagged_newest = snap(0, tag="manual")
    untagged = snap(1)
    doomed = retention.plan([tagged_newest, untagged],
                            retention.Policy(keep=1, max_age=dt.timedelta(minutes=1)),
                            after=tagged_newest.name, now=NOW)
    assert doomed == [untagged.name]  # the newest verified one (tagged) stays


# --- sidecar ----------------------------------------------------------------------------------

def _fields(db: Path) -> dict:
    return dict(file=db.name, cluster="prod", node="cp1", tag="", created=NOW.isoformat(),
                size=db.stat().st_size, sha256=sidecar.sha256_file(db), revision=7,
                total_keys=12, keys=10, hash=1, etcd_version="3.5.1", cluster_id="1",
                member_id="2", endpoint="https://127.0.0.1:2379")


def test_sidecar_checks_size_and_sha256(tmp_path):
    db = tmp_path / naming.make("prod", "cp1", NOW).filename
    db.write_bytes(b"x" * 1000)
    data = sidecar.build(**_fields(db))
    (tmp_path / naming.sidecar_name(db.name)).write_text(sidecar.dumps(data))
    loaded = sidecar.load(tmp_path / naming.sidecar_name(db.name))
    sidecar.verify_file(db, loaded)
    db.write_bytes(b"y" * 1000)
    with pytest.raises(sidecar.SidecarError, match="sha256"):
        sidecar.verify_file(db, loaded)
    db.write_bytes(b"y")
    with pytest.raises(sidecar.SidecarError, match="size"):
        sidecar.verify_file(db, loaded)


def test_sidecar_errors_name_file_and_key(tmp_path):
    p = tmp_path / "s.json"
    p.write_text('{"format": 1}')
    with pytest.raises(sidecar.SidecarError, match=r"s\.json: missing key 'tool'"):
        sidecar.load(p)
    p.write_text("{not json")
    with pytest.raises(sidecar.SidecarError, match="unreadable"):
        sidecar.load(p)


# --- schedules --------------------------------------------------------------------------------

@pytest.mark.parametrize(("every", "calendar"), [
    ("15m", "*:0/15"), ("1min", "*:0/1"), ("60m", "hourly"), ("6h", "*-*-* 0/6:00:00"),
    ("1d", "daily"), ("20s", "*:*:0/20"), ("weekly", "weekly")])
def test_every_to_calendar(every, calendar):
    assert schedule.every_to_calendar(every) == calendar


@pytest.mark.parametrize("every", ["7m", "5h", "2d", "soon", "0m"])
def test_uneven_or_unknown_intervals_are_refused(every):
    with pytest.raises(schedule.ScheduleError):
        schedule.every_to_calendar(every)


def test_node_tool_ships_these_very_modules():
    """The node tool imports naming/retention/sidecar from symlinks to this package."""
    files = Path(__file__).resolve().parent.parent / "roles/etcd_snapshot/files/etcd-backup"
    for mod in (naming, retention, sidecar):
        shipped = files / Path(mod.__file__).name
        assert shipped.is_symlink() and shipped.resolve() == Path(mod.__file__).resolve()
