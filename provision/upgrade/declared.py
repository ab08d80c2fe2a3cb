"""The inventory's `kubernetes_version` as the one declared version (pure, no I/O).

`provision upgrade` without `--to` upgrades to it (as k3s-ansible and kubeone read the wanted
version from their one declaration); `--to` past it says which inventory line to change so a
later `bootstrap` installs the same version.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from provision.schema import BY_NAME
from provision.validate import host_source
from provision.versions import parse_version

KEY = "kubernetes_version"


@dataclass(frozen=True)
class Declared:
    version: str  # "1.31" or "1.31.2", as written (or the schema default)
    where: str  # "inventory/group_vars/all.yml:3: group all" or "the default"


def declared(inv: Any) -> Declared | None:
    """The version the first control-plane host declares; None when it is not a version
    (a template: validation reports it)."""
    hosts = list(getattr(inv, "control_plane", []) or []) or list(inv.hosts.values())
    if not hosts:
        return None
    host = hosts[0]
    value = host.vars.get(KEY, BY_NAME[KEY].default)
    if not isinstance(value, str) or parse_version(value) is None:
        return None
    src = host_source(inv, host, KEY)
    return Declared(value, src.where if src is not None else
                    f"the default ({KEY} is not set in {inv.path})")


def stale_note(target: str, decl: Declared | None) -> str | None:
    """A note when ``target`` is newer than the declared version: the line to change."""
    t, d = parse_version(target), parse_version(decl.version) if decl else None
    if t is None or d is None or decl is None:
        return None
    newer = t[1] > d[1] or (t[1] == d[1] and t[2] is not None and d[2] is not None
                            and t[2] > d[2])
    if not newer:
        return None
    wanted = f"1.{t[1]}" if d[2] is None else target
    return (f"the inventory declares {KEY}: {decl.version} ({decl.where}); set it to "
            f"{wanted} so that later bootstrap runs install the version the cluster runs")


def drift_warning(decl: Declared | None, cluster: tuple[int, int, int] | None) -> str | None:
    """`provision status`: the declared version and the cluster's kubernetesVersion differ
    (a minor, or the patch when an exact patch is declared); what to run or change."""
    d = parse_version(decl.version) if decl else None
    if decl is None or d is None or cluster is None:
        return None
    same = d[1] == cluster[1] and (d[2] is None or d[2] == cluster[2])
    if same:
        return None
    running = ".".join(map(str, cluster))
    if (d[1], d[2] or 0) > cluster[1:]:
        todo = "run `provision upgrade` (it upgrades to the declared version)"
    else:
        todo = f"set {KEY} to {running[: running.rindex('.')] if d[2] is None else running}"
    return (f"the inventory declares {KEY}: {decl.version} ({decl.where}) but the cluster "
            f"runs {running}: {todo}")
