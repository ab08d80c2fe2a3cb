"""``provision_host_gate``: skip a layer of roles on a host when nothing it depends on changed.

Each stamped role (library/provision_stamp.py) already skips its install steps when its inputs
and the state it manages are what they were, but still costs a few task results per host on a
no-op run (its include, argument check, stamp read and skipped includes: ~19 for bootstrap's
host layer), and task results are what the controller pays per host (a fork, the host's
variables, the callbacks). The gate answers for the whole layer with one task per host, and
before any fact is gathered (fact gathering was most of the host's and a fifth of the
controller's cost of a no-op run per host):

* the **inputs digest**, computed here on the controller: every variable of the host that is
  not a fact, a magic or connection variable or private (a leading ``_``: registered results
  and role internals, derived from public ones), the arguments, and the content of every file
  under ``roles/`` and ``playbooks/`` (a new provision runs the roles again). A variable that
  reads a fact (a second interface's address) counts with its value: when one does not
  render without facts, the host's facts are gathered here first (one more round trip, only
  for such a host);
* on the host, in one command (the stamp module's code as a script, as provision_stamp runs;
  its Python found as Ansible's interpreter discovery finds it when the inventory names
  none): the digest recorded when the layer last finished, every role stamp of the layer
  verified again against the live state (a removed package, an edited file, a stopped service
  is drift: the gate does not hold and the roles repair it), the files and paths it watches,
  and the sources of the facts the layer's roles read (``FACTS``: release files, default
  route and interface, hostname, container signs...; provision_stamp.host_facts);
* the answer carries what the host contributes to the other nodes (``node``: its hostname and
  default address, as facts of the host, so a skipped node is written into the others'
  /etc/hosts as a gathered one) and the contributions recorded from the others (``peers``):
  the playbook compares them on the controller once every node has answered
  (filter_plugins/provision_host_gate.py), so a ``--limit`` run (the other nodes' lines are
  kept as the host has them) can hold too.

``record: true`` (at the end of the layer, with the read's ``digest`` and the run's
``peers``) writes the gate file when every role stamp holds, with the fact sources as they are
then. The result: ``current``, ``why`` (when not), ``digest``, ``peers``, ``per_run`` (role ->
steps a role recorded as running on every run: the playbook runs only those).
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import json
import re
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

# The facts the host layer's roles read -> the entry of provision_stamp.host_facts that holds
# their sources (tests/test_host_gate.py checks every ansible_* fact the roles name is here): a
# change of the sources of one (another address, hostname, release) makes the gate miss and the
# roles run. Not all_ipv4_addresses: the proxy role's no_proxy list is its only reader, and
# with a proxy set every node's addresses are in ``peers``
# (playbooks/filter_plugins/provision_host_gate.py). Not fqdn: no role reads it, and it comes
# from name resolution (it can change with DNS, not the host).
FACTS = {"hostname": "hostname", "distribution": "release", "distribution_release": "release",
         "distribution_version": "release", "distribution_major_version": "release",
         "os_family": "release", "lsb": "release", "architecture": "machine",
         "machine": "machine", "virtualization_type": "virtual",
         "virtualization_role": "virtual", "default_ipv4": "default_ipv4",
         "discovered_interpreter_python": "python", "service_mgr": "service_mgr"}
# The fact subset gathered when a variable cannot be rendered without facts (bootstrap.yml's
# first play gathers the same).
GATHER_SUBSET = ["!all", "network", "virtual"]
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


def inputs_digest(task_vars: Mapping[str, Any], args: Mapping[str, Any],
                  render: Callable[[str], Any] | None = None) -> str:
    """The digest of everything the layer's roles decide from (see the module docstring);
    ``render`` gives a templated variable's value (the task's templar). The tree's digest is
    the run's ``_host_gate_tree`` when set (bootstrap.yml computes it once per run with the
    ``provision_tree_digest`` filter, instead of once per host in each forked worker)."""
    tree = str(task_vars.get("_host_gate_tree") or "")
    facts = task_vars.get("ansible_facts") or {}
    data = {"vars": {k: plain(v, render) for k, v in task_vars.items() if is_input(k, facts)},
            "args": plain({k: v for k, v in args.items() if k != "peers"}),
            "tree": tree if re.fullmatch("[0-9a-f]{64}", tree) else tree_digest()}
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    SPEC = {**{k: v for k, v in STAMP._module_namespace()["GATE_SPEC"].items() if k != "digest"},
            "digest": {"type": "str"}}
    _VALID_ARGS = frozenset(SPEC)

    def _digest(self, task_vars: dict[str, Any], params: dict[str, Any]
                ) -> tuple[str, dict[str, Any]]:
        """The inputs digest, and the facts gathered for it ({} when none were needed): a
        variable that does not render (it reads a fact, or what only a role defines) is
        rendered again with the host's facts, and then, if still not, counts as its text and
        the error's kind (the same on every run)."""
        failed: list[str] = []

        def render(templar: Any) -> Callable[[str], Any]:
            def _render(text: str) -> Any:
                try:
                    return templar.template(text)
                except Exception as exc:  # noqa: BLE001 - any template error: hash the text
                    failed.append(text)
                    return f"{text} !{type(exc).__name__}"
            return _render

        digest = inputs_digest(task_vars, params, render(self._templar))
        if not failed or (task_vars.get("ansible_facts") or {}).get("default_ipv4"):
            return digest, {}
        gathered = self._execute_module(module_name="ansible.legacy.setup",
                                        module_args={"gather_subset": GATHER_SUBSET},
                                        task_vars=task_vars)
        facts = gathered.get("ansible_facts") or {}
        if gathered.get("failed") or not facts:
            return digest, {}
        with_facts = {**task_vars, **facts,
                      "ansible_facts": {**(task_vars.get("ansible_facts") or {}),
                                        **{k.removeprefix("ansible_"): v
                                           for k, v in facts.items()}}}
        templar = self._templar.copy_with_new_env(available_variables=with_facts)
        return inputs_digest(task_vars, params, render(templar)), facts

    def run(self, tmp: Any = None, task_vars: dict[str, Any] | None = None) -> dict[str, Any]:
        task_vars = task_vars or {}
        result = super().run(tmp, task_vars)
        _, params = self.validate_argument_spec(argument_spec=self.SPEC)
        bad = STAMP._module_namespace()["gate_problem"]({**params, "digest": "0" * 64})
        if bad:
            return {**result, "failed": True, "msg": bad}
        facts: dict[str, Any] = {}
        if not params.get("digest"):
            params["digest"], facts = self._digest(task_vars, params)
        answer = STAMP.run_script(self, {"_gate": params}, task_vars, discover=True)
        if answer.get("failed"):
            return {**result, **answer}
        if not params["record"]:
            # the node's own facts as Ansible names them, unless gathered: a node whose layer
            # is skipped is still known to the others' /etc/hosts (and no_proxy) as gathered
            node = answer.get("node") or {}
            facts = facts or {f"ansible_{k}": v for k, v in node.items()}
            if STAMP.interpreter(task_vars, self._templar) is None:  # found by the gate
                facts["discovered_interpreter_python"] = answer.get("python")
        layer = ", ".join(params["stamps"])
        msg = (f"recorded ({layer})" if params["record"] and answer.get("current")
               else f"unchanged since its last run ({layer})"
               + (f", per-run steps: {answer['per_run']}" if answer.get("per_run") else "")
               if answer.get("current") else f"roles run ({layer}): {answer.get('why')}")
        # shown in the log without -v, as debug's message is
        return {**result, **{k: v for k, v in answer.items() if k not in ("node", "python")},
                "digest": params["digest"], "msg": f"host layer {msg}",
                **({"ansible_facts": facts} if facts else {}),
                "_ansible_verbose_always": True}
