"""The one declared schema of every toolkit inventory variable.

The declaration is ``roles/*/meta/argument_specs.yml``: the shared variables are the options of
``roles/provision_defaults`` (the role every role depends on), each role's own options are in
its own file. provision's extra facts, which Ansible's argument specs have no key for, sit under
an option's ``provision:`` key (Ansible's role argument validation ignores keys it does not
know; ansible-lint's schema is checked by tests/test_schema.py with this key added):

    kind         version | cidr | ip | ip_pool | duration | port | path (default: the type)
    pattern      a name of provision.patterns.PATTERNS (for lists: of each element)
    templatable  true: Jinja templates are accepted (the role checks the value itself)
    minimum      an int's lowest value
    scope        host: only meaningful per host

``provision/schema_data.py`` is generated from them (``python -m provision.schema_gen``, no
YAML is read at import time, so ``provision --help`` stays fast); tests/test_schema.py fails
when it, README's inventory reference (``python -m provision.schema --markdown``) or a role
README's option table is stale. Only Ansible's own connection variables are declared here.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import Any

from provision import schema_data

# Kinds understood by the validator (provision.inventory.check_value).
#   str, int, bool, list, dict, path
#   version  - "1.31" or "1.31.2" (a quoted string)
#   cidr     - an IPv4/IPv6 network
#   ip       - an IPv4/IPv6 address
#   ip_pool  - list of CIDRs or "A-B" address ranges
#   duration - "30d", "12h", "15m"
#   port     - int 1..65535


@dataclass(frozen=True)
class Var:
    name: str
    kind: str
    default: Any
    description: str
    choices: tuple[Any, ...] = ()
    minimum: int | None = None
    elements: str | None = None  # for lists: kind of each element
    scope: str = "any"  # any | host (only meaningful per host)
    tags: tuple[str, ...] = field(default_factory=tuple)
    # A declared pattern of provision.patterns (for lists: of each element). Every value that
    # reaches a unit file, a script, a file name or a command line on a host has one.
    pattern: str | None = None
    # Jinja templates ({{ }}) are refused in variables with a pattern, choices, a non-string
    # type or the "connection" tag (Ansible evaluates them on the controller) unless True.
    templatable: bool = False


# Ansible's own connection variables: validated, not defined, by provision (no role declares them).
CONNECTION_VARIABLES: tuple[Var, ...] = (
    Var("ansible_host", "str", None, "Address to connect to (default: the inventory name): an "
        "IPv4 or IPv6 address (no brackets, no port) or a DNS name.",
        scope="host", tags=("ansible", "connection"), pattern="address"),
    Var("ansible_port", "port", 22, "SSH port.", tags=("ansible", "connection")),
    Var("ansible_user", "str", None, "SSH user (a non-root user with passwordless sudo).",
        tags=("ansible", "connection"), pattern="user"),
    Var("ansible_ssh_private_key_file", "path", None,
        "Private key file for SSH; must exist on the controller.", tags=("ansible", "connection"),
        pattern="controller_path"),
    Var("ansible_ssh_common_args", "str", None, "Extra SSH arguments (one line, no templates).",
        tags=("ansible", "connection"), pattern="single_line"),
    Var("ansible_become", "bool", None, "Use sudo.", tags=("ansible", "connection")),
    Var("ansible_python_interpreter", "str", None, "Python on the host.",
        tags=("ansible", "connection"), pattern="interpreter"),
    Var("ansible_connection", "str", None, "Connection plugin (ssh, local, docker).",
        tags=("ansible", "connection"), pattern="plugin"),
)

# Every toolkit inventory variable: roles/provision_defaults' options, then Ansible's own.
VARIABLES: tuple[Var, ...] = (
    *(Var(**{k: tuple(v) if k in ("choices", "tags") else v for k, v in entry.items()})
      for entry in schema_data.SHARED),
    *CONNECTION_VARIABLES,
)

BY_NAME: dict[str, Var] = {v.name: v for v in VARIABLES}

# Role options (roles/*/meta/argument_specs.yml, not provision_defaults) whose values reach a unit
# file, a script, a file name or a command line on a host: name -> (pattern, templatable). A
# templatable option may hold a Jinja template (its role default does) and is then checked by
# the role itself. Generated from the options' ``provision: {pattern, templatable}``.
ROLE_OPTION_PATTERNS: dict[str, tuple[str, bool]] = dict(schema_data.ROLE_OPTION_PATTERNS)

# Ansible's own connection variables that are not in VARIABLES: what they must look like.
# Templates are refused in every connection variable (they run on the controller).
CONNECTION_PASSTHROUGH: dict[str, str | None] = {
    "ansible_ssh_extra_args": "single_line",
    "ansible_private_key_file": "controller_path",
    "ansible_ssh_executable": "controller_path",
    "ansible_become_method": "plugin",
    "ansible_become_user": "user",
    "ansible_become_flags": "single_line",
    "ansible_become_password": None,  # secret: never echoed; only templates are refused
    "ansible_password": None,
}


def markdown_table() -> str:
    """The inventory reference table for README (kept in sync by a test)."""
    rows = ["| variable | type | default | allowed | description |", "|---|---|---|---|---|"]
    for v in VARIABLES:
        default = "" if v.default is None else f"`{v.default!r}`".replace("'", '"')
        allowed = ", ".join(f"`{c}`" for c in v.choices)
        if v.minimum is not None:
            allowed = f">= {v.minimum}"
        if v.pattern is not None:
            from provision.patterns import PATTERNS

            allowed = PATTERNS[v.pattern].expected + ("" if v.templatable else "; no templates")
        rows.append(f"| `{v.name}` | {v.kind} | {default} | {allowed} | {v.description} |")
    return "\n".join(rows)


if __name__ == "__main__":  # pragma: no cover
    if "--markdown" in sys.argv:
        print(markdown_table())
