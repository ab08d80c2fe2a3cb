"""Inventory model: read an Ansible inventory (file or directory) as Ansible reads it, without
contacting hosts.

``load_inventory(path)`` loads the inventory through ansible-core's own ``InventoryManager``
and vars plugins (``provision.ansible_inventory``): the hosts (ranges such as ``w[1:3]``
expanded), the groups, every file Ansible reads (extra files in an inventory directory, ``.json``
vars, nested ``group_vars/all/sub/``) and every variable with Ansible's precedence, ``!vault``
values decrypted with the vault password given (``provision.vault``) and ``!unsafe`` values kept
literal. Each host carries its merged variables and, for every variable, where it was set
(``VarSource``: file:line from Ansible's origin data), so that ``provision.validate`` can name the
file, the host or group and the key of every problem.

Before Ansible parses a file, provision reads it with its bounded loader (``provision.safeload``:
no hang, no memory exhaustion) and checks the structure of inventory files (unknown group keys,
loops of groups), with its own file:line messages.
"""

from __future__ import annotations

import contextlib
import getpass
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from provision.errors import UsageError
from provision.paths import lab_inventory_dir
from provision.safeload import BoundedSafeLoader

GROUP_KEYS = ("hosts", "vars", "children")


@dataclass(frozen=True)
class VarSource:
    """One variable as written: file, scope ("group all", "host cp1"), key and value."""

    file: Path
    scope: str
    key: str
    value: Any
    line: int | None = None

    @property
    def where(self) -> str:
        loc = f"{self.file}:{self.line}" if self.line else str(self.file)
        return f"{loc}: {self.scope}"


class UnsafeText(str):
    """A ``!unsafe`` string: Ansible never templates it, so ``{{`` in it is literal text."""

    __slots__ = ()


class VaultText(str):
    """A decrypted ``!vault`` value: a secret, never echoed in a message or an artifact."""

    __slots__ = ()


@dataclass
class Host:
    name: str
    groups: list[str] = field(default_factory=list)  # every group but 'all', parents first
    vars: dict[str, Any] = field(default_factory=dict)
    # variable -> the source whose value Ansible uses (precedence applied)
    origins: dict[str, VarSource] = field(default_factory=dict, repr=False, compare=False)

    @property
    def address(self) -> str:
        return str(self.vars.get("ansible_host") or self.name)

    @property
    def port(self) -> int:
        return int(self.vars.get("ansible_port") or 22)

    @property
    def user(self) -> str:
        return str(self.vars.get("ansible_user") or getpass.getuser())

    @property
    def key_file(self) -> Path | None:
        key = self.vars.get("ansible_ssh_private_key_file") or self.vars.get(
            "ansible_private_key_file"
        )
        return Path(os.path.expanduser(str(key))) if key else None

    @property
    def known_hosts_file(self) -> Path:
        path = self.vars.get("ssh_known_hosts_file") or "~/.ssh/known_hosts"
        return Path(os.path.expanduser(str(path)))

    @property
    def connection(self) -> str:
        return str(self.vars.get("ansible_connection") or "ssh")


@dataclass
class Inventory:
    path: Path  # what Ansible is given (file or directory)
    hosts: dict[str, Host] = field(default_factory=dict)
    groups: dict[str, list[str]] = field(default_factory=dict)  # group -> host names
    children: dict[str, list[str]] = field(default_factory=dict)  # group -> child groups
    sources: list[VarSource] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)  # every file Ansible read, inventory first
    structure_problems: list[str] = field(default_factory=list)
    ansible_warnings: list[str] = field(default_factory=list)
    vault: Any = None  # provision.vault.VaultOptions the inventory was read with
    secrets: set[str] = field(default_factory=set, repr=False)  # decrypted vault values
    manager: Any = field(default=None, repr=False, compare=False)  # Ansible's InventoryManager
    # provision.inventory_cache's key of the files and code this was loaded from (None: not
    # cacheable); a model from the cache has no manager until --limit needs Ansible's patterns
    cache_key: str | None = field(default=None, repr=False, compare=False)
    # (key, scope) -> position of its last source; built on first use by last_source()
    _last: dict[tuple[str, str], int] = field(default_factory=dict, repr=False, compare=False)
    _last_size: int = field(default=-1, repr=False, compare=False)

    def shown(self, path: str | os.PathLike[str]) -> str:
        """A file Ansible names (absolute) as the user named the inventory (maybe relative)."""
        text = os.fspath(path)
        base = str(self.path.absolute())
        if text == base or text.startswith(base + os.sep):
            return str(self.path) + text[len(base):]
        return text

    def last_source(self, key: str, scopes: Iterable[str]) -> VarSource | None:
        """The source of ``key`` written last among ``scopes`` ("host cp1", "group all")."""
        if self._last_size != len(self.sources):
            self._last = {(s.key, s.scope): i for i, s in enumerate(self.sources)}
            self._last_size = len(self.sources)
        found = [self._last[(key, s)] for s in scopes if (key, s) in self._last]
        return self.sources[max(found)] if found else None

    @property
    def all_vars(self) -> dict[str, Any]:
        return {s.key: s.value for s in self.sources if s.scope == "group all"}

    def group_hosts(self, group: str) -> list[Host]:
        return [self.hosts[n] for n in self.groups.get(group, []) if n in self.hosts]

    @property
    def control_plane(self) -> list[Host]:
        return self.group_hosts("control_plane")

    @property
    def workers(self) -> list[Host]:
        return self.group_hosts("workers")

    @property
    def mode(self) -> str:
        modes = {h.vars.get("provision_mode", "kubeadm") for h in self.hosts.values()}
        return modes.pop() if len(modes) == 1 else str(self.all_vars.get("provision_mode",
                                                                          "kubeadm"))

    def limited(self, limit: str | None) -> list[Host]:
        """Hosts selected by a ``--limit`` pattern, resolved by Ansible's pattern engine
        (``w*``, ``~cp.*``, ``all:&control_plane``, ``workers,!w3``), in inventory order."""
        if not limit:
            return list(self.hosts.values())
        if self.manager is None and self.cache_key is not None:  # from the cache
            from provision.ansible_inventory import load

            self.manager = load(self.path, self.vault).manager
        if self.manager is not None:
            chosen_names = {h.name for h in self.manager.get_hosts(limit)}
            return [h for n, h in self.hosts.items() if n in chosen_names]
        # an inventory built in Python (tests): names, groups and '!' only
        chosen: dict[str, Host] = {}
        parts = [p.strip() for p in limit.replace(":", ",").split(",") if p.strip()]
        for part in (p for p in parts if not p.startswith("!")):
            names = self.groups.get(part) or ([part] if part in self.hosts else [])
            if part == "all":
                names = list(self.hosts)
            for n in names:
                chosen[n] = self.hosts[n]
        if not any(not p.startswith("!") for p in parts):
            chosen = dict(self.hosts)
        for part in (p[1:] for p in parts if p.startswith("!")):
            for n in self.groups.get(part) or [part]:
                chosen.pop(n, None)
        return list(chosen.values())


def resolve_inventory_path(spec: str | os.PathLike[str]) -> Path:
    """``lab`` means the lab's inventory; a bare name ``prod`` means ``inventory/prod``."""
    text = str(spec)
    if text == "lab":
        path = lab_inventory_dir()
        if not path.exists():
            raise UsageError(
                f"inventory 'lab' ({path}) does not exist: run 'provision lab up' first"
            )
        return path
    path = Path(os.path.expanduser(text))
    if not path.exists() and "/" not in text and (Path("inventory") / text).exists():
        path = Path("inventory") / text
    if not path.exists():
        raise UsageError(f"{text}: inventory not found (a file, a directory or 'lab')")
    return path


class _LineDict(dict):
    """A dict that remembers the line of each key (for error messages)."""

    lines: dict[str, int]


class _LineLoader(BoundedSafeLoader):
    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        mapping = _LineDict(super().construct_mapping(node, deep=deep))
        mapping.lines = {}
        for key_node, _ in node.value:
            with contextlib.suppress(TypeError):  # unhashable key: reported elsewhere
                mapping.lines[self.construct_object(key_node)] = key_node.start_mark.line + 1
        return mapping


_LineLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _LineLoader.construct_mapping
)
# Ansible's own tags: the bounded pre-read only checks them; Ansible gives the values
_LineLoader.add_constructor("!vault", lambda loader, node: VaultText(""))
_LineLoader.add_constructor("!unsafe", lambda loader, node: UnsafeText(
    loader.construct_scalar(node) if isinstance(node, yaml.ScalarNode) else ""))


def _line(mapping: Any, key: str) -> int | None:
    return getattr(mapping, "lines", {}).get(key)


class _Builder:
    """provision's structure pass over one inventory file (unknown group keys, loops of
    groups, 'all' as a child), with file:line messages; Ansible's InventoryManager builds the
    inventory itself (provision.ansible_inventory)."""

    def __init__(self, inv: Inventory) -> None:
        self.inv = inv
        self.group_vars: dict[str, list[VarSource]] = {}
        self.host_vars: dict[str, list[VarSource]] = {}
        self._members: dict[str, set[str]] = {}  # group -> host names, for O(1) membership
        self._edges: dict[tuple[str, str], str] = {}  # (parent, child) -> "file:line"

    def add_vars(self, file: Path, scope: str, kind: str, name: str, data: Any) -> None:
        if data is None:
            return
        if not isinstance(data, dict):
            self.inv.structure_problems.append(
                f"{file}: {scope}: variables must be a mapping, got {type(data).__name__}"
            )
            return
        target = self.group_vars if kind == "group" else self.host_vars
        for key, value in data.items():
            src = VarSource(file, scope, str(key), value, _line(data, key))
            target.setdefault(name, []).append(src)
            self.inv.sources.append(src)

    def add_child(self, parent: str, child: str, where: str) -> None:
        if (parent, child) not in self._edges:
            self._edges[(parent, child)] = where
            self.inv.children.setdefault(parent, []).append(child)

    def add_member(self, group: str, host: str) -> None:
        members = self._members.get(group)
        if members is None:
            members = self._members[group] = set(self.inv.groups.setdefault(group, []))
        if host not in members:
            members.add(host)
            self.inv.groups[group].append(host)

    def group(self, file: Path, name: str, body: Any, parent: str | None,
              line: int | None = None) -> None:
        inv = self.inv
        if parent is not None and name == "all":
            inv.structure_problems.append(
                f"{file}:{line or '?'}: group {parent}: children: 'all' is the group of every "
                f"host; it cannot be the child of another group")
            return
        inv.groups.setdefault(name, [])
        inv.children.setdefault(name, [])
        if parent is not None:
            self.add_child(parent, name, f"{file}:{line or '?'}")
        if body is None:
            return
        if not isinstance(body, dict):
            inv.structure_problems.append(
                f"{file}: group {name}: expected a mapping with hosts/vars/children, "
                f"got {type(body).__name__}"
            )
            return
        for key in body:
            if key not in GROUP_KEYS:
                inv.structure_problems.append(
                    f"{file}:{_line(body, key) or '?'}: group {name}: unknown key '{key}' "
                    f"(a group has only: hosts, vars, children)"
                    + did_you_mean(str(key), GROUP_KEYS)
                )
        self.add_vars(file, f"group {name}", "group", name, body.get("vars"))
        hosts = body.get("hosts") or {}
        if not isinstance(hosts, dict):
            inv.structure_problems.append(f"{file}: group {name}: 'hosts' must be a mapping")
            hosts = {}
        for host_name, host_vars in hosts.items():
            host_name = str(host_name)
            inv.hosts.setdefault(host_name, Host(host_name))
            self.add_member(name, host_name)
            self.add_vars(file, f"host {host_name}", "host", host_name, host_vars)
        children = body.get("children") or {}
        if not isinstance(children, dict):
            inv.structure_problems.append(f"{file}: group {name}: 'children' must be a mapping")
            children = {}
        for child, child_body in children.items():
            self.group(file, str(child), child_body, name, _line(children, child))

    def break_loops(self) -> None:
        """Report (and drop) every child edge that closes a loop of groups: Ansible's group
        graph must be acyclic, and walking a loop would never end. Iterative DFS: linear."""
        children = self.inv.children
        state: dict[str, int] = {}  # 1: on the current path, 2: done
        for start in list(children):
            if start in state:
                continue
            path = [start]
            state[start] = 1
            stack = [(start, iter(list(children.get(start, []))))]
            while stack:
                node, kids = stack[-1]
                child = next(kids, None)
                if child is None:
                    stack.pop()
                    path.pop()
                    state[node] = 2
                elif state.get(child) == 1:
                    loop = " -> ".join(path[path.index(child):] + [child])
                    where = self._edges.get((node, child), str(self.inv.path))
                    self.inv.structure_problems.append(
                        f"{where}: group {node}: children: '{child}' makes a loop of groups "
                        f"({loop}): a group cannot contain itself")
                    children[node].remove(child)
                elif child not in state:
                    state[child] = 1
                    path.append(child)
                    stack.append((child, iter(list(children.get(child, [])))))


def load_inventory(spec: str | os.PathLike[str], vault: Any = None) -> Inventory:
    """Read the inventory at ``spec`` (path or 'lab') as Ansible reads it (ansible-core's
    InventoryManager; ``vault``: provision.vault.VaultOptions, default
    ``ANSIBLE_VAULT_PASSWORD_FILE``). Raises ValidationError for unreadable files. A static
    inventory directory that loaded and validated before, with nothing it was read from
    changed since, comes from ``provision.inventory_cache`` (no Ansible import)."""
    from provision import inventory_cache
    from provision.ansible_inventory import load
    from provision.vault import from_options

    path = resolve_inventory_path(spec)
    vault = vault if vault is not None else from_options()
    cache_key = inventory_cache.key(path, vault)
    if cache_key is not None and (kept := inventory_cache.load(path, cache_key)) is not None:
        return kept  # validated again by the caller (provision.validate)
    inv = load(path, vault)
    inv.cache_key = cache_key
    return inv


def did_you_mean(word: str, candidates: Any) -> str:
    """'; did you mean X?' for the closest candidate (case-insensitive), or ''."""
    import difflib

    names = [str(c) for c in candidates]
    lowered = {n.lower(): n for n in names}
    if word.lower() in lowered and word not in names:
        return f"; did you mean {lowered[word.lower()]}?"
    match = difflib.get_close_matches(word, names, n=1, cutoff=0.6)
    return f"; did you mean {match[0]}?" if match else ""
