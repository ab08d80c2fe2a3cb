"""Every role is documented: README, each default commented in defaults/main.yml, and
meta/argument_specs.yml declaring exactly the defaults (same values). Plus the pure planning
pieces of the bootstrap roles (firewall filter plugin, --components parsing)."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent
ROLES = sorted(p for p in (REPO / "roles").iterdir() if (p / "tasks").is_dir())
ROLE_NAMES = [p.name for p in ROLES]


def defaults_of(role: Path) -> dict[str, Any]:
    path = role / "defaults" / "main.yml"
    return (yaml.safe_load(path.read_text()) or {}) if path.exists() else {}


def spec_options(role: Path) -> dict[str, Any]:
    data = yaml.safe_load((role / "meta" / "argument_specs.yml").read_text()) or {}
    return (data.get("argument_specs", {}).get("main", {}) or {}).get("options") or {}


def norm(value: Any) -> Any:
    """Templated strings compare without layout whitespace (folded YAML scalars)."""
    if isinstance(value, str):
        return " ".join(value.split())
    return value


def test_roles_exist() -> None:
    assert {"base", "docker", "containerd"} <= set(ROLE_NAMES)


# One test per check over every role (not one per role): the failure names each role, and
# role names such as kubeadm_worker stay out of test ids, so that the acceptance selection
# `-k "kubeadm and (single or worker or ha)"` picks exactly the three cluster scenarios.
def test_every_role_ships_readme_meta_and_specs() -> None:
    missing = [f"{role.name}: missing {rel}" for role in ROLES
               for rel in ("README.md", "meta/main.yml", "meta/argument_specs.yml",
                           "tasks/main.yml")
               if not (role / rel).is_file()]
    assert not missing, "\n".join(missing)


def undocumented_defaults(role: Path) -> list[str]:
    path = role / "defaults" / "main.yml"
    if not path.exists():
        return []
    lines = path.read_text().splitlines()
    undocumented = []
    for i, line in enumerate(lines):
        m = re.match(r"^([A-Za-z_][A-Za-z0-9_]*):", line)
        if m and not (i > 0 and lines[i - 1].lstrip().startswith("#")
                      and len(lines[i - 1].strip()) > 2):
            undocumented.append(m.group(1))
    return undocumented


def test_every_default_is_commented() -> None:
    problems = [f"{role.name}/defaults/main.yml: no comment line right above {names}"
                for role in ROLES if (names := undocumented_defaults(role))]
    assert not problems, "\n".join(problems)


def spec_problems(role: Path) -> list[str]:
    defaults, options = defaults_of(role), spec_options(role)
    problems = []
    missing = sorted(set(defaults) - set(options))
    if missing:
        problems.append(f"{role.name}: defaults not in meta/argument_specs.yml: {missing}")
    wrong = {k: (defaults[k], options[k].get("default")) for k in defaults
             if k in options and norm(defaults[k]) != norm(options[k].get("default"))}
    if wrong:
        problems.append(f"{role.name}: argument_specs default differs (defaults, spec): {wrong}")
    for name, spec in options.items():
        if not spec.get("description"):
            problems.append(f"{role.name}: option {name} has no description")
        if not spec.get("type"):
            problems.append(f"{role.name}: option {name} has no type")
    return problems


def test_argument_specs_cover_defaults() -> None:
    problems = [p for role in ROLES for p in spec_problems(role)]
    assert not problems, "\n".join(problems)


def test_readme_names_every_variable() -> None:
    problems = []
    for role in ROLES:
        path = role / "README.md"
        readme = path.read_text() if path.is_file() else ""
        missing = [v for v in defaults_of(role) if f"`{v}`" not in readme]
        if missing:
            problems.append(f"{role.name}/README.md does not document {missing}")
    assert not problems, "\n".join(problems)


def test_role_checks_catch_problems(tmp_path: Path) -> None:
    """The checks above can fail: a role with an uncommented, undeclared default."""
    role = tmp_path / "broken"
    (role / "defaults").mkdir(parents=True)
    (role / "meta").mkdir()
    (role / "defaults" / "main.yml").write_text("---\nbroken_port: 80\n")
    (role / "meta" / "argument_specs.yml").write_text(
        "argument_specs:\n  main:\n    options:\n      broken_other:\n        type: int\n")
    assert undocumented_defaults(role) == ["broken_port"]
    problems = spec_problems(role)
    assert any("defaults not in meta/argument_specs.yml: ['broken_port']" in p for p in problems)
    assert any("broken_other has no description" in p for p in problems)


def test_docker_readme_says_root_equivalent() -> None:
    assert "root-equivalent" in (REPO / "roles/docker/README.md").read_text()


# --- pure planning pieces --------------------------------------------------------------------

def _firewall() -> Any:
    path = REPO / "roles/base/filter_plugins/firewall.py"
    spec = importlib.util.spec_from_file_location("base_firewall", path)
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


OCI = """*filter
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
-A INPUT -m state --state RELATED,ESTABLISHED -j ACCEPT
-A INPUT -p tcp -m state --state NEW -m tcp --dport 22 -j ACCEPT
-A INPUT -j REJECT --reject-with icmp-host-prohibited
-A FORWARD -j REJECT --reject-with icmp-host-prohibited
COMMIT
*nat
-A POSTROUTING -j REJECT
COMMIT
"""


def test_final_reject_chains() -> None:
    fw = _firewall()
    assert fw.final_reject_chains(OCI) == ["INPUT", "FORWARD"]
    # a catch-all REJECT counts also with rules after it (they are never reached); a
    # conditional REJECT that is not the last rule, or one only in another table, does not
    later = OCI.replace("-A FORWARD -j REJECT --reject-with icmp-host-prohibited",
                        "-A FORWARD -j REJECT\n-A FORWARD -j ACCEPT")
    assert fw.final_reject_chains(later) == ["INPUT", "FORWARD"]
    conditional = OCI.replace("-A FORWARD -j REJECT --reject-with icmp-host-prohibited",
                              "-A FORWARD -p tcp -j REJECT\n-A FORWARD -j ACCEPT")
    assert fw.final_reject_chains(conditional) == ["INPUT"]
    assert fw.final_reject_chains("*filter\n:INPUT ACCEPT [0:0]\nCOMMIT\n") == []
    assert fw.final_reject_chains("") == []


def test_reject_position() -> None:
    fw = _firewall()
    live = "-P INPUT ACCEPT\n-A INPUT -i lo -j ACCEPT\n-A INPUT -j REJECT\n"
    assert fw.reject_position(live, "INPUT") == 2
    assert fw.reject_position(live, "FORWARD") == 0
    assert fw.reject_position(live) == 2  # `iptables -S INPUT` lists one chain (the role)


def test_firewall_rules_are_canonical_and_unique() -> None:
    fw = _firewall()
    ports = [{"proto": "tcp", "port": "6443", "comment": "kube-apiserver"},
             {"proto": "tcp", "port": "2379-2380", "comment": "etcd"},
             {"proto": "tcp", "port": "6443", "comment": "kube-apiserver"}]
    rules = fw.firewall_rules(ports, ["10.244.0.0/16"], [], ["INPUT", "FORWARD"])
    lines = [r["line"] for r in rules]
    assert lines == [
        '-A INPUT -p tcp -m tcp --dport 6443 -m comment --comment "provision: kube-apiserver" '
        "-j ACCEPT",
        '-A INPUT -p tcp -m tcp --dport 2379:2380 -m comment --comment "provision: etcd" '
        "-j ACCEPT",
        '-A FORWARD -s 10.244.0.0/16 -m comment --comment "provision: from 10.244.0.0/16" '
        "-j ACCEPT",
        '-A FORWARD -d 10.244.0.0/16 -m comment --comment "provision: to 10.244.0.0/16" '
        "-j ACCEPT",
    ]
    assert rules[1]["destination_port"] == "2379:2380"
    only_input = fw.firewall_rules(ports, ["10.244.0.0/16"], [], ["INPUT"])
    assert {r["chain"] for r in only_input} == {"INPUT"}


def test_parse_components() -> None:
    from provision.commands.bootstrap import parse_components
    from provision.errors import UsageError

    assert parse_components(None, "minikube") == ["base", "docker", "cluster"]
    assert parse_components(None, "kubeadm") == ["base", "containerd", "cluster", "addons"]
    assert parse_components("docker, base,docker", "kubeadm") == ["base", "docker"]
    assert parse_components("cert-manager,cluster,ingress", "kubeadm") == [
        "cluster", "ingress", "cert-manager"]
    with pytest.raises(UsageError) as err:
        parse_components("base,docker,ingress", "minikube")
    assert "minikube addons" in str(err.value) and err.value.exit_code == 2
    with pytest.raises(UsageError) as err:
        parse_components("base,dokcer", "kubeadm")
    assert "dokcer" in str(err.value) and err.value.exit_code == 2
    with pytest.raises(UsageError):
        parse_components(" , ", "kubeadm")


def test_select_steps() -> None:
    from provision.commands.bootstrap import select_steps
    from provision.errors import UsageError

    steps = ["base", "docker", "containerd"]
    assert select_steps(steps, None, None) == steps
    assert select_steps(steps, "docker", None) == ["docker", "containerd"]
    assert select_steps(steps, None, "containerd") == ["containerd"]
    with pytest.raises(UsageError) as err:
        select_steps(["base", "containerd"], "docker", None)
    assert "--from-step docker" in str(err.value) and err.value.exit_code == 2


def test_component_lists_live_in_one_file() -> None:
    """bootstrap.yml (include_vars, once per run) and addons.yml (vars_files) read the
    components from playbooks/vars/components.yml, as the CLI does; neither spells a component
    list of its own."""
    from provision.commands.bootstrap import COMPONENTS_FILE, component_lists

    lists = component_lists()
    assert COMPONENTS_FILE == REPO / "playbooks/vars/components.yml"
    assert set(lists["provision_components_addons"]) < set(lists["provision_components_all"])
    for mode_default in lists["provision_components_default"].values():
        assert set(mode_default) <= set(lists["provision_components_all"])
    for name in ("bootstrap.yml", "addons.yml"):
        text = (REPO / "playbooks" / name).read_text()
        play = yaml.safe_load(text)[0]
        read = play.get("vars_files") or [
            t["ansible.builtin.include_vars"]["file"] for t in play["tasks"]
            if "ansible.builtin.include_vars" in t and t.get("run_once")]
        assert read == ["vars/components.yml"], name
        assert not re.search(r"\[\s*'?base'?\s*,|\[\s*'?addons'?\s*\]", text), name
