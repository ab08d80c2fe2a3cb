"""The stamp of the apt_ready, base, containerd, docker and kubernetes_packages roles
(roles/*/library/provision_stamp.py, run by roles/*/action_plugins/provision_stamp.py as a
plain script), run for real by ansible-playbook on this machine (connection local, stamps and
files in a temp dir), both ways: as the action runs it (`python -c`) and as an ordinary module
(what the action falls back to without a known interpreter). Recorded state is `current` on the
next read; an edited file, a changed mode or changed inputs are not, and the drift names what
changed. Host-level drift repair through the roles is proven on lab hosts in
tests/test_bootstrap_container.py and tests/test_stamps_kubeadm_host.py."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parent.parent
MODULE = REPO / "roles" / "provision_defaults" / "library" / "provision_stamp.py"
ACTION = REPO / "roles" / "provision_defaults" / "action_plugins" / "provision_stamp.py"
STAMPED = ("base", "docker", "apt_ready", "containerd", "kubernetes_packages")
USERS = [REPO / "roles" / role / kind / "provision_stamp.py"
         for role in STAMPED for kind in ("library", "action_plugins")]
# how the stamp runs: "script" (the action with an interpreter: python -c), "module" (the module
# alone, as the action's fallback runs it)
WAYS = ("script", "module")


def test_the_roles_use_the_one_module_and_action() -> None:
    """One module and one action (in the shared defaults role); each stamped role links to both,
    so the role stays self-contained when it is copied into the collection."""
    assert MODULE.is_file() and not MODULE.is_symlink()
    assert ACTION.is_file() and not ACTION.is_symlink()
    assert all(p.is_symlink() and p.resolve() in (MODULE.resolve(), ACTION.resolve())
               and p.parent.name == p.resolve().parent.name for p in USERS), USERS


def play(tmp_path: Path, steps: list[dict[str, Any]], way: str = "script",
         interpreter: str | None = sys.executable) -> list[dict[str, Any]]:
    """Run ``steps`` (tasks) in one local ansible-playbook; the results of the stamp tasks.
    ``way`` "script": the action plugin runs the module file with ``interpreter`` (as
    ansible_python_interpreter; None: not set, so the action falls back to the module)."""
    tasks = []
    for i, step in enumerate(steps):
        if "stamp" in step:
            args = {"name": "t", "inputs": "i1", "dir": str(tmp_path / "stamps"), **step["stamp"]}
            tasks.append({"provision_stamp": args, "register": f"r{i}", "ignore_errors": True,
                          **({"vars": {"ansible_python_interpreter": interpreter}}
                             if interpreter else {})})
        else:
            tasks.append(step)
    names = [f"r{i}" for i, step in enumerate(steps) if "stamp" in step]
    tasks.append({"ansible.builtin.copy": {
        "content": "{{ [" + ", ".join(names) + "] | to_json }}",
        "dest": str(tmp_path / "results.json")}})
    (tmp_path / "play.yml").write_text(json.dumps(
        [{"hosts": "localhost", "gather_facts": False, "tasks": tasks}]))
    (tmp_path / "ansible.cfg").write_text(f"[defaults]\ninterpreter_python = {sys.executable}\n")
    bindir = os.path.dirname(sys.executable)
    env = {**os.environ, "ANSIBLE_LIBRARY": str(MODULE.parent),
           **({"ANSIBLE_ACTION_PLUGINS": str(ACTION.parent)} if way == "script" else {}),
           "ANSIBLE_CONFIG": str(tmp_path / "ansible.cfg"),
           "PATH": bindir + os.pathsep + os.environ.get("PATH", "")}
    proc = subprocess.run([os.path.join(bindir, "ansible-playbook"), "-i", "localhost,", "-c",
                           "local", str(tmp_path / "play.yml")], env=env, capture_output=True,
                          text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return json.loads((tmp_path / "results.json").read_text())


@pytest.mark.parametrize("way", WAYS)
def test_recorded_state_is_current_and_drift_is_named(tmp_path: Path, way: str) -> None:
    managed = tmp_path / "managed.conf"
    managed.write_text("a=1\n")
    gone = tmp_path / "never-there"
    params = {"files": [str(managed), str(gone)], "packages": ["dpkg", "no-such-package-x"],
              "users": ["root", "no-such-user-x"], "groups": ["root"]}

    def edit(content: str, mode: str = "0644") -> dict[str, Any]:
        return {"ansible.builtin.copy": {"content": content, "dest": str(managed), "mode": mode}}

    first, recorded, again, edited, chmodded, back, other = play(tmp_path, [
        {"stamp": params}, {"stamp": {**params, "record": True}}, {"stamp": params},
        edit("a=2\n"), {"stamp": params}, edit("a=1\n", "0600"), {"stamp": params},
        edit("a=1\n"), {"stamp": params}, {"stamp": {**params, "inputs": "i2"}}], way)
    assert not first["current"] and first["drift"] == [] and first["changed"] is False
    assert first["state"]["packages"]["no-such-package-x"] is None
    assert first["state"]["packages"]["dpkg"]  # the installed version
    assert first["state"]["files"][str(gone)] is None
    assert first["state"]["users"] == {"root": True, "no-such-user-x": False}
    assert first["exists"] == {}
    assert recorded["current"] and recorded["changed"] is False
    assert (tmp_path / "stamps" / "t.json").stat().st_mode & 0o777 == 0o600
    assert again["current"] and again["state"] == first["state"]  # the same dict, once recorded
    assert not edited["current"] and edited["drift"] == [f"files {managed}"]
    assert not edited["inputs_changed"]
    assert chmodded["drift"] == [f"files {managed}"]  # the mode counts too
    assert back["current"]
    assert not other["current"] and other["inputs_changed"] and other["drift"] == []


@pytest.mark.parametrize("way", WAYS)
def test_holds_and_enabled_services_are_read_only_when_asked_for(tmp_path: Path,
                                                                  way: str) -> None:
    """The options kubernetes_packages uses (holds: the dpkg selection; enabled_services: only
    `systemctl is-enabled`) add their kinds to the state only when given, so the stamps the
    other roles recorded before the options existed stay current."""
    plain, asked = play(tmp_path, [
        {"stamp": {"packages": ["dpkg"]}},
        {"stamp": {"packages": ["dpkg"], "holds": ["dpkg", "no-such-package-x"],
                   "enabled_services": ["no-such-unit-x"]}}], way)
    assert set(plain["state"]) == {"packages", "files", "services", "groups", "users",
                                   "sysctls", "kernel_modules"}
    assert asked["state"]["holds"] == {"dpkg": False, "no-such-package-x": False}
    assert list(asked["state"]["enabled_services"]) == ["no-such-unit-x"]
    assert asked["state"]["enabled_services"]["no-such-unit-x"] != "enabled"
    assert asked["stamp"] != plain["stamp"]


@pytest.mark.parametrize("way", WAYS)
def test_exists_is_read_but_not_stamped(tmp_path: Path, way: str) -> None:
    """``exists`` (apt_ready: cloud-init's result file of this boot) is answered with the state
    but is not part of it: a marker that appears does not make the stamp drift."""
    marker = tmp_path / "marker"
    params = {"packages": ["dpkg"], "exists": [str(marker)]}
    recorded, appeared = play(tmp_path, [
        {"stamp": {**params, "record": True}},
        {"ansible.builtin.copy": {"content": "", "dest": str(marker)}},
        {"stamp": params}], way)
    assert recorded["exists"] == {str(marker): False}
    assert appeared["exists"] == {str(marker): True}
    assert appeared["current"] and appeared["stamp"] == recorded["stamp"]


@pytest.mark.parametrize("way", WAYS)
def test_bad_entries_fail_naming_them(tmp_path: Path, way: str) -> None:
    results = play(tmp_path, [{"stamp": {"name": "../x"}}, {"stamp": {"packages": ["a;b"]}},
                              {"stamp": {"files": ["rel"]}}, {"stamp": {"holds": ["a b"]}},
                              {"stamp": {"exists": ["rel"]}}], way)
    for result in results:
        assert result["failed"] and "provision_stamp: bad" in result["msg"], result
    assert not (tmp_path / "stamps").exists()


def test_the_action_runs_the_file_as_a_script_and_falls_back_to_the_module(
        tmp_path: Path) -> None:
    """With an interpreter the action runs the module file with ``python -c`` (ran_as: script);
    without one it runs the module (ran_as: module; Ansible's interpreter discovery starts
    it); both read the same state and accept each other's record. An unknown option fails
    before the host is read."""
    stamps = [{"stamp": {"packages": ["dpkg"], "record": True}}, {"stamp": {"packages": ["dpkg"]}}]
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    by_script = play(tmp_path / "a", stamps)
    by_module = play(tmp_path / "a", [stamps[1]], interpreter=None)
    assert [r["ran_as"] for r in by_script + by_module] == ["script", "script", "module"]
    assert by_script[1]["current"] and by_module[0]["current"]
    assert by_module[0]["stamp"] == by_script[0]["stamp"]
    unknown = play(tmp_path / "b", [{"stamp": {"packages": ["dpkg"], "no_such_option": 1}}])
    assert unknown[0]["failed"] and "no_such_option" in unknown[0]["msg"], unknown


def test_a_failing_interpreter_is_reported_with_its_error(tmp_path: Path) -> None:
    """A wrong interpreter path fails the task naming it and the shell's error."""
    result = play(tmp_path, [{"stamp": {"packages": ["dpkg"]}}],
                  interpreter="/no/such/python3")[0]
    assert result["failed"] and "/no/such/python3" in result["msg"], result
    assert "rc 127" in result["msg"], result


def test_commands_run_without_subprocess_output_whole_input_closed() -> None:
    """The stamp's command runner (os.posix_spawnp: the script imports no subprocess, the
    host gate runs it on every host on every run): a real child's standard output, whole (more
    than a pipe buffer), whatever its exit code, not its error output; C locale; standard
    input is /dev/null (``cat`` ends at once instead of waiting); a program that is not
    installed is "" through command(). The script run with the interpreter's flags imports
    none of the modules it avoids."""
    namespace: dict[str, Any] = {"__name__": "stamp_under_test"}
    exec(compile(MODULE.read_text(), str(MODULE), "exec"), namespace)  # noqa: S102
    run, command = namespace["run"], namespace["command"]
    script = "echo out; echo err >&2; echo $LC_ALL; head -c 300000 /dev/zero | tr '\\0' x; exit 3"
    out = run(["sh", "-c", script])
    assert out.startswith("out\nC\n") and out.endswith("x" * 300000) and "err" not in out
    assert len(out) == len("out\nC\n") + 300000
    assert run(["cat"]) == ""
    assert command(["provision-no-such-program"]) == ""
    with pytest.raises(OSError):
        run(["provision-no-such-program"])
    probe = ("import sys; " + "; ".join(f"assert '{m}' not in sys.modules, '{m}'" for m in (
        "subprocess", "platform", "typing", "hashlib", "glob")))
    code = MODULE.read_text().replace("\nif __name__ == \"__main__\":\n    main()\n",
                                      "\n" + probe + "\n")
    assert probe in code
    done = subprocess.run([sys.executable, "-I", "-S", "-c", code], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
