"""Container backend: a systemd + sshd Debian 12 container per node, run by docker
without --privileged (the capabilities and mounts measured in TESTBED.md, enough for
docker-in-docker). Implements the interface in ``provision.lab.backend``.

Real in a container: packages, users and groups, systemd services and timers,
docker-in-docker. Not real: kernel modules, global sysctls, reboots (``reboot`` restarts
the container), disks. Use ``--kind vm`` for those.
"""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from provision.errors import ProvisionError, UsageError
from provision.lab import images
from provision.lab.backend import NodeRecord, NodeSpec
from provision.lab.images import docker

# capabilities and mounts that run systemd and docker-in-docker without --privileged
RUN_FLAGS = (
    "--cap-add", "ALL", "--cap-drop", "SYS_RESOURCE",
    "--security-opt", "seccomp=unconfined", "--security-opt", "apparmor=unconfined",
    "--tmpfs", "/run", "--tmpfs", "/run/lock", "--tmpfs", "/tmp:rw,exec,mode=1777",
    "-v", "/sys/fs/cgroup:/sys/fs/cgroup:ro",
    "-v", "/var/lib/docker", "-v", "/var/lib/containerd",
)
LABEL = "provision.lab"  # value: the lab id


def _lab_dir(spec: NodeSpec) -> Path:
    return spec.state_dir.parent.parent  # lab_dir()/nodes/<name>


def _lab_id(lab_dir: Path) -> str:
    from provision.lab.state import lab_id

    return lab_id(lab_dir)


def container_name(lab_id: str, node: str) -> str:
    return f"provision-{lab_id}-{node}"


def network_name(lab_id: str) -> str:
    return f"provision-{lab_id}-lab"


def ensure_image(arch: str, image: str | None, progress: Any = None) -> str:
    """The cached lab image for ``arch`` (built once), or a user's local docker image."""
    if image:
        if not images.image_exists(image):
            raise UsageError(f"--image {image}: no such local docker image (for --kind "
                             "container, --image names an image derived from the lab image)")
        return image
    problem = images.binfmt_problem(arch)
    if problem:
        raise UsageError(problem)
    tag, _ = images.ensure(arch, progress=progress)
    return tag


def _ensure_network(name: str, lab_id: str) -> None:
    if docker("network", "inspect", name, check=False).returncode != 0:
        docker("network", "create", "--label", f"{LABEL}={lab_id}", name)


def _write_seed(spec: NodeSpec) -> Path:
    """/etc/provision-lab inside the node: user, authorized key, host keys."""
    seed = spec.state_dir / "seed"
    seed.mkdir(parents=True, exist_ok=True, mode=0o700)
    (seed / "node.env").write_text(f"LAB_USER='{spec.user}'\n")
    (seed / "authorized_keys").write_text(spec.pubkey.strip() + "\n")
    for private in spec.host_keys.values():
        shutil.copy2(private, seed / private.name)
        shutil.copy2(f"{private}.pub", seed / f"{private.name}.pub")
    return seed


def up(spec: NodeSpec, image: str | None = None) -> NodeRecord:
    """Start the node's container (returns at once; the manager waits for SSH)."""
    lab_dir = _lab_dir(spec)
    lid = _lab_id(lab_dir)
    tag = image or ensure_image(spec.arch, spec.image)
    name = container_name(lid, spec.name)
    net = network_name(lid)
    _ensure_network(net, lid)
    seed = _write_seed(spec)
    docker("rm", "-f", "-v", name, check=False)  # a leftover of a crashed run
    args = ["run", "-d", "--name", name, "--hostname", spec.name,
            "--network", net, "--network-alias", spec.name,
            "--label", f"{LABEL}={lid}", "--label", f"{LABEL}.node={spec.name}",
            "--label", f"{LABEL}.dir={lab_dir}",
            "--platform", f"linux/{spec.arch}",
            "-p", f"127.0.0.1:{spec.ssh_port}:22",
            "-v", f"{seed}:/etc/provision-lab:ro", *RUN_FLAGS, tag]
    try:
        docker(*args)
    except ProvisionError:
        docker("rm", "-f", "-v", name, check=False)
        raise
    info = _inspect(name) or {}
    volumes = [m["Name"] for m in info.get("Mounts", []) if m.get("Type") == "volume"]
    return NodeRecord(name=spec.name, kind="container", arch=spec.arch,
                      ssh_port=spec.ssh_port, ident=name,
                      extra={"network": net, "image": tag, "volumes": volumes,
                             "lab_id": lid})


def _inspect(name: str) -> dict[str, Any] | None:
    proc = docker("inspect", "--type", "container", name, check=False)
    if proc.returncode != 0:
        return None
    data = json.loads(proc.stdout)
    return data[0] if data else None


def down(rec: NodeRecord) -> None:
    """Remove the container, its anonymous volumes and (when empty) the lab network."""
    docker("rm", "-f", "-v", rec.ident, check=False)
    for vol in rec.extra.get("volumes", []):
        docker("volume", "rm", "-f", vol, check=False)
    net = rec.extra.get("network")
    if net:
        _remove_network_if_unused(net)


def _remove_network_if_unused(net: str) -> None:
    proc = docker("network", "inspect", "-f", "{{len .Containers}}", net, check=False)
    if proc.returncode == 0 and proc.stdout.strip() == "0":
        docker("network", "rm", net, check=False)


def cleanup(lab_dir: Path) -> list[str]:
    """Remove any container or network of this lab that the state file does not know
    (left by an interrupted `up`); return what was removed."""
    lid = _lab_id(lab_dir)
    removed: list[str] = []
    if shutil.which("docker") is None:
        return removed
    proc = docker("ps", "-a", "-q", "--filter", f"label={LABEL}={lid}", check=False)
    for cid in proc.stdout.split():
        docker("rm", "-f", "-v", cid, check=False)
        removed.append(cid)
    proc = docker("network", "ls", "-q", "--filter", f"label={LABEL}={lid}", check=False)
    for nid in proc.stdout.split():
        docker("network", "rm", nid, check=False)
        removed.append(nid)
    return removed


def log_tail(rec: NodeRecord) -> str:
    """The container's systemd state and failed units, for a timeout's error message (a
    systemd stuck 'initializing' with failed *.path units: root's inotify instances ran out,
    see provision/lab/hostlimits.py)."""
    state = docker("exec", rec.ident, "systemctl", "is-system-running", check=False,
                   timeout=30)
    failed = docker("exec", rec.ident, "systemctl", "list-units", "--failed", "--plain",
                    "--no-legend", "--no-pager", check=False, timeout=30)
    if state.returncode == 255 or not state.stdout.strip():
        return ""
    units = ", ".join(line.split()[0] for line in failed.stdout.splitlines() if line.strip())
    return (f"systemd in {rec.ident}: {state.stdout.strip()}"
            + (f"; failed units: {units}" if units else ""))


def reboot(rec: NodeRecord) -> None:
    """Restart the container (systemd shuts down on SIGRTMIN+3 and boots again).
    A container reboot is not a kernel reboot: use --kind vm to test real reboots."""
    docker("restart", "-t", "20", rec.ident)


def _parse_time(text: str) -> datetime:
    # docker prints nanoseconds: 2026-11-21T21:10:00.123456789Z
    main, _, frac = text.rstrip("Z").partition(".")
    frac = (frac + "000000")[:6]
    return datetime.fromisoformat(f"{main}.{frac}+00:00")


def status(rec: NodeRecord) -> dict[str, Any]:
    info = _inspect(rec.ident)
    if info is None:
        return {"running": False, "uptime_s": None}
    st = info.get("State", {})
    running = bool(st.get("Running"))
    uptime = None
    if running and st.get("StartedAt"):
        uptime = (datetime.now(UTC) - _parse_time(st["StartedAt"])).total_seconds()
    return {"running": running, "uptime_s": uptime}
