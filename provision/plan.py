"""The shape of a playbook before it runs: its plays and how many tasks each can start.

For the live display's "play K/M" and "task N/M" (see :mod:`provision.progress`). Pure: reads
the project's own playbook and role files (YAML), runs nothing. The count follows what
Ansible announces with a task start: the play's fact gathering, pre_tasks, roles, tasks and
post_tasks (handlers run only when notified and are not counted); ``import_*`` is expanded
(no task of its own), ``include_tasks``/``include_role`` count once and their files are
expanded when the name is literal; a role with an argument spec for its entry point adds
Ansible's "Validating arguments" task; ``meta`` tasks (the display does not count them
either) and ``rescue`` sections are not counted; facts gathered again in a later play may be
cached and not announced. A task skipped by ``when`` is still announced, but the tasks of a
skipped include are not, so the count is an upper bound for one pass (``exact`` is False when
a play has a dynamic include or gathers facts after the first play); a loop over an include
can exceed it.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from provision.paths import ROLES_DIR

#: How deep imports/includes are followed (a cycle in broken files must not hang the display).
MAX_DEPTH = 12
META = ("meta", "ansible.builtin.meta", "ansible.legacy.meta")
INCLUDE_TASKS = ("include_tasks", "ansible.builtin.include_tasks")
IMPORT_TASKS = ("import_tasks", "ansible.builtin.import_tasks")
INCLUDE_ROLE = ("include_role", "ansible.builtin.include_role")
IMPORT_ROLE = ("import_role", "ansible.builtin.import_role")
IMPORT_PLAYBOOK = ("import_playbook", "ansible.builtin.import_playbook")


@dataclass(frozen=True)
class PlayPlan:
    name: str
    tasks: int  # tasks the play can announce in one pass (one serial batch)
    exact: bool  # False when a dynamic include (or an unreadable file) makes it a bound


_Base = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml: the plan costs milliseconds


class _Loader(_Base):  # type: ignore[misc,valid-type]
    """Safe YAML that reads Ansible's ``!unsafe``/``!vault`` tags as plain values."""


def _any_tag(loader: Any, suffix: str, node: yaml.Node) -> Any:
    if isinstance(node, yaml.ScalarNode):
        return loader.construct_scalar(node)
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node)
    return loader.construct_mapping(node)  # type: ignore[arg-type]


_Loader.add_multi_constructor("!", _any_tag)


def _read(path: Path) -> Any:
    try:
        st = path.stat()
    except OSError:
        return None
    return _parse(str(path), st.st_mtime_ns, st.st_size)


@functools.lru_cache(maxsize=512)
def _parse(path: str, _mtime_ns: int, _size: int) -> Any:
    """One parse per file version (a role included from several plays is read once)."""
    try:
        return yaml.load(Path(path).read_text(), Loader=_Loader)  # noqa: S506 - safe loader
    except (OSError, yaml.YAMLError, UnicodeDecodeError):
        return None


def _literal(value: Any) -> str | None:
    """A file or role name Ansible would use as is (no template)."""
    return value if isinstance(value, str) and value and "{{" not in value else None


class _Counter:
    def __init__(self, roles_dirs: list[Path], skip_role: Callable[[str], bool]) -> None:
        self.roles_dirs = roles_dirs
        self.skip_role = skip_role
        self.exact = True

    def role_dir(self, name: str) -> Path | None:
        for base in self.roles_dirs:
            if (base / name).is_dir():
                return base / name
        return None

    def tasks(self, items: Any, here: Path, depth: int) -> int:
        if not isinstance(items, list) or depth > MAX_DEPTH:
            self.exact = self.exact and items is None
            return 0
        return sum(self.task(t, here, depth) for t in items if isinstance(t, dict))

    def task(self, t: dict[str, Any], here: Path, depth: int) -> int:
        if "block" in t:
            return self.tasks(t.get("block"), here, depth) + self.tasks(
                t.get("always"), here, depth)
        if any(k in t for k in META):
            return 0
        for key in IMPORT_TASKS + INCLUDE_TASKS:
            if key in t:
                own = 0 if key in IMPORT_TASKS else 1
                arg = t[key]
                name = _literal(arg.get("file") if isinstance(arg, dict) else arg)
                if key in INCLUDE_TASKS:
                    self.exact = False
                if name is None:
                    self.exact = False
                    return own
                return own + self.tasks(_read(here / name), (here / name).parent, depth + 1)
        for key in IMPORT_ROLE + INCLUDE_ROLE:
            if key in t:
                own = 0 if key in IMPORT_ROLE else 1
                arg = t[key] if isinstance(t[key], dict) else {}
                if key in INCLUDE_ROLE:
                    self.exact = False
                name = _literal(arg.get("name"))
                if name is None or self.skip_role(name):
                    self.exact = self.exact and name is not None
                    return own
                return own + self.role(name, _literal(arg.get("tasks_from")) or "main",
                                       depth + 1)
        return 1

    def role(self, name: str, entry: str, depth: int) -> int:
        rdir = self.role_dir(name)
        if rdir is None or depth > MAX_DEPTH:
            self.exact = False
            return 0
        meta = _read(rdir / "meta" / "main.yml") or {}
        specs = _read(rdir / "meta" / "argument_specs.yml") or {}
        if not isinstance(specs, dict):
            specs = {}
        specs = specs.get("argument_specs") or (meta.get("argument_specs")
                                                if isinstance(meta, dict) else None) or {}
        entry = entry.removesuffix(".yml").removesuffix(".yaml")
        n = 1 if isinstance(specs, dict) and entry in specs else 0
        deps = meta.get("dependencies") if isinstance(meta, dict) else None
        for dep in deps or []:
            dep_name = dep if isinstance(dep, str) else (dep.get("role") or dep.get("name")
                                                         if isinstance(dep, dict) else None)
            if _literal(dep_name) and not self.skip_role(dep_name):
                n += self.role(dep_name, "main", depth + 1)
        tasks_dir = rdir / "tasks"
        path = tasks_dir / f"{entry}.yml"
        if not path.is_file():
            path = tasks_dir / f"{entry}.yaml"
        return n + self.tasks(_read(path), tasks_dir, depth)

    def play(self, play: dict[str, Any], here: Path, *, later: bool) -> int:
        """``later``: not the run's first play, so facts may be cached (gathering = smart in
        ansible.cfg) and the "Gathering Facts" task not announced: a bound."""
        n = 0 if str(play.get("gather_facts", True)).lower() in ("false", "no", "0") else 1
        self.exact = self.exact and not (n and later)
        n += self.tasks(play.get("pre_tasks"), here, 0)
        for r in play.get("roles") or []:
            name = _literal(r if isinstance(r, str) else (r.get("role") or r.get("name"))
                            if isinstance(r, dict) else None)
            if name and not self.skip_role(name):
                n += self.role(name, "main", 1)
        n += self.tasks(play.get("tasks"), here, 0)
        return n + self.tasks(play.get("post_tasks"), here, 0)


def playbook_plan(playbook: Path, *, skip_role: Callable[[str], bool] = lambda _: False,
                  roles_dirs: list[Path] | None = None) -> list[PlayPlan]:
    """The plays of ``playbook`` (``import_playbook`` followed) with their task counts; []
    when the file cannot be read. ``skip_role`` names roles that will not run (bootstrap's
    unselected components): their include counts, their tasks do not."""
    dirs = roles_dirs or [playbook.parent / "roles", ROLES_DIR]
    plays: list[PlayPlan] = []
    _plays(playbook, skip_role, dirs, 0, plays)
    return plays


def _plays(playbook: Path, skip_role: Callable[[str], bool], dirs: list[Path], depth: int,
           plays: list[PlayPlan]) -> None:
    doc = _read(playbook)
    if not isinstance(doc, list) or depth > MAX_DEPTH:
        return
    for play in doc:
        if not isinstance(play, dict):
            continue
        imported = next((play[k] for k in IMPORT_PLAYBOOK if k in play), None)
        if imported is not None:
            name = _literal(imported)
            if name:
                _plays(playbook.parent / name, skip_role, dirs, depth + 1, plays)
            continue
        counter = _Counter(dirs, skip_role)
        n = counter.play(play, playbook.parent, later=bool(plays))
        plays.append(PlayPlan(str(play.get("name") or play.get("hosts") or "?"), n,
                              counter.exact))
