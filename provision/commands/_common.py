"""Shared plumbing for commands: options, run-and-report."""

from __future__ import annotations

from typing import Any

import click

from provision import output
from provision.context import Options


def options() -> Options:
    ctx = click.get_current_context()
    return ctx.find_object(Options) or Options()


def print_summary(result: Any) -> None:
    """The short end-of-run summary: per-host recap, failures with host/task/error, log path."""
    from provision.runner import RunResult

    assert isinstance(result, RunResult)
    echo = output.echo
    for host, s in sorted(result.hosts.items()):
        echo(f"  {host:<24} ok={s['ok']:<3} changed={s['changed']:<3} failed={s['failed']:<3} "
             f"unreachable={s['unreachable']:<2} skipped={s['skipped']}")
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
    on stderr, and the run's exit code (1 when it has none)."""
    from provision.errors import EXIT_FAILED

    print_summary(run)
    output.echo(message, err=True)
    return output.finish(output.result_object(exit_code=run.exit_code or EXIT_FAILED,
                                              run_dir=str(run.run_dir), hosts=run.hosts,
                                              errors=run.errors))


def run_and_finish(opts: Options, command: str, playbook: str,
                   extravars: dict[str, Any] | None = None, *,
                   tags: list[str] | None = None, inventory: Any = None,
                   **extra: Any) -> int:
    """Validate the inventory (exit 2 before contact), run the playbook, summarise, exit code."""
    from provision.runner import run_playbook
    from provision.validate import check_limit, load_valid_inventory

    inv = inventory or load_valid_inventory(opts.inventory)
    check_limit(inv, opts.limit)
    result = run_playbook(command=command, playbook=playbook, inventory=inv,
                          extravars=extravars, limit=opts.limit, check=opts.check,
                          verbosity=opts.verbosity, tags=tags)
    print_summary(result)
    if result.unreachable_hosts:
        output.echo(f"unreachable: {', '.join(result.unreachable_hosts)}", err=True)
    obj = result.to_json()
    obj.update(extra)
    return output.finish(obj)
