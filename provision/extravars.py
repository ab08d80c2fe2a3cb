"""``-e/--extra-vars``: parsed as ansible-playbook parses them, checked by the inventory's
schema (``provision.validate.known_variable`` / ``check_value``) before anything is contacted.

Forms: ``key=value [key2=value2 ...]`` (shell-like quoting), an inline JSON/YAML mapping
(``'{"k": 1}'``) or ``@file.yml`` / ``@file.json``. A ``key=value`` value is typed by the
variable's declared type (``etcd_backup_keep=5`` is the integer 5, ``x_enabled=false`` the
boolean false; strings and versions stay strings). Refused (exit 2, the key named): unknown
variables, wrong types or choices, connection variables (``ansible_*``: per host, in the
inventory), and Jinja templates (they would run on this machine). Values of variables
declared ``no_log`` in a role's argument_specs are never echoed.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from provision.errors import UsageError, ValidationError

SOURCE = Path("-e/--extra-vars")  # where validation messages say an extra var was set
MAX_FILE_BYTES = 1 << 20
MAX_DEPTH = 20
MAX_VALUES = 10_000  # values in one -e document (aliases counted each time they are used)
_TYPED_KINDS = ("int", "port", "float", "bool", "list", "dict", "ip_pool")


def _yaml(text: str, where: str) -> Any:
    import yaml

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" line {mark.line + 1} column {mark.column + 1}" if mark else ""
        raise UsageError(f"-e {where}: not valid YAML or JSON{at}") from None
    except (ValueError, RecursionError) as exc:  # a 5000-digit number, deep nesting
        raise UsageError(f"-e {where}: cannot read it: {str(exc)[:120]}") from None


def _bounded(value: Any) -> str | None:
    """Why ``value`` is too deep or too large (aliases expanded), or None; never walks more
    than MAX_VALUES nodes (a YAML alias bomb stops here, not in the checks after it)."""
    stack, seen = [(value, 0)], 0
    while stack:
        item, level = stack.pop()
        seen += 1
        if seen > MAX_VALUES:
            return f"more than {MAX_VALUES} values"
        if level > MAX_DEPTH:
            return f"nested deeper than {MAX_DEPTH} levels"
        if isinstance(item, dict):
            stack += [(v, level + 1) for v in (*item.keys(), *item.values())]
        elif isinstance(item, list):
            stack += [(v, level + 1) for v in item]
    return None


def _read_file(name: str) -> Any:
    path = Path(name).expanduser()
    if not path.is_file():
        raise UsageError(f"-e @{name}: not a regular file")
    if path.stat().st_size > MAX_FILE_BYTES:
        raise UsageError(f"-e @{name}: larger than {MAX_FILE_BYTES} bytes")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"-e @{name}: cannot read it: {exc}") from None
    return _yaml(text, f"@{name}")


def _pairs(text: str) -> dict[str, str]:
    try:
        words = shlex.split(text)
    except ValueError as exc:
        raise UsageError(f"-e {text!r}: {exc}") from None
    out: dict[str, str] = {}
    for word in words:
        key, sep, value = word.partition("=")
        if not sep or not key:
            raise UsageError(f"-e {word!r}: expected KEY=VALUE, a JSON/YAML mapping or "
                             "@FILE")
        out[key] = value
    return out


def parse(values: Sequence[str]) -> tuple[dict[str, Any], set[str]]:
    """(variables, keys given as key=value strings); later values win, as in Ansible."""
    out: dict[str, Any] = {}
    plain: set[str] = set()
    for raw in values:
        if raw.startswith("@"):
            data, where = _read_file(raw[1:]), raw
        elif raw.lstrip().startswith(("{", "---")):
            data, where = _yaml(raw, "mapping"), "mapping"
        else:
            pairs = _pairs(raw)
            out.update(pairs)
            plain |= set(pairs)
            continue
        if data is None:
            continue
        if not isinstance(data, dict):
            raise UsageError(f"-e {where}: expected a mapping of variable names to values")
        if problem := _bounded(data):
            raise UsageError(f"-e {where}: {problem}")
        out.update(data)
        plain -= set(data)
    return out, plain


def _has_template(value: Any) -> bool:
    if isinstance(value, str):
        return "{{" in value or "{%" in value or "{#" in value
    if isinstance(value, dict):
        return any(_has_template(k) or _has_template(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_template(v) for v in value)
    return False


def is_secret(key: str) -> bool:
    """Declared ``no_log`` in a role's argument_specs (or an Ansible password variable)."""
    from provision.validate import role_options

    return bool((role_options().get(key) or {}).get("no_log")) or "password" in key


def _typed(kind: str, value: str) -> Any:
    """A key=value string as the variable's declared type (YAML scalars/flow collections)."""
    if kind not in _TYPED_KINDS or not value.isascii():
        return value
    import yaml

    try:
        typed = yaml.safe_load(value) if len(value) <= 4096 else value
    except (yaml.YAMLError, ValueError, RecursionError):
        return value
    return value if _bounded(typed) else typed


def check(extra: dict[str, Any], plain: set[str]) -> tuple[dict[str, Any], list[str]]:
    """(typed variables, problems): one message per bad key, secrets never echoed."""
    from provision.inventory import did_you_mean
    from provision.validate import _all_names, check_value, known_variable

    out: dict[str, Any] = {}
    problems: list[str] = []
    for key, value in extra.items():
        if not isinstance(key, str) or not key.isidentifier():
            problems.append(f"-e {str(key)[:60]!r}: not a variable name")
            continue
        secret = is_secret(key)
        if key.startswith("ansible_"):
            problems.append(f"-e {key}: connection variables are set per host in the "
                            "inventory (where they are validated), not for every host with -e")
            continue
        var = known_variable(key)
        if var is None:
            problems.append(f"-e {key}: unknown variable"
                            + (did_you_mean(key, _all_names())
                               or " (see the inventory reference in README)"))
            continue
        if var.scope == "host":
            problems.append(f"-e {key}: must be set per host in the inventory, not for every "
                            "host with -e")
            continue
        if _has_template(value):
            problems.append(f"-e {key}: templates ({{{{ }}}}, {{% %}}) are not accepted in "
                            "extra vars: Ansible would run them on this machine")
            continue
        if key in plain and isinstance(value, str):
            value = _typed(var.kind, value)
        problem = check_value(var, value)
        if problem:
            problems.append(f"-e {key}: " + (f"invalid value for a {var.kind} (the value is "
                                             "secret and not shown)" if secret else problem))
            continue
        out[key] = value
    return out, problems


def parse_and_check(values: Sequence[str]) -> dict[str, Any]:
    """The validated extra vars of the ``-e`` values; ValidationError (exit 2) otherwise."""
    if not values:
        return {}
    extra, plain = parse(values)
    out, problems = check(extra, plain)
    if problems:
        raise ValidationError(problems)
    return out

