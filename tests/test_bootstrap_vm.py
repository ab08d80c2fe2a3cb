"""`provision bootstrap` on a real qemu VM (TCG): the parts a container cannot show.

Real here: kernel modules, sysctls, swap, iptables/netfilter-persistent with an OCI-style
rules.v4 (REJECT at the end of INPUT and FORWARD), a reboot, growpart/resize2fs on a disk with
unallocated space, docker.io installed from the Debian mirror. Under TCG the docker.io install
alone takes about 3.5 minutes, so this is ONE well-chosen scenario, not many small tests.

The port 6443 check goes through a qemu user-network forward added at run time over the VM's
QMP socket (``hostfwd_add``): traffic enters the guest on eth0 like traffic from the cloud.
"""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

import pytest
from test_bootstrap_container import (
    BANNER,
    OCI_RULES_V4,
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

def qmp(sock_path: str, command: str) -> str:
    """One human-monitor command over the VM's QMP socket."""
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(10)
        s.connect(sock_path)
        f = s.makefile("rw")
        json.loads(f.readline())  # greeting
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


def forward_port(host: str, guest_port: int) -> int:
    """Forward a free 127.0.0.1 port to ``guest_port`` on the VM's eth0; return it."""
    from provision.lab import manager

    rec = manager.require_node(manager.require_state(), host)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    sock = str(Path(rec.extra["sock_dir"]) / "qmp.sock")
    out = qmp(sock, f"hostfwd_add n0 tcp:127.0.0.1:{port}-:{guest_port}")
    assert "could not" not in out.lower(), out
    return port


def root_size(lab: Any, host: str) -> int:
    return int(ssh_ok(lab, host, "findmnt --noheadings --bytes --output SIZE /").strip())


def check_kernel_state(lab: Any, host: str) -> None:
    modules = ssh_ok(lab, host, "lsmod")
    assert "br_netfilter" in modules and "overlay" in modules, modules
    for key in ("net.ipv4.ip_forward", "net.bridge.bridge-nf-call-iptables",
                "net.bridge.bridge-nf-call-ip6tables"):
        assert ssh_ok(lab, host, f"sysctl -n {key}").strip() == "1", key
    assert ssh_ok(lab, host, "swapon --show --noheadings").strip() == ""
    assert ssh_ok(lab, host, "systemctl is-active docker").strip() == "active"


@pytest.mark.timeout(14400)  # TCG: docker.io alone takes ~3.5 min on an idle machine
def test_bootstrap_vm_firewall_reboot_disk(lab_host: Any) -> None:
    """Fresh VM with OCI-style rules.v4 and a grown disk: bootstrap base,docker opens 6443
    before the REJECT, turns swap off, loads modules and sysctls, grows the root filesystem;
    everything survives a reboot; a second run changes nothing and duplicates no rule."""
    lab = lab_host(kind="vm", disk="8G")
    host = lab.hosts[0]

    # --- the OCI-like starting point ----------------------------------------------------
    assert int(ssh_ok(lab, host, "awk '/SwapTotal/ {print $2}' /proc/meminfo")) > 0
    ssh_ok(lab, host, "sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -q iptables",
           timeout=3600)
    ssh_ok(lab, host, f"sudo mkdir -p /etc/iptables && printf '%s' '{OCI_RULES_V4}' "
                      "| sudo tee /etc/iptables/rules.v4 >/dev/null && "
                      "sudo iptables-restore < /etc/iptables/rules.v4")
    start_listener(lab, host)
    port = forward_port(host, 6443)
    assert greeting("127.0.0.1", port) == "", "6443 must be refused by the REJECT before bootstrap"
    size_before = root_size(lab, host)
    prepare_verify_image(lab, host)

    # --- bootstrap ------------------------------------------------------------------------
    first = bootstrap(lab, "--components", "base,docker", timeout=7200)
    assert first["hosts"][host]["changed"] > 0
    log = run_log(first)
    assert "root filesystem grown" in log
    size_after = root_size(lab, host)
    assert size_after > size_before + 3 * 2**30, (size_before, size_after)
    assert greeting("127.0.0.1", port) == BANNER, "6443 not reachable after bootstrap"
    live = ssh_ok(lab, host, "sudo iptables -S INPUT").splitlines()
    reject = max(i for i, line in enumerate(live) if "-j REJECT" in line)
    api = next(i for i, line in enumerate(live) if "--dport 6443" in line)
    assert api < reject and reject == len(live) - 1, live
    forward = ssh_ok(lab, host, "sudo iptables -S FORWARD")
    assert "-s 10.244.0.0/16" in forward and "-d 10.96.0.0/12" in forward
    assert "-A InstanceServices" in ssh_ok(lab, host, "sudo cat /etc/iptables/rules.v4"), \
        "the user's other rules must stay"
    check_kernel_state(lab, host)
    check_docker_as_user(lab, host)
    assert "swap" in ssh_ok(lab, host, "grep swap /etc/fstab") and \
        ssh_ok(lab, host, "grep swap /etc/fstab").lstrip().startswith("#")

    # --- reboot: everything persisted ---------------------------------------------------
    reboot = lab.cli("lab", "reboot", host, timeout=900)
    assert reboot.returncode == 0, reboot.stderr
    check_kernel_state(lab, host)
    assert ssh_ok(lab, host, "systemctl is-enabled netfilter-persistent").strip() == "enabled"
    assert count_rule(lab, host, "--dport 6443") == (1, 1)
    start_listener(lab, host)
    assert greeting("127.0.0.1", port) == BANNER, "6443 not reachable after the reboot"
    check_docker_as_user(lab, host)

    # --- second run: no change, no duplicate rule, no growth --------------------------
    second = bootstrap(lab, "--components", "base,docker", timeout=3600)
    assert second["hosts"][host]["changed"] == 0, f"second run changed: {second['hosts']}"
    assert count_rule(lab, host, "--dport 6443") == (1, 1)
    assert "root filesystem not grown" in run_log(second)
    assert root_size(lab, host) == size_after
