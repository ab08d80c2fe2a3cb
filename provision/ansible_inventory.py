"""Read an inventory with ansible-core itself (``InventoryManager`` and the vars plugins), so
that provision validates exactly the hosts, groups and variables Ansible will use.

Every file Ansible opens goes through ``_Reader`` first: provision's bounded reader refuses
hostile files before Ansible parses them, and inventory files get provision's structure checks
(unknown group keys, loops of groups) with file:line messages. Variables keep Ansible's origin
data (file and line of each key) and are merged with Ansible's precedence
(``VARIABLE_PRECEDENCE``: inventory group vars, then group_vars files, parents before children,
then the host's own). ``ansible`` is imported here only, when an inventory is loaded: ``provision
--help`` never pays for it.
"""

from __future__ import annotations

import contextlib
import os
import stat
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from provision.errors import ValidationError
from provision.inventory import (
    Host,
    Inventory,
    VarSource,
    VaultText,
    _Builder,
    _line,
    _LineLoader,
    did_you_mean,
)
from provision.paths import REPO_ROOT
from provision.safeload import InputError, loads_json, loads_yaml, read_text
from provision.vault import VaultOptions, decrypt, secrets

# set by Ansible on every host, not written by the user
MAGIC_HOST_VARS = frozenset({"inventory_file", "inventory_dir"})
_VARS_SUFFIXES = (".yml", ".yaml", ".json")
_PRECEDENCE = ("all_inventory", "groups_inventory", "all_plugins_inventory",
               "groups_plugins_inventory")
_FAILED = object()


class _Stop(BaseException):  # noqa: N818 - not an Exception: Ansible's plugins catch those
    """A file provision refuses to let Ansible parse (too big, not text, a YAML bomb)."""

    def __init__(self, problem: str) -> None:
        super().__init__(problem)
        self.problem = problem


def _ansible_modules() -> None:
    """Import ansible with the project's ansible.cfg (as every run uses it)."""
    if "ansible.constants" in sys.modules:
        return
    # Ansible's local temp dir: the system's (removed at exit), never ~/.ansible/tmp
    ours = {"ANSIBLE_CONFIG": str(REPO_ROOT / "ansible.cfg"),
            "ANSIBLE_LOCAL_TEMP": os.environ.get("ANSIBLE_LOCAL_TEMP", tempfile.gettempdir())}
    old = {k: os.environ.get(k) for k in ours}
    os.environ.update(ours)
    try:
        import ansible.constants  # noqa: F401
        from ansible.plugins.loader import init_plugin_loader

        init_plugin_loader()
    finally:
        for key, value in old.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


class _Reader:
    """Wraps ``DataLoader.load_from_file``: provision's bounded read and structure checks of
    each file before Ansible parses it."""

    def __init__(self, inv: Inventory) -> None:
        self.inv = inv
        self.scratch = Inventory(path=inv.path)  # the structure pass's own model
        self.builder = _Builder(self.scratch)
        self.parsed: dict[str, Any] = {}
        self.syntax: dict[str, str] = {}
        self.problem_files: set[str] = set()
        self.inventory_phase = True
        self.inventory_files: list[Path] = []
        self.vars_files: list[Path] = []

    def check(self, absolute: str) -> Any:
        """provision's own parse of the file (None: empty or vault-encrypted)."""
        path = self.inv.shown(absolute)
        if path in self.parsed:
            return self.parsed[path]
        what = "inventory file" if self.inventory_phase else "vars file"
        try:
            text = read_text(path, what)
        except InputError as exc:
            raise _Stop(exc.problems[0]) from None
        (self.inventory_files if self.inventory_phase else self.vars_files).append(Path(path))
        if text.lstrip().startswith("$ANSIBLE_VAULT"):  # a vault-encrypted file
            self.parsed[path] = None
            return None
        try:
            data = loads_yaml(text, path, _LineLoader)
        except InputError as exc:
            if "YAML syntax error" not in exc.problems[0]:
                raise _Stop(exc.problems[0]) from None
            try:
                data = loads_json(text, path)
            except InputError:
                if not self.inventory_phase:  # a vars file is YAML or JSON, nothing else
                    raise _Stop(exc.problems[0]) from None
                self.syntax[path] = exc.problems[0]  # maybe an INI inventory: Ansible decides
                data = _FAILED
        self.parsed[path] = data
        if self.inventory_phase and data is not _FAILED:
            self.structure(Path(path), data)
        return data

    def structure(self, f: Path, data: Any) -> None:
        problems = self.scratch.structure_problems
        before = len(problems)
        if data is None:
            return
        if not isinstance(data, dict):
            problems.append(
                f"{f}: an inventory must be a YAML mapping with 'all:'")
        elif "plugin" not in data:  # an inventory plugin's configuration: Ansible's own
            for top, body in data.items():
                self.builder.group(f, str(top), body, None if top == "all" else "all",
                                   _line(data, top))
            self.builder.break_loops()
        if len(problems) > before:
            self.problem_files.add(str(f))


@contextlib.contextmanager
def _captured_warnings() -> Iterator[list[tuple[str, str]]]:
    """Ansible's warnings while the inventory loads: [(kind, text)], not printed."""
    from ansible.utils.display import Display

    display = Display()
    found: list[tuple[str, str]] = []
    saved = {name: getattr(display, name) for name in ("warning", "error_as_warning")}

    def warning(msg: str, *args: Any, **kwargs: Any) -> None:
        found.append(("warning", str(msg)))

    def error_as_warning(msg: str | None, exception: BaseException, *args: Any,
                         **kwargs: Any) -> None:
        text = getattr(exception, "message", None) or str(exception)
        found.append(("failure", f"{msg or ''} {text}".strip()))

    display.warning = warning  # type: ignore[method-assign]
    display.error_as_warning = error_as_warning  # type: ignore[method-assign]
    try:
        yield found
    finally:
        for name, method in saved.items():
            setattr(display, name, method)


# extensions Ansible never reads in an inventory directory (INVENTORY_IGNORE_EXTS)
_IGNORED = (".pyc", ".pyo", ".swp", ".bak", "~", ".rpm", ".md", ".txt", ".rst", ".orig", ".cfg",
            ".retry")


def prescan(path: Path) -> None:
    """Refuse, before Ansible is even imported, a file Ansible would open that is not a
    regular file or is too big (a FIFO, /dev/zero, a sparse 1 TB file): a stat of each
    candidate, nothing is read. ValidationError naming the file."""
    from provision.safeload import MAX_BYTES, _kind

    candidates = [path] if not path.is_dir() else []
    if path.is_dir():
        for root, dirs, files in os.walk(path):
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            vars_dir = Path(root).relative_to(path).parts[:1] in (("group_vars",),
                                                                  ("host_vars",))
            for name in sorted(files):
                if name.startswith(".") or name.endswith(_IGNORED):
                    continue
                if vars_dir and Path(name).suffix not in ("", *_VARS_SUFFIXES):
                    continue
                candidates.append(Path(root) / name)
    for file in candidates:
        what = ("vars file" if {"group_vars", "host_vars"} & set(file.parts)
                else "inventory file")
        try:
            st = file.stat()
        except OSError:
            continue  # a dangling link: Ansible skips it
        if not stat.S_ISREG(st.st_mode):
            raise ValidationError([f"{file}: {what} must be a regular file, this is "
                                   f"{_kind(st.st_mode)}"])
        if st.st_size > MAX_BYTES:
            raise ValidationError([f"{file}: {what} is {st.st_size} bytes, more than the "
                                   f"{MAX_BYTES // (1024 * 1024)} MiB provision reads"])


def load(path: Path, vault: VaultOptions | None) -> Inventory:
    """The inventory at ``path`` (a file or directory) as Ansible reads it."""
    prescan(path)
    _ansible_modules()
    from ansible.errors import AnsibleError
    from ansible.inventory.manager import InventoryManager
    from ansible.parsing.dataloader import DataLoader

    inv = Inventory(path=path, vault=vault)
    reader = _Reader(inv)
    loader = DataLoader()
    found_secrets = secrets(vault, loader)
    if found_secrets:
        loader.set_vault_secrets(found_secrets)
    original = loader.load_from_file

    def load_from_file(file_name: Any, cache: str = "all", unsafe: bool = False,
                       json_only: bool = False, trusted_as_template: bool = False) -> Any:
        data = reader.check(os.fspath(file_name))
        if cache == "none" and not trusted_as_template and isinstance(data, dict) \
                and "plugin" not in data:
            # the 'auto' plugin only looks for a root 'plugin' key: it declines this file
            # as it would after parsing it again
            return {}
        # a file parsed afresh (cache none) needs no defensive deep copy
        return original(file_name, cache=cache, unsafe=unsafe or cache == "none",
                        json_only=json_only, trusted_as_template=trusted_as_template)

    loader.load_from_file = load_from_file  # type: ignore[method-assign]
    try:
        with _captured_warnings() as warnings:
            manager = InventoryManager(loader=loader, sources=[str(path.absolute())])
            reader.inventory_phase = False
            _Variables(inv, manager, loader, found_secrets).build()
    except _Stop as stop:
        raise ValidationError([stop.problem]) from None
    except AnsibleError as exc:  # e.g. a vault-encrypted file without a password
        problems = [*reader.scratch.structure_problems,
                    f"{path}: Ansible cannot read the inventory: {exc.message}"]
        raise ValidationError(problems) from None
    inv.files = reader.inventory_files + reader.vars_files
    inv.structure_problems[:0] = reader.scratch.structure_problems
    inv.structure_problems += _unparsed(reader, warnings)
    inv.ansible_warnings = [text for kind, text in warnings
                            if kind == "warning" and not _known_warning(text)]
    inv.structure_problems += _stray_vars_files(inv, manager)
    inv.manager = manager
    return inv


def _known_warning(text: str) -> bool:
    """Warnings provision reports itself (as errors, with file:line)."""
    return text.startswith(("Skipping unexpected key", "Unable to parse",
                            "No inventory was parsed"))


def _unparsed(reader: _Reader, warnings: list[tuple[str, str]]) -> list[str]:
    """A file of the inventory Ansible could not parse (it would skip it and its hosts)."""
    problems: list[str] = []
    failures = [text for kind, text in warnings if kind == "failure"]
    for kind, text in warnings:
        if kind != "warning" or not text.startswith("Unable to parse "):
            continue
        source = reader.inv.shown(
            text[len("Unable to parse "):].rsplit(" as an inventory source", 1)[0])
        if source in reader.problem_files or reader.parsed.get(source, _FAILED) is None:
            continue  # reported by the structure checks, or an empty file
        if source in reader.syntax:
            problems.append(reader.syntax[source])
            continue
        why = next((f for f in failures if "yaml" in f), failures[0] if failures else "")
        problems.append(f"{source}: Ansible cannot parse this inventory file"
                        + (f" ({why})" if why else ""))
    return problems


def _stray_vars_files(inv: Inventory, manager: Any) -> list[str]:
    """group_vars/host_vars files for a group or host the inventory does not have."""
    problems: list[str] = []
    bases = {inv.path if inv.path.is_dir() else inv.path.parent}
    for base in sorted(bases):
        for kind, names in (("group_vars", inv.groups), ("host_vars", inv.hosts)):
            directory = base / kind
            if not directory.is_dir():
                continue
            stray = 0
            for entry in sorted(directory.iterdir()):
                if entry.name.startswith("."):
                    continue
                name = entry.name
                if entry.is_file() and entry.suffix in _VARS_SUFFIXES:
                    name = entry.stem
                if name in names:
                    continue
                what = "group" if kind == "group_vars" else "host"
                # a suggestion searches every name: only for the first 50, to stay linear
                hint = did_you_mean(name, list(names) or ["all"]) if stray < 50 else ""
                stray += 1
                problems.append(f"{entry}: {kind} for '{name}', which is not a {what} of the "
                                f"inventory{hint}")
    return problems


def _host_vars_names(path: Path) -> set[str]:
    """The host names host_group_vars would find files for, next to the inventory."""
    directory = (path if path.is_dir() else path.parent) / "host_vars"
    if not directory.is_dir():
        return set()
    names: set[str] = set()
    for entry in directory.iterdir():
        names.add(entry.name)
        if entry.suffix in _VARS_SUFFIXES:
            names.add(entry.stem)
    return names


def _origin(key: Any, value: Any) -> tuple[str | None, int | None]:
    from ansible._internal._datatag._tags import Origin

    for item in (key, value):
        tag = Origin.get_tag(item)
        if tag is not None and tag.path:
            return tag.path, tag.line_num
    return None, None


class _Variables:
    """Sources and merged variables of every host, from Ansible's inventory and vars plugins."""

    def __init__(self, inv: Inventory, manager: Any, loader: Any,
                 found_secrets: list[tuple[str, Any]]) -> None:
        self.inv, self.manager, self.loader, self.secrets = inv, manager, loader, found_secrets

    def plain(self, value: Any, where: str, key: str) -> Any:
        """Ansible's tagged value as plain Python: ``!vault`` decrypted (``VaultText``),
        ``!unsafe`` strings as ``UnsafeText`` (never templated: no template check)."""
        from ansible._internal._datatag._tags import TrustedAsTemplate
        from ansible.parsing.vault import EncryptedString

        from provision.inventory import UnsafeText

        if isinstance(value, EncryptedString):
            try:
                text = VaultText(decrypt(value, self.secrets))
            except ValueError as exc:
                self.inv.structure_problems.append(f"{where}: {key}: {exc}")
                return None
            self.inv.secrets.add(str(text))
            return text
        if isinstance(value, dict):
            return {str(k): self.plain(v, where, key) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.plain(v, where, key) for v in value]
        if isinstance(value, bool) or value is None:
            return value
        if isinstance(value, str):
            return str(value) if TrustedAsTemplate.is_tagged_on(value) else UnsafeText(value)
        if isinstance(value, int):
            return int(value)
        if isinstance(value, float):
            return float(value)
        return value

    def sources(self, scope: str, data: Any, fallback: Path) -> list[VarSource]:
        out: list[VarSource] = []
        for key, value in (data or {}).items():
            if scope.startswith("host ") and key in MAGIC_HOST_VARS:
                continue
            origin, line = _origin(key, value)
            file = Path(self.inv.shown(origin)) if origin else None
            where = f"{file or fallback}:{line}" if line else str(file or fallback)
            out.append(VarSource(file or fallback, scope, str(key),
                                 self.plain(value, f"{where}: {scope}", str(key)), line))
        return out

    def build(self) -> None:
        from ansible import constants as C  # noqa: N812 - Ansible's own name
        from ansible.inventory.helpers import sort_groups
        from ansible.vars.plugins import get_vars_from_inventory_sources

        inv, manager = self.inv, self.manager
        fallback = inv.path

        def plugin_vars(entity: Any) -> Any:
            return get_vars_from_inventory_sources(self.loader, manager._sources, [entity],
                                                   "task")

        # with only Ansible's default vars plugin, a host without a host_vars entry of its
        # name has no plugin vars: skip the plugin call (the same result, 2,000 calls fewer)
        with_files = _host_vars_names(inv.path) if list(C.VARIABLE_PLUGINS_ENABLED) == [
            "host_group_vars"] else None

        def host_plugin_vars(entity: Any) -> Any:
            if with_files is not None and entity.name not in with_files:
                return {}
            return plugin_vars(entity)

        groups = manager.groups
        ordered = sort_groups([g for n, g in groups.items() if n != "all"])
        layers: dict[str, dict[str, list[VarSource]]] = {"inventory": {}, "plugins": {}}
        for group in [groups["all"], *ordered]:
            scope = f"group {group.name}"
            layers["inventory"][group.name] = self.sources(scope, group.vars, fallback)
            layers["plugins"][group.name] = self.sources(scope, plugin_vars(group), fallback)
        precedence = [e for e in C.VARIABLE_PRECEDENCE if e in _PRECEDENCE]
        for entry in precedence:
            layer = layers["plugins" if "plugins" in entry else "inventory"]
            names = ["all"] if entry.startswith("all_") else [g.name for g in ordered]
            for name in names:
                inv.sources += layer[name]
        for name, group in groups.items():
            inv.groups[name] = [h.name for h in group.get_hosts()]
            inv.children[name] = [c.name for c in group.child_groups]
        for name, ahost in manager.hosts.items():
            host_groups = sort_groups([g for g in ahost.get_groups() if g.name != "all"])
            host = Host(name, groups=[g.name for g in host_groups])
            own = (self.sources(f"host {name}", ahost.vars, fallback)
                   + self.sources(f"host {name}", host_plugin_vars(ahost), fallback))
            inv.sources += own
            merged: dict[str, VarSource] = {}
            for entry in precedence:
                layer = layers["plugins" if "plugins" in entry else "inventory"]
                names = ["all"] if entry.startswith("all_") else [g.name for g in host_groups]
                for group_name in names:
                    for src in layer[group_name]:
                        merged[src.key] = src
            for src in own:
                merged[src.key] = src
            host.origins = merged
            host.vars = {k: s.value for k, s in merged.items()}
            inv.hosts[name] = host


def split_pattern(pattern: str) -> list[str]:
    """A host pattern's parts, split as Ansible splits it; empty parts are kept (refused)."""
    _ansible_modules()
    from ansible.inventory.manager import split_host_pattern

    if "," in pattern:  # Ansible drops empty parts: provision refuses them
        return [q for p in pattern.split(",") for q in (split_host_pattern(p) or [""])]
    return split_host_pattern(pattern) or [""]
