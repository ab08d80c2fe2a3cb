"""The live display and Ctrl-C, watched under a real pseudo-terminal (pexpect).

tests/progress_driver.py runs tests/playbooks/progress/sleepy.yml through run_playbook as
``bootstrap`` (two local hosts, connection local). The playbook's roles are stand-ins named
like bootstrap's steps (``base``, ``docker``): the step names are simulated, the playbook run,
the terminal and the signal are real.
"""

from __future__ import annotations

import io
import json
import re
import sys
from pathlib import Path

import pytest

from provision.context import Options
from provision.interrupt import resume_command
from provision.progress import Progress, host_states, step_for_role

pexpect = pytest.importorskip("pexpect")

DRIVER = Path(__file__).parent / "progress_driver.py"
SLEEP_TASK = "Sleep like a slow package install"
STAMP = re.compile(r"\[\s*(\d+\.\d)s\]")


@pytest.fixture()
def two_hosts(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    inv = tmp_path / "hosts.yml"
    inv.write_text("all:\n  hosts:\n" + "".join(
        f"    {h}:\n      ansible_connection: local\n"
        f"      ansible_python_interpreter: {sys.executable}\n" for h in ("h1", "h2")))
    return inv


def _pty(*argv: str, state: Path | None = None, columns: int = 220, timeout: int = 180):
    """``python *argv`` under a real pseudo-terminal (24 rows), the repo on PYTHONPATH and,
    when given, ``state`` as XDG_STATE_HOME."""
    import os

    env = {**os.environ, "TERM": "xterm", "PYTHONPATH": str(DRIVER.parent.parent),
           **({"XDG_STATE_HOME": str(state)} if state is not None else {})}
    return pexpect.spawn(sys.executable, list(argv), env=env, dimensions=(24, columns),
                         encoding="utf-8", timeout=timeout)


def _screen(child) -> str:
    """Everything the child printed, once it has exited."""
    child.expect(pexpect.EOF)
    child.close()
    return child.before


def _cp_and_worker(tmp_path: Path) -> Path:
    """An inventory of two local-connection hosts: cp-host (control plane), w-host (worker)."""
    inv = tmp_path / "hosts.yml"
    inv.write_text("all:\n  children:\n    control_plane:\n      hosts:\n        cp-host:\n"
                   f"          ansible_connection: local\n"
                   f"          ansible_python_interpreter: {sys.executable}\n"
                   "    workers:\n      hosts:\n        w-host:\n"
                   f"          ansible_connection: local\n"
                   f"          ansible_python_interpreter: {sys.executable}\n")
    return inv


def _spawn(inv: Path, sleep: int, *command: str):
    return _pty(str(DRIVER), str(inv), str(sleep), *command)


def _redraws(screen: str) -> list[str]:
    """Every redraw of the status line and every printed line, without the erase codes."""
    return [seg.replace("\x1b[K", "") for seg in re.split(r"[\r\n]", screen) if seg.strip()]


def _done_matches_rows(screen: str) -> None:
    """The "done" totals are the sums of the per-host recap printed after it."""
    done = re.search(r"done in [\d.]+s: ok=(\d+) changed=(\d+) failed=(\d+) "
                     r"unreachable=(\d+) skipped=(\d+)", screen)
    assert done, screen
    rows = re.findall(r"^\s+h\d\s+ok=(\d+)\s+changed=(\d+)\s+failed=(\d+)\s+unreachable=(\d+)"
                      r"\s+skipped=(\d+)", screen, re.M)
    assert len(rows) == 2
    assert [sum(int(r[i]) for r in rows) for i in range(5)] == [int(x) for x in done.groups()]


def test_timer_ticks_while_a_task_sleeps_and_hosts_and_counts_agree(two_hosts):
    child = _spawn(two_hosts, 3)
    screen = _screen(child)
    assert child.exitstatus == 0, screen
    # every redraw of the status line while the sleeping task ran, with its elapsed stamp
    redraws = [seg for seg in re.split(r"[\r\n]", screen) if f"{SLEEP_TASK} |" in seg]
    stamps = sorted({float(m.group(1)) for seg in redraws if (m := STAMP.search(seg))})
    assert len(stamps) >= 4, redraws  # the timer moved on its own during the 3 s sleep
    assert stamps[-1] - stamps[0] >= 1.5, stamps
    assert any("step 2/2 docker" in seg and "h1 running, h2 running" in seg
               for seg in redraws), redraws
    # the task's place in its play: 4th of at most 5 (the includes make 5 a bound)
    assert any("step 2/2 docker · task 4/≤5 (" in seg for seg in redraws), redraws
    assert "PLAY A play every host skips" not in screen  # all hosts skipped it
    assert "PLAY Two steps, one slow" in screen
    _done_matches_rows(screen)


def test_a_command_without_steps_shows_play_and_task_of_m_and_serial_batches(two_hosts):
    """A command with no named steps (run as "etcd restore"; the playbook
    tests/playbooks/progress/plays.yml is a stand-in): the status line names the play
    (K of 3), the task within it (N of M, exact: no includes), each host's state, and for a
    serial play the batch, with the earlier batch's host "done". Real run, real pty."""
    child = _spawn(two_hosts, 2, "etcd restore", "plays.yml")
    screen = _screen(child)
    assert child.exitstatus == 0, screen
    segs = _redraws(screen)

    def seen(*parts: str) -> bool:
        return any(all(p in seg for p in parts) for seg in segs)

    assert seen("play 1/3 · task 2/2 (", "Sleep on every host at once | h1 running, h2 running")
    assert seen("play 2/3 · task 2/3 (", "Sleep on one host | h1 running |")
    assert seen("play 2/3 batch 2 · task 2/3 (", "Sleep on one host | h1 done, h2 running")
    assert seen("play 3/3 · task 1/1 (")
    assert "PLAY Check every host (play 1/3)" in screen
    assert "PLAY One host at a time (play 2/3, batch 2)" in screen
    # no task ever counted past its play's plan (the plan matches what Ansible announced)
    for n, m in re.findall(r"task (\d+)/(\d+) \(", screen):
        assert int(n) <= int(m), (n, m)
    # the elapsed timer ticked while a task slept (redraws with no event in between)
    stamps = {float(m.group(1)) for seg in segs if "Sleep on one host" in seg
              and (m := STAMP.search(seg))}
    assert len(stamps) >= 3, stamps
    _done_matches_rows(screen)


def test_ctrl_c_says_interrupted_exits_130_writes_summary_and_resume(two_hosts):
    child = _spawn(two_hosts, 20)
    child.expect(rf"{SLEEP_TASK} \| h1 running, h2 running")
    child.sendintr()  # ^C on the terminal: SIGINT to the foreground process group
    screen = _screen(child)
    assert child.exitstatus == 130, screen
    assert re.search(r"interrupted after [\d.]+s", screen)
    assert "done in" not in screen
    assert f"interrupted at task '{SLEEP_TASK}' (step docker) on h1, h2" in screen
    assert "to resume: provision bootstrap --components base,docker --from-step docker" in screen
    run_dir = Path(re.search(r"RUN_DIR (\S+)", screen).group(1))
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["exit_code"] == 130 and summary["ok"] is False
    assert summary["interrupted"]["task"] == SLEEP_TASK
    assert summary["interrupted"]["step"] == "docker"
    assert summary["interrupted"]["hosts"] == ["h1", "h2"]
    assert summary["interrupted"]["play_number"] == 2  # of sleepy.yml's two plays
    assert summary["interrupted"]["task_in_play"] == "4/≤5"
    assert summary["interrupted"]["resume"].endswith("--from-step docker")
    assert set(summary["hosts"]) == {"h1", "h2"}  # the hosts so far, with their counts
    assert all(h["ok"] >= 2 for h in summary["hosts"].values())
    assert "\x1b[" not in (run_dir / "artifacts" / "run" / "stdout").read_text()


def test_resume_command_keeps_the_global_options():
    opts = Options(inventory="my lab", limit="w1", check=False, verbosity=0, json=False)
    assert resume_command("bootstrap", ["base", "docker", "cluster"], "docker", opts) == (
        "provision -i 'my lab' --limit w1 bootstrap --components base,docker,cluster "
        "--from-step docker")
    assert resume_command("bootstrap", ["base"], None, opts) is None
    assert resume_command("certs renew", ["base"], "base", opts) is None


def test_step_and_host_state_rendering():
    assert step_for_role("ingress_nginx", ["base", "addons"]) == "addons"
    assert step_for_role("ingress_nginx", ["ingress"]) == "ingress"
    assert step_for_role("minikube", ["base", "docker", "cluster"]) == "cluster"
    assert step_for_role("cni", ["base"]) is None
    assert host_states({"a": "ok"}) == ""
    assert host_states({"cp1": "ok", "w1": "running"}) == "cp1 ok, w1 running"
    many = {f"worker-{i:02d}": "running" if i < 3 else "ok" for i in range(12)}
    assert host_states(many) == "3 running (worker-00, worker-01…), 9 ok"


def test_without_a_terminal_skipped_plays_and_tasks_are_not_printed():
    stream = io.StringIO()
    p = Progress(stream=stream, tick=60)
    p.start("x")
    p.on_event("playbook_on_play_start", {"play": "Skipped play"})
    p.on_event("playbook_on_task_start", {"task": "Guard"})
    p.on_event("runner_on_skipped", {"host": "h1"})
    p.on_event("playbook_on_play_start", {"play": "Real play"})
    p.on_event("playbook_on_task_start", {"task": "Work"})
    p.on_event("runner_on_ok", {"host": "h1", "res": {"changed": True}})
    p.on_event("playbook_on_stats", {"ok": {"h1": 1}, "changed": {"h1": 1},
                                     "skipped": {"h1": 1}})
    p.stop()
    text = stream.getvalue()
    assert "Skipped play" not in text and "Guard" not in text
    assert "PLAY Real play" in text and "TASK Work" in text
    assert "TASK Work (task" not in text  # no plan given: no position
    assert "ok=1 changed=1 failed=0 unreachable=0 skipped=1" in text.splitlines()[-1]


def test_without_a_terminal_a_long_task_is_shown_and_still_running_lines_follow(monkeypatch):
    """No terminal (CI): a task that keeps running gets its header and a "still running"
    line from the ticker thread, although no event arrives (thresholds shortened)."""
    import time

    from provision import progress as prog

    monkeypatch.setattr(prog, "SHOW_AFTER", 0.05)
    monkeypatch.setattr(prog, "HEARTBEAT", 0.1)
    stream = io.StringIO()
    p = Progress(stream=stream, tick=0.02)
    p.start("x")
    p.on_event("playbook_on_play_start", {"play": "Slow play"})
    p.on_event("playbook_on_task_start", {"task": "Wait for apt", "role": "base"})
    p.on_event("runner_on_start", {"host": "h1"})
    deadline = time.monotonic() + 30
    while "still running" not in stream.getvalue() and time.monotonic() < deadline:
        time.sleep(0.02)
    p.stop()
    text = stream.getvalue()
    assert "PLAY Slow play" in text and "TASK base : Wait for apt" in text
    assert "still running after" in text and "Wait for apt on h1" in text


UPGRADE_DRIVER = Path(__file__).parent / "upgrade_interrupt_driver.py"


def test_ctrl_c_in_an_upgrade_hop_exits_130_with_the_interruption_summary(tmp_path,
                                                                          monkeypatch):
    """`provision upgrade` interrupted in a hop (simulated discovery and hop playbook, see
    tests/upgrade_interrupt_driver.py): "interrupted", exit 130, the resume command."""
    state = tmp_path / "state"
    inv = _cp_and_worker(tmp_path)
    child = _pty(str(UPGRADE_DRIVER), str(inv), "20", state=state)
    child.expect(rf"DRIVER TASK {SLEEP_TASK}")
    # the hop's live status line (it was silent before): the task's place and both hosts
    child.expect(r"play 2/2 · task 4/≤5 \(\d+s\): Sleep like a slow package install \| "
                 r"cp-host running, w-host running")
    child.sendintr()
    screen = _screen(child)
    assert child.exitstatus == 130, screen
    assert f"interrupted at task '{SLEEP_TASK}'" in screen
    assert "Summary (interrupted):" in screen and "INTERRUPTED" in screen
    assert f"to resume: provision -i {inv} upgrade --to 1.32 --yes" in screen
    assert "done in" not in screen


STEPS_DRIVER = """
import sys, time
from provision.stepdisplay import StepDisplay
with StepDisplay(["image", "start", "ssh"]) as d:
    d.begin("image", "cached")
    d.begin("start", "2 hosts")
    d.begin("ssh", "waiting for SSH on 2 hosts")
    d.host("lab-1", "waiting"); d.host("lab-2", "waiting")
    time.sleep(float(sys.argv[1]))
    d.host("lab-1", "ready")
    time.sleep(float(sys.argv[1]))
    d.host("lab-2", "ready")
print("DRIVER DONE")
"""


def test_named_steps_of_a_command_without_a_playbook_tick_under_a_pty():
    """StepDisplay (lab up's display) under a real pty: "step K/3" lines, then a status line
    whose elapsed time moves on its own while hosts wait (the steps are simulated here; the
    container test below runs the real `lab up`)."""
    child = _pty("-c", STEPS_DRIVER, "1.5", columns=160, timeout=60)
    screen = _screen(child)
    assert child.exitstatus == 0, screen
    segs = _redraws(screen)
    for line in ("step 1/3 image: cached", "step 2/3 start: 2 hosts",
                 "step 3/3 ssh: waiting for SSH on 2 hosts"):
        assert any(seg.endswith(line) for seg in segs), segs
    waiting = [seg for seg in segs if seg.endswith("| lab-1 ready, lab-2 waiting")]
    stamps = {float(m.group(1)) for seg in waiting if (m := STAMP.search(seg))}
    assert len(stamps) >= 2, waiting  # ticked while lab-2 waited
    assert any("step 3/3 ssh (" in seg and "lab-1 waiting, lab-2 waiting" in seg
               for seg in segs), segs
    assert screen.rstrip().endswith("DRIVER DONE")


@pytest.mark.container
def test_lab_up_names_its_steps_and_each_hosts_ssh_state_under_a_pty(tmp_path, lab_image):
    """The real `provision lab up --nodes 2` (systemd containers) under a real pty."""
    import os
    import subprocess

    from lab_fixtures import lab_unavailable

    reason = lab_unavailable("container", "amd64")
    if reason:
        pytest.skip(reason)
    lab_image("amd64")
    env = {**os.environ, "PYTHONPATH": str(DRIVER.parent.parent),  # for `lab down` below
           "XDG_STATE_HOME": str(tmp_path)}
    child = _pty("-m", "provision", "lab", "up", "--nodes", "2", state=tmp_path, columns=200,
                 timeout=600)
    try:
        screen = _screen(child)
        assert child.exitstatus == 0, screen
        segs = _redraws(screen)
        for line in ("step 1/3 image: the amd64 container image",
                     "step 2/3 start: 2 hosts (container, amd64)",
                     "step 3/3 ssh: waiting for SSH on 2 hosts"):
            assert any(seg.endswith(line) for seg in segs), segs
        assert any("step 3/3 ssh (" in seg and "lab-1 waiting" in seg for seg in segs), segs
        assert any("step 3/3 ssh (" in seg and "lab-1 ready, lab-2 ready" in seg
                   for seg in segs), segs
        assert "lab up: lab-1, lab-2 ready in" in screen
    finally:
        subprocess.run([sys.executable, "-m", "provision", "lab", "down"], env=env,
                       capture_output=True, timeout=300, check=False)


def test_a_report_command_shows_a_live_line_too_and_leaves_only_its_report(tmp_path):
    """`provision status` prints a report, not PLAY/TASK lines; on a terminal its run still
    shows the ticking line with the task's place (it moves while discovery runs), erased at
    the end. Real command, real playbook run (two local hosts without a cluster), real pty."""
    inv = _cp_and_worker(tmp_path)
    child = _pty("-m", "provision", "-i", str(inv), "status", state=tmp_path / "state")
    screen = _screen(child)
    assert child.exitstatus == 1, screen
    segs = _redraws(screen)
    assert any(re.search(r"task 1/≤\d+ \(\d+s\): Look for the cluster", s) for s in segs), segs
    assert "PLAY " not in screen and "TASK " not in screen and "done in" not in screen
    # the live line was erased: the report's line stands alone at the end
    assert screen.rstrip().endswith("built a cluster there)")
    assert "\r\x1b[Kno cluster: run `provision -i" in screen, screen[-500:]
