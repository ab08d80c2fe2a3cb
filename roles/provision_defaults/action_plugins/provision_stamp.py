"""``provision_stamp``: runs library/provision_stamp.py on the host as a plain Python script.

The stamp is read on every run of every stamped role, so its cost is the cost of a no-op run.
As an Ansible module it costs the host about 0.26 CPU-s (the module payload built on the
controller, then unpacked and started with ansible's module_utils on the host; measured in a lab
container, become included) for a few ``dpkg-query``/``systemctl`` calls and file hashes. This
action sends the module file's own code instead: ``<python> -I -S -c BOOT``, with the arguments
as JSON and the code on its standard input (a short command line: sudo logs command lines), one
command over the connection (become applied as for any task), about 0.05 CPU-s on the host.
The code is the same file, so the state read, the comparison and the record are the module's.

The arguments are checked here, on the controller, against the module's own argument spec and
name patterns before the host is contacted. Without an interpreter known from the inventory or
the discovered facts (ansible_python_interpreter, discovered_interpreter_python), the task runs
the module the ordinary way, which discovers one. The result says which (``ran_as``: script
or module).
"""

from __future__ import annotations

import functools
import json
import shlex
from pathlib import Path
from typing import Any

from ansible import constants as C
from ansible.plugins.action import ActionBase

MODULE = Path(__file__).resolve().parent.parent / "library" / "provision_stamp.py"
# The script needs only the standard library: isolated mode (no PYTHON* variables, no user or
# working directory on sys.path) and no site module (~2 ms of each start on the host).
FLAGS = ("-I", "-S")
# What ``-c`` runs: the payload (one JSON line) and the module's code are read from standard
# input, not given as arguments. A command line is what sudo logs (syslog: auth.log, the
# journal), in ~1 kB pieces ("command continued"): with the code as an argument every gate and
# stamp read wrote ~25 such lines of Python into each host's log, on every run.
BOOT = ("import sys;d=sys.stdin.buffer.read().decode();p,_,s=d.partition('\\n');"
        "sys.argv=['-c',p];exec(compile(s,'provision_stamp.py','exec'),{'__name__':'__main__'})")


@functools.cache
def _module_namespace() -> dict[str, Any]:
    """The module file's definitions (its argument spec and checks), without running it."""
    namespace: dict[str, Any] = {"__name__": "provision_stamp_module"}
    namespace["SOURCE"] = MODULE.read_text()
    exec(compile(namespace["SOURCE"], str(MODULE), "exec"), namespace)  # noqa: S102 - our file
    return namespace


def interpreter(task_vars: dict[str, Any], templar: Any) -> str | None:
    """The host's Python as the inventory names it or fact discovery found it, else None."""
    value = task_vars.get("ansible_python_interpreter")
    if value:
        value = templar.template(value)
    else:
        value = (task_vars.get("ansible_facts") or {}).get("discovered_interpreter_python")
    if not isinstance(value, str) or not value.startswith("/") or any(c.isspace() for c in value):
        return None
    return value


def last_json_line(stdout: str) -> dict[str, Any] | None:
    """The script's answer: the last line of its output that is a JSON object."""
    for line in reversed(stdout.splitlines()):
        line = line.strip()
        if line.startswith("{"):
            try:
                answer = json.loads(line)
            except ValueError:
                continue
            if isinstance(answer, dict):
                return answer
    return None


def run_script(action: ActionBase, payload: dict[str, Any], task_vars: dict[str, Any],
               discover: bool = False) -> dict[str, Any] | None:
    """The module file's code run on the host as ``<python> -I -S -c BOOT``, the payload as JSON
    and the code on its standard input (the task's become applies): its JSON answer, a failed
    result naming the interpreter and its error output, or None without a known interpreter.
    With ``discover`` and no interpreter known, the host's Python is found in the same command
    as Ansible's interpreter discovery finds it (ansible-core 2.19
    executor/interpreter_discovery.py: the first of INTERPRETER_PYTHON_FALLBACK that
    ``command -v`` finds). Shared with provision_host_gate."""
    python = interpreter(task_vars, action._templar)
    source = _module_namespace()["SOURCE"]
    payload = {**payload, "_check_mode": bool(action._task.check_mode)}
    if python is not None:
        cmd = " ".join(shlex.quote(a) for a in (python, *FLAGS, "-c", BOOT))
    elif discover:
        names = C.config.get_config_value("INTERPRETER_PYTHON_FALLBACK", variables=task_vars)
        python = "the first of " + ", ".join(str(n) for n in names)
        cmd = ("for p in " + " ".join(shlex.quote(str(n)) for n in names) + "; do "
               'P=$(command -v "$p") && exec "$P" ' + " ".join(FLAGS) + " -c "
               + shlex.quote(BOOT) + "; done; echo 'no Python found' >&2; exit 127")
    else:
        return None
    stdin = (json.dumps(payload) + "\n" + source).encode()
    done = action._low_level_execute_command(cmd, sudoable=True, in_data=stdin)
    answer = last_json_line(done.get("stdout", ""))
    if done.get("rc") != 0 or answer is None:
        err = (done.get("stderr") or done.get("stdout") or "").strip()[-2000:]
        return {"failed": True, "rc": done.get("rc"),
                "msg": f"{action._task.action}: {python} on the host failed (rc "
                       f"{done.get('rc')}): {err or 'no output'}"}
    return answer


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _VALID_ARGS = frozenset(_module_namespace()["ARGUMENT_SPEC"])

    def run(self, tmp: Any = None, task_vars: dict[str, Any] | None = None) -> dict[str, Any]:
        task_vars = task_vars or {}
        result = super().run(tmp, task_vars)
        module = _module_namespace()
        # fails the task on an unknown option or a wrong type, before the host is contacted
        _, params = self.validate_argument_spec(argument_spec=module["ARGUMENT_SPEC"])
        bad = module["problem"](params)
        if bad:
            return {**result, "failed": True, "msg": bad}
        answer = run_script(self, params, task_vars)
        if answer is None:
            return {**result, **self._execute_module(module_name="provision_stamp",
                                                     module_args=self._task.args,
                                                     task_vars=task_vars), "ran_as": "module"}
        return {**result, **answer, "ran_as": "script"}
