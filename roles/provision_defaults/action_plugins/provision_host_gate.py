"""``provision_host_gate``: skip a layer of roles on a host when nothing it depends on changed.

Each stamped role (library/provision_stamp.py) already skips its install steps when its inputs
and the state it manages are what they were, but still costs a few task results per host on a
no-op run (its include, argument check, stamp read and skipped includes: ~19 for bootstrap's
host layer), and task results are what the controller pays per host (a fork, the host's
variables, the callbacks). The gate answers for the whole layer with one task per host:

* the **inputs digest**, computed here on the controller: every variable of the host that is
  not a fact, a magic or connection variable or private (a leading ``_``: registered results
  and role internals, derived from public ones), the facts the layer's roles read
  (``FACTS``), the arguments, and the content of every file under ``roles/`` and
  ``playbooks/`` (a new provision runs the roles again);
* ``peers``: what each node of the run contributes to the others (its /etc/hosts line's
  parts), compared node by node on the host, so a ``--limit`` run (the other nodes' lines are
  kept as the host has them) can hold too;
* on the host, in one command (the stamp module's code as a script, as provision_stamp runs):
  the digest recorded when the layer last finished, and every role stamp of the layer
  verified again against the live state (a removed package, an edited file, a stopped service
  is drift: the gate does not hold and the roles repair it), plus files and paths it watches.

``record: true`` (at the end of the layer, with the read's ``digest``) writes the gate file
when every role stamp holds. The result: ``current``, ``why`` (when not), ``digest``,
``per_run`` (role -> steps a role recorded as running on every run: the playbook runs only
those). Without a known interpreter the gate never holds (the roles run).
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from ansible.plugins.action import ActionBase

HERE = Path(__file__).resolve().parent


def tree_root(here: Path = HERE) -> Path:
    """The tree holding roles/ and playbooks/: this file is roles/provision_defaults/
    action_plugins/ or (a link, or a copy in the Ansible collection) playbooks/action_plugins/."""
    for parent in here.parents:
        if (parent / "roles" / "provision_defaults").is_dir() and (parent / "playbooks").is_dir():
            return parent
    raise RuntimeError(f"provision_host_gate: no roles/ and playbooks/ above {here}")


ROOT = tree_root()

# The facts the host layer's roles read (tests/test_host_gate.py checks every ansible_*
# fact the roles name is here): a change of one (another address, hostname, release) makes the
# gate miss and the roles run. Not all_ipv4_addresses: the proxy role's no_proxy list is its
# only reader, and with a proxy set every node's addresses are in ``peers``
# (playbooks/filter_plugins/provision_host_gate.py); docker's install adds an address
# (docker0), which would make the run after every first install miss. Not fqdn:
# no role reads it, and it comes from name resolution (it can change with DNS, not the host).
FACTS = ("hostname", "distribution", "distribution_release", "distribution_version",
         "distribution_major_version", "os_family", "architecture", "machine",
         "virtualization_type", "virtualization_role", "default_ipv4",
         "discovered_interpreter_python", "lsb", "service_mgr")
# ansible_* variables that are inputs (all other ansible_* are facts, magic variables of the
# run or connection settings: how the host is reached, not what it should become).
# Not ansible_play_hosts_all: a --limit run's nodes are compared one by one (peers). Not check
# or diff mode: they change what a run reports, not what the host should become (a check run
# where the gate holds rightly says nothing would change; it never records).
ANSIBLE_INPUTS = frozenset(("ansible_host", "ansible_user", "ansible_run_tags",
                            "ansible_skip_tags", "ansible_python_interpreter"))
# Magic variables that change from run to run or name paths of this controller.
NOT_INPUTS = frozenset(("hostvars", "vars", "omit", "environment", "play_hosts",
                        "inventory_dir", "inventory_file", "playbook_dir", "role_names",
                        "role_path", "role_name", "role_uuid", "groups_all"))


def _stamp_action() -> Any:
    """The sibling action plugin provision_stamp (its script runner and module's spec)."""
    path = ROOT / "roles" / "provision_defaults" / "action_plugins" / "provision_stamp.py"
    spec = importlib.util.spec_from_file_location("provision_stamp_action", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


STAMP = _stamp_action()


@functools.cache
def tree_digest(root: Path = ROOT) -> str:
    """sha256 over the path and content of every file under roles/ and playbooks/."""
    h = hashlib.sha256()
    for top in ("roles", "playbooks"):
        for path in sorted((root / top).rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                h.update(str(path.relative_to(root)).encode() + b"\0")
                h.update(hashlib.sha256(path.read_bytes()).digest())
    return h.hexdigest()


def plain(value: Any, render: Callable[[str], Any] | None = None) -> Any:
    """A JSON-able copy (mappings with string keys, lists, strings, numbers). With ``render``,
    a string holding a template is replaced by its value: an inventory variable that reads a
    fact of a second interface counts with what it reads, not as its text."""
    if isinstance(value, Mapping):
        return {str(k): plain(v, render) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [plain(v, render) for v in value]
    if value is None or isinstance(value, (bool, int, float)):
        return value
    if render is not None and isinstance(value, str) and ("{{" in value or "{%" in value):
        return plain(render(value))
    return str(value)


def is_input(name: str, facts: Mapping[str, Any]) -> bool:
    """Whether the variable NAME of the task's variables is an input of the layer."""
    if name.startswith("_") or name in NOT_INPUTS or name in facts:
        return False
    return not name.startswith("ansible_") or name in ANSIBLE_INPUTS


def peer_digests(peers: Mapping[str, Any] | None) -> dict[str, str]:
    """node -> digest of what it contributes (compared node by node on the host)."""
    return {str(node): hashlib.sha256(json.dumps(plain(parts), sort_keys=True).encode())
            .hexdigest() for node, parts in (peers or {}).items()}


def inputs_digest(task_vars: Mapping[str, Any], args: Mapping[str, Any],
                  render: Callable[[str], Any] | None = None) -> str:
    """The digest of everything the layer's roles decide from (see the module docstring);
    ``render`` gives a templated variable's value (the task's templar)."""
    facts = task_vars.get("ansible_facts") or {}
    data = {"vars": {k: plain(v, render) for k, v in task_vars.items() if is_input(k, facts)},
            "facts": {k: plain(facts.get(k)) for k in FACTS},
            "args": plain({k: v for k, v in args.items() if k != "peers"}),
            "tree": tree_digest()}
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


class ActionModule(ActionBase):
    def _render(self, text: str) -> Any:
        """A templated variable's value; one that does not render (it reads what only a role
        defines) counts as its text and the error's kind (the same on every run)."""
        try:
            return self._templar.template(text)
        except Exception as exc:  # noqa: BLE001 - any template error: hash the text instead
            return f"{text} !{type(exc).__name__}"

    TRANSFERS_FILES = False
    SPEC = {**{k: v for k, v in STAMP._module_namespace()["GATE_SPEC"].items() if k != "digest"},
            "digest": {"type": "str"}, "peers": {"type": "dict"}}
    _VALID_ARGS = frozenset(SPEC)

    def run(self, tmp: Any = None, task_vars: dict[str, Any] | None = None) -> dict[str, Any]:
        task_vars = task_vars or {}
        result = super().run(tmp, task_vars)
        _, params = self.validate_argument_spec(argument_spec=self.SPEC)
        gate = {**params, "peers": peer_digests(params.get("peers"))}
        if not gate.get("digest"):
            gate["digest"] = inputs_digest(task_vars, params, self._render)
        bad = STAMP._module_namespace()["gate_problem"](gate)
        if bad:
            return {**result, "failed": True, "msg": bad}
        answer = STAMP.run_script(self, {"_gate": gate}, task_vars)
        if answer is None:
            answer = {"current": False, "why": "no known Python interpreter", "per_run": {}}
        if answer.get("failed"):
            return {**result, **answer}
        layer = ", ".join(gate["stamps"])
        msg = (f"recorded ({layer})" if gate["record"] and answer.get("current")
               else f"unchanged since its last run ({layer}): roles skipped"
               + (f", per-run steps run: {answer['per_run']}" if answer.get("per_run") else "")
               if answer.get("current") else f"roles run ({layer}): {answer.get('why')}")
        # shown in the log without -v, as debug's message is
        return {**result, **answer, "digest": gate["digest"], "msg": f"host layer {msg}",
                "_ansible_verbose_always": True}
