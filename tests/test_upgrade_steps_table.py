"""The upgrade runbook is one table (roles/kubeadm_upgrade/vars/main.yml) that Python
(provision/upgrade/steps.py) and the role (tasks/attempt.yml) both read; a step is a row plus
tasks/steps/<name>.yml; retries live in the table and in run_step/attempt only."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from provision.upgrade import steps

REPO = Path(__file__).resolve().parent.parent
ROLE = REPO / "roles" / "kubeadm_upgrade"


def table() -> dict:
    return yaml.safe_load((ROLE / "vars" / "main.yml").read_text())["kubeadm_upgrade_runbook"]


def test_python_reads_the_roles_table() -> None:
    assert steps.TABLE == ROLE / "vars" / "main.yml"
    rows = table()["steps"]
    assert list(steps.STEPS) == list(rows)
    for name, row in rows.items():
        info = steps.STEPS[name]
        assert (info.scope, info.retries, info.delay, info.doing, info.failed) == (
            row["scope"], row["retries"], row["delay"], row["doing"], row["failed"])
    for seq in steps.SEQUENCES:
        assert list(getattr(steps.RUNBOOK, seq)) == table()[seq]
    # and the role reads the same rows, by the same key
    attempt = (ROLE / "tasks" / "attempt.yml").read_text()
    assert f"{steps.TABLE_KEY}.steps[kubeadm_upgrade_step]" in attempt


def test_every_row_has_a_step_file_and_every_step_file_a_row() -> None:
    files = {p.stem for p in (ROLE / "tasks" / "steps").glob("*.yml")}
    assert files == set(table()["steps"])


def test_drain_is_never_retried_wholesale() -> None:
    """A refused drain is reported (pods named) and the node uncordoned; draining again in a
    loop is what kubeone does and what this runbook avoids."""
    assert steps.STEPS[steps.DRAIN].retries == 0
    assert steps.STEPS[steps.UPGRADE_APPLY].retries >= 1  # kubeadm#3050: the health check


def test_retries_live_in_the_step_runner_only() -> None:
    """No task of the role retries by itself (until/retries/a loop of attempts): the step
    runner retries whole steps as the table says."""
    offenders = []
    for path in sorted((ROLE / "tasks").rglob("*.yml")):
        for task in yaml.safe_load(path.read_text()) or []:
            for t in [task, *task.get("block", []), *task.get("rescue", [])]:
                if {"until", "retries"} & set(t):
                    offenders.append(f"{path.relative_to(ROLE)}: {t.get('name')}")
    assert offenders == []


@pytest.mark.parametrize("mutate, message", [
    (lambda t: t["steps"]["drain"].update(retries=-1),
     "kubeadm_upgrade_runbook.steps.drain.retries: -1: expected a number >= 0"),
    (lambda t: t["steps"]["drain"].update(scope="everywhere"),
     "kubeadm_upgrade_runbook.steps.drain.scope: 'everywhere': expected cluster or node"),
    (lambda t: t["steps"].pop("kubelet-restart"),
     "kubeadm_upgrade_runbook.first_control_plane: 'kubelet-restart' is not a step of this"),
    (lambda t: t["worker"].append("verify"),
     "kubeadm_upgrade_runbook.worker: 'verify' is a cluster step"),
    (lambda t: t["steps"].pop("verify"),
     "kubeadm_upgrade_runbook.steps: the step 'verify' is missing"),
], ids=["negative-retries", "unknown-scope", "step-not-in-table", "cluster-step-per-node",
        "step-missing"])  # ids, not messages: a message naming a node group would join the
# pinned cluster selections of tests/test_acceptance_selection.py
def test_a_malformed_table_is_named_by_file_and_key(mutate, message) -> None:
    data = {"kubeadm_upgrade_runbook": table()}
    mutate(data["kubeadm_upgrade_runbook"])
    with pytest.raises(steps.TableError) as exc:
        steps.parse_table(data, "vars/main.yml")
    assert str(exc.value).startswith("vars/main.yml: ") and message in str(exc.value)
