"""Global options: ONE definition (``GLOBAL_OPTIONS``), accepted before or after the
subcommand (``provision -i lab bootstrap --check`` = ``provision bootstrap -i lab --check``).

The top-level group and every command carry the same Click options (built by
``click_options``); each level merges what it parsed into the one ``Options`` object
(``merge``). Every command declares which global options it honours
(``provision.commands._common.global_options``); ``refusal`` turns any other one that was given
into exit 2 naming the option, before anything is read or contacted.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import click

from provision.errors import UsageError


@dataclass(frozen=True)
class GlobalOption:
    field: str  # the Options attribute
    flags: tuple[str, ...]
    label: str  # how messages name it
    envvar: str | None
    kwargs: dict[str, Any]

    @property
    def param(self) -> str:
        """The Click parameter name (prefixed: never clashes with a command's own)."""
        return f"global_{self.field}"


GLOBAL_OPTIONS: tuple[GlobalOption, ...] = (
    GlobalOption("inventory", ("-i", "--inventory"), "-i/--inventory", "PROVISION_INVENTORY",
                 dict(metavar="PATH|lab",
                      help="Inventory file or directory, a name under ./inventory, or 'lab'. "
                           "[env: PROVISION_INVENTORY]")),
    GlobalOption("limit", ("--limit",), "--limit", "PROVISION_LIMIT",
                 dict(metavar="PATTERN",
                      help="Only these hosts or groups (e.g. 'workers,!w3'). "
                           "[env: PROVISION_LIMIT]")),
    GlobalOption("check", ("--check",), "--check", "PROVISION_CHECK",
                 dict(is_flag=True, default=None,
                      help="Dry run: Ansible check mode with diff; nothing is changed. "
                           "[env: PROVISION_CHECK]")),
    GlobalOption("verbosity", ("-v", "--verbose"), "-v/--verbose", None,
                 dict(count=True, help="More output (-v task results, -vv Ansible -vv).")),
    GlobalOption("json", ("--json",), "--json", "PROVISION_JSON",
                 dict(is_flag=True, default=None,
                      help="Print one JSON object on stdout at the end; progress goes to "
                           "stderr. [env: PROVISION_JSON]")),
    GlobalOption("extra_vars", ("-e", "--extra-vars"), "-e/--extra-vars", None,
                 dict(multiple=True, metavar="KEY=VALUE|@FILE",
                      help="Extra variables, as ansible-playbook: key=value, a JSON/YAML "
                           "mapping, or @file.yml; validated like the inventory.")),
    GlobalOption("vault_password_file", ("--vault-password-file",), "--vault-password-file",
                 None, dict(multiple=True, metavar="FILE",
                            help="Ansible Vault password file for !vault values and encrypted "
                                 "vars files of the inventory, as ansible-playbook (an "
                                 "executable file is run). [env: "
                                 "ANSIBLE_VAULT_PASSWORD_FILE]")),
    GlobalOption("ask_vault_pass", ("--ask-vault-pass",), "--ask-vault-pass", None,
                 dict(is_flag=True, default=None,
                      help="Ask for the Ansible Vault password (kept in memory only).")),
)
BY_FIELD = {g.field: g for g in GLOBAL_OPTIONS}
NAMES = tuple(g.field for g in GLOBAL_OPTIONS)


@dataclass
class Options:
    inventory: str | None = None  # path or 'lab'; None = ./inventory/default or 'lab'
    limit: str | None = None
    check: bool = False
    verbosity: int = 0
    json: bool = False
    extra_vars: tuple[str, ...] = ()  # the raw -e values, in order (provision.extravars)
    vault_password_file: tuple[str, ...] = ()
    ask_vault_pass: bool = False
    vault: Any = field(default=None, repr=False)  # provision.vault.VaultOptions, once read
    # option field -> how it was given ("--check", "--limit (from PROVISION_LIMIT)")
    given: dict[str, str] = field(default_factory=dict)
    from_env: set[str] = field(default_factory=set)  # fields set only by an environment var


def click_options(*, top: bool, hidden: frozenset[str] = frozenset()) -> list[click.Option]:
    """The global options as Click parameters: with their environment variables on the
    top-level group (``top``), without on commands (the group already read them)."""
    params = []
    for g in GLOBAL_OPTIONS:
        kwargs = dict(g.kwargs)
        if g.field in hidden:
            kwargs["hidden"] = True
        params.append(click.Option([*g.flags, g.param], envvar=g.envvar if top else None,
                                   allow_from_autoenv=False, **kwargs))
    return params


def merge(opts: Options, ctx: click.Context, values: dict[str, Any]) -> None:
    """Merge one level's parsed global options (``values`` by Click parameter name) into
    ``opts``: flags add up, a value given twice must agree, the command line beats the
    environment. UsageError (exit 2) naming the option on a conflict."""
    from click.core import ParameterSource

    for g in GLOBAL_OPTIONS:
        value = values.get(g.param)
        if value in (None, False, 0, ()):
            continue
        env = ctx.get_parameter_source(g.param) == ParameterSource.ENVIRONMENT
        label = f"{g.label} (from {g.envvar})" if env else g.label
        if g.field == "verbosity":
            opts.verbosity += int(value)
        elif g.field in ("extra_vars", "vault_password_file"):
            setattr(opts, g.field, (*getattr(opts, g.field), *value))
        elif g.field in ("check", "json", "ask_vault_pass"):
            setattr(opts, g.field, True)
        else:
            old = getattr(opts, g.field)
            if old is not None and old != value and g.field not in opts.from_env and not env:
                raise UsageError(f"{g.label} given twice ({old!r} and {value!r}): "
                                 "give it once")
            if env and old is not None:
                continue  # the command line wins over the environment
            setattr(opts, g.field, value)
        if env:
            opts.from_env.add(g.field)
            opts.given.setdefault(g.field, label)
        else:
            opts.from_env.discard(g.field)
            opts.given[g.field] = label


def refusal(opts: Options, command: str, honours: frozenset[str],
            reasons: dict[str, str]) -> str | None:
    """The message refusing the first given global option ``command`` does not honour.

    PROVISION_INVENTORY and PROVISION_JSON are defaults, not requests: a command that reads
    no inventory (init, lab) or cannot print JSON (lab ssh) ignores them. Everything else
    given, PROVISION_CHECK and PROVISION_LIMIT included, is honoured or refused.
    """
    for name in NAMES:
        if name not in opts.given or name in honours:
            continue
        if name in ("inventory", "json") and name in opts.from_env:
            continue
        why = reasons.get(name) or f"`{command}` does not use it"
        return f"{opts.given[name]} is not supported by `{command}`: {why}"
    return None
