"""bootstrap.yml gathers facts once per host, without the slow hardware subset (mounts, devices,
DMI): no role that a bootstrap run reaches may use a hardware fact, since the later plays of the
run reuse these facts (gathering: smart, fact cache). The minikube play gathers its own."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parent.parent
HARDWARE = re.compile(
    r"ansible_(?:facts\[['\"]|facts\.)?(memtotal_mb|memfree_mb|swaptotal_mb|swapfree_mb|"
    r"memory_mb|mounts|devices|device_links|lvm|processor\w*|product_\w+|bios_\w+|"
    r"system_vendor|board_\w+|chassis_\w+|form_factor|uptime_seconds)\b")


def role_names(node: Any) -> set[str]:
    """Roles named by include_role/import_role anywhere in a parsed YAML tree."""
    found: set[str] = set()
    if isinstance(node, dict):
        for key, value in node.items():
            if key.endswith(("include_role", "import_role")) and isinstance(value, dict):
                found.add(str(value.get("name")))
            found |= role_names(value)
    elif isinstance(node, list):
        for item in node:
            found |= role_names(item)
    return found


def reached_roles() -> set[str]:
    todo = set()
    for play in ("bootstrap.yml", "cluster.yml", "addons.yml"):
        todo |= role_names(yaml.safe_load((REPO / "playbooks" / play).read_text()))
    seen: set[str] = set()
    while todo:
        role = todo.pop()
        if role in seen or not (REPO / "roles" / role).is_dir():
            continue
        seen.add(role)
        for path in (REPO / "roles" / role / "tasks").glob("*.yml"):
            todo |= role_names(yaml.safe_load(path.read_text()))
    return seen


def test_bootstrap_gathers_facts_without_the_hardware_subset() -> None:
    """The first play gathers no facts before the host gate (the gate reads what it needs on
    the host); a task after it gathers them on the hosts whose layer runs, and the cluster
    layer's first play where the gate skipped the layer (gathering = smart): both without
    the hardware subset."""
    play = yaml.safe_load((REPO / "playbooks" / "bootstrap.yml").read_text())[0]
    assert play["gather_facts"] is False
    names = [t.get("name") for t in play["tasks"]]
    gathers = [t for t in play["tasks"] if "ansible.builtin.gather_facts" in t]
    assert len(gathers) == 1
    subset = gathers[0]["ansible.builtin.gather_facts"]["gather_subset"]
    assert subset[0] == "!all" and "hardware" not in subset
    gate = next(i for i, t in enumerate(play["tasks"]) if "provision_host_gate" in t)
    assert gate < names.index(gathers[0]["name"]) < names.index("Prepare the operating system")
    cluster = yaml.safe_load((REPO / "playbooks" / "cluster.yml").read_text())[0]
    assert cluster["gather_facts"] is True and cluster["gather_subset"] == subset


def test_no_role_of_a_bootstrap_run_uses_a_hardware_fact() -> None:
    roles = reached_roles()
    assert {"base", "docker", "containerd", "kubernetes_packages", "cni"} <= roles
    uses = [f"{path.relative_to(REPO)}: {m.group(0)}"
            for role in sorted(roles - {"minikube"})
            for path in sorted((REPO / "roles" / role).rglob("*"))
            if path.is_file() and path.suffix in (".yml", ".j2")
            for m in HARDWARE.finditer(path.read_text())]
    assert uses == [], "hardware facts are not gathered by bootstrap.yml:\n" + "\n".join(uses)
