"""Shared plumbing for commands: global options, run-and-report."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from typing import Any

import click

from provision import output
from provision.context import NAMES, Options, click_options, merge, refusal
from provision.errors import UsageError

EVERY = frozenset(NAMES)
# honoured by every command that reads an inventory (its !vault values)
VAULT = frozenset({"vault_password_file", "ask_vault_pass"})
GROUP_MARK = "__provision_globals__"


def options() -> Options:
    ctx = click.get_current_context()
    return ctx.find_object(Options) or Options()


def global_options(*honours: str, refuses: dict[str, str] | None = None
                   ) -> Callable[[click.Command], click.Command]:
    """Declare the global options a command honours; place it ABOVE ``@click.command``.

    The command then accepts every global option after its name too (one definition,
    ``provision.context.GLOBAL_OPTIONS``); a given option it does not honour is refused with
    exit 2 naming the option and why (``refuses``: option -> why / what to use instead)
    before the command body runs. Refused options are hidden from the command's --help.
    """
    unknown = (set(honours) | set(refuses or {})) - EVERY
    if unknown:
        raise ValueError(f"unknown global option(s): {', '.join(sorted(unknown))}")

    def decorate(cmd: click.Command) -> click.Command:
        if not isinstance(cmd, click.Command):
            raise TypeError("@global_options goes above @click.command")
        honoured = frozenset(honours) | (VAULT if "inventory" in honours else frozenset())
        install(cmd, honoured, {**DEFAULT_REASONS, **(refuses or {})})
        return cmd

    return decorate


def install(cmd: click.Command, honours: frozenset[str] | None,
            reasons: dict[str, str] | None = None) -> None:
    """Add the global options to ``cmd`` and merge/check them when it runs. ``honours``
    None: a group (merges only; its subcommands decide)."""
    if getattr(cmd, GROUP_MARK, None) is not None:
        return
    own = {o for p in cmd.params for o in (*p.opts, *p.secondary_opts)}
    params = click_options(top=False, hidden=EVERY - (honours if honours is not None
                                                      else EVERY))
    clash = own & {o for p in params for o in p.opts}
    if clash:
        raise ValueError(f"{cmd.name}: own option(s) {', '.join(sorted(clash))} clash with "
                         "the global options")
    cmd.params.extend(params)
    original = cmd.callback

    @functools.wraps(original or (lambda **_: None))
    def callback(*args: Any, **kwargs: Any) -> Any:
        ctx = click.get_current_context()
        opts = ctx.ensure_object(Options)
        merge(opts, ctx, {p.name: kwargs.pop(p.name) for p in params if p.name in kwargs})
        output.JSON_MODE = output.JSON_MODE or opts.json
        problem = honours is not None and refusal(opts, ctx.command_path, honours,
                                                  reasons or {})
        if problem:
            raise UsageError(problem)
        return original(*args, **kwargs) if original else None

    cmd.callback = callback
    setattr(cmd, GROUP_MARK, honours if honours is not None else "group")


# why a command refuses a global option, unless it says better (global_options(refuses=...))
DEFAULT_REASONS = {
    "inventory": "it reads no inventory",
    "limit": "it works on the hosts it needs as a whole; run it without --limit",
    "check": "it has no dry run (Ansible check mode); run it without --check",
    "verbosity": "it runs no Ansible playbook and already prints all it has",
    "extra_vars": "it takes no extra vars; set variables in the inventory or use its flags",
    "vault_password_file": "it reads no inventory",
    "ask_vault_pass": "it reads no inventory",
}
NO_INVENTORY = {"inventory": "lab commands manage their own hosts; the inventory they write "
                             "is `-i lab` for the other commands"}

UNDECLARED = ("it does not declare which global options it honours (a bug: add "
              "@global_options to it)")


def install_tree(cmd: click.Command) -> None:
    """Every group of a loaded command tree merges the global options; a command that did
    not declare what it honours refuses every one but --json (safe default)."""
    if isinstance(cmd, click.Group):
        install(cmd, None)
        for sub in cmd.commands.values():
            install_tree(sub)
    elif getattr(cmd, GROUP_MARK, None) is None:
        install(cmd, frozenset({"json"}), {n: UNDECLARED for n in NAMES})
        cmd.__provision_undeclared__ = True  # type: ignore[attr-defined]


def walk(cmd: click.Command, path: tuple[str, ...] = ()) -> Iterable[tuple[tuple[str, ...],
                                                                            click.Command]]:
    """(path, command) of every leaf command under ``cmd`` (the tests walk the tree)."""
    if isinstance(cmd, click.Group):
        for name, sub in sorted(cmd.commands.items()):
            yield from walk(sub, (*path, name))
    else:
        yield path, cmd


def load_inventory(opts: Options) -> Any:
    """The valid inventory of ``-i`` with the validated ``-e`` variables laid over every
    host (extra vars win, as in Ansible; the whole-inventory checks run again with them) and
    ``--limit`` checked: exit 2 before contact."""
    from provision.errors import ValidationError
    from provision.extravars import SOURCE, parse_and_check
    from provision.inventory import VarSource
    from provision.validate import check_limit, load_valid_inventory, validate
    from provision.vault import from_command

    extra = parse_and_check(opts.extra_vars)
    inv = load_valid_inventory(opts.inventory, from_command(opts))
    if extra:
        given = [VarSource(SOURCE, "group all", k, v) for k, v in extra.items()]
        for host in inv.hosts.values():
            host.vars.update(extra)
            host.origins.update({src.key: src for src in given})  # -e wins, as in Ansible
        inv.sources.extend(given)
        errors, _ = validate(inv)  # e.g. an -e pod_cidr that contains a node's address
        if errors:
            raise ValidationError(errors)
    check_limit(inv, opts.limit)
    return inv


def run_extravars(opts: Options, command: str, own: dict[str, Any] | None) -> dict[str, Any]:
    """The run's extra vars: the user's ``-e`` and the command's own; a key the command sets
    itself from its flags cannot be overridden with -e (exit 2)."""
    from provision.extravars import parse_and_check

    user = parse_and_check(opts.extra_vars)
    for key in sorted(set(user) & set(own or {})):
        raise UsageError(f"-e {key}: set by `provision {command}` itself (from its flags); "
                         "use the command's flag instead")
    return {**user, **(own or {})}


def print_summary(result: Any) -> None:
    """The short end-of-run summary: per-host recap, failures with host/task/error, log path."""
    from provision.runner import RunResult

    assert isinstance(result, RunResult)
    echo = output.echo
    for host, s in sorted(result.hosts.items()):
        echo(f"  {host:<24} ok={s['ok']:<3} changed={s['changed']:<3} failed={s['failed']:<3} "
             f"unreachable={s['unreachable']:<2} skipped={s['skipped']}")
    for report in result.reports:
        echo(f"  {report['host']}: {report['message']}")
    if result.failures:
        echo("")
        echo(f"FAILED ({len(result.failures)}):")
        for f in result.failures:
            kind = "UNREACHABLE" if f.unreachable else "failed"
            echo(f"  {f.host}: {kind} at task '{f.task}'")
            for line in f.message.splitlines()[:8]:
                echo(f"      {line}")
    if not result.ok:
        echo(f"Full log: {result.log_path}")


def finish_failed_read(run: Any, message: str) -> int:
    """A read-only run (discovery, status) that produced no report: the summary, ``message``
    on stderr, and the run's exit code (1 when it has none). A run stopped by the cluster
    check (no cluster yet) ends with its one line instead (provision/cluster.py)."""
    from provision.cluster import finish_if_missing
    from provision.errors import EXIT_FAILED

    code = finish_if_missing(run)
    if code is not None:
        return code
    print_summary(run)
    output.echo(message, err=True)
    return output.finish(output.result_object(exit_code=run.exit_code or EXIT_FAILED,
                                              run_dir=str(run.run_dir), hosts=run.hosts,
                                              errors=[*run.errors, {"message": message}]))


def run_and_finish(opts: Options, command: str, playbook: str,
                   extravars: dict[str, Any] | None = None, *,
                   tags: list[str] | None = None, inventory: Any = None,
                   after_ok: str | None = None, **extra: Any) -> int:
    """Validate the inventory (exit 2 before contact), run the playbook, summarise, exit code.
    ``after_ok``: a line printed after the summary when every host succeeded."""
    from provision.runner import run_playbook
    from provision.validate import check_limit

    inv = inventory or load_inventory(opts)
    check_limit(inv, opts.limit)
    result = run_playbook(command=command, playbook=playbook, inventory=inv,
                          extravars=run_extravars(opts, command, extravars),
                          limit=opts.limit, check=opts.check,
                          verbosity=opts.verbosity, tags=tags)
    from provision.cluster import older_than_cluster

    if (refusal := older_than_cluster(result)) is not None:  # bootstrap: exit 2, both versions
        from provision.errors import EXIT_USAGE

        output.echo(refusal, err=True)
        return output.finish(output.result_object(
            command=command, exit_code=EXIT_USAGE, run_dir=str(result.run_dir),
            hosts=result.hosts, errors=[{"message": refusal}]))
    print_summary(result)
    if result.unreachable_hosts:
        output.echo(f"unreachable: {', '.join(result.unreachable_hosts)}", err=True)
    if after_ok and result.ok and not opts.check:
        output.echo(after_ok)
    obj = result.to_json()
    obj.update(extra)
    return output.finish(obj)
