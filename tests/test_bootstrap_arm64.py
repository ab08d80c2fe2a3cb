"""`provision bootstrap --components base,docker` on an arm64 lab host (qemu-user, binfmt).

Every binary of the host is an arm64 binary run by qemu-aarch64-static: apt, dpkg, the
docker.io .deb for arm64, dockerd, the docker CLI, sshd, python3 for Ansible.

What qemu-user (Debian 12's qemu-user-static 7.2) cannot do, observed on this machine:

- dockerd with its default networking exits at start with "failed to create NAT chain DOCKER:
  iptables failed: iptables -t nat -N DOCKER: iptables: Failed to initialize nft: Protocol not
  supported". Debian's iptables is iptables-nft, which talks nf_tables over an
  AF_NETLINK/NETLINK_NETFILTER socket, and qemu's linux-user only translates the NETLINK_ROUTE,
  NETLINK_AUDIT and NETLINK_KOBJECT_UEVENT protocols. The test therefore sets
  ``docker_daemon_options: {iptables: false, ip6tables: false, bridge: none}`` (the role's
  documented escape hatch): the emulated dockerd then starts and serves its socket.
- No container can start: ``docker run`` fails with "failed to start shim: start failed:
  io.containerd.runc.v2: invalid argument". Traced with QEMU_STRACE on this machine:
  containerd-shim-runc-v2 calls ``prctl(PR_SET_CHILD_SUBREAPER)`` at start, which qemu 7.2's
  linux-user does not implement (EINVAL, a "TODO" in do_prctl), so the shim exits 1 before
  doing anything. A newer qemu (10.0 from bookworm-backports, tried) implements that prctl, but
  runc still cannot run: its memfd self-re-exec fails through binfmt_misc (ENOENT on
  /proc/self/exe with 7.2; the kernel refuses execveat of a close-on-exec fd with 10.0; crun
  fails the same way), and qemu-user rejects the ``clone(CLONE_PARENT)`` and ``CLONE_NEW*``
  flags runc's nsexec needs (EINVAL). Only the host's native amd64 shim and runc copied into
  the host make ``docker run`` print its output, which would not be an arm64 runtime, so the
  test does not do that. (qemu 7.2 also answers PR_GET_SECCOMP with EINVAL: the emulated
  dockerd reports no seccomp support.) The role's own proof is set to ``docker info`` only
  (``docker_verify_image: ""``) and the test still tries ``docker run``: it must either work
  or fail with exactly the shim's error.

So this shows on arm64: the arm64 packages install, daemon.json is written, the daemon runs
and answers the non-root SSH user WITHOUT sudo (``docker info`` and ``docker load`` through
the socket's group permission; the role checks ``docker info`` in the same play after
``reset_connection``), ``id`` shows the docker group, and a second run reports changed=0.
``docker run`` as that user is shown on amd64 containers and on the VM.
"""

from __future__ import annotations

import json
import shlex
import sys
from typing import Any

import pytest
from test_bootstrap_container import (
    MAKE_IMAGE,
    VERIFY_ARCHIVE,
    VERIFY_IMAGE,
    assert_no_change,
    bootstrap,
    run_log,
    set_host_vars,
    ssh_ok,
)

pytestmark = [pytest.mark.container, pytest.mark.arm64, pytest.mark.slow]

# What `docker run` answers when containerd's runc shim cannot start under qemu-user.
SHIM_FAILURE = "failed to start shim: start failed: io.containerd.runc.v2: invalid argument"


@pytest.mark.timeout(5400)  # docker.io's install alone takes minutes under emulation
def test_bootstrap_docker_on_arm64_container_host(lab_host: Any) -> None:
    """base,docker on a fresh arm64 host: the non-root user is in the docker group and
    `docker info` works without sudo (the daemon reports aarch64); a re-run changes nothing.
    `docker run` is impossible under qemu-user (see the module docstring): it must work or
    fail with exactly the shim's EINVAL."""
    lab = lab_host(arch="arm64")
    host = lab.hosts[0]
    assert ssh_ok(lab, host, "uname -m").strip() == "aarch64"
    assert lab.ssh(host, "command -v docker").returncode != 0, "fresh host already has docker"
    set_host_vars(lab, host, {
        "docker_daemon_options": {"iptables": False, "ip6tables": False, "bridge": "none"},
        "docker_verify_image": "",
    })
    try:
        first = bootstrap(lab, "--components", "base,docker", timeout=5000)
    except BaseException:
        # say why the emulated daemons failed (the lab is gone after the test)
        journal = lab.ssh(host, "sudo journalctl -u docker -u containerd --no-pager -n 40")
        print(journal.stdout[-6000:], file=sys.stderr)
        raise
    assert first["hosts"][host]["changed"] > 0
    user = lab.inventory.hosts[host].user
    assert f"works without sudo for {user}" in run_log(first)

    assert ssh_ok(lab, host, "id -u").strip() != "0"
    assert "docker" in ssh_ok(lab, host, "id -nG").split()
    info = ssh_ok(lab, host, "docker info --format "
                             "'{{.Architecture}} {{.CgroupDriver}} {{.LoggingDriver}}'")
    assert info.split() == ["aarch64", "systemd", "json-file"], info
    assert ssh_ok(lab, host, "dpkg-query -W -f='${Architecture}' docker.io") == "arm64"
    daemon = json.loads(ssh_ok(lab, host, "cat /etc/docker/daemon.json"))
    assert daemon["exec-opts"] == ["native.cgroupdriver=systemd"]
    assert daemon["log-opts"] == {"max-size": "10m", "max-file": "3"}

    ssh_ok(lab, host, f"OUT={VERIFY_ARCHIVE} TAG={VERIFY_IMAGE} python3 -c "
                      f"{shlex.quote(MAKE_IMAGE)} && docker load --input {VERIFY_ARCHIVE}")
    run = lab.ssh(host, f"docker run --rm {VERIFY_IMAGE} /echo hello-from-arm64")
    if run.returncode == 0:
        assert run.stdout.strip() == "hello-from-arm64"
    else:
        assert SHIM_FAILURE in run.stderr, f"docker run failed otherwise:\n{run.stderr}"

    second = bootstrap(lab, "--components", "base,docker", timeout=3600)
    assert_no_change(second, host)
