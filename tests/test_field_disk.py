"""The base role's disk growth after an ONLINE resize (issue 15): the root disk is rescanned
before growpart asks whether the partition can grow. Static checks of the task file (the order
and the no-change contract), and the lab proof on a qemu VM whose root disk is on virtio-scsi
(as OCI's paravirtualized boot volumes are SCSI disks), enlarged through QMP ``block_resize``
while the guest runs: the kernel keeps the old size until the role's SCSI rescan, then
growpart and resize2fs grow the root filesystem without a reboot (a make test-all item: vm,
slow). provision/lab/vm.py attaches disks as virtio-blk, which announces a new size by itself,
so the test moves the root disk to a virtio-scsi controller without capacity-change events
first (see scsi_root_args)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
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


# --- lab proof: online resize of a virtio-scsi root disk (qemu VM, TCG) ----------------------

GiB = 2**30
SCSI_DRIVE_ID = "rootdisk"


def scsi_root_args(args: list[str], overlay: str) -> list[str]:
    """The lab VM's qemu command line with its root disk (``overlay``) on a virtio-scsi
    controller instead of virtio-blk, and the kernel's root= following it (/dev/sda1).

    ``param_change=off``: by default qemu's virtio-scsi sends the guest a capacity-change
    event (VIRTIO_SCSI_F_CHANGE) and Linux's virtio_scsi driver then rescans the disk by
    itself (measured: the guest saw the new size at once). OCI's volumes do not, hence the
    rescan commands its console prints; without the event the guest, like OCI's, keeps the
    old size until the rescan."""
    out: list[str] = []
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "-drive" and args[i + 1].startswith(f"file={overlay},"):
            opts = args[i + 1].replace(",if=virtio,", f",if=none,id={SCSI_DRIVE_ID},")
            out += ["-device", "virtio-scsi-pci,id=scsi0,param_change=off", "-drive", opts,
                    "-device", f"scsi-hd,drive={SCSI_DRIVE_ID},bus=scsi0.0"]
            i += 2
            continue
        out.append(arg.replace("root=/dev/vda1 ", "root=/dev/sda1 ") if arg.startswith(
            "root=") else arg)
        i += 1
    assert f"id={SCSI_DRIVE_ID}" in " ".join(out) and "root=/dev/sda1" in " ".join(out), out
    return out


def test_scsi_root_args_moves_only_the_root_disk() -> None:
    args = ["qemu", "-append", "root=/dev/vda1 rw console=ttyS0", "-drive",
            "file=/s/disk.qcow2,if=virtio,format=qcow2,cache=unsafe", "-drive",
            "file=/s/seed.img,if=virtio,format=raw,readonly=on"]
    assert scsi_root_args(args, "/s/disk.qcow2") == [
        "qemu", "-append", "root=/dev/sda1 rw console=ttyS0",
        "-device", "virtio-scsi-pci,id=scsi0,param_change=off",
        "-drive", "file=/s/disk.qcow2,if=none,id=rootdisk,format=qcow2,cache=unsafe",
        "-device", "scsi-hd,drive=rootdisk,bus=scsi0.0",
        "-drive", "file=/s/seed.img,if=virtio,format=raw,readonly=on"]


def qmp(sock_path: str, command: str, **arguments: Any) -> Any:
    """One QMP command (sizes in bytes, unlike HMP's block_resize, which reads MiB)."""
    import socket

    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(30)
        s.connect(sock_path)
        f = s.makefile("rw")
        json.loads(f.readline())  # greeting
        for msg in ({"execute": "qmp_capabilities"}, {"execute": command,
                                                       "arguments": arguments}):
            f.write(json.dumps(msg) + "\n")
            f.flush()
            while True:
                reply = json.loads(f.readline())
                if "return" in reply or "error" in reply:
                    break
            assert "error" not in reply, reply
        return reply["return"]


def sectors(lab: Any, host: str, disk: str) -> int:
    from test_bootstrap_container import ssh_ok

    return int(ssh_ok(lab, host, f"cat /sys/class/block/{disk}/size").strip())


@pytest.mark.vm
@pytest.mark.slow
@pytest.mark.timeout(3600)
def test_online_resize_of_scsi_root_disk_grows_without_reboot(lab_host: Any) -> None:
    """The VM's root disk on virtio-scsi, enlarged by 4 GiB through QMP ``block_resize``
    while the guest runs: the guest kernel still sees the old size (a SCSI disk needs a
    rescan, as OCI's boot volumes do), `bootstrap --components base` rescans it, grows
    partition 1 and the ext4 root online (same boot id: no reboot), and the command's own
    output (summary and --json "reports") says the rescan's and the filesystem's old and new
    sizes; a second run reports "not grown" and changed=0; enlarged again, the next run (the
    host gate holds, base's per-run disk step runs) grows it again. Before the bootstrap, `doctor`
    reads the disk's own size (READ CAPACITY) and WARNs that a rescan is needed without
    rescanning (the kernel's size is unchanged after it); after it, doctor says PASS."""
    from test_bootstrap_container import assert_no_change, bootstrap, ssh_ok
    from test_bootstrap_vm import Clock, node, root_size

    from provision.lab import manager, vm

    clock = Clock("vm_online_scsi_resize")
    lab = lab_host(kind="vm")
    host = lab.hosts[0]
    clock.lap("vm_up")
    # fstab names /dev/vda1: name the root filesystem by UUID so it boots from /dev/sda1 too
    uuid = ssh_ok(lab, host, "findmnt --noheadings --output UUID /").strip()
    assert re.fullmatch(r"[0-9a-f-]{36}", uuid), uuid
    ssh_ok(lab, host, f"sudo sed -i 's|^/dev/vda1 |UUID={uuid} |' /etc/fstab && sync")
    rec = node(host)
    state_dir = Path(rec.extra["state_dir"])
    overlay = str(state_dir / vm.OVERLAY)
    vm.stop(rec)
    args_file = state_dir / vm.ARGS
    args_file.write_text(json.dumps(scsi_root_args(json.loads(args_file.read_text()),
                                                   overlay)) + "\n")
    vm.start(rec)
    manager.wait_ssh(rec, manager.require_state().user, 900)
    clock.lap("restart_on_virtio_scsi")
    assert ssh_ok(lab, host, "findmnt --noheadings --output SOURCE /").strip() == "/dev/sda1"
    assert ssh_ok(lab, host, "test -e /sys/class/block/sda/device/rescan && echo scsi"
                  ).strip() == "scsi"
    size_before = root_size(lab, host)
    disk_before = sectors(lab, host, "sda")
    boot_id = ssh_ok(lab, host, "cat /proc/sys/kernel/random/boot_id").strip()

    virtual = json.loads(subprocess.run(["qemu-img", "info", "--force-share",
                                         "--output=json", overlay], capture_output=True,
                                        text=True, check=True).stdout)["virtual-size"]
    assert virtual == disk_before * 512, (virtual, disk_before)
    sock = str(Path(rec.extra["sock_dir"]) / vm.QMP_SOCK)
    assert qmp(sock, "block_resize", device=SCSI_DRIVE_ID, size=virtual + 4 * GiB) == {}
    clock.lap("block_resize")
    assert sectors(lab, host, "sda") == disk_before, \
        "the guest learnt the new size by itself: this would not prove the rescan"
    doc = lab.cli("-i", "lab", "--json", "doctor", "--skip-network-checks", timeout=600)
    rows = {(c["host"], c["check"]): c for c in json.loads(doc.stdout)["checks"]}
    row = rows[(host, "disk unallocated")]
    assert row["status"] == "WARN" and row["message"].startswith(
        f"/dev/sda reports {(virtual + 4 * GiB) / GiB:.1f} GiB but the kernel still knows "
        f"{virtual / GiB:.1f} GiB (resized online, not rescanned yet)"), row
    assert sectors(lab, host, "sda") == disk_before, "doctor must not rescan (read-only)"
    clock.lap("doctor")

    proc = lab.cli("-i", "lab", "--json", "bootstrap", "--components", "base", timeout=3600)
    clock.lap("bootstrap_base")
    first = json.loads(proc.stdout)
    assert proc.returncode == 0 and first["ok"], (first["errors"], proc.stderr[-3000:])
    assert ssh_ok(lab, host, "cat /proc/sys/kernel/random/boot_id").strip() == boot_id, \
        "the guest rebooted"
    assert sectors(lab, host, "sda") == disk_before + 4 * GiB // 512
    doc = lab.cli("-i", "lab", "--json", "doctor", "--skip-network-checks", timeout=600)
    row = next(c for c in json.loads(doc.stdout)["checks"]
               if (c["host"], c["check"]) == (host, "disk unallocated"))
    assert (row["status"], row["message"]) == ("PASS", "root partition /dev/sda1 on /dev/sda "
                                                       "fills the disk"), row
    size_after = root_size(lab, host)
    assert size_after > size_before + 3.5 * GiB, (size_before, size_after)
    messages = [r["message"] for r in first["reports"] if r["host"] == host]
    assert f"rescan: /dev/sda grew from {virtual} to {virtual + 4 * GiB} bytes " \
           "(online resize)" in messages, messages
    grown = [m for m in messages if m.startswith("root filesystem grown: /dev/sda1 ext4")]
    assert grown, messages
    old_new = re.search(r"old=(\d+) bytes .* new=(\d+) bytes", grown[0])
    assert old_new and (int(old_new.group(1)), int(old_new.group(2))) == (size_before,
                                                                        size_after), grown
    assert f"{host}: root filesystem grown: /dev/sda1 ext4 old={size_before} bytes" in \
        " ".join(proc.stderr.split()), "the summary must show the sizes, not only the log"
    print(f"root filesystem online: {size_before / GiB:.2f} GiB -> {size_after / GiB:.2f} GiB",
          file=sys.stderr)

    second = bootstrap(lab, "--components", "base", timeout=1800)
    clock.lap("rerun")
    assert_no_change(second, host)
    assert any(r["message"].startswith("root filesystem not grown (no unallocated space)")
               for r in second["reports"]), second["reports"]
    assert root_size(lab, host) == size_after
    # enlarged again after a no-op run: the host gate holds (nothing it hashes changed) and
    # still runs base's per-run disk step, which rescans and grows again
    from test_bootstrap_container import gate_result
    assert gate_result(second, host)["per_run"] == {"base": ["grow_root"]}
    assert qmp(sock, "block_resize", device=SCSI_DRIVE_ID, size=virtual + 6 * GiB) == {}
    third = bootstrap(lab, "--components", "base", timeout=1800)
    clock.lap("rerun_after_second_resize")
    gate = gate_result(third, host)
    assert gate["current"] is True and gate["per_run"] == {"base": ["grow_root"]}, gate
    assert f"rescan: /dev/sda grew from {virtual + 4 * GiB} to {virtual + 6 * GiB} bytes " \
           "(online resize)" in [r["message"] for r in third["reports"]], third["reports"]
    assert root_size(lab, host) > size_after + 1.5 * GiB
    clock.report()


WRITE_ONLY_SYSFS = Path("/sys/bus/pci/rescan")  # mode 0200, like a SCSI device's rescan file


def run_stat(args: dict[str, Any]) -> subprocess.CompletedProcess[str]:
    """ansible's real stat module on this machine (connection local) with ``args``."""
    ansible = Path(sys.executable).parent / "ansible"
    return subprocess.run([str(ansible), "localhost", "-c", "local", "-o",
                           "-m", "ansible.builtin.stat", "-a", json.dumps(args)],
                          capture_output=True, text=True, timeout=120, check=False)


@pytest.mark.skipif(not WRITE_ONLY_SYSFS.exists() or os.geteuid() != 0,
                    reason="needs root and a write-only sysfs file (/sys/bus/pci/rescan)")
def test_rescan_file_stat_works_on_a_write_only_sysfs_file() -> None:
    """The role's stat of the rescan file, run by the real stat module on a real write-only
    sysfs file: with ansible's defaults it fails ("Permission denied": sysfs refuses to open
    it for the checksum even to root; the VM proof met this on /dev/sda), with the role's
    arguments it says the file exists."""
    task = tasks()[index("Look for the root disk's SCSI rescan file")]
    args = {**task["ansible.builtin.stat"], "path": str(WRITE_ONLY_SYSFS)}
    default = run_stat({"path": str(WRITE_ONLY_SYSFS)})
    assert default.returncode != 0 and "Permission denied" in default.stdout, default.stdout
    ours = run_stat(args)
    assert ours.returncode == 0 and '"exists": true' in ours.stdout, ours.stdout
