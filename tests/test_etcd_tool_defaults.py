"""The etcd-backup node tool's own DEFAULTS (used when a key is missing from its config.json)
equal what the role writes with the declared defaults (roles/provision_defaults and
roles/etcd_snapshot, rendered by Ansible's own templar): one set of defaults, checked."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent
ROLE = REPO / "roles/etcd_snapshot"
TOOL_DIR = ROLE / "files/etcd-backup"
# keys the role does not write: the node's own name, rclone's path, a per-request timeout
NOT_WRITTEN = {"node", "rclone", "connect_timeout"}


def _trusted(value: Any) -> Any:
    from ansible.template import trust_as_template

    if isinstance(value, str):
        return trust_as_template(value)
    if isinstance(value, list):
        return [_trusted(v) for v in value]
    if isinstance(value, dict):
        return {k: _trusted(v) for k, v in value.items()}
    return value


def rendered_config(overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """templates/config.json.j2 with the shared and the role's defaults (and ``overrides``)."""
    from ansible.parsing.dataloader import DataLoader
    from ansible.template import Templar, trust_as_template

    variables = {**yaml.safe_load((REPO / "roles/provision_defaults/defaults/main.yml")
                                  .read_text()),
                 **yaml.safe_load((ROLE / "defaults/main.yml").read_text()),
                 "inventory_hostname_short": "cp1", **(overrides or {})}
    templar = Templar(loader=DataLoader(), variables=_trusted(variables))
    text = templar.template(trust_as_template((ROLE / "templates/config.json.j2").read_text()))
    return json.loads(text)


def tool_defaults() -> dict[str, Any]:
    sys.path.insert(0, str(TOOL_DIR))
    try:
        spec = importlib.util.spec_from_file_location("etcd_backup_tool",
                                                      TOOL_DIR / "etcd_backup.py")
        assert spec and spec.loader
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
    finally:
        sys.path.remove(str(TOOL_DIR))
    return dict(mod.DEFAULTS)


def differences(config: dict[str, Any], defaults: dict[str, Any]) -> list[str]:
    out = [f"{k}: role writes {config[k]!r}, tool default {defaults.get(k)!r}"
           for k in sorted(config) if k not in NOT_WRITTEN and config[k] != defaults.get(k)]
    out += [f"{k}: the role writes a key the tool does not know" for k in config
            if k not in defaults]
    return out


def test_the_node_tool_defaults_equal_the_declared_defaults() -> None:
    config, defaults = rendered_config(), tool_defaults()
    assert set(config) | NOT_WRITTEN == set(defaults)
    assert not differences(config, defaults)


@pytest.mark.parametrize("override", [{"etcd_backup_keep": 7}, {"etcd_pki_dir": "/srv/pki"}])
def test_a_diverging_default_is_caught(override: dict[str, Any]) -> None:
    """The comparison can fail: a changed declared default no longer equals the tool's."""
    assert differences(rendered_config(override), tool_defaults())
