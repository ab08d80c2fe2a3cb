"""Generate what is declared in roles/*/meta/argument_specs.yml: provision/schema_data.py,
provision/schema_roles.py, README's inventory reference and every role README's option table.

    python -m provision.schema_gen            # rewrite the generated files
    python -m provision.schema_gen --check    # list stale files, exit 1 when any

Reads YAML, so only this module (never ``provision.schema``) is imported for generation;
tests/test_schema.py runs the check.
"""

from __future__ import annotations

import pprint
import re
import sys
from pathlib import Path
from typing import Any

import yaml

from provision.paths import REPO_ROOT, ROLES_DIR

SHARED_ROLE = "provision_defaults"
DATA_MODULE = REPO_ROOT / "provision" / "schema_data.py"
ROLES_MODULE = REPO_ROOT / "provision" / "schema_roles.py"
README = REPO_ROOT / "README.md"
# provision's keys under an option's ``provision:`` (see provision/schema.py)
EXTRA_KEYS = frozenset({"kind", "pattern", "templatable", "minimum", "scope"})
KINDS = frozenset({"str", "int", "bool", "list", "dict", "path", "float", "raw", "version",
                   "cidr", "ip", "ip_pool", "duration", "port"})
_TYPE_KINDS = {"str": "str", "int": "int", "bool": "bool", "list": "list", "dict": "dict",
               "path": "path", "float": "float", "raw": "raw"}


class DeclarationError(ValueError):
    """An argument_specs option whose ``provision:`` extras are malformed."""


#: libyaml when PyYAML has it (the 27 spec files cost ~1 s with the pure-Python loader). Only
#: generation and tests parse them: a command reads provision/schema_roles.py instead.
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def load_specs(roles_dir: Path = ROLES_DIR) -> dict[str, dict[str, Any]]:
    """role name -> its ``argument_specs`` mapping (entry point -> spec). Our own files, parsed
    with a plain safe loader (libyaml when available)."""
    specs: dict[str, dict[str, Any]] = {}
    for path in sorted(roles_dir.glob("*/meta/argument_specs.yml")):
        data = yaml.load(path.read_text(), Loader=_LOADER) or {}  # noqa: S506 - a SafeLoader
        specs[path.parent.parent.name] = data.get("argument_specs") or {}
    return specs


def _text(value: Any) -> str:
    if isinstance(value, list):
        return " ".join(str(v) for v in value)
    return "" if value is None else str(value)


def extras(role: str, name: str, spec: dict[str, Any]) -> dict[str, Any]:
    """The option's ``provision:`` mapping, checked (unknown keys, kinds, pattern names)."""
    from provision.patterns import PATTERNS

    extra = spec.get("provision") or {}
    where = f"roles/{role}/meta/argument_specs.yml: {name}: provision"
    if not isinstance(extra, dict):
        raise DeclarationError(f"{where}: expected a mapping")
    unknown = sorted(set(extra) - EXTRA_KEYS)
    if unknown:
        raise DeclarationError(f"{where}: unknown key(s) {unknown}; known: {sorted(EXTRA_KEYS)}")
    if extra.get("kind", "str") not in KINDS:
        raise DeclarationError(f"{where}.kind: {extra['kind']!r} is not one of {sorted(KINDS)}")
    if "pattern" in extra and extra["pattern"] not in PATTERNS:
        raise DeclarationError(f"{where}.pattern: {extra['pattern']!r} is not a pattern of "
                               "provision/patterns.py")
    return extra


def var_entry(role: str, name: str, spec: dict[str, Any]) -> dict[str, Any]:
    """An option as the keyword arguments of ``provision.schema.Var`` (defaults left out)."""
    extra = extras(role, name, spec)
    kind = extra.get("kind") or _TYPE_KINDS.get(str(spec.get("type", "str")), "raw")
    entry: dict[str, Any] = {"name": name, "kind": kind, "default": spec.get("default"),
                             "description": _text(spec.get("description"))}
    if spec.get("choices"):
        entry["choices"] = list(spec["choices"])
    if kind == "list" and spec.get("elements"):
        entry["elements"] = spec["elements"]
    for key in ("minimum", "scope", "pattern"):
        if key in extra:
            entry[key] = extra[key]
    if extra.get("templatable"):
        entry["templatable"] = True
    return entry


def shared_entries(specs: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    options = ((specs.get(SHARED_ROLE) or {}).get("main") or {}).get("options") or {}
    return [var_entry(SHARED_ROLE, name, spec) for name, spec in options.items()]


def role_option_patterns(specs: dict[str, dict[str, Any]]) -> dict[str, tuple[str, bool]]:
    """Every other role's option with a declared pattern: name -> (pattern, templatable)."""
    found: dict[str, tuple[str, bool]] = {}
    for role, entries in specs.items():
        if role == SHARED_ROLE:
            continue
        for entry in entries.values():
            for name, spec in ((entry or {}).get("options") or {}).items():
                extra = extras(role, name, spec or {})
                if "pattern" in extra:
                    found[name] = (extra["pattern"], bool(extra.get("templatable")))
    return dict(sorted(found.items()))


def data_module(specs: dict[str, dict[str, Any]]) -> str:
    """The text of provision/schema_data.py."""
    shared = pprint.pformat(shared_entries(specs), width=96, sort_dicts=False)
    patterns = pprint.pformat(role_option_patterns(specs), width=96, sort_dicts=False)
    return (
        "# GENERATED by `python -m provision.schema_gen` from roles/*/meta/argument_specs.yml:\n"
        "# edit those and regenerate (tests/test_schema.py fails when this file is stale).\n"
        "# ruff: noqa: E501\n"
        '"""Declared variables as plain data (read by provision.schema; no YAML at import)."""\n'
        "\n"
        "from typing import Any\n"
        "\n"
        "# roles/provision_defaults' options: provision.schema.Var keyword arguments\n"
        f"SHARED: list[dict[str, Any]] = {shared}\n"
        "\n"
        "# other roles' options with provision.pattern: name -> (pattern, templatable)\n"
        f"ROLE_OPTION_PATTERNS: dict[str, tuple[str, bool]] = {patterns}\n"
    )


def role_options(specs: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Every option of every role (the first declaration of a name wins, roles in name order,
    entry points in file order): name -> its argument spec plus ``'role'``."""
    options: dict[str, dict[str, Any]] = {}
    for role, entries in specs.items():
        for entry in entries.values():
            for name, spec in ((entry or {}).get("options") or {}).items():
                options.setdefault(str(name), {**(spec or {}), "role": role})
    return options


def roles_module(specs: dict[str, dict[str, Any]]) -> str:
    """The text of provision/schema_roles.py."""
    options = role_options(specs)
    no_log = sorted({str(name) for entries in specs.values() for entry in entries.values()
                     for name, spec in ((entry or {}).get("options") or {}).items()
                     if isinstance(spec, dict) and spec.get("no_log") is True})
    return (
        "# GENERATED by `python -m provision.schema_gen` from roles/*/meta/argument_specs.yml:\n"
        "# edit those and regenerate (tests/test_schema.py fails when this file is stale).\n"
        "# ruff: noqa: E501\n"
        '"""Every role option as plain data (read by provision.validate and provision.redact:\n'
        'no YAML parsed by a command)."""\n'
        "\n"
        "from typing import Any\n"
        "\n"
        "# option name -> its argument spec plus 'role' (the first role declaring it)\n"
        f"ROLE_OPTIONS: dict[str, dict[str, Any]] = "
        f"{pprint.pformat(options, width=96, sort_dicts=False)}\n"
        "\n"
        "# options declared no_log: true\n"
        f"NO_LOG_OPTIONS: frozenset[str] = frozenset({pprint.pformat(no_log, width=96)})\n"
    )


def _cell(value: Any) -> str:
    return _text(value).replace("|", "\\|").replace("\n", " ")


def _allowed(spec: dict[str, Any], extra: dict[str, Any]) -> str:
    from provision.patterns import PATTERNS

    if "pattern" in extra:
        text = PATTERNS[extra["pattern"]].expected
        return _cell(text + ("" if extra.get("templatable") else "; no templates"))
    if spec.get("choices"):
        return ", ".join(f"`{c}`" for c in spec["choices"])
    if "minimum" in extra:
        return f">= {extra['minimum']}"
    return ""


def _default(spec: dict[str, Any]) -> str:
    if "default" not in spec or spec["default"] is None:
        return ""
    value = spec["default"]
    if isinstance(value, str):
        return f"`{_cell(value)}`" if value else '`""`'
    text = yaml.safe_dump(value, default_flow_style=True, width=10_000)
    return f"`{_cell(text.strip().removesuffix('...').strip())}`"


def options_table(role: str, options: dict[str, Any]) -> str:
    rows = ["| option | type | default | allowed | description |", "|---|---|---|---|---|"]
    for name, spec in options.items():
        spec = spec or {}
        extra = extras(role, name, spec)
        kind = extra.get("kind") or str(spec.get("type", "str"))
        if spec.get("elements"):
            kind += f" of {spec['elements']}"
        secret = " Secret (no_log)." if spec.get("no_log") else ""
        rows.append(f"| `{name}` | {kind} | {_default(spec)} | {_allowed(spec, extra)} | "
                    f"{_cell(spec.get('description'))}{secret} |")
    return "\n".join(rows)


def role_readme_section(role: str, entries: dict[str, Any]) -> str:
    """A role README's option tables: one per entry point (``tasks_from``)."""
    parts = ["Generated from `meta/argument_specs.yml` (`python -m provision.schema_gen`); "
             "Ansible validates these options when the role runs."]
    if role != SHARED_ROLE:
        parts.append("The shared variables (`kubernetes_version`, `pod_cidr`, the proxies and "
                     "mirrors, ...) are options of [provision_defaults](../provision_defaults/"
                     "README.md), a dependency of this role.")
    main_options = ((entries.get("main") or {}).get("options")) or {}
    for entry_name, entry in entries.items():
        options = (entry or {}).get("options") or {}
        if entry_name != "main":
            parts.append(f"### `tasks_from: {entry_name}`")
            if options == main_options:
                parts.append("The same options as `main`.")
                continue
        if options:
            parts.append(options_table(role, options))
        else:
            parts.append("No options.")
    return "\n\n".join(parts)


def replace_section(text: str, marker: str, body: str) -> str | None:
    """``text`` with the part between ``<!-- marker:start -->`` and ``<!-- marker:end -->``
    replaced by ``body``; None when the markers are missing."""
    pattern = re.compile(rf"(<!-- {marker}:start -->\n).*?(\n?<!-- {marker}:end -->)", re.S)
    if not pattern.search(text):
        return None
    return pattern.sub(lambda m: m.group(1) + body + "\n" + m.group(2).lstrip("\n"), text,
                       count=1)


def generated_files(specs: dict[str, dict[str, Any]] | None = None) -> dict[Path, str]:
    """Every generated file: path -> the text it must have. README's inventory table comes
    from ``provision.schema`` as it would be with the generated data (see ``check``)."""
    specs = load_specs() if specs is None else specs
    files: dict[Path, str] = {DATA_MODULE: data_module(specs), ROLES_MODULE: roles_module(specs)}
    for role, entries in specs.items():
        readme = ROLES_DIR / role / "README.md"
        text = readme.read_text() if readme.is_file() else ""
        new = replace_section(text, "options", role_readme_section(role, entries))
        if new is not None:  # tests/test_schema.py lists the READMEs without the markers
            files[readme] = new
    return files


def readme_text(markdown: str) -> str:
    new = replace_section(README.read_text(), "schema", markdown)
    if new is None:
        raise DeclarationError("README.md: no <!-- schema:start --> markers")
    return new


def stale(files: dict[Path, str]) -> list[Path]:
    return [p for p, text in files.items() if not p.is_file() or p.read_text() != text]


def main(argv: list[str]) -> int:
    files = generated_files()
    if "--check" in argv:
        from provision.schema import markdown_table

        files[README] = readme_text(markdown_table())
        out = stale(files)
        for path in out:
            print(f"stale: {path.relative_to(REPO_ROOT)}", file=sys.stderr)
        return 1 if out else 0
    DATA_MODULE.write_text(files.pop(DATA_MODULE))
    for path, text in files.items():
        path.write_text(text)
    # README's table is rendered by provision.schema, from the data module just written
    import subprocess

    table = subprocess.run([sys.executable, "-m", "provision.schema", "--markdown"],
                           check=True, capture_output=True, text=True, cwd=REPO_ROOT).stdout
    README.write_text(readme_text(table.rstrip("\n")))
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main(sys.argv[1:]))
