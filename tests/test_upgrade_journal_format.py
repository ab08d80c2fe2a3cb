"""Journal formats: a journal written by the previous provision (format 1: no step sequences)
is resumed with the sequences every format 1 journal ran with (steps.RUNBOOK_V1); a format 2
journal resumes with the sequences it recorded, whatever the table says now; a journal this
provision cannot resume is refused naming the file, the key and what to do (exit 2)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from provision.errors import UsageError
from provision.upgrade import discover, execute, steps
from provision.upgrade.plan import plan_upgrade
from provision.upgrade.state import JOURNAL_FORMAT, StateError, journal_to_dict

sys.path.insert(0, str(Path(__file__).parent))
from test_upgrade_execute import report  # noqa: E402  (the discovery report of 1 cp + 2 workers)

# Written by provision before JOURNAL_FORMAT 2 (its journal tool and journal_to_dict): hop 1
# of 1.28.15 -> 1.29.10 half done, w-1 drained when the controller stopped.
OLD_JOURNAL = (Path(__file__).parent / "data" / "upgrade-journal-format1.json").read_text()



J = "the upgrade journal on the first control-plane node: "


def resumed(journal_text: str) -> discover.Discovery:
    """The discovery of a cluster whose control plane went to 1.29.10 and whose first control
    plane carries this journal (the cluster as the half-done hop left it)."""
    rep = report(journal=journal_text,
                 cluster_configuration="kubernetesVersion: v1.29.10\n",
                 version={"serverVersion": {"gitVersion": "v1.29.10"}})
    rep["nodes_json"]["items"][0]["status"]["nodeInfo"]["kubeletVersion"] = "v1.29.10"
    rep["hosts"]["cp-host"]["packages"] = [f"{p} 1.29.10-1.1 ii " for p in
                                           ("kubeadm", "kubectl", "kubelet")]
    rep["hosts"]["cp-host"]["apiserver_manifest"] = (
        "image: registry.k8s.io/kube-apiserver:v1.29.10\n")
    return discover.from_report(rep, "discovery")


def test_a_format_1_journal_resumes_with_the_steps_it_was_started_with(monkeypatch) -> None:
    """Even with a table whose worker sequence has one more step (a step added after the
    journal was started), the old journal resumes from its first unfinished step in its own
    order and the journal is written back as format 2 recording those sequences."""
    monkeypatch.setattr(steps, "RUNBOOK", steps.Runbook(
        steps.RUNBOOK.first_control_plane, steps.RUNBOOK.other_control_plane,
        (*steps.RUNBOOK.worker, steps.KUBELET_RESTART)))  # a changed table
    d = resumed(OLD_JOURNAL)
    journal = d.state.journal
    assert journal is not None and journal.runbook == steps.RUNBOOK_V1
    plan = plan_upgrade(d.state, "1.29", d.repository)
    assert plan.resume == steps.Step(1, steps.DRAIN, "w-1")
    v = execute.hop_vars(journal, journal.hops[0], d, d.state, last=True)
    assert v["kubeadm_upgrade_steps"] == {"w-host-1": list(steps.RUNBOOK_V1.worker),
                                          "w-host-2": list(steps.RUNBOOK_V1.worker)}
    assert v["kubeadm_upgrade_cluster_steps"] == ["verify"]
    assert journal.possibly_cordoned() == ["w-1"]
    again = journal_to_dict(journal)
    assert again["format"] == JOURNAL_FORMAT == 2
    assert again["runbook"] == steps.RUNBOOK_V1.as_dict()
    assert v["kubeadm_upgrade_header"]["runbook"] == steps.RUNBOOK_V1.as_dict()


@pytest.mark.parametrize("change, message", [
    ({"format": 3}, J + "format: 3: this provision reads journal formats 1, 2; the "
                    "journal was written by a newer provision: resume it with that one"),
    ({"format": "1"}, J + "format: '1': this provision reads journal formats 1, 2"),
    ({"format": 2}, J + "runbook: missing: a format 2 journal records its step "
                    "sequences"),
    ({"format": 2, "runbook": {"first_control_plane": ["kubeadm-install"],
                               "other_control_plane": ["kubeadm-install"],
                               "worker": ["drain", "reboot", "uncordon"]}},
     J + "runbook.worker: 'reboot' is not a step of this provision"),
])
def test_a_journal_this_provision_cannot_resume_is_refused_clearly(change, message) -> None:
    doc = json.loads(OLD_JOURNAL)
    doc.update(change)
    with pytest.raises(StateError) as exc:
        resumed(json.dumps(doc))
    assert isinstance(exc.value, UsageError)  # exit 2, before anything changes
    assert message in str(exc.value), str(exc.value)
    if "reboot" in message:
        assert "finish it with the provision that started it, or move the journal aside" \
            in str(exc.value)
