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
from provision.cli import main
from provision.paths import REPO_ROOT
from provision.schema import BY_NAME
from provision.versions import SUPPORTED_MINORS, parse_version


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


def test_schema_states_the_supported_range() -> None:
    lo, hi = min(SUPPORTED_MINORS), max(SUPPORTED_MINORS)
    assert f"1.{lo} to 1.{hi}" in BY_NAME["kubernetes_version"].description


def test_validate_warns_but_accepts_a_version_past_upstream_support(tmp_path, capsys) -> None:
    """`provision validate` (and every command that loads the inventory, doctor included)
    names the file, line and hosts of a requested minor past its end of life; exit 0."""
    (tmp_path / "hosts.yml").write_text(
        'all:\n  vars:\n    kubernetes_version: "1.30"\n  children:\n    control_plane:\n'
        "      hosts:\n        cp1: {ansible_host: 127.0.0.1, ansible_port: 2222}\n"
        "    workers:\n      hosts:\n"
        '        w1: {ansible_host: 127.0.0.2, ansible_port: 2222, kubernetes_version: "1.36"}\n')
    with pytest.raises(SystemExit) as exc:
        main(["-i", str(tmp_path), "validate"])
    err = capsys.readouterr().err
    assert (exc.value.code or 0) == 0, err
    assert f"warning: {tmp_path}/hosts.yml:3: group all: host cp1: Kubernetes 1.30 is past " \
        "upstream support (end of life 2025-07-15" in err


def test_doctor_row_warns_past_support_and_passes_otherwise() -> None:
    from provision.doctor.checks import check_kubernetes_support
    from provision.doctor.model import PASS, WARN

    day = datetime.date(2026, 12, 5)
    old = check_kubernetes_support("cp1", "1.30", day)
    assert old and old.status == WARN and old.check == "kubernetes version"
    assert old.message.startswith("Kubernetes 1.30 is past upstream support (end of life 2025")
    current = check_kubernetes_support("cp1", "1.36.1", day)
    assert current and current.status == PASS and "until 2027-06-28" in current.message
    unknown = check_kubernetes_support("cp1", "1.37", day)
    assert unknown and unknown.status == PASS and "no upstream end-of-life date" in unknown.message
    assert check_kubernetes_support("cp1", "{{ v }}", day) is None


def test_cert_manager_range_is_declared_once_and_warns_outside_it() -> None:
    """The range cert-manager's pinned release documents lives on its pin; a minor outside it
    warns naming the version and the range, one inside does not."""
    pin = pins.pin_of("cert-manager")
    assert pin.kubernetes == (33, 36)
    assert pins.outside_documented_warning("inv.yml", "cert-manager", "1.35", 35) is None
    msg = pins.outside_documented_warning("inv.yml", "cert-manager", "1.37", 37)
    assert msg and msg.startswith("inv.yml: Kubernetes 1.37 is outside the range cert-manager "
                                  f"{pin.version} documents (1.33-1.36")


@pytest.mark.parametrize(("version", "warns"), [("1.37", True), ("1.35", False)])
def test_validate_warns_but_accepts_kubernetes_outside_cert_managers_range(
        tmp_path, capsys, version: str, warns: bool) -> None:
    """kubeadm mode installs cert-manager with the add-ons: `provision validate` warns (exit 0)
    for 1.37, naming file, line, version and cert-manager's documented range; not for 1.35."""
    (tmp_path / "hosts.yml").write_text(
        f'all:\n  vars:\n    provision_mode: kubeadm\n    kubernetes_version: "{version}"\n'
        "  children:\n    control_plane:\n"
        "      hosts:\n        cp1: {ansible_host: 127.0.0.1, ansible_port: 2222}\n")
    with pytest.raises(SystemExit) as exc:
        main(["-i", str(tmp_path), "validate"])
    err = capsys.readouterr().err
    assert (exc.value.code or 0) == 0, err
    expected = (f"warning: {tmp_path}/hosts.yml:4: group all: host cp1: Kubernetes {version} "
                f"is outside the range cert-manager {pins.pin_of('cert-manager').version} "
                "documents (1.33-1.36")
    assert (expected in err) is warns, err
    assert ("cert-manager" in err) is warns, err
