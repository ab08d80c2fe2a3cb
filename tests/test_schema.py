"""The variable schema is the one source: README's reference and role argument specs agree."""

from __future__ import annotations

import re

import yaml

from provision.paths import REPO_ROOT, ROLES_DIR
from provision.schema import BY_NAME, VARIABLES, markdown_table

SPEC_TYPES = {"str": {"str"}, "path": {"path", "str"}, "int": {"int"}, "bool": {"bool"},
              "list": {"list"}, "dict": {"dict"}, "version": {"str", "raw"},
              "cidr": {"str"}, "ip": {"str"}, "ip_pool": {"list"}, "duration": {"str"},
              "port": {"int"}}


def test_readme_inventory_reference_is_generated_from_the_schema():
    readme = (REPO_ROOT / "README.md").read_text()
    m = re.search(r"<!-- schema:start -->\n(.*?)\n<!-- schema:end -->", readme, re.S)
    assert m, "README lacks the inventory reference markers"
    assert m.group(1).strip() == markdown_table().strip(), (
        "README inventory reference is stale: regenerate with "
        "`python -m provision.schema --markdown`")


def test_every_schema_variable_is_described():
    for var in VARIABLES:
        assert var.description.strip(), var.name
        if var.choices and var.default is not None:
            assert var.default in var.choices, var.name


def test_role_argument_specs_agree_with_the_schema():
    problems = []
    for spec_file in sorted(ROLES_DIR.glob("*/meta/argument_specs.yml")):
        data = yaml.safe_load(spec_file.read_text()) or {}
        for entry in (data.get("argument_specs") or {}).values():
            for name, spec in (entry.get("options") or {}).items():
                var = BY_NAME.get(name)
                if var is None:
                    continue
                kind = str(spec.get("type", "str"))
                if kind not in SPEC_TYPES[var.kind]:
                    problems.append(f"{spec_file}: {name}: type {kind}, schema {var.kind}")
                if "default" in spec and spec["default"] != var.default and not (
                        isinstance(spec["default"], str) and "{{" in spec["default"]):
                    problems.append(f"{spec_file}: {name}: default {spec['default']!r}, "
                                    f"schema {var.default!r}")
                if spec.get("choices") and tuple(spec["choices"]) != var.choices:
                    problems.append(f"{spec_file}: {name}: choices differ from the schema")
    assert not problems, "\n".join(problems)
