"""The base role's disk growth after an ONLINE resize (issue 15): the root disk is rescanned
before growpart asks whether the partition can grow. Static checks of the task file (the order
and the no-change contract); the kernel side needs a VM with a virtio-scsi root disk resized
through QMP block_resize, not written yet (provision/lab/vm.py attaches disks as virtio-blk,
which announces a new size by itself). tests/test_bootstrap_vm.py proves the growth itself."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

TASKS = Path(__file__).resolve().parent.parent / "roles/base/tasks/disk-grow.yml"


def tasks() -> list[dict[str, Any]]:
    return yaml.safe_load(TASKS.read_text())


def index(name_start: str) -> int:
    names = [t["name"] for t in tasks()]
    return next(i for i, n in enumerate(names) if n.startswith(name_start))


def test_rescans_come_before_growpart() -> None:
    growpart = index("Ask growpart whether the partition can grow")
    for name in ("Rescan the root disk (SCSI", "Rescan the iSCSI sessions",
                 "Read the root disk size the kernel knows",
                 "Read the root disk size after the rescan"):
        assert index(name) < growpart, name
    assert index("Read the root disk size the kernel knows") < index("Rescan the root disk")


def test_rescans_never_report_a_change_and_run_in_check_mode() -> None:
    for t in tasks():
        if t["name"].startswith("Rescan"):
            assert t.get("changed_when") is False, t["name"]
            assert t.get("check_mode") is False, t["name"]
    scsi = tasks()[index("Rescan the root disk (SCSI")]
    assert scsi["ansible.builtin.shell"]["cmd"] == \
        "echo 1 > {{ _base_scsi_rescan.stat.path | quote }}"
    assert "_base_scsi_rescan.stat.exists" in scsi["when"]
    iscsi = tasks()[index("Rescan the iSCSI sessions")]
    assert iscsi["ansible.builtin.command"] == "iscsiadm -m node -R"
