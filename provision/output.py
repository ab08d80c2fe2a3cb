"""What the user sees at the end of a command: a short summary, or one JSON object (--json).

With ``--json`` stdout carries exactly one JSON object; progress and logs go to stderr. Its
shape is ``provision/schemas/result.schema.json`` (every command, success and error paths;
tests/test_json_schema.py checks them all): errors are always objects ``{message, host?,
task?, ...}`` (:func:`error_objects`), elapsed time is always ``elapsed_s``.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from provision.errors import EXIT_OK, ProvisionError

JSON_MODE = False  # set by the top-level group from --json
COMMAND = ""  # the subcommand being run


def echo(message: str = "", *, err: bool = False) -> None:
    """Human output: stdout normally, stderr in --json mode (stdout is for the JSON)."""
    click.echo(message, err=err or JSON_MODE)


def result_object(
    *,
    command: str | None = None,
    exit_code: int,
    run_dir: str | None = None,
    hosts: dict[str, dict[str, int]] | None = None,
    errors: list[Any] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "ok": exit_code == EXIT_OK,
        "exit_code": exit_code,
        "command": command or COMMAND,
        "run_dir": run_dir or "",
        "hosts": hosts or {},
        "errors": error_objects(errors or []),
    }
    obj.update(extra)
    return obj


def error_objects(errors: list[Any]) -> list[dict[str, Any]]:
    """Every error as an object: a plain message ``"text"`` becomes ``{"message": "text"}``;
    objects are kept (they carry ``message`` and, where known, ``host``/``task``)."""
    return [dict(e) if isinstance(e, dict) else {"message": str(e)} for e in errors]


SCHEMA = "schemas/result.schema.json"  # inside the provision package


def schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) every --json object follows."""
    from importlib.resources import files

    return json.loads(files("provision").joinpath(SCHEMA).read_text())


def emit_json(obj: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")
    sys.stdout.flush()


def finish(obj: dict[str, Any]) -> int:
    """End a command: print the JSON object in --json mode; return the exit code."""
    obj["errors"] = error_objects(obj.get("errors") or [])  # run results pass through here
    if JSON_MODE:
        emit_json(obj)
    return int(obj["exit_code"])


def report_error(exc: ProvisionError, click_exc: click.ClickException | None = None) -> None:
    """Print an error the user can act on (stderr), plus the JSON object in --json mode."""
    problems = getattr(exc, "problems", None) or [str(exc)]
    if click_exc is not None and not JSON_MODE:
        click_exc.show()
    else:
        for line in problems:
            click.echo(f"error: {line}", err=True)
    if JSON_MODE:
        emit_json(result_object(exit_code=exc.exit_code, errors=list(problems)))
