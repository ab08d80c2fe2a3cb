"""Run a playbook through ansible-runner's Python API, with live progress and a failure summary.

Each run gets a private data dir ``runs_dir()/<UTC timestamp>-<command>/`` (mode 0700; the last
``KEEP_RUNS`` are kept). The full Ansible log is ``<run_dir>/artifacts/run/stdout`` and the
result object is ``<run_dir>/summary.json``. Extra vars are removed from the run dir after the
run so no secret stays behind in ``env/extravars``.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from provision.errors import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, EXIT_UNREACHABLE
from provision.failures import failure_message, strip_ansi
from provision.interrupt import current_options, interrupt_guard, resume_command
from provision.inventory import Inventory
from provision.paths import PLAYBOOKS_DIR, REPO_ROOT, ROLES_DIR, runs_dir
from provision.progress import Progress

KEEP_RUNS = 20
IDENT = "run"


@dataclass
class HostFailure:
    host: str
    task: str
    message: str
    unreachable: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {"host": self.host, "task": self.task, "message": self.message,
                "unreachable": self.unreachable}


@dataclass
class RunResult:
    command: str
    run_dir: Path
    status: str
    rc: int
    hosts: dict[str, dict[str, int]] = field(default_factory=dict)
    failures: list[HostFailure] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    elapsed: float = 0.0
    #: Set when the run was stopped by Ctrl-C/SIGTERM: where it was and how to resume.
    interrupted: dict[str, Any] | None = None

    @property
    def log_path(self) -> Path:
        return self.run_dir / "artifacts" / IDENT / "stdout"

    @property
    def exit_code(self) -> int:
        if self.interrupted is not None:
            return EXIT_INTERRUPTED
        if any(h["failed"] for h in self.hosts.values()) or any(
                not f.unreachable for f in self.failures):
            return EXIT_FAILED
        if any(h["unreachable"] for h in self.hosts.values()):
            return EXIT_UNREACHABLE
        if self.rc != 0 or self.status not in ("successful",):
            return EXIT_FAILED
        return EXIT_OK

    @property
    def ok(self) -> bool:
        return self.exit_code == EXIT_OK

    @property
    def errors(self) -> list[dict[str, Any]]:
        return [f.as_dict() for f in self.failures]

    @property
    def unreachable_hosts(self) -> list[str]:
        return sorted(h for h, s in self.hosts.items() if s["unreachable"])

    def to_json(self) -> dict[str, Any]:
        return {"ok": self.ok, "exit_code": self.exit_code, "command": self.command,
                "run_dir": str(self.run_dir), "log": str(self.log_path), "hosts": self.hosts,
                "errors": self.errors, "elapsed_s": round(self.elapsed, 2),
                **({"interrupted": self.interrupted} if self.interrupted is not None else {})}


def new_run_dir(command: str) -> Path:
    """Create ``runs_dir()/<ts>-<command>`` (0700) and prune all but the newest KEEP_RUNS."""
    base = runs_dir()
    base.mkdir(parents=True, exist_ok=True)
    os.chmod(base, 0o700)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S.%fZ")
    run_dir = base / f"{stamp}-{command.replace(' ', '-')}"
    run_dir.mkdir(mode=0o700)
    prune_runs(base, KEEP_RUNS)
    return run_dir


def prune_runs(base: Path, keep: int) -> list[Path]:
    runs = sorted(p for p in base.iterdir() if p.is_dir())
    removed = runs[:-keep] if len(runs) > keep else []
    for old in removed:
        shutil.rmtree(old, ignore_errors=True)
    return removed


def _failure_message(res: dict[str, Any]) -> str:
    """Module message plus its cause (program, URL, HTTP status) and the tail of stderr/stdout:
    short, enough to act on. See :mod:`provision.failures`."""
    return failure_message(res)


def _envvars(extra: dict[str, str] | None) -> dict[str, str]:
    bindir = os.path.dirname(sys.executable)
    env = {
        "ANSIBLE_CONFIG": str(REPO_ROOT / "ansible.cfg"),
        "ANSIBLE_ROLES_PATH": str(ROLES_DIR),
        "PATH": bindir + os.pathsep + os.environ.get("PATH", ""),
        "ANSIBLE_FORCE_COLOR": "0",
        # ansible-runner turns host key checking off unless told otherwise: keep it on.
        "ANSIBLE_HOST_KEY_CHECKING": "True",
    }
    env.update(extra or {})
    return env


def run_playbook(
    *,
    command: str,
    playbook: str,
    inventory: Inventory | Path | str,
    extravars: dict[str, Any] | None = None,
    limit: str | None = None,
    check: bool = False,
    verbosity: int = 0,
    tags: list[str] | None = None,
    skip_tags: list[str] | None = None,
    envvars: dict[str, str] | None = None,
    progress: Progress | None = None,
    quiet: bool = False,
) -> RunResult:
    """Run ``playbooks/<playbook>`` against ``inventory``; never raises for host failures."""
    import ansible_runner  # heavy: imported only when a playbook actually runs

    run_dir = new_run_dir(command)
    inv_path = inventory.path if isinstance(inventory, Inventory) else Path(inventory)
    play_path = Path(playbook) if os.path.isabs(playbook) else PLAYBOOKS_DIR / playbook
    steps = _named_steps(extravars)
    progress = progress or Progress(quiet=quiet, verbosity=verbosity, steps=steps)
    failures: list[HostFailure] = []
    events: list[dict[str, Any]] = []

    def on_event(event: dict[str, Any]) -> bool:
        kind = event.get("event", "")
        data = event.get("event_data") or {}
        events.append({"event": kind, "host": data.get("host"), "task": data.get("task"),
                       "play": data.get("play"), "changed": (data.get("res") or {}).get(
                           "changed") if isinstance(data.get("res"), dict) else None})
        if kind in ("runner_on_failed", "runner_on_unreachable") and not data.get(
                "ignore_errors"):
            res = data.get("res") if isinstance(data.get("res"), dict) else {}
            failures.append(HostFailure(
                host=str(data.get("host")), task=str(data.get("task") or "?"),
                message=_failure_message(res), unreachable=kind == "runner_on_unreachable"))
        progress.on_event(kind, data)
        return True  # keep the event in the artifacts

    cmdline = ["--check", "--diff"] if check else []
    if verbosity >= 2:
        cmdline.append("-" + "v" * verbosity)
    started = time.monotonic()
    progress.start(command)
    try:
        with interrupt_guard() as cancelled:
            runner = ansible_runner.run(
                private_data_dir=str(run_dir),
                ident=IDENT,
                playbook=str(play_path),
                inventory=str(inv_path.resolve()),
                extravars=extravars or {},
                limit=limit,
                tags=",".join(tags) if tags else None,
                skip_tags=",".join(skip_tags) if skip_tags else None,
                cmdline=" ".join(cmdline) or None,
                envvars={**PLAIN_OUTPUT, **_envvars(envvars)},
                event_handler=on_event,
                cancel_callback=cancelled or (lambda: False),
                settings={"pexpect_timeout": 1},  # how often a Ctrl-C is looked at
                quiet=True,
                suppress_env_files=True,
            )
        progress.interrupted = runner.status == "canceled"
    finally:
        progress.stop()
        for secret_file in ("env/extravars", "env/envvars", "env/cmdline"):
            (run_dir / secret_file).unlink(missing_ok=True)
    plain_log(run_dir / "artifacts" / IDENT / "stdout")
    hosts = _recap_hosts(runner.stats or {}) or {h: dict(c) for h, c in progress.hosts.items()}
    result = RunResult(command=command, run_dir=run_dir, status=runner.status,
                       rc=int(runner.rc or 0), hosts=hosts, failures=failures, events=events,
                       elapsed=time.monotonic() - started)
    if progress.interrupted:
        result.interrupted = _interruption(command, steps, progress)
        _say_interrupted(result.interrupted)
    (run_dir / "summary.json").write_text(json.dumps(result.to_json(), indent=2))
    return result


def _recap_hosts(stats: dict[str, Any]) -> dict[str, dict[str, int]]:
    """ansible-runner's stats (Ansible's recap) -> per-host counts; {} when there is none."""
    hosts: dict[str, dict[str, int]] = {}
    names: set[str] = set()
    for key in ("ok", "changed", "failures", "dark", "skipped", "processed"):
        names |= set((stats.get(key) or {}).keys())
    for host in sorted(names):
        hosts[host] = {
            "ok": stats.get("ok", {}).get(host, 0),
            "changed": stats.get("changed", {}).get(host, 0),
            "failed": stats.get("failures", {}).get(host, 0),
            "unreachable": 1 if stats.get("dark", {}).get(host, 0) else 0,
            "skipped": stats.get("skipped", {}).get(host, 0),
        }
    return hosts


# -- plain-text log ---------------------------------------------------------------------
#: ansible-playbook runs under a pseudo-terminal and would colour its output (and so the log).
PLAIN_OUTPUT = {"ANSIBLE_NOCOLOR": "1"}


def plain_log(path: Path) -> None:
    """Strip any ANSI escape left in the run log (module output may carry its own)."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return
    plain = strip_ansi(text)
    if plain != text:
        path.write_text(plain)


# -- interruption (Ctrl-C) ------------------------------------------------------------------
def _named_steps(extravars: dict[str, Any] | None) -> list[str]:
    """The command's named steps, when it has them (bootstrap's selected components)."""
    steps = (extravars or {}).get("provision_components")
    return [str(s) for s in steps] if isinstance(steps, list) else []


def _interruption(command: str, steps: list[str], progress: Progress) -> dict[str, Any]:
    where = progress.where()
    return {**where, "resume": resume_command(command, steps, where.get("step"),
                                              current_options())}


def _say_interrupted(info: dict[str, Any]) -> None:
    from provision import output

    step = f" (step {info['step']})" if info.get("step") else ""
    on = f" on {', '.join(info['hosts'])}" if info.get("hosts") else ""
    output.echo(f"interrupted at task '{info.get('task') or '?'}'{step}{on}; "
                "hosts may be half-way through that task", err=True)
    if info.get("resume"):
        output.echo(f"to resume: {info['resume']}", err=True)
