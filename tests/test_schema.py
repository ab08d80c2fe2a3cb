"""roles/*/meta/argument_specs.yml are the one declaration: provision/schema_data.py, README's
inventory reference and the role READMEs' option tables are generated from them and never stale;
provision's extra option key is accepted by Ansible's own validator and by ansible-lint's schema
with that key added; no role redeclares a shared variable."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from provision import schema_gen
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


# Roles rewritten in parallel (branch upgraderole): they still declare the upgrade's shared
# variables themselves and have no generated README table yet. Remove once merged.


def test_generated_files_are_fresh():
    """provision/schema_data.py, README's reference and every role README's option table are
    what `python -m provision.schema_gen` writes from the argument specs."""
    files = schema_gen.generated_files()
    files[schema_gen.README] = schema_gen.readme_text(markdown_table())
    stale = [str(p.relative_to(REPO_ROOT)) for p in schema_gen.stale(files)]
    assert not stale, f"stale: {stale}; regenerate with `python -m provision.schema_gen`"
    missing = [role.name for role in sorted(ROLES_DIR.iterdir())
               if (role / "README.md").is_file()
               and role / "README.md" not in files]
    assert not missing, f"role READMEs without <!-- options:start/end --> markers: {missing}"


def test_a_stale_generated_file_is_detected(tmp_path):
    """The freshness check can fail: an edited argument spec changes the generated text."""
    specs = schema_gen.load_specs()
    before = schema_gen.data_module(specs)
    specs["provision_defaults"]["main"]["options"]["pod_cidr"]["default"] = "10.1.0.0/16"
    after = schema_gen.data_module(specs)
    assert before != after and "10.1.0.0/16" in after
    target = tmp_path / "schema_data.py"
    target.write_text(before)
    assert schema_gen.stale({target: after}) == [target]


def test_the_schema_is_the_shared_role_plus_connection_variables():
    specs = schema_gen.load_specs()
    shared = specs["provision_defaults"]["main"]["options"]
    assert [v.name for v in VARIABLES if "connection" not in v.tags] == list(shared)
    assert BY_NAME["kubernetes_version"].kind == "version"
    assert BY_NAME["etcd_backup_keep"].minimum == 1
    assert BY_NAME["cluster_name"].pattern == "cluster_name"
    assert BY_NAME["provision_mode"].choices == ("minikube", "kubeadm")


@pytest.mark.parametrize("extra, message", [
    ({"patern": "abs_path"}, "unknown key(s) ['patern']"),
    ({"pattern": "no_such_pattern"}, "'no_such_pattern' is not a pattern"),
    ({"kind": "semver"}, "'semver' is not one of"),
    ("abs_path", "expected a mapping"),
])
def test_malformed_provision_keys_are_refused(extra, message):
    with pytest.raises(schema_gen.DeclarationError) as err:
        schema_gen.extras("cni", "cni_kubeconfig", {"type": "str", "provision": extra})
    assert message in str(err.value)
    assert "roles/cni/meta/argument_specs.yml: cni_kubeconfig" in str(err.value)


def test_ansible_validates_options_that_carry_provision_keys():
    """Ansible's own role argument validator (the validate_argument_spec action) ignores the
    provision key and still checks the type and choices."""
    from ansible.module_utils.common.arg_spec import ArgumentSpecValidator

    options = schema_gen.load_specs()["provision_defaults"]["main"]["options"]
    assert "provision" in options["pod_cidr"]
    validator = ArgumentSpecValidator(options)
    ok = validator.validate({"pod_cidr": "10.1.0.0/16", "provision_mode": "minikube"},
                            validate_role_argument_spec=True)
    assert ok.error_messages == []
    bad = validator.validate({"etcd_backup_keep": "many", "provision_mode": "k3s"},
                             validate_role_argument_spec=True)
    text = " ".join(bad.error_messages)
    assert "etcd_backup_keep" in text and "provision_mode" in text


def test_argument_specs_follow_ansible_lints_schema_plus_the_provision_key():
    """ansible-lint lints meta/argument_specs.yml as plain YAML (its schema check cannot be
    skipped and refuses unknown keys), so its own role-arg-spec schema is applied here, with
    provision's option key added."""
    jsonschema = pytest.importorskip("jsonschema")
    import ansiblelint.schemas

    schema = json.loads((Path(ansiblelint.schemas.__file__).parent
                         / "role-arg-spec.json").read_text())
    schema["$defs"]["option"]["properties"]["provision"] = {
        "type": "object", "additionalProperties": False,
        "properties": {"kind": {"type": "string"}, "pattern": {"type": "string"},
                       "templatable": {"type": "boolean"}, "minimum": {"type": "integer"},
                       "scope": {"enum": ["any", "host"]}}}
    validator = jsonschema.Draft7Validator(schema)
    problems = [f"{path}: {e.json_path}: {e.message}"
                for path in sorted(ROLES_DIR.glob("*/meta/argument_specs.yml"))
                for e in validator.iter_errors(yaml.safe_load(path.read_text()))]
    assert not problems, "\n".join(problems)
    broken = {"argument_specs": {"main": {"options": {"x": {"type": "str", "patern": "y"}}}}}
    assert list(validator.iter_errors(broken)), "the schema check can fail"


def test_no_role_redeclares_a_shared_variable():
    """A shared variable lives in roles/provision_defaults only: a role's own default would
    take precedence over its dependency's and fork the value."""
    specs = schema_gen.load_specs()
    shared = set(specs["provision_defaults"]["main"]["options"])
    problems = []
    for role in sorted(ROLES_DIR.iterdir()):
        if role.name == "provision_defaults":
            continue
        defaults = role / "defaults" / "main.yml"
        names = set(yaml.safe_load(defaults.read_text()) or {}) if defaults.is_file() else set()
        for entry in specs.get(role.name, {}).values():
            names |= set((entry or {}).get("options") or {})
        if names & shared:
            problems.append(f"{role.name}: {sorted(names & shared)}")
        meta = yaml.safe_load((role / "meta" / "main.yml").read_text())
        deps = [d if isinstance(d, str) else d.get("role") for d in meta.get("dependencies")]
        if "provision_defaults" not in deps:
            problems.append(f"{role.name}: meta/main.yml does not depend on provision_defaults")
    assert not problems, "\n".join(problems)


def test_role_options_and_no_log_come_from_the_generated_module_as_declared():
    """What a command reads (provision/schema_roles.py, no YAML) is what the argument specs
    declare: every option with its spec and role, and every no_log option of any role."""
    from provision import schema_roles
    from provision.redact import no_log_options
    from provision.validate import role_options

    specs = schema_gen.load_specs()
    assert role_options() == schema_gen.role_options(specs) == schema_roles.ROLE_OPTIONS
    assert role_options()["etcd_backup_dir"]["role"] == "provision_defaults"
    declared = {name for entries in specs.values() for entry in entries.values()
                for name, spec in (entry.get("options") or {}).items() if spec.get("no_log")}
    assert no_log_options() == declared and "acme_dns_env" in declared
