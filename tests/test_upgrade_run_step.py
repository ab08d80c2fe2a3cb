"""The step runner of roles/kubeadm_upgrade (tasks/run_step.yml) run for real by Ansible on
this machine (local connection), on a copy of the role with one step added the way
CONTRIBUTING.md says ("add a step to each worker's upgrade": one table row, one step file).

Real: Ansible, the role's run_step.yml/attempt.yml/record.yml/undrain.yml, the node-side journal
tool, the controller's journal progress (provision.upgrade.execute.JournalProgress) reading
the run's events. Simulated (stated in each test): the drain and uncordon step files are
replaced by harmless commands (there is no cluster); the added step fails a given number of
times (a counter file)."""

from __future__ import annotations

import io
import json
import shutil
import sys
from pathlib import Path

import yaml

from provision.runner import run_playbook
from provision.upgrade import execute, steps
from provision.upgrade.state import Hop, Journal, journal_from_dict, journal_to_dict

REPO = Path(__file__).resolve().parent.parent
ROLE = REPO / "roles" / "kubeadm_upgrade"

PLAY = """
- name: One node's steps through the step runner
  hosts: all
  gather_facts: false
  roles:
    - role: kubeadm_upgrade
"""

# the step added for the test: fails while the counter file says so, then succeeds
FLAKY = """---
- name: Fail the first attempts (a counter file)
  ansible.builtin.shell: |
    n=$(cat {counter} 2>/dev/null || echo 0)
    echo $((n + 1)) > {counter}
    [ "$n" -ge {fail_times} ] || {{ echo "flaky failure $n" >&2; exit 1; }}
  changed_when: true
"""


def lab(tmp_path: Path, *, fail_times: int, retries: int, delay: int) -> dict:
    """A copy of the role with the step ``flaky`` added to the worker sequence (one table
    row, one step file); drain and uncordon replaced by harmless commands (simulated)."""
    roles = tmp_path / "roles"
    shutil.copytree(ROLE, roles / "kubeadm_upgrade")
    table = roles / "kubeadm_upgrade" / "vars" / "main.yml"
    data = yaml.safe_load(table.read_text())
    book = data["kubeadm_upgrade_runbook"]
    book["steps"]["flaky"] = {"scope": "node", "retries": retries, "delay": delay,
                              "doing": "Flaking on {node}", "failed": "flaky failed on {node}"}
    book["worker"] = ["drain", "flaky", "uncordon"]
    table.write_text(yaml.safe_dump(data))
    counter = tmp_path / "counter"
    step_dir = roles / "kubeadm_upgrade" / "tasks" / "steps"
    (step_dir / "flaky.yml").write_text(FLAKY.format(counter=counter, fail_times=fail_times))
    for name in ("drain", "uncordon"):  # simulated: no cluster here
        (step_dir / f"{name}.yml").write_text(
            f"---\n- name: Simulated {name}\n  ansible.builtin.command: 'true'\n"
            "  changed_when: true\n")
    (tmp_path / "play.yml").write_text(PLAY)
    journal_file = tmp_path / "journal" / "upgrade.json"
    tool = roles / "kubeadm_upgrade" / "files" / "upgrade-journal.py"
    tool.chmod(0o755)
    hop = {"index": 1, "kind": "minor", "from": "1.30.6", "to": "1.31.3",
           "control_planes": [], "batches": [["n1"]], "snapshot": "", "verify_node": "n1"}
    header = {"format": 2, "target": "1.31.3", "started": "2026-12-05T18:00:00Z",
              "runbook": {"first_control_plane": list(steps.RUNBOOK.first_control_plane),
                          "other_control_plane": list(steps.RUNBOOK.other_control_plane),
                          "worker": ["drain", "flaky", "uncordon"]},
              "hops": [hop]}
    import subprocess
    subprocess.run([sys.executable, str(tool), "--file", str(journal_file), "init",
                    json.dumps(header)], check=True, capture_output=True)
    inv = tmp_path / "hosts.yml"
    inv.write_text(yaml.safe_dump({"all": {"children": {"workers": {"hosts": {"w-host": {
        "ansible_connection": "local", "ansible_python_interpreter": sys.executable}}}}}}))
    return {"inv": inv, "journal": journal_file, "header": header,
            "extravars": {
                "kubeadm_upgrade_first_cp": "w-host",
                "kubeadm_upgrade_node_names": {"w-host": "n1"},
                "kubeadm_upgrade_steps": {"w-host": ["drain", "flaky", "uncordon"]},
                "kubeadm_upgrade_done": [], "kubeadm_upgrade_hop": hop,
                "kubeadm_upgrade_journal_tool": str(tool),
                "kubeadm_upgrade_journal_file": str(journal_file),
                "kubeadm_upgrade_kubeconfig": "/dev/null"}}


def run(tmp_path: Path, monkeypatch, setup: dict) -> tuple:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    # the controller's side: the journal progress follows the tool's output in the events
    monkeypatch.setitem(steps.STEPS, "flaky", steps.StepInfo(
        "flaky", "Flaking on {node}", "flaky failed on {node}", "node", 0, 0))
    journal = journal_from_dict({**setup["header"], "steps": []})
    lines: list[str] = []
    progress = execute.JournalProgress(journal, [tmp_path / "copy.json"], lines.append,
                                       quiet=True)
    progress.stream = io.StringIO()
    result = run_playbook(command="test run_step", playbook=str(tmp_path / "play.yml"),
                          inventory=setup["inv"], extravars=setup["extravars"],
                          progress=progress)
    data = json.loads(setup["journal"].read_text())
    records = [(s["step"], s["status"]) for s in data["steps"]]
    return result, records, data, lines, progress


def test_run_step_retries_a_failed_step_with_backoff_and_journals_one_write_per_step(
        tmp_path: Path, monkeypatch) -> None:
    """A step added with one table row and one step file runs in its place; failing twice with
    retries 2 it is attempted three times, pausing 1 s then 2 s (the delay doubles), and the
    journal gets one write per step (a step's "done" goes with the next one's "started") plus
    the node's last "done". Simulated: drain/uncordon are no-ops, the step's failures come from
    a counter file."""
    setup = lab(tmp_path, fail_times=2, retries=2, delay=1)
    result, records, data, lines, progress = run(tmp_path, monkeypatch, setup)
    assert result.ok, result.errors
    assert records == [("drain", "started"), ("drain", "done"), ("flaky", "started"),
                       ("flaky", "done"), ("uncordon", "started"), ("uncordon", "done")]
    writes = sorted({s["at"] + s["step"] for s in data["steps"] if s["status"] != "done"})
    assert len(writes) == 3  # three "started" records, each in its own write
    assert (tmp_path / "counter").read_text().strip() == "3"  # three attempts
    log = result.log_path.read_text()
    assert log.index("Pausing for 1 seconds") < log.index("Pausing for 2 seconds")
    assert "Pausing for 4 seconds" not in log
    # the live progress came from the tool's output, not from a task name
    assert lines == ["[hop 1 -> 1.31.3] Draining n1", "[hop 1 -> 1.31.3] Flaking on n1",
                     "[hop 1 -> 1.31.3] Uncordoning n1"]
    assert json.loads((tmp_path / "copy.json").read_text())["steps"] == data["steps"]


def test_run_step_failure_after_the_last_attempt_tries_the_uncordon_and_names_step_and_node(
        tmp_path: Path, monkeypatch) -> None:
    """A step that keeps failing is given up after its retries (1: two attempts): the journal
    records it failed with the last error and the attempt count, the uncordon of the node this
    hop drained is tried, the next step never runs, and the run fails naming hop, step and
    node. Here there is no API server (the real kubectl fails): the message says the node is
    still cordoned and its drain is not journalled as undone (the uncordon that succeeds is
    proven against the simulated cluster in tests/test_upgrade_simulated.py)."""
    setup = lab(tmp_path, fail_times=99, retries=1, delay=0)
    result, records, data, lines, _ = run(tmp_path, monkeypatch, setup)
    assert not result.ok
    assert records == [("drain", "started"), ("drain", "done"), ("flaky", "started"),
                       ("flaky", "failed")]
    failed = data["steps"][3]
    assert "attempt 2 of 2" in failed["error"] and "flaky failure 1" in failed["error"]
    assert (tmp_path / "counter").read_text().strip() == "2"
    message = result.errors[-1]["message"]
    assert "hop 1 step flaky failed on n1 (Fail the first attempts" in message, message
    assert "UNCORDON FAILED, the node is still cordoned" in message
    assert lines[-1] == "[hop 1 -> 1.31.3] FAILED: flaky failed on n1: " + failed["error"]


def test_a_journal_keeps_the_steps_it_was_started_with() -> None:
    """Adding a step to the table changes new upgrades only: a journal's hops expand with the
    sequences it recorded (format 2) or with RUNBOOK_V1 (format 1, which recorded none)."""
    hop = Hop(1, "minor", (1, 30, 6), (1, 31, 3), ("cp",), (("w",),), "s", "cp")
    j = Journal((1, 31, 3), [hop], started="2026-12-05T18:00:00Z")
    doc = journal_to_dict(j)
    assert doc["format"] == 2 and doc["runbook"] == steps.RUNBOOK.as_dict()
    doc["runbook"]["worker"] = ["drain", "uncordon"]  # as if started by another table
    again = journal_from_dict(doc)
    assert [s.name for s in again.hops[0].steps() if s.node == "w"] == ["drain", "uncordon"]
    assert journal_to_dict(again)["runbook"]["worker"] == ["drain", "uncordon"]


# the added step for the resume test: its work (a counter), then, on its first run only, the
# journal made unwritable (its lock file replaced by a directory, which stops root as well):
# the write that would record its "done" fails after the work, as when the controller or the
# first control plane goes away between a step's work and its record
BREAK_AFTER_WORK = """---
- name: Do the work (a counter)
  ansible.builtin.shell: |
    n=$(cat {counter} 2>/dev/null || echo 0)
    echo $((n + 1)) > {counter}
  changed_when: true

- name: Make the journal unwritable after the work (first run only)
  ansible.builtin.shell: |
    [ -e {marker} ] && exit 0
    touch {marker}
    rm -f {lock} && mkdir {lock}
  changed_when: true
"""


def test_run_step_failure_between_a_steps_work_and_its_record_repeats_the_step_on_resume(
        tmp_path: Path, monkeypatch) -> None:
    """The edge of one write per step: a step's "done" is written with the next step's
    "started". When that write fails after the step's work (simulated: the journal's lock
    file becomes a directory), the journal says the step "started" only, the run fails, and
    the resume (the steps the journal has not done, as the controller computes them) runs
    the step again, then the rest: the step's work happened twice (it must be safe to
    repeat, CONTRIBUTING.md) and the journal ends with every step done. Simulated: drain and
    uncordon are no-ops, the outage is the lock file."""
    setup = lab(tmp_path, fail_times=0, retries=0, delay=0)
    lock = setup["journal"].parent / ".upgrade-journal.lock"
    step_file = tmp_path / "roles" / "kubeadm_upgrade" / "tasks" / "steps" / "flaky.yml"
    step_file.write_text(BREAK_AFTER_WORK.format(counter=tmp_path / "counter", lock=lock,
                                                 marker=tmp_path / "broken-once"))
    result, records, *_ = run(tmp_path, monkeypatch, setup)
    assert not result.ok
    assert records == [("drain", "started"), ("drain", "done"), ("flaky", "started")]
    assert (tmp_path / "counter").read_text().strip() == "1"

    lock.rmdir()  # the outage is over
    journal = journal_from_dict(json.loads(setup["journal"].read_text()))
    left = [s.name for s in journal.remaining() if s.name not in steps.CLUSTER_STEPS]
    assert left == ["flaky", "uncordon"]  # drain is done; flaky only started
    setup["extravars"]["kubeadm_upgrade_steps"] = {"w-host": left}
    setup["extravars"]["kubeadm_upgrade_done"] = ["drain|n1"]
    result, records, data, *_ = run(tmp_path, monkeypatch, setup)
    assert result.ok, result.errors
    assert (tmp_path / "counter").read_text().strip() == "2"  # the step ran again
    assert records[3:] == [("flaky", "started"), ("flaky", "done"), ("uncordon", "started"),
                           ("uncordon", "done")]
    assert [s.name for s in journal_from_dict(data).remaining()] == ["verify"]  # not run here
