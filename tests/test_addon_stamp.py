"""The add-on stamp (provision/addonstamp.py): pure rules on kubectl's answers, then the whole
round trip through the simulated kubectl and API server (`kubectl get -f - --ignore-not-found
-o json`, as tests/simulator/cli_kubectl.py cmd_get_files simulates it after kubectl's get.go):
what is simulated is Kubernetes itself; the filters are the ones the roles load."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from simulator.fixtures import nodeless_api, sim_kubectl
from simulator.server import SimServer

from provision import addonstamp

REPO = Path(__file__).resolve().parent.parent
PLUGIN = REPO / "roles/provision_defaults/filter_plugins/provision_addon_stamp.py"

DEPLOY = {"apiVersion": "apps/v1", "kind": "Deployment",
          "metadata": {"name": "controller", "namespace": "addon", "uid": "u1", "generation": 1},
          "spec": {"replicas": 1, "template": {"spec": {"containers": [{"image": "x:1"}]}}},
          "status": {"observedGeneration": 1,
                     "conditions": [{"type": "Available", "status": "True"}]}}
POOL = {"apiVersion": "metallb.io/v1beta1", "kind": "IPAddressPool",
        "metadata": {"name": "default", "namespace": "addon", "uid": "u2"},
        "spec": {"addresses": ["10.0.0.10-10.0.0.20"]}, "status": {"assignedIPv4": 3}}
ISSUER = {"apiVersion": "cert-manager.io/v1", "kind": "ClusterIssuer",
          "metadata": {"name": "ca", "uid": "u3"}, "spec": {"ca": {"secretName": "ca"}}}
SECRET = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "token", "namespace": "addon"},
          "stringData": {"token": "s3cret"}}


def answer(*objs: dict, rc: int = 0, stderr: str = "") -> dict[str, Any]:
    """A registered command result as kubectl prints several objects (one List)."""
    return {"rc": rc, "stderr": stderr,
            "stdout": json.dumps({"apiVersion": "v1", "kind": "List", "items": list(objs)})}


def stamped(*objs: dict, inputs: str = "in-1") -> tuple[dict, dict]:
    """The query for ``objs`` and the stamp ConfigMap recorded from them (as the API returns it)."""
    q = addonstamp.query(list(objs), "provision-addon", "addon")
    cm = addonstamp.record(answer(*objs), "provision-addon", "addon", inputs)
    return q, cm


def test_query_names_the_stamp_then_references_and_never_secrets() -> None:
    q = addonstamp.query([DEPLOY, SECRET, ISSUER, {}], "provision-addon", "addon")
    assert [(i["kind"], i["metadata"]) for i in q["items"]] == [
        ("ConfigMap", {"name": "provision-addon", "namespace": "addon"}),
        ("Deployment", {"name": "controller", "namespace": "addon"}),
        ("ClusterIssuer", {"name": "ca"})]
    assert "spec" not in json.dumps(q)


def test_current_when_inputs_objects_and_availability_are_as_recorded() -> None:
    q, cm = stamped(DEPLOY, POOL, ISSUER)
    got = addonstamp.check(answer(cm, DEPLOY, POOL, ISSUER), "provision-addon", "in-1", q)
    assert got == {"current": True, "why": "unchanged since the last full run (3 objects)"}
    # a controller's status report is not a change
    reported = json.loads(json.dumps(POOL))
    reported["status"] = {"assignedIPv4": 4}
    reported["metadata"]["resourceVersion"] = "99"
    assert addonstamp.check(answer(cm, DEPLOY, reported, ISSUER), "provision-addon", "in-1",
                            q)["current"] is True


def edited(obj: dict, path: list[str], value: Any) -> dict:
    copy = json.loads(json.dumps(obj))
    target = copy
    for part in path[:-1]:
        target = target[part]
    target[path[-1]] = value
    return copy


@pytest.mark.parametrize(("objs", "inputs", "why"), [
    ((DEPLOY, POOL), "in-2", "inputs changed since the last full run"),
    ((DEPLOY,), "in-1", "IPAddressPool/addon/default missing"),
    ((DEPLOY, edited(POOL, ["spec", "addresses"], ["10.0.0.30/32"])), "in-1",
     "IPAddressPool/addon/default changed"),
    ((DEPLOY, edited(POOL, ["metadata", "uid"], "u9")), "in-1",
     "IPAddressPool/addon/default changed"),
    ((edited(DEPLOY, ["status", "conditions"], [{"type": "Available", "status": "False"}]),
      POOL), "in-1", "Deployment/addon/controller not Available"),
    ((edited(DEPLOY, ["spec", "replicas"], 3), POOL), "in-1",
     "Deployment/addon/controller changed"),
])
def test_not_current_names_the_reason(objs: tuple, inputs: str, why: str) -> None:
    q, cm = stamped(DEPLOY, POOL)
    got = addonstamp.check(answer(cm, *objs), "provision-addon", inputs, q)
    assert got == {"current": False, "why": why}


def test_not_current_without_a_stamp_a_readable_answer_or_a_recorded_object() -> None:
    q, cm = stamped(DEPLOY)
    assert addonstamp.check(answer(DEPLOY), "provision-addon", "in-1", q)["why"] == (
        "no stamp (ConfigMap provision-addon)")
    failed = answer(rc=1, stderr='error: resource mapping not found for name: "default"\nx')
    assert addonstamp.check(failed, "provision-addon", "in-1", q)["why"] == (
        'cluster not read: error: resource mapping not found for name: "default"')
    assert addonstamp.check({"rc": 0, "stdout": "{", "stderr": ""}, "provision-addon", "in-1",
                            q)["why"] == "cluster answer is not JSON"
    wider = addonstamp.query([DEPLOY, POOL], "provision-addon", "addon")
    assert addonstamp.check(answer(cm, DEPLOY, POOL), "provision-addon", "in-1", wider)["why"] == (
        "IPAddressPool/addon/default not in the stamp")
    # a Deployment whose controller has not seen its latest generation yet
    behind = edited(DEPLOY, ["status", "observedGeneration"], 0)
    q2, cm2 = stamped(behind)
    assert addonstamp.check(answer(cm2, behind), "provision-addon", "in-1", q2)["why"] == (
        "Deployment/addon/controller not Available")


def test_the_roles_load_the_same_filters() -> None:
    assert PLUGIN.is_symlink() and PLUGIN.resolve() == Path(addonstamp.__file__).resolve()
    spec = importlib.util.spec_from_file_location("provision_addon_stamp", PLUGIN)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert set(module.FilterModule().filters()) == {
        "addon_stamp_query", "addon_stamp_check", "addon_stamp_record", "addon_stamp_role_digest"}


# ------------------------------------------------------------- the role's own files in the inputs
ADDON_ROLES = ("metallb", "cert_manager", "ingress_nginx", "cni", "gateway_api")


def test_role_digest_changes_with_the_roles_task_and_template_files_only(tmp_path: Path) -> None:
    """A changed, added or renamed task or template file changes the digest; README, defaults
    and files of another kind do not; the digest names no path (a copy has the same); a
    directory without task files is refused."""
    role = tmp_path / "role"
    (role / "tasks").mkdir(parents=True)
    (role / "templates").mkdir()
    (role / "tasks" / "main.yml").write_text("- name: A\n")
    (role / "templates" / "a.yaml.j2").write_text("a: {{ x }}\n")
    first = addonstamp.role_digest(str(role))
    seen = {first}

    (role / "README.md").write_text("docs\n")
    (role / "defaults").mkdir()
    (role / "defaults" / "main.yml").write_text("x: 1\n")
    (role / "templates" / "notes.txt").write_text("not a template\n")
    assert addonstamp.role_digest(str(role)) == first
    copy = tmp_path / "elsewhere"
    shutil.copytree(role, copy)
    assert addonstamp.role_digest(str(copy)) == first

    for change in (lambda: (role / "tasks" / "main.yml").write_text("- name: B\n"),
                   lambda: (role / "templates" / "a.yaml.j2").write_text("a: {{ y }}\n"),
                   lambda: (role / "tasks" / "install.yml").write_text(""),
                   lambda: (role / "tasks" / "install.yml").rename(role / "tasks" / "other.yml")):
        change()
        digest = addonstamp.role_digest(str(role))
        assert digest not in seen
        seen.add(digest)

    with pytest.raises(ValueError, match="no tasks/"):
        addonstamp.role_digest(str(tmp_path / "missing"))


INPUTS_PLAY = """\
- name: The stamp's inputs of each add-on role and of its edited copies
  hosts: localhost
  gather_facts: false
  tasks:
    - name: Write the inputs of every copy
      ansible.builtin.include_role:
        name: "{{ item }}"
        tasks_from: stamp_inputs
      loop: ROLES
"""
INPUTS_TASKS = """\
- name: Write the stamp's inputs
  ansible.builtin.copy:
    content: "{{ lookup('ansible.builtin.vars', '_' ~ addon ~ '_stamp_inputs') }}"
    dest: "{{ out_dir }}/{{ ansible_role_name }}"
    mode: "0600"
  vars:
    addon: "{{ ansible_role_name | regex_replace('_(same|task|template)$', '') }}"
"""


def test_a_change_of_an_addon_roles_task_or_template_file_changes_its_stamp_inputs(
        tmp_path: Path) -> None:
    """Real Ansible evaluates each add-on role's `_<role>_stamp_inputs` (its vars/main.yml, as
    tasks/main.yml compares them and tasks/install.yml records them) for a copy of the role, a
    second unchanged copy, one with a task file changed and one with a template changed: the
    copies agree, each change gives other inputs."""
    roles = tmp_path / "roles"
    shutil.copytree(REPO / "roles" / "provision_defaults", roles / "provision_defaults")
    copies = []
    for addon in ADDON_ROLES:
        for variant in ("", "_same", "_task", "_template"):
            dest = roles / f"{addon}{variant}"
            shutil.copytree(REPO / "roles" / addon, dest)
            (dest / "tasks" / "stamp_inputs.yml").write_text(INPUTS_TASKS)
            copies.append(dest.name)
        with (roles / f"{addon}_task" / "tasks" / "install.yml").open("a") as f:
            f.write("# a release changed a step\n")
        template = sorted((roles / f"{addon}_template" / "templates").glob("*.j2"))[0]
        with template.open("a") as f:
            f.write("{# a release changed a template #}\n")
    playbook = tmp_path / "inputs.yml"
    playbook.write_text(INPUTS_PLAY.replace("ROLES", json.dumps(copies)))
    out = tmp_path / "out"
    out.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")}
    env.update(ANSIBLE_ROLES_PATH=str(roles), ANSIBLE_NOCOLOR="1")
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "ansible-playbook"), "-i", "localhost,", "-c",
         "local", "-e", f"out_dir={out}", "-e", f"ansible_python_interpreter={sys.executable}",
         str(playbook)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
        check=False)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    for addon in ADDON_ROLES:
        inputs = {v: (out / f"{addon}{v}").read_text() for v in ("", "_same", "_task", "_template")}
        assert len(inputs[""]) == 64 and inputs["_same"] == inputs[""], addon
        assert len({inputs[""], inputs["_task"], inputs["_template"]}) == 3, addon


# ----------------------------------------------------- through the simulated kubectl and API
@pytest.fixture
def sim(tmp_path: Path) -> Iterator[tuple[SimServer, Path]]:
    with nodeless_api(tmp_path, deployment_ready_seconds=0.0, pod_ready_seconds=0.0) as api:
        yield api


def kubectl(kubeconfig: Path, *args: str, stdin: str = "") -> dict[str, Any]:
    """The simulated kubectl as a registered Ansible command result (``stdin`` goes through a
    file given as --filename)."""
    if stdin:
        path = kubeconfig.parent / "stdin.json"
        path.write_text(stdin)
        args = (*args, f"--filename={path}")
    proc = sim_kubectl("1.35.1", kubeconfig, *args)
    return {"rc": proc.returncode, "stdout": proc.stdout, "stderr": proc.stderr}


MANIFEST = """\
apiVersion: v1
kind: Namespace
metadata: {name: addon}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: controller, namespace: addon}
spec:
  replicas: 1
  selector: {matchLabels: {app: c}}
  template:
    metadata: {labels: {app: c}}
    spec: {containers: [{name: c, image: "IMAGE"}]}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: settings, namespace: addon}
data: {mode: "MODE"}
"""


def test_stamp_round_trip_and_drift_simulated(sim: tuple[SimServer, Path], tmp_path: Path) -> None:
    """Simulated API server and kubectl: apply, read the objects back with `get -f -`, record
    the stamp, ask again -> current; then an edited ConfigMap, a deleted Deployment and a kind
    the server does not serve each make it not current, naming why."""
    _, kubeconfig = sim
    manifest = tmp_path / "addon.yaml"

    def apply(image: str, mode: str) -> None:
        manifest.write_text(MANIFEST.replace("IMAGE", image).replace("MODE", mode))
        done = kubectl(kubeconfig, "apply", "-f", str(manifest))
        assert done["rc"] == 0, done["stderr"]

    def ask(q: dict) -> dict:
        got = kubectl(kubeconfig, "get", "--ignore-not-found", "--output=json",
                      stdin=json.dumps(q))
        return addonstamp.check(got, "provision-addon", "in-1", q)

    apply("x:1", "a")
    docs = [{"apiVersion": "apps/v1", "kind": "Deployment",
             "metadata": {"name": "controller", "namespace": "addon"}},
            {"apiVersion": "v1", "kind": "ConfigMap",
             "metadata": {"name": "settings", "namespace": "addon"}}]
    q = addonstamp.query(docs, "provision-addon", "addon")
    assert ask(q) == {"current": False, "why": "no stamp (ConfigMap provision-addon)"}
    found = kubectl(kubeconfig, "get", "--ignore-not-found", "--output=json",
                    stdin=json.dumps(q))
    assert found["rc"] == 0, found["stderr"]
    stamp = addonstamp.record(found, "provision-addon", "addon", "in-1")
    assert set(json.loads(stamp["data"]["objects"])) == {
        "Deployment/addon/controller", "ConfigMap/addon/settings"}
    done = kubectl(kubeconfig, "apply", stdin=json.dumps(stamp))
    assert done["rc"] == 0, done["stderr"]
    assert ask(q)["current"] is True

    apply("x:1", "b")
    assert ask(q) == {"current": False, "why": "ConfigMap/addon/settings changed"}
    apply("x:1", "a")
    assert ask(q)["current"] is True
    gone = kubectl(kubeconfig, "-n", "addon", "delete", "deployment", "controller")
    assert gone["rc"] == 0, gone["stderr"]
    assert ask(q) == {"current": False, "why": "Deployment/addon/controller missing"}

    unserved = addonstamp.query(docs + [POOL], "provision-addon", "addon")
    got = ask(unserved)
    assert got["current"] is False and got["why"].startswith(
        'cluster not read: error: resource mapping not found for name: "default"'), got
