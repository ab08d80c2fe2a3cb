"""Snapshot file names: ``etcd-<cluster>-<node>-<UTC timestamp>[-<tag>].db`` (+ ``.json``).

Cluster and node names may contain hyphens, so a name is parsed from the right, anchored on
the timestamp; the tool only ever touches names whose ``series`` (``<cluster>-<node>``) is its
own. Standard library only (shipped to nodes).
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

UTC = dt.timezone.utc  # noqa: UP017  (nodes may run Python 3.8-3.10)

TIMESTAMP_FORMAT = "%Y%m%dT%H%M%SZ"
_PART = re.compile(r"[^a-z0-9.]+")
TAG_RE = re.compile(r"[a-z0-9][a-z0-9.]{0,31}", re.ASCII)  # whole string: fullmatch
NAME_RE = re.compile(
    r"^etcd-(?P<series>[a-z0-9][a-z0-9.-]*?)-(?P<ts>\d{8}T\d{6}Z)(?:-(?P<tag>[a-z0-9][a-z0-9.]{0,31}))?"
    r"\.db\Z", re.ASCII
)
TEMP_PREFIX = ".etcd-backup-tmp-"  # in-progress files; never match NAME_RE


@dataclass(frozen=True)
class SnapshotName:
    series: str  # "<cluster>-<node>"
    created: dt.datetime  # UTC, second resolution
    tag: str  # "" when untagged

    @property
    def filename(self) -> str:
        suffix = f"-{self.tag}" if self.tag else ""
        return f"etcd-{self.series}-{self.created.strftime(TIMESTAMP_FORMAT)}{suffix}.db"

    @property
    def sidecar(self) -> str:
        return sidecar_name(self.filename)


def safe_part(value: str) -> str:
    """A cluster or node name made safe for a file name: lower case, [a-z0-9.-]."""
    out = _PART.sub("-", value.strip().lower()).strip("-")
    if not out:
        raise ValueError(f"name {value!r} has no usable characters (a-z, 0-9, '.', '-')")
    return out


def shown(value: object) -> str:
    """A value for a message: its repr, cut short (a 5000-digit number is not echoed whole)."""
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def validate_tag(tag: str) -> str:
    """Tags are short: lower-case letters, digits and dots (no hyphen: it separates parts)."""
    if not isinstance(tag, str) or (tag and not TAG_RE.fullmatch(tag)):
        raise ValueError(f"tag {shown(tag)}: use 1-32 characters a-z, 0-9 and '.', starting with a "
                         "letter or digit (e.g. 'pre.upgrade', 'daily')")
    return tag


def series(cluster: str, node: str) -> str:
    return f"{safe_part(cluster)}-{safe_part(node)}"


def make(cluster: str, node: str, when: dt.datetime, tag: str = "") -> SnapshotName:
    if when.tzinfo is None:
        raise ValueError("snapshot time must be timezone-aware (UTC)")
    when = when.astimezone(UTC).replace(microsecond=0)
    return SnapshotName(series(cluster, node), when, validate_tag(tag))


def parse(filename: str) -> SnapshotName | None:
    """The parts of a snapshot file name, or None if it is not one of ours."""
    m = NAME_RE.match(filename)
    if not m:
        return None
    when = dt.datetime.strptime(m["ts"], TIMESTAMP_FORMAT).replace(tzinfo=UTC)
    return SnapshotName(m["series"], when, m["tag"] or "")


def sidecar_name(db_filename: str) -> str:
    if not db_filename.endswith(".db"):
        raise ValueError(f"{db_filename}: a snapshot file name ends in .db")
    return db_filename[:-3] + ".json"


_DURATION = re.compile(r"([0-9]{1,6}) ?(s|m|min|h|d|w)", re.ASCII)  # whole string
_UNIT_SECONDS = {"s": 1, "m": 60, "min": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(text: str) -> dt.timedelta:
    """'30d', '12h', '15m', '2w' -> timedelta (the schema's ``duration`` kind)."""
    m = _DURATION.fullmatch(text) if isinstance(text, str) else None
    if not m or int(m[1]) <= 0:
        raise ValueError(f"duration {shown(text)}: expected a positive number (ASCII digits, at "
                         "most 6) and a unit (s, m, h, d, w), e.g. '30d'")
    return dt.timedelta(seconds=int(m[1]) * _UNIT_SECONDS[m[2]])
