"""provision.inventory_cache: a validated static inventory directory is loaded by ansible-core
once; the next command reuses the model while nothing it was read from changed, and checks it
again. Real: ansible-core loads every inventory here; the cache files are real files in the
test's own XDG_STATE_HOME. Nothing is contacted (documentation addresses, no playbook runs).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
from test_inventory_ansible import HOSTS, write

from provision import ansible_inventory, inventory_cache
from provision.errors import ValidationError
from provision.validate import check_limit, load_valid_inventory
from provision.vault import VaultOptions

NO_VAULT = VaultOptions()


@pytest.fixture
def inv(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    monkeypatch.delenv("ANSIBLE_VAULT_PASSWORD_FILE", raising=False)
    return write(tmp_path / "inv", {"hosts.yml": HOSTS,
                                    "group_vars/all.yml": "etcd_backup_keep: 7\n"})


def load_and_store(path: Path):
    """What `provision etcd ...` does: validate, then keep the load (every check passed)."""
    loaded = load_valid_inventory(str(path), NO_VAULT)
    inventory_cache.store(loaded)
    return loaded


@pytest.fixture
def no_ansible(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """Records every load through ansible-core (the real one still runs, each time as in a new
    command: without what Ansible's host_group_vars plugin remembers in this process)."""
    calls: list[Path] = []
    real = ansible_inventory.load

    def load(path: Path, vault):
        calls.append(path)
        for name, module in list(sys.modules.items()):
            if name.endswith("host_group_vars") and isinstance(getattr(module, "FOUND", None),
                                                               dict):
                module.FOUND.clear()
        return real(path, vault)

    monkeypatch.setattr(ansible_inventory, "load", load)
    return calls


def cache_files(tmp_path: Path) -> list[Path]:
    d = tmp_path / "state" / "provision" / "inventory-cache"
    return sorted(d.iterdir()) if d.is_dir() else []


def test_the_second_load_is_the_cached_model_checked_again(inv, tmp_path, no_ansible):
    first = load_and_store(inv)
    assert no_ansible == [inv] and len(cache_files(tmp_path)) == 1
    (file,) = cache_files(tmp_path)
    assert oct(file.stat().st_mode & 0o777) == "0o600"
    assert oct(file.parent.stat().st_mode & 0o777) == "0o700"
    second = load_valid_inventory(str(inv), NO_VAULT)
    assert no_ansible == [inv]  # not loaded again
    assert second == first  # hosts, groups, every variable and its source, files, warnings
    assert second.hosts["w2"].vars["etcd_backup_keep"] == 3
    src = second.last_source("etcd_backup_keep", ["host w2"])
    assert src is not None and src.file == inv / "hosts.yml"


@pytest.mark.parametrize("change", ["edit", "add", "remove", "rename"])
def test_any_change_of_the_inventory_files_loads_and_validates_again(inv, tmp_path, no_ansible,
                                                                     change):
    load_and_store(inv)
    group_vars = inv / "group_vars"
    if change == "edit":  # a bad value now: refused, naming file and key
        (group_vars / "all.yml").write_text("etcd_backup_keep: many\n")
        with pytest.raises(ValidationError) as exc:
            load_valid_inventory(str(inv), NO_VAULT)
        assert any("all.yml" in p and "etcd_backup_keep" in p for p in exc.value.problems)
    elif change == "add":
        (inv / "host_vars").mkdir()
        (inv / "host_vars" / "w1.yml").write_text("etcd_backup_keep: 9\n")
        assert load_valid_inventory(str(inv), NO_VAULT).hosts["w1"].vars["etcd_backup_keep"] == 9
    elif change == "remove":
        (group_vars / "all.yml").unlink()
        loaded = load_valid_inventory(str(inv), NO_VAULT)
        assert "etcd_backup_keep" not in loaded.hosts["cp1"].vars
    else:
        (group_vars / "all.yml").rename(group_vars / "workers.yml")
        loaded = load_valid_inventory(str(inv), NO_VAULT)
        assert "etcd_backup_keep" not in loaded.hosts["cp1"].vars
    assert no_ansible == [inv, inv]


def test_ansible_settings_change_the_key(inv, monkeypatch):
    before = inventory_cache.key(inv, NO_VAULT)
    assert before is not None and before == inventory_cache.key(inv, NO_VAULT)
    monkeypatch.setenv("ANSIBLE_INVENTORY_ENABLED", "yaml")
    assert inventory_cache.key(inv, NO_VAULT) not in (None, before)


@pytest.mark.parametrize("case", ["vault-file", "vault-option", "executable", "plugin", "link",
                                  "single-file"])
def test_inventories_not_decided_by_their_files_alone_are_never_cached(inv, tmp_path, case):
    vault = NO_VAULT
    path = inv
    if case == "vault-file":
        (inv / "group_vars" / "vault.yml").write_text("$ANSIBLE_VAULT;1.1;AES256\n6162\n")
    elif case == "vault-option":
        vault = VaultOptions(password_files=(str(tmp_path / "pass"),))
    elif case == "executable":
        (inv / "group_vars" / "all.yml").chmod(0o755)
    elif case == "plugin":
        (inv / "more.yml").write_text("plugin: constructed\n")
    elif case == "link":
        (inv / "group_vars" / "workers.yml").symlink_to(inv / "group_vars" / "all.yml")
    else:
        path = inv / "hosts.yml"
    assert inventory_cache.key(path, vault) is None


def test_an_inventory_with_a_secret_value_is_not_written_to_the_cache(inv, tmp_path):
    (inv / "group_vars" / "all.yml").write_text("ansible_become_password: Hunter2Secret\n")
    load_and_store(inv)
    assert cache_files(tmp_path) == []


def test_an_inventory_read_by_another_vars_plugin_is_not_written_to_the_cache(inv, tmp_path,
                                                                           monkeypatch):
    load_valid_inventory(str(inv), NO_VAULT)  # Ansible's constants are loaded now
    import ansible.constants as C  # noqa: N812 - Ansible's own name

    loaded = load_valid_inventory(str(inv), NO_VAULT)
    monkeypatch.setattr(C, "VARIABLE_PLUGINS_ENABLED", ["host_group_vars", "community.x.y"])
    inventory_cache.store(loaded)
    assert cache_files(tmp_path) == []


def test_an_invalid_inventory_writes_nothing(inv, tmp_path):
    (inv / "group_vars" / "all.yml").write_text("etcd_backup_keep: many\n")
    with pytest.raises(ValidationError):
        load_and_store(inv)
    assert not (tmp_path / "state").exists()


def test_limit_on_a_cached_inventory_uses_ansibles_patterns(inv, no_ansible):
    load_and_store(inv)
    cached = load_valid_inventory(str(inv), NO_VAULT)
    assert cached.manager is None and len(no_ansible) == 1
    assert [h.name for h in check_limit(cached, "w*:!w2")] == ["w1", "w3"]
    assert [h.name for h in check_limit(cached, "~w[13]")] == ["w1", "w3"]


def test_a_cache_file_others_can_write_is_ignored(inv, tmp_path, no_ansible):
    load_and_store(inv)
    (file,) = cache_files(tmp_path)
    os.chmod(file, 0o666)
    load_valid_inventory(str(inv), NO_VAULT)
    assert no_ansible == [inv, inv]
    file.write_bytes(b"not a pickle")
    os.chmod(file, 0o600)
    load_valid_inventory(str(inv), NO_VAULT)
    assert no_ansible == [inv, inv, inv]
