"""One documented JSON schema (provision/schemas/result.schema.json) for every command's
--json output (issue 19), success and error paths.

The command tree is walked (a new command is covered without editing this file) and each
leaf runs in-process with ``--json`` in four situations: a successful run, a run where a host
failed a task, a run stopped by the cluster check ("no cluster"), and a usage error. As in
tests/test_global_options.py nothing real runs: the runner, doctor's probes and the lab
manager are recorders that return those results (simulated). Each stdout must be exactly one
JSON object that validates against the schema, with the process exit code in it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from test_global_options import ARGS, LEAVES, invoke, world  # noqa: F401 - the fixture

from provision import output
from provision.runner import HostFailure, RunResult

jsonschema = pytest.importorskip("jsonschema")

SCHEMA = output.schema()
VALIDATOR = jsonschema.Draft202012Validator(SCHEMA)
SITUATIONS = ("ok", "failed", "no-cluster", "usage")


def test_the_schema_is_a_valid_draft_2020_12_schema_and_ships_in_the_package() -> None:
    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    assert SCHEMA["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    path = Path(output.__file__).parent / output.SCHEMA
    assert json.loads(path.read_text()) == SCHEMA
    pyproject = (Path(__file__).parent.parent / "pyproject.toml").read_text()
    assert 'provision = ["schemas/*.json"]' in pyproject


def _failing_runs(monkeypatch: pytest.MonkeyPatch, tmp: Path, message: str) -> None:
    """Every playbook run ends with cp1 failed at a task with ``message`` (simulated)."""
    import provision.runner

    def run_playbook(**kw: Any) -> RunResult:
        run_dir = tmp / f"failed-run-{len(list(tmp.glob('failed-run-*')))}"
        run_dir.mkdir()
        return RunResult(command=kw["command"], run_dir=run_dir, status="failed", rc=2,
                         hosts={"cp1": {"ok": 1, "changed": 0, "failed": 1, "unreachable": 0,
                                        "skipped": 0}},
                         failures=[HostFailure("cp1", "Some task", message)], elapsed=1.5)

    monkeypatch.setattr(provision.runner, "run_playbook", run_playbook)


def _command_line(world: Any, leaf: str, situation: str) -> list[str]:  # noqa: F811
    own = [w.format(tmp=world.tmp, inv=world.inv) for w in ARGS.get(leaf, [])]
    base = [] if leaf == "init" or leaf.startswith("lab") else ["-i", world.inv]
    if situation == "usage":
        own = [*own, "--no-such-option"]
    return [*base, "--json", *leaf.split(), *own]


def _problems(obj: dict[str, Any]) -> list[str]:
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
            for e in VALIDATOR.iter_errors(obj)]


@pytest.mark.parametrize("situation", SITUATIONS)
@pytest.mark.parametrize("leaf", LEAVES)
def test_every_command_prints_one_object_that_follows_the_schema(
        leaf: str, situation: str, world: Any, capsys: pytest.CaptureFixture[str],  # noqa: F811
        monkeypatch: pytest.MonkeyPatch) -> None:
    if situation == "failed":
        _failing_runs(monkeypatch, world.tmp, "boom: the cause")
    if situation == "no-cluster":
        _failing_runs(monkeypatch, world.tmp, "no cluster: cp1 has no /etc/kubernetes/"
                                              "admin.conf, so bootstrap has not built a "
                                              "cluster there")
    code, out, err = invoke(_command_line(world, leaf, situation), capsys)
    obj = json.loads(out)  # exactly one JSON object on stdout
    assert isinstance(obj, dict), out
    assert _problems(obj) == [], (leaf, situation, obj, err)
    assert obj["exit_code"] == code, (obj, err)
    if situation == "usage":  # lab ssh refuses --json itself (its output is the command's)
        says = "--json" if leaf == "lab ssh" else "--no-such-option"
        assert code == 2 and says in obj["errors"][0]["message"], obj
    if code != 0:  # a failure always says why, as objects
        assert obj["errors"] and all(e["message"] for e in obj["errors"]), (obj, err)


def test_the_schema_rejects_the_old_shapes() -> None:
    good = output.result_object(exit_code=1, errors=["x"])
    assert good["errors"] == [{"message": "x"}] and _problems(good) == []
    assert _problems({**good, "errors": ["a string"]})
    assert _problems({**good, "seconds": 1.0})
    assert _problems({**good, "ok": True})
    assert _problems({**good, "hops": [{"hop": 1, "to": "1.32.1", "ok": True,
                                        "seconds": 3.0}]})
