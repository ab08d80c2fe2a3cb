"""provision.playbook_main (ansible-playbook with a quick exit) and the runner's pty close.

Real: every run here is a real ansible-playbook (connection local) started both ways, the
plain ``ansible-playbook`` script and ``python -P -m provision.playbook_main``, and the exit
codes, output and the cleanup Ansible does at exit are compared; the pty close runs real child
processes through ptyprocess."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from provision.runner import no_close_delay, quick_exit_command

ANSIBLE_PLAYBOOK = shutil.which("ansible-playbook", path=str(Path(sys.executable).parent))

PLAYS = {
    "ok": "- hosts: localhost\n  gather_facts: false\n  tasks:\n"
          "    - ansible.builtin.debug:\n        msg: \"{{ 'x' * 200000 }}-end\"\n",
    "failed": "- hosts: localhost\n  gather_facts: false\n  tasks:\n"
              "    - ansible.builtin.fail:\n        msg: planned failure\n",
    "syntax": "- hosts: localhost\n  tasks:\n    - ansible.builtin.debug: {msg: [\n",
}


def both_ways() -> tuple[tuple[str, list[str]], ...]:
    """("plain", the ansible-playbook script) and ("quick", it through provision.playbook_main,
    as provision.runner starts it)."""
    assert ANSIBLE_PLAYBOOK, "ansible-playbook is not installed beside this Python"
    return (("plain", [ANSIBLE_PLAYBOOK]), ("quick", quick_exit_command([ANSIBLE_PLAYBOOK])))


def run_both(tmp_path: Path, play: str) -> dict[str, subprocess.CompletedProcess[str]]:
    """The same playbook through the plain script and through provision.playbook_main, each
    with its own Ansible local temp dir (ANSIBLE_LOCAL_TEMP)."""
    book = tmp_path / f"{play}.yml"
    book.write_text(PLAYS[play])
    out = {}
    for how, cmd in both_ways():
        tmp = tmp_path / f"tmp-{how}"
        tmp.mkdir()
        env = dict(os.environ, ANSIBLE_LOCAL_TEMP=str(tmp), ANSIBLE_NOCOLOR="1")
        out[how] = subprocess.run([*cmd, "-i", "localhost,", "-c", "local", str(book)],
                                  capture_output=True, text=True, env=env, timeout=120,
                                  cwd=tmp_path)
    return out


def test_quick_exit_command_wraps_ansible_playbook_only() -> None:
    cmd = quick_exit_command(["/venv/bin/ansible-playbook", "-i", "inv", "site.yml"])
    assert cmd == [sys.executable, "-P", "-m", "provision.playbook_main",
                   "/venv/bin/ansible-playbook", "-i", "inv", "site.yml"]
    assert quick_exit_command(["ansible-inventory", "--list"]) == ["ansible-inventory",
                                                                    "--list"]
    assert quick_exit_command([]) == []


@pytest.mark.parametrize("play", sorted(PLAYS))
def test_quick_exit_keeps_ansible_exit_code_output_and_exit_cleanup(tmp_path: Path,
                                                                     play: str) -> None:
    """Real ansible-playbook both ways: the same exit code (0, a failed host, a syntax error),
    the whole output (a 200 kB message ends with its last bytes: flushed before os._exit), and
    Ansible's exit handlers ran (its ansible-local-* temp dir is removed at exit)."""
    runs = run_both(tmp_path, play)
    plain, quick = runs["plain"], runs["quick"]
    assert quick.returncode == plain.returncode, (quick.stdout[-2000:], quick.stderr[-2000:])
    assert {"ok": 0, "failed": 2}.get(play, quick.returncode) == quick.returncode
    if play == "syntax":
        assert quick.returncode not in (0, 2)
        assert "Syntax Error" in quick.stderr + quick.stdout or "yaml" in (
            quick.stderr + quick.stdout).lower()
    if play == "ok":
        assert "x" * 1000 + "-end" in quick.stdout
        assert "ok=1" in quick.stdout and "ok=1" in plain.stdout
    if play == "failed":
        assert "planned failure" in quick.stdout and "failed=1" in quick.stdout
    for how in ("plain", "quick"):
        assert list((tmp_path / f"tmp-{how}").glob("ansible-local-*")) == [], how


def test_quick_exit_ignores_the_working_directory_on_sys_path(tmp_path: Path) -> None:
    """A ``provision`` package in the run's working directory is not what runs (``-P``)."""
    fake = tmp_path / "provision"
    fake.mkdir()
    (fake / "__init__.py").write_text("")
    (fake / "playbook_main.py").write_text("raise SystemExit(42)\n")
    runs = run_both(tmp_path, "ok")
    assert runs["quick"].returncode == 0, runs["quick"].stderr[-2000:]


PID_FILTER = """import os

with open(os.environ["PID_LOG"], "a") as log:  # who imported this plugin file
    log.write(f"{os.getpid()}\\n")


class FilterModule:
    def filters(self):
        return {"pid_of_worker": lambda value: os.getpid()}
"""

INCLUDED_FILTER = """class FilterModule:
    def filters(self):
        return {"late_filter": lambda value: f"late-{value}"}
"""


def test_filter_plugins_load_once_before_the_forks_and_include_role_still_adds_its_own(
        tmp_path: Path) -> None:
    """Real runs, three hosts (connection local), both ways: through provision.playbook_main the
    playbook's filter plugin file is imported once, by ansible-playbook's own process, and every
    worker that uses the filter inherits it; the plain script imports it in the workers. A role
    included at run time (include_role) brings its own filter plugin, usable after the include,
    both ways (the plugin cache is filled again after the role's directory is added)."""
    (tmp_path / "filter_plugins").mkdir()
    (tmp_path / "filter_plugins" / "pids.py").write_text(PID_FILTER)
    role = tmp_path / "roles" / "late" / "filter_plugins"
    role.mkdir(parents=True)
    (role / "late.py").write_text(INCLUDED_FILTER)
    (tmp_path / "roles" / "late" / "tasks").mkdir()
    (tmp_path / "roles" / "late" / "tasks" / "main.yml").write_text(
        "- ansible.builtin.set_fact:\n    late: \"{{ inventory_hostname | late_filter }}\"\n")
    (tmp_path / "hosts").write_text(
        "\n".join(f"h{i} ansible_connection=local" for i in range(1, 4)) + "\n")
    book = tmp_path / "pids.yml"
    book.write_text(
        "- hosts: all\n  gather_facts: false\n  tasks:\n"
        "    - ansible.builtin.debug:\n        msg: \"worker {{ 1 | pid_of_worker }}\"\n"
        "    - ansible.builtin.include_role:\n        name: late\n"
        "    - ansible.builtin.debug:\n        msg: \"{{ late }} {{ 2 | pid_of_worker }}\"\n")
    for how, cmd in both_ways():
        log = tmp_path / f"{how}.pids"
        env = dict(os.environ, PID_LOG=str(log), ANSIBLE_NOCOLOR="1",
                   ANSIBLE_ROLES_PATH=str(tmp_path / "roles"))
        proc = subprocess.Popen([*cmd, "-i", str(tmp_path / "hosts"), str(book)],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env=env, cwd=tmp_path)
        out, err = proc.communicate(timeout=180)
        assert proc.returncode == 0, (how, out[-3000:], err[-3000:])
        for host in ("h1", "h2", "h3"):
            assert f"late-{host} " in out, (how, host, out[-3000:])
        workers = {int(w) for w in re.findall(r"worker (\d+)", out)}
        importers = [int(p) for p in log.read_text().split()]
        assert len(workers) == 3 and proc.pid not in workers, (how, workers)
        if how == "quick":
            assert importers[0] == proc.pid, (importers, proc.pid)
            assert not workers & set(importers), (importers, workers)
        else:
            assert proc.pid not in importers and workers <= set(importers), (importers, workers)


def test_reaped_child_is_closed_without_the_wait_a_live_one_as_before() -> None:
    """ptyprocess's close sleeps ``delayafterclose`` before it checks the child: dropped for a
    child already reaped (its status is known), kept for one still running, which close still
    terminates."""
    import ptyprocess

    no_close_delay()
    no_close_delay()  # twice: wrapped once
    assert getattr(ptyprocess.PtyProcess.close, "_provision_reaped_no_delay", False)

    done = ptyprocess.PtyProcess.spawn(["true"])
    deadline = time.monotonic() + 30
    while done.isalive() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert done.terminated and done.exitstatus == 0
    done.close()
    assert done.closed and done.delayafterclose == 0

    live = ptyprocess.PtyProcess.spawn(["sleep", "30"])
    assert live.isalive()
    live.close(force=True)
    assert live.closed and live.delayafterclose == 0.1
    assert not live.isalive()
