"""provision/pins.py is the one place for pinned versions and their floors: no pin below its
floor, every role default equal to its pin, README's table generated from it, and the
simulator's kubeadm image expectations for the default minor equal to the declared ones."""

from __future__ import annotations

import datetime
import re

import pytest
import yaml
from simulator import rules

from provision import pins
from provision.paths import REPO_ROOT
from provision.schema import BY_NAME
from provision.versions import parse_version


def test_no_pin_is_older_than_its_floor() -> None:
    assert pins.below_floor() == []


def test_the_floor_check_can_fail() -> None:
    """The comparison is numeric, not textual: v1.9 < v1.12 and 3.10 > 3.9."""
    assert pins.version_key("v1.9.0") < pins.version_key("v1.12.1")
    assert pins.version_key("3.10") > pins.version_key("3.9")
    with pytest.raises(ValueError):
        pins.version_key("latest")


def _role_default(spec: str) -> object:
    path, var = spec.rsplit(":", 1)
    if path == "schema":
        return BY_NAME[var].default
    return (yaml.safe_load((REPO_ROOT / path).read_text()) or {})[var]


@pytest.mark.parametrize("pin", [p for p in pins.PINS if p.default], ids=lambda p: p.component)
def test_role_default_equals_the_pin(pin: pins.Pin) -> None:
    assert str(_role_default(pin.default)) == pin.version, \
        f"{pin.default} disagrees with provision/pins.py ({pin.component} {pin.version})"


@pytest.mark.parametrize("pin", [p for p in pins.PINS if p.checksum], ids=lambda p: p.component)
def test_role_default_checksum_is_the_declared_one(pin: pins.Pin) -> None:
    path, var = pin.default.rsplit(":", 1)
    checksum_var = var.replace("_version", "_manifest_checksum")
    text = str(_role_default(f"{path}:{checksum_var}"))
    assert f"sha256:{pin.checksum}" in text and f"== '{pin.version}'" in text
    assert re.fullmatch(r"[0-9a-f]{64}", pin.checksum)


def test_every_pin_says_why_and_cites_a_source() -> None:
    for p in pins.PINS:
        assert p.why.strip() and p.source.strip(), p.component
        pins.version_key(p.version), pins.version_key(p.floor)


def test_readme_pin_table_is_generated_from_pins() -> None:
    readme = (REPO_ROOT / "README.md").read_text()
    m = re.search(r"<!-- pins:start -->\n(.*?)\n<!-- pins:end -->", readme, re.S)
    assert m, "README lacks the pinned-versions markers"
    assert m.group(1).strip() == pins.markdown_table().strip(), (
        "README pinned-versions table is stale: regenerate with "
        "`python -m provision.pins --markdown`")


def test_simulator_expects_the_declared_images_for_the_default_minor() -> None:
    minor = parse_version(pins.BY_COMPONENT["Kubernetes (default minor, new clusters)"].version)[1]
    assert rules.PAUSE[minor] == pins.BY_COMPONENT["pause image (default minor)"].version
    assert rules.COREDNS[minor] == pins.BY_COMPONENT["CoreDNS (default minor)"].version
    assert rules.ETCD[minor].split("-")[0] == pins.BY_COMPONENT["etcd tools fallback"].version


def test_eol_warning_only_past_the_declared_date() -> None:
    eol = pins.KUBERNETES_EOL[31]
    assert pins.eol_warning("inv.yml", "1.31", 31, eol) is None
    msg = pins.eol_warning("inv.yml", "1.31", 31, eol + datetime.timedelta(days=1))
    assert msg and "inv.yml" in msg and "2025-10-28" in msg
    assert "kubernetes.io/releases/1.31/" in msg
    assert pins.eol_warning("inv.yml", "1.37", 37, datetime.date(2030, 1, 1)) is None  # no date
