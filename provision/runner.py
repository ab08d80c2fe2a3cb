"""Run a playbook through ansible-runner's Python API, with live progress and a failure summary.

Each run gets a private data dir ``runs_dir()/<UTC timestamp>-<command>/`` (mode 0700; the last
``KEEP_RUNS`` are kept). The full Ansible log is ``<run_dir>/artifacts/run/stdout`` and the
result object is ``<run_dir>/summary.json``.

Connection security and secrets (see ``provision.connection`` and ``provision.redact``):

- every SSH host gets ``ansible_ssh_args`` from its connection spec (strict host key checking
  against ``ssh_known_hosts_file``, the same file doctor checks), through a second inventory
  source written into the run dir;
- the ControlPersist sockets live in a private directory of this run (``<run_dir>/cp``, or a
  short private temp dir when that path is too long for a socket), so no other run, with other
  known_hosts or checking options, can ride on a master this run opened; the masters are
  stopped and the directory removed after the run;
- facts are gathered once per run and cached in ``<run_dir>/artifacts/run/fact_cache``
  (jsonfile), never shared across runs; SSH multiplexing (ControlPersist) and pipelining are
  on (ansible.cfg; proved effective by tests/test_runner_ssh.py: one SSH login per host per
  run, no file transfer);
- ansible-playbook gets a minimal environment (``redact.minimal_env``), not the caller's; extra
  vars go in a 0600 file (not on the command line), removed after the run; every event is
  masked before ansible-runner writes it, and after the run every file of the run dir is
  scrubbed of secret values (secret-named environment variables, no_log/secret-named inventory
  and extra vars).

Speed: ansible-playbook is started through ``provision.playbook_main`` (Ansible's own entry
point; the process ends once its exit handlers ran, without the interpreter's teardown), and
the finished child's pty is closed without ptyprocess's 0.1 s wait (:func:`no_close_delay`).
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from provision.connection import ansible_ssh_args, connection_spec
from provision.errors import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, EXIT_UNREACHABLE
from provision.failures import failure_message, strip_ansi
from provision.interrupt import current_options, interrupt_guard, resume_command
from provision.inventory import Inventory, load_inventory
from provision.paths import PLAYBOOKS_DIR, REPO_ROOT, ROLES_DIR, runs_dir
from provision.plan import playbook_plan
from provision.progress import Progress, skip_unselected
from provision.redact import (
    env_secret_values,
    minimal_env,
    redact_obj,
    scrub_tree,
    secret_values,
)
from provision.reports import reports_from_stats
from provision.vault import runner_args

KEEP_RUNS = 20
IDENT = "run"
SSH_CONNECTIONS = ("ssh", "paramiko", "smart")
# A unix socket path holds 108 bytes on Linux (104 on BSDs); Ansible adds "/" and a 10-character
# name, ssh ".XXXXXXXXXXXXXXXX" while it sets up the master.
MAX_CONTROL_DIR_LEN = 70
#: The run's fact cache (ansible's jsonfile cache plugin), where ansible-runner keeps it.
FACTS_DIR = f"artifacts/{IDENT}/fact_cache"


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
    #: What the roles reported for the user (provision/reports.py): host, task, message.
    reports: list[dict[str, str]] = field(default_factory=list)
    #: The data the play returned with ``set_stats`` (see run_report).
    stats_data: dict[str, Any] = field(default_factory=dict)

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
                "reports": self.reports,
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


def _envvars(extra: dict[str, str] | None, control_dir: Path, run_dir: Path) -> dict[str, str]:
    bindir = os.path.dirname(sys.executable)
    env = {
        "ANSIBLE_CONFIG": str(REPO_ROOT / "ansible.cfg"),
        "ANSIBLE_ROLES_PATH": str(ROLES_DIR),
        "PATH": bindir + os.pathsep + os.environ.get("PATH", ""),
        "ANSIBLE_FORCE_COLOR": "0",
        # ansible-runner turns host key checking off unless told otherwise: keep it on.
        "ANSIBLE_HOST_KEY_CHECKING": "True",
        # ControlPersist masters of this run only (see module docstring)
        "ANSIBLE_SSH_CONTROL_PATH_DIR": str(control_dir),
        # facts gathered once per run (gathering = smart), kept in this run's dir only:
        # never shared with another run (whose hosts may have changed meanwhile)
        "ANSIBLE_CACHE_PLUGIN": "jsonfile",
        "ANSIBLE_CACHE_PLUGIN_CONNECTION": str(run_dir / FACTS_DIR),
    }
    env.update(extra or {})
    return env


def quick_exit_command(command: list[str]) -> list[str]:
    """ansible-runner's ansible-playbook command, run through provision.playbook_main: the same
    program and arguments, and the process ends as soon as Ansible's exit handlers ran (no
    interpreter teardown). Any other command is returned as it is."""
    if not command or Path(command[0]).name != "ansible-playbook":
        return command
    return [sys.executable, "-P", "-m", "provision.playbook_main", *command]


def no_close_delay() -> None:
    """ansible-runner closes its pexpect child after the child has exited and was reaped
    (ansible_runner/runner.py: ``while child.isalive()``, ``child.expect(pexpect.EOF)``,
    ``child.close()``); ptyprocess's close then sleeps ``delayafterclose`` (0.1 s, "give kernel
    time to update process status", ptyprocess/ptyprocess.py PtyProcess.close) although that
    status is already known (``terminated``). This drops that sleep for a reaped child only;
    a child still running is closed exactly as before."""
    import ptyprocess

    close = ptyprocess.PtyProcess.close
    if getattr(close, "_provision_reaped_no_delay", False):
        return

    def close_reaped(self: Any, force: bool = True) -> None:
        if self.terminated:  # set by isalive()/wait() once waitpid returned the child's status
            self.delayafterclose = 0
        close(self, force)

    close_reaped._provision_reaped_no_delay = True  # type: ignore[attr-defined]
    ptyprocess.PtyProcess.close = close_reaped  # type: ignore[method-assign]


def _runner_env(runner_env: dict[str, str], ours: dict[str, str]) -> dict[str, str]:
    """What ansible-playbook runs with: the allow-listed caller variables, what provision sets
    and what ansible-runner added; nothing else of the caller's environment."""
    added = {k: v for k, v in runner_env.items()
             if k not in os.environ or os.environ[k] != v}
    return {**minimal_env(os.environ), **added, **ours}


def _control_dir(run_dir: Path) -> Path:
    """A fresh private (0700) directory for this run's SSH control sockets: ``<run_dir>/cp``,
    or a private temp dir when that path is too long for a socket."""
    inside = run_dir / "cp"
    if len(str(inside)) <= MAX_CONTROL_DIR_LEN:
        inside.mkdir(mode=0o700)
        return inside
    base = tempfile.gettempdir()
    if len(base) > MAX_CONTROL_DIR_LEN - 20:
        base = "/tmp"  # noqa: S108 - a private mkdtemp dir, 0700
    return Path(tempfile.mkdtemp(prefix="provision-cp-", dir=base))


def _stop_control_masters(control_dir: Path) -> None:
    """Stop the ssh masters this run started (all at once: one after the other cost ~8 ms
    per host, 0.11-0.14 s of a 16-host run) and remove their directory."""
    if not control_dir.is_dir():
        return
    stops = []
    for sock in control_dir.iterdir():
        if sock.is_socket():
            try:
                stops.append(subprocess.Popen(  # noqa: S603 - fixed argv, our socket
                    ["ssh", "-o", f"ControlPath={sock}", "-O", "exit", "provision"],
                    stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL))
            except OSError:
                break  # no ssh client: no master was started with one either
    deadline = time.monotonic() + 10
    for stop in stops:
        try:
            stop.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            stop.kill()
            stop.wait()
    shutil.rmtree(control_dir, ignore_errors=True)


def _load(inventory: Inventory | Path | str) -> Inventory | None:
    if isinstance(inventory, Inventory):
        return inventory
    try:
        return load_inventory(inventory)
    except Exception:  # noqa: BLE001 - Ansible reports an unreadable inventory itself
        return None


def _connection_inventory(run_dir: Path, inv: Inventory | None) -> Path | None:
    """A second inventory source with ``ansible_ssh_args`` per SSH host (connection spec)."""
    if inv is None:
        return None
    hosts: dict[str, dict[str, str]] = {}
    for name, host in inv.hosts.items():
        if host.connection not in SSH_CONNECTIONS:
            continue
        try:
            hosts[name] = {"ansible_ssh_args": ansible_ssh_args(connection_spec(host))}
        except (TypeError, ValueError):  # a bad ansible_port: validation names it
            continue
    if not hosts:
        return None
    path = run_dir / "connection.json"
    path.write_text(json.dumps({"all": {"hosts": hosts}}, indent=1))
    path.chmod(0o600)
    return path


def _write_extravars(run_dir: Path, extravars: dict[str, Any] | None) -> None:
    """Extra vars in ``env/extravars`` (0600; ansible-runner passes ``-e @file``), never on
    the command line, where ``ps`` and the ``command`` artifact would show them."""
    env_dir = run_dir / "env"
    env_dir.mkdir(mode=0o700, exist_ok=True)
    path = env_dir / "extravars"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(extravars or {}, f)


def insecure_hosts(inv: Inventory | None) -> list[str]:
    """SSH hosts whose host keys are not checked (``provision_insecure_ssh_host_keys: true``)."""
    if inv is None:
        return []
    return sorted(n for n, h in inv.hosts.items()
                  if h.connection in SSH_CONNECTIONS and not connection_spec(h).check_host_key)


def insecure_warning(hosts: list[str]) -> str:
    return (f"warning: SSH host keys are NOT checked for {', '.join(hosts)} "
            f"(provision_insecure_ssh_host_keys: true): anyone on the network path can "
            f"impersonate these hosts")


def run_secrets(inv: Inventory | None, extravars: dict[str, Any] | None) -> set[str]:
    """Values that must not stay in any artifact of the run."""
    found = env_secret_values(os.environ) | secret_values(extravars or {})
    if inv is not None:
        for host in inv.hosts.values():
            found |= secret_values(host.vars)
        found |= inv.secrets  # decrypted !vault values, whatever their names
        if inv.vault is not None and inv.vault.password is not None:
            found.add(inv.vault.password.decode(errors="replace"))
    return found


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
    """Run ``playbooks/<playbook>`` against ``inventory``; never raises for host failures.
    ``quiet``: no PLAY/TASK lines (the command prints its own report), only the live status
    line on a terminal and "still running" lines, on stderr."""
    import ansible_runner.interface  # heavy: imported only when a playbook actually runs

    run_dir = new_run_dir(command)
    inv_path = inventory.path if isinstance(inventory, Inventory) else Path(inventory)
    play_path = Path(playbook) if os.path.isabs(playbook) else PLAYBOOKS_DIR / playbook
    steps = _named_steps(extravars)
    # quiet: the command prints a report of its own; the live status line (a terminal only)
    # and the "still running" lines still show that it moves, on stderr
    progress = progress or Progress(verbosity=verbosity, steps=steps, event_lines=not quiet,
                                    stream=sys.stderr if quiet else None)
    if not progress.plan:
        progress.plan = playbook_plan(play_path, skip_role=skip_unselected(steps))
    failures: list[HostFailure] = []
    events: list[dict[str, Any]] = []
    stats_data: dict[str, Any] = {}
    inv = _load(inventory)
    secrets = run_secrets(inv, extravars)

    def on_event(event: dict[str, Any]) -> bool:
        redact_obj(event, secrets)  # in place: ansible-runner writes the masked event
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
        if kind == "playbook_on_stats" and isinstance(data.get("artifact_data"), dict):
            stats_data.update(data["artifact_data"])
        progress.on_event(kind, data)
        return True  # keep the event in the artifacts

    cmdline = ["--check", "--diff"] if check else []
    if verbosity >= 2:
        cmdline.append("-" + "v" * verbosity)
    vault_args, vault_prompts = runner_args(inv.vault if inv is not None else None)
    cmdline += [shlex.quote(a) for a in vault_args]
    control_dir = _control_dir(run_dir)
    inventories = [str(inv_path.resolve())]
    overlay = _connection_inventory(run_dir, inv)
    if overlay is not None:
        inventories.append(str(overlay))
    _write_extravars(run_dir, extravars)
    envvars = {**PLAIN_OUTPUT, **_envvars(envvars, control_dir, run_dir)}
    unchecked = insecure_hosts(inv)
    if unchecked:
        print(insecure_warning(unchecked), file=sys.stderr)
    started = time.monotonic()
    progress.start(command)
    try:
        with interrupt_guard() as cancelled:
            runner = ansible_runner.interface.init_runner(
                private_data_dir=str(run_dir),
                ident=IDENT,
                playbook=str(play_path),
                inventory=inventories,
                limit=limit,
                tags=",".join(tags) if tags else None,
                skip_tags=",".join(skip_tags) if skip_tags else None,
                cmdline=" ".join(cmdline) or None,
                passwords=vault_prompts or None,  # --ask-vault-pass: answered, never written
                envvars=envvars,
                event_handler=on_event,
                cancel_callback=cancelled or (lambda: False),
                settings={"pexpect_timeout": 1},  # how often a Ctrl-C is looked at
                quiet=True,
                suppress_env_files=True,
            )
            runner.config.env = _runner_env(runner.config.env, envvars)
            runner.config.command = quick_exit_command(runner.config.command)
            no_close_delay()
            runner.run()
        progress.interrupted = runner.status == "canceled"
    finally:
        progress.stop()
        _stop_control_masters(control_dir)
        for secret_file in ("env/extravars", "env/envvars", "env/cmdline"):
            (run_dir / secret_file).unlink(missing_ok=True)
        scrub_tree(run_dir, secrets)
        if unchecked:  # in the run's log too
            with (run_dir / "artifacts" / IDENT / "stdout").open("a") as log:
                log.write("\n" + insecure_warning(unchecked) + "\n")
    plain_log(run_dir / "artifacts" / IDENT / "stdout")
    hosts = _recap_hosts(runner.stats or {}) or {h: dict(c) for h, c in progress.hosts.items()}
    failures = _unrescued(failures, hosts)
    result = RunResult(command=command, run_dir=run_dir, status=runner.status,
                       rc=int(runner.rc or 0), hosts=hosts, failures=failures, events=events,
                       elapsed=time.monotonic() - started, stats_data=stats_data)
    result.reports = reports_from_stats(run_report(result))
    if progress.interrupted:
        result.interrupted = _interruption(command, steps, progress)
        _say_interrupted(result.interrupted)
    (run_dir / "summary.json").write_text(json.dumps(result.to_json(), indent=2))
    return result


#: The one key under which roles return data to Python (``set_stats``, ``per_host: false``).
REPORT_KEY = "provision"


def run_report(result: RunResult) -> dict[str, Any]:
    """What the play returned to Python: the one way back from Ansible.

    A role returns data with ``ansible.builtin.set_stats`` under the ``provision`` key, built as
    one Jinja expression so that host names can be keys (YAML keys are never templated)::

        - name: Return the snapshot to provision
          ansible.builtin.set_stats:
            data:
              provision: "{{ {'snapshots': {inventory_hostname: {'path': snap_path}}} }}"
            per_host: false

    ``aggregate`` (the default) merges dicts recursively across hosts and tasks (a list inside
    is replaced, not extended: key per-host data by host name); ansible-runner hands the
    result over as ``artifact_data`` in the stats event. The data is redacted like every event
    (secrets never come back this way). {} when the play returned nothing or ended before
    its stats (an unreachable host, Ctrl-C)."""
    data = result.stats_data.get(REPORT_KEY)
    return data if isinstance(data, dict) else {}


def _unrescued(failures: list[HostFailure], hosts: dict[str, dict[str, int]]
               ) -> list[HostFailure]:
    """The failures that failed the run: a task failure a block's ``rescue`` handled (a
    retried step that then succeeded) leaves its host at failed=0 in Ansible's recap and is
    not one. Kept: unreachable hosts, hosts the recap counts as failed, hosts without a recap
    (the run ended before it)."""
    return [f for f in failures if f.unreachable or f.host not in hosts
            or hosts[f.host]["failed"] or hosts[f.host]["unreachable"]]


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
