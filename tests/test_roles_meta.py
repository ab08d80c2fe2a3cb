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
ROLE_IDS = [p.name for p in ROLES]


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
    assert {"base", "docker", "containerd"} <= set(ROLE_IDS)


@pytest.mark.parametrize("role", ROLES, ids=ROLE_IDS)
def test_role_has_readme_meta_and_specs(role: Path) -> None:
    for rel in ("README.md", "meta/main.yml", "meta/argument_specs.yml", "tasks/main.yml"):
        assert (role / rel).is_file(), f"{role.name}: missing {rel}"


@pytest.mark.parametrize("role", ROLES, ids=ROLE_IDS)
def test_every_default_is_commented(role: Path) -> None:
    path = role / "defaults" / "main.yml"
    if not path.exists():
        pytest.skip(f"{role.name} has no defaults")
    lines = path.read_text().splitlines()
    undocumented = []
    for i, line in enumerate(lines):
        m = re.match(r"^([A-Za-z_][A-Za-z0-9_]*):", line)
        if m and not (i > 0 and lines[i - 1].lstrip().startswith("#")
                      and len(lines[i - 1].strip()) > 2):
            undocumented.append(m.group(1))
    assert not undocumented, f"{path}: no comment line right above {undocumented}"


@pytest.mark.parametrize("role", ROLES, ids=ROLE_IDS)
def test_argument_specs_cover_defaults(role: Path) -> None:
    defaults, options = defaults_of(role), spec_options(role)
    missing = sorted(set(defaults) - set(options))
    assert not missing, f"{role.name}: defaults not in meta/argument_specs.yml: {missing}"
    wrong = {k: (defaults[k], options[k].get("default")) for k in defaults
             if norm(defaults[k]) != norm(options[k].get("default"))}
    assert not wrong, f"{role.name}: argument_specs default differs (defaults, spec): {wrong}"
    for name, spec in options.items():
        assert spec.get("description"), f"{role.name}: option {name} has no description"
        assert spec.get("type"), f"{role.name}: option {name} has no type"


@pytest.mark.parametrize("role", ROLES, ids=ROLE_IDS)
def test_readme_names_every_variable(role: Path) -> None:
    path = role / "README.md"
    assert path.is_file(), f"{role.name}: missing README.md"
    readme = path.read_text()
    missing = [v for v in defaults_of(role) if f"`{v}`" not in readme]
    assert not missing, f"{role.name}/README.md does not document {missing}"


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
    # a REJECT that is not the last rule, or only in another table, does not count
    later = OCI.replace("-A FORWARD -j REJECT --reject-with icmp-host-prohibited",
                        "-A FORWARD -j REJECT\n-A FORWARD -j ACCEPT")
    assert fw.final_reject_chains(later) == ["INPUT"]
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

    assert parse_components(None, "minikube") == ["base", "docker"]
    assert parse_components(None, "kubeadm") == ["base", "containerd"]
    assert parse_components("docker, base,docker", "kubeadm") == ["base", "docker"]
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
