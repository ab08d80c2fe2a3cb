"""Inventory checks of the etcd variables that end up in paths, unit files and file names.

Called by ``provision.validate.validate`` (before any host is contacted): each problem names
the file (and line), the host or group, and the key. The roles check the same rules again on
the node (``etcd-backup prepare``, the role's asserts, the unit templates' escaping).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from provision.etcd import naming, paths, schedule


def _schedule(check: Callable[[object, str], Any]) -> Callable[[object], str | None]:
    def run(value: object) -> str | None:
        try:
            check(value, "")
        except schedule.ScheduleError as exc:
            return str(exc).lstrip()
        return None
    return run


def _naming(check: Callable[[Any], Any]) -> Callable[[object], str | None]:
    def run(value: object) -> str | None:
        try:
            check(value)
        except ValueError as exc:
            return str(exc)
        return None
    return run


def _optional_dedicated(value: object) -> str | None:
    return None if value == "" else paths.dedicated_dir_problem(value)


# key -> check returning a problem or None (templates are refused: the value must be known
# before contact to be checked)
CHECKS: dict[str, Callable[[object], str | None]] = {
    "etcd_backup_dir": paths.dedicated_dir_problem,
    "etcd_backup_config_dir": paths.dedicated_dir_problem,
    "etcd_backup_tool_dir": paths.dedicated_dir_problem,
    "etcd_restore_data_dir": _optional_dedicated,
    "etcd_restore_data_dir_parent": paths.path_problem,
    "etcd_restore_aside_parent": paths.dedicated_dir_problem,
    "etcd_backup_command": paths.path_problem,
    "etcd_bin_dir": paths.path_problem,
    "etcd_backup_schedule": _schedule(schedule.check_calendar),
    "etcd_backup_schedule_randomized_delay": _schedule(schedule.check_timespan),
    "etcd_backup_schedule_accuracy": _schedule(schedule.check_timespan),
    "etcd_backup_max_age": _naming(naming.parse_duration),
    "etcd_backup_keep": _schedule(schedule.check_count),
    "etcd_backup_schedule_timeout": _schedule(
        lambda value, name: schedule.check_count(value, name, 1, 604_800)),
    "etcd_snapshot_tag": _naming(naming.validate_tag),
}


def problems(sources: list[Any]) -> list[str]:
    """One message per inventory setting of a checked key that breaks its rule."""
    out: list[str] = []
    for src in sources:
        check = CHECKS.get(src.key)
        if check is None:
            continue
        if isinstance(src.value, str) and "{{" in src.value:
            problem: str | None = ("a template is not accepted here: the value is written "
                                   "into paths and unit files and must be checked before "
                                   "any host is contacted")
        else:
            problem = check(src.value)
        if problem:
            out.append(f"{src.where}: {src.key}: {problem}")
    return out
