"""The simulator's per-minor kubeadm image facts (rules.ETCD, COREDNS, PAUSE) are the table in
tests/simulator/README.md (with its sources), cover every minor the simulated repository
offers, and never go backwards from one minor to the next (kubeadm never deploys an older etcd,
CoreDNS or pause for a newer minor)."""

from __future__ import annotations

import re
from pathlib import Path

from simulator import rules

from provision.pins import version_key
from provision.versions import SUPPORTED_MINORS

README = Path(__file__).resolve().parent / "simulator" / "README.md"


def readme_rows() -> dict[int, tuple[str, str, str]]:
    rows = {}
    for line in README.read_text().splitlines():
        m = re.match(r"\| 1\.(\d+) \| (\S+) \| (\S+) \| (\S+) \| (.+) \|$", line)
        if m:
            assert m.group(5).strip(), f"row 1.{m.group(1)} names no source"
            rows[int(m.group(1))] = (m.group(2), m.group(3), m.group(4))
    return rows


def test_readme_table_is_the_rules() -> None:
    assert readme_rows() == {m: (rules.ETCD[m], rules.COREDNS[m], rules.PAUSE[m])
                             for m in rules.RELEASES}


def test_every_supported_minor_has_its_images() -> None:
    for minor in SUPPORTED_MINORS:
        assert minor in rules.RELEASES and minor in rules.ETCD
        assert minor in rules.COREDNS and minor in rules.PAUSE


def test_images_never_go_backwards() -> None:
    minors = sorted(rules.RELEASES)
    for table in (rules.ETCD, rules.COREDNS, rules.PAUSE):
        for older, newer in zip(minors, minors[1:], strict=False):
            assert version_key(table[older]) <= version_key(table[newer]), (older, newer, table)


def test_etcd_minor_lines() -> None:
    """etcd 3.5 up to kubeadm 1.33, 3.6 from 1.34, 3.7 from 1.37 (the issue's facts)."""
    line = {m: ".".join(rules.ETCD[m].split(".")[:2]) for m in rules.RELEASES}
    assert {m for m, v in line.items() if v == "3.6"} == {34, 35, 36}
    assert line[37] == "3.7" and all(line[m] == "3.5" for m in rules.RELEASES if m <= 33)
