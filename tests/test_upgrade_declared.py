"""The inventory's kubernetes_version is the one declared version: `provision upgrade`
without --to takes it, and --to past it names the inventory line to change (pure functions
over a real inventory on disk; the upgrade itself: tests/test_upgrade_drain_simulated.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from provision.cli import main
from provision.inventory import load_inventory
from provision.upgrade.declared import declared, stale_note


def inventory(tmp_path: Path, version: str | None) -> Path:
    d = tmp_path / "inv"
    (d / "group_vars").mkdir(parents=True)
    (d / "hosts.yml").write_text(
        "all:\n  children:\n    control_plane:\n      hosts:\n        cp1:\n"
        "          ansible_host: 127.0.0.1\n")
    (d / "group_vars" / "all.yml").write_text(
        "cluster_name: lab\n" + (f'kubernetes_version: "{version}"\n' if version else ""))
    return d


def test_declared_version_and_where_it_is_written(tmp_path: Path) -> None:
    inv = load_inventory(inventory(tmp_path, "1.30"))
    decl = declared(inv)
    assert decl is not None and decl.version == "1.30"
    assert decl.where.endswith("group_vars/all.yml:2: group all"), decl.where
    note = stale_note("1.31", decl)
    assert note and "kubernetes_version: 1.30" in note and "set it to 1.31" in note
    assert "all.yml:2" in note
    assert stale_note("1.30.6", decl) is None  # a patch of the declared minor
    assert stale_note("1.29", decl) is None


def test_declared_version_defaults_to_the_schema_default(tmp_path: Path) -> None:
    from provision.schema import BY_NAME

    decl = declared(load_inventory(inventory(tmp_path, None)))
    assert decl is not None and decl.version == BY_NAME["kubernetes_version"].default
    assert decl.where.startswith("the default")


def test_declared_exact_patch_note_names_the_patch(tmp_path: Path) -> None:
    decl = declared(load_inventory(inventory(tmp_path, "1.30.4")))
    assert decl is not None
    note = stale_note("1.30.6", decl)
    assert note and "set it to 1.30.6" in note


def test_upgrade_state_file_without_to_is_refused(tmp_path: Path, capsys) -> None:
    state = tmp_path / "state.json"
    state.write_text("{}")
    with pytest.raises(SystemExit) as exc:
        main(["upgrade", "--plan", "--state", str(state)])
    assert exc.value.code == 2
    assert "--state plans offline, without the inventory: give --to" in capsys.readouterr().err


def test_status_drift_between_declared_and_running_versions(tmp_path: Path) -> None:
    """`provision status` warns when the inventory's version and the cluster's differ."""
    from provision.upgrade.declared import drift_warning

    decl = declared(load_inventory(inventory(tmp_path, "1.30")))
    assert drift_warning(decl, (1, 30, 6)) is None
    behind = drift_warning(decl, (1, 31, 3))
    assert behind and "runs 1.31.3: set kubernetes_version to 1.31" in behind
    assert "all.yml:2" in behind
    ahead = drift_warning(decl, (1, 29, 10))
    assert ahead and "run `provision upgrade`" in ahead
    exact = declared(load_inventory(inventory(tmp_path / "x", "1.31.2")))
    assert "set kubernetes_version to 1.31.3" in (drift_warning(exact, (1, 31, 3)) or "")
    assert "provision upgrade" in (drift_warning(exact, (1, 31, 1)) or "")
