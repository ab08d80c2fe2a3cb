"""`provision bootstrap` on a real qemu VM (TCG): the parts a container cannot show.

Real here: kernel modules, sysctls, swap (the lab image has a 256 MiB /swapfile in fstab),
iptables with netfilter-persistent loading an OCI-style rules.v4 (REJECT at the end of INPUT
and FORWARD), a real reboot of the guest kernel, growpart/resize2fs on a disk the test enlarged
with ``qemu-img resize``, docker.io installed from the Debian mirror.

Under TCG the docker.io install alone takes about 3.5 minutes, so there are two tests: the
firewall/kernel/reboot/docker scenario on one VM, and the disk growth (``--components base``)
on another. Each prints its phase timings (run with ``-s`` to see them).

Port 6443 is reached through a qemu user-network forward added at run time over the VM's QMP
socket (``hostfwd_add``): the traffic enters the guest on eth0 from 10.0.2.2, like traffic from
the cloud, so the guest's INPUT REJECT applies to it.
"""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from test_bootstrap_container import (
    BANNER,
    OCI_RULES_V4,
    assert_no_change,
    bootstrap,
    check_docker_as_user,
    count_rule,
    greeting,
    prepare_verify_image,
    run_log,
    ssh_ok,
    start_listener,
)

pytestmark = [pytest.mark.vm, pytest.mark.slow]

GiB = 2**30


class Clock:
    """Wall time of each phase of a test (printed at the end, for the report)."""

    def __init__(self, test: str) -> None:
        self.test = test
        self.start = self.last = time.monotonic()
        self.phases: dict[str, float] = {}

    def lap(self, phase: str) -> None:
        now = time.monotonic()
        self.phases[phase] = round(now - self.last, 1)
        self.last = now

    def report(self) -> None:
        total = round(time.monotonic() - self.start, 1)
        print(json.dumps({"test": self.test, "phases_s": self.phases, "total_s": total}),
              file=sys.stderr)


def qmp_hmp(sock_path: str, command: str) -> str:
    """One human-monitor command over the VM's QMP socket; its text output."""
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(10)
        s.connect(sock_path)
        f = s.makefile("rw")
        json.loads(f.readline())  # greeting
        reply: dict[str, Any] = {}
        for msg in ({"execute": "qmp_capabilities"},
                    {"execute": "human-monitor-command",
                     "arguments": {"command-line": command}}):
            f.write(json.dumps(msg) + "\n")
            f.flush()
            while True:
                reply = json.loads(f.readline())
                if "return" in reply or "error" in reply:
                    break
            assert "error" not in reply, reply
        return str(reply["return"])


def node(host: str) -> Any:
    from provision.lab import manager

    return manager.require_node(manager.require_state(), host)


def forward_port(host: str, guest_port: int) -> int:
    """Forward a free 127.0.0.1 port to ``guest_port`` on the VM's eth0; return it."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    sock = str(Path(node(host).extra["sock_dir"]) / "qmp.sock")
    out = qmp_hmp(sock, f"hostfwd_add n0 tcp:127.0.0.1:{port}-:{guest_port}")
    assert "could not" not in out.lower() and "error" not in out.lower(), out
    usernet = qmp_hmp(sock, "info usernet")
    assert f"{port}" in usernet and f"{guest_port}" in usernet, usernet
    return port


def local_greeting(lab: Any, host: str) -> str:
    """What a client inside the VM reads from 127.0.0.1:6443 (loopback is accepted by the
    OCI rules): proves the listener itself works whatever the firewall does to eth0."""
    return ssh_ok(lab, host, "python3 -c \"import socket; c=socket.create_connection("
                             "('127.0.0.1', 6443), timeout=5); print(c.recv(100).decode())\"",
                  ).strip()


def log_text(result: dict[str, Any]) -> str:
    """The run's log as one line of plain words (no colours; the yaml callback wraps long
    messages over several lines)."""
    return " ".join(re.sub(r"\x1b\[[0-9;]*m", "", run_log(result)).split())


def root_size(lab: Any, host: str) -> int:
    return int(ssh_ok(lab, host, "findmnt --noheadings --bytes --output SIZE /").strip())


def chain_rules(lab: Any, host: str, chain: str) -> list[str]:
    return ssh_ok(lab, host, f"sudo iptables -w -S {chain}").splitlines()


def swaps(lab: Any, host: str) -> list[str]:
    """The active swap devices/files, from the kernel (/proc/swaps)."""
    return [x.split()[0] for x in ssh_ok(lab, host, "cat /proc/swaps").splitlines()[1:]]


def check_kernel_state(lab: Any, host: str) -> None:
    """Modules loaded, sysctls set, swap off, docker running: read from the live kernel."""
    for module in ("br_netfilter", "overlay"):
        assert lab.ssh(host, f"test -d /sys/module/{module}").returncode == 0, \
            f"module {module} is not loaded"
    for key in ("net.ipv4.ip_forward", "net.bridge.bridge-nf-call-iptables",
                "net.bridge.bridge-nf-call-ip6tables"):
        path = "/proc/sys/" + key.replace(".", "/")
        assert ssh_ok(lab, host, f"cat {path}").strip() == "1", key
    assert swaps(lab, host) == [], "swap is on"
    assert ssh_ok(lab, host, "systemctl is-active docker").strip() == "active"


def install_oci_firewall(lab: Any, host: str) -> None:
    """What an OCI Ubuntu image has: iptables-persistent, and netfilter-persistent loading a
    rules.v4 that ends INPUT and FORWARD with a REJECT."""
    ssh_ok(lab, host, "echo 'iptables-persistent iptables-persistent/autosave_v4 boolean false\n"
                      "iptables-persistent iptables-persistent/autosave_v6 boolean false' "
                      "| sudo debconf-set-selections && sudo apt-get update -q && "
                      "sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -q "
                      "iptables-persistent", timeout=3600)
    ssh_ok(lab, host, f"sudo mkdir -p /etc/iptables && printf '%s' '{OCI_RULES_V4}' "
                      "| sudo tee /etc/iptables/rules.v4 >/dev/null && "
                      "sudo systemctl enable netfilter-persistent && "
                      "sudo systemctl restart netfilter-persistent")
    live = chain_rules(lab, host, "INPUT")
    assert live[-1] == "-A INPUT -j REJECT --reject-with icmp-host-prohibited", live
    assert chain_rules(lab, host, "FORWARD")[-1].endswith("-j REJECT --reject-with "
                                                          "icmp-host-prohibited")


@pytest.mark.timeout(7200)  # TCG: docker.io alone takes ~3.5 min on an idle machine
def test_bootstrap_vm_oci_firewall_kernel_reboot(lab_host: Any) -> None:
    """A fresh VM with OCI's rules.v4 and swap on: `bootstrap --components base,docker`
    makes a listener on 6443 reachable through a forwarded port (refused before), loads the
    modules, sets the sysctls, turns swap off; after `provision lab reboot` swap, modules,
    sysctls, the iptables rules and docker are all still there; a second bootstrap reports
    changed=0 and adds no rule (every chain counted before and after)."""
    clock = Clock("vm_oci_firewall_kernel_reboot")
    lab = lab_host(kind="vm")
    host = lab.hosts[0]
    clock.lap("vm_up")

    # --- the OCI-like starting point ----------------------------------------------------
    assert swaps(lab, host) == ["/swapfile"], "the lab VM must start with its swap file on"
    install_oci_firewall(lab, host)
    clock.lap("install_oci_firewall")
    start_listener(lab, host)
    assert local_greeting(lab, host) == BANNER
    port = forward_port(host, 6443)
    assert greeting("127.0.0.1", port) == "", "6443 must be refused by the REJECT before bootstrap"
    ssh_port = node(host).ssh_port
    assert greeting("127.0.0.1", ssh_port).startswith("SSH-"), "22 is accepted by the OCI rules"
    prepare_verify_image(lab, host)
    clock.lap("prepare")

    # --- bootstrap ------------------------------------------------------------------------
    first = bootstrap(lab, "--components", "base,docker", timeout=5400)
    clock.lap("bootstrap_base_docker")
    assert first["hosts"][host]["changed"] > 0
    assert greeting("127.0.0.1", port) == BANNER, "6443 not reachable after bootstrap"
    live = chain_rules(lab, host, "INPUT")
    reject = max(i for i, line in enumerate(live) if "-j REJECT" in line)
    api = next(i for i, line in enumerate(live) if "--dport 6443" in line)
    assert api < reject and reject == len(live) - 1, live
    forward = chain_rules(lab, host, "FORWARD")
    assert any("-s 10.244.0.0/16" in x for x in forward[:-1]), forward
    assert any("-d 10.96.0.0/12" in x for x in forward[:-1]), forward
    assert forward[-1].endswith("-j REJECT --reject-with icmp-host-prohibited"), forward
    saved = ssh_ok(lab, host, "sudo cat /etc/iptables/rules.v4")
    assert "-A InstanceServices" in saved, "the user's other rules must stay"
    check_kernel_state(lab, host)
    fstab_swap = [x for x in ssh_ok(lab, host, "cat /etc/fstab").splitlines() if "swap" in x]
    assert fstab_swap and all(x.lstrip().startswith("#") for x in fstab_swap), fstab_swap
    check_docker_as_user(lab, host)
    boot_id = ssh_ok(lab, host, "cat /proc/sys/kernel/random/boot_id").strip()
    clock.lap("checks")

    # --- reboot: everything persisted ---------------------------------------------------
    reboot = lab.cli("lab", "reboot", host, timeout=900)
    assert reboot.returncode == 0, reboot.stderr
    clock.lap("reboot")
    assert ssh_ok(lab, host, "cat /proc/sys/kernel/random/boot_id").strip() != boot_id
    check_kernel_state(lab, host)
    assert ssh_ok(lab, host, "systemctl is-active netfilter-persistent").strip() == "active"
    assert count_rule(lab, host, "--dport 6443") == (1, 1), "6443 rule not reloaded at boot"
    start_listener(lab, host)
    assert greeting("127.0.0.1", port) == BANNER, "6443 not reachable after the reboot"
    check_docker_as_user(lab, host)
    before = {c: chain_rules(lab, host, c) for c in ("INPUT", "FORWARD")}
    saved_before = ssh_ok(lab, host, "sudo cat /etc/iptables/rules.v4")
    clock.lap("checks_after_reboot")

    # --- second run: no change, no duplicate rule -------------------------------------
    second = bootstrap(lab, "--components", "base,docker", timeout=3600)
    clock.lap("rerun")
    assert_no_change(second, host)
    for chain, rules in before.items():
        after = chain_rules(lab, host, chain)
        assert after == rules, f"{chain} changed on the re-run:\n{rules}\n->\n{after}"
        assert len(set(after)) == len(after), f"duplicate rule in {chain}: {after}"
    assert ssh_ok(lab, host, "sudo cat /etc/iptables/rules.v4") == saved_before
    assert count_rule(lab, host, "--dport 6443") == (1, 1)
    clock.report()


@pytest.mark.timeout(3600)
def test_bootstrap_vm_grows_root_filesystem(lab_host: Any) -> None:
    """The boot volume is enlarged while the VM is stopped (`qemu-img resize` +4 GiB, the
    cloud console's 47 -> 70 GB case): after the boot, `bootstrap --components base` grows
    partition 1 (growpart) and the ext4 root (resize2fs) online and reports the old and new
    sizes; a second run reports "not grown" and changed=0."""
    from provision.lab import manager, vm

    clock = Clock("vm_grows_root_filesystem")
    lab = lab_host(kind="vm")
    host = lab.hosts[0]
    clock.lap("vm_up")
    size_before = root_size(lab, host)
    rec = node(host)
    overlay = Path(rec.extra["state_dir"]) / "disk.qcow2"
    vm.stop(rec)
    assert not vm.status(rec)["running"]
    virtual = json.loads(subprocess.run(["qemu-img", "info", "--output=json", str(overlay)],
                                        capture_output=True, text=True, check=True).stdout)
    subprocess.run(["qemu-img", "resize", "-q", str(overlay), "+4G"], check=True)
    vm.start(rec)
    manager.wait_ssh(rec, manager.require_state().user, 900)
    clock.lap("stop_resize_start")
    disk = int(ssh_ok(lab, host, "lsblk --bytes --nodeps --noheadings --output SIZE /dev/vda"))
    assert disk == virtual["virtual-size"] + 4 * GiB, "the guest does not see the bigger disk"
    assert root_size(lab, host) == size_before, "nothing may grow before bootstrap"

    first = bootstrap(lab, "--components", "base", timeout=3600)
    clock.lap("bootstrap_base")
    grown = re.search(r"root filesystem grown: /dev/vda1 ext4 old=(\d+) bytes \(.*?\) "
                      r"new=(\d+) bytes", log_text(first))
    assert grown, "the role did not report the growth"
    old, new = int(grown.group(1)), int(grown.group(2))
    size_after = root_size(lab, host)
    assert old == size_before and new == size_after, (old, new, size_before, size_after)
    assert size_after > size_before + 3.5 * GiB, (size_before, size_after)
    print(f"root filesystem: {size_before / GiB:.2f} GiB -> {size_after / GiB:.2f} GiB",
          file=sys.stderr)

    second = bootstrap(lab, "--components", "base", timeout=1800)
    clock.lap("rerun")
    assert_no_change(second, host)
    assert "root filesystem not grown (no unallocated space)" in log_text(second)
    assert root_size(lab, host) == size_after
    clock.report()
