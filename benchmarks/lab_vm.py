#!/usr/bin/env python3
"""Time the lab's qemu VM backend and print one JSON object.

Measures: base image build (cold: into a fresh cache, only with --cold; cached: the second
``ensure_image``), ``up`` until SSH answers for a fresh overlay, and a guest reboot until SSH
answers again. Drives ``provision.lab.vm`` directly with throwaway keys under a temporary
directory (no lab state is touched) and removes the VM at the end.

    .venv/bin/python benchmarks/lab_vm.py [--cold] [--disk 20G]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from provision.lab import keys, vm, vmimage  # noqa: E402
from provision.lab.backend import NodeSpec  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def ssh_cmd(key: Path, known_hosts: Path, port: int, user: str) -> list[str]:
    return ["ssh", "-i", str(key), "-p", str(port), "-o", "BatchMode=yes",
            "-o", f"UserKnownHostsFile={known_hosts}", "-o", "StrictHostKeyChecking=yes",
            "-o", "ConnectTimeout=5", "-o", "LogLevel=ERROR", f"{user}@127.0.0.1"]


def wait_ssh(base: list[str], timeout: float, rec: vm.NodeRecord) -> float:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        try:
            res = subprocess.run([*base, "true"], capture_output=True, check=False, timeout=15)
        except subprocess.TimeoutExpired:  # qemu accepts, the guest's sshd is not up yet
            continue
        if res.returncode == 0:
            return time.monotonic() - t0
        time.sleep(1)
    raise TimeoutError(f"no SSH after {timeout} s\n{vm.log_tail(rec, lines=10)}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--cold", action="store_true", help="also build the image into a new cache")
    ap.add_argument("--disk", default=None)
    a = ap.parse_args()
    out: dict[str, object] = {"accel": "kvm" if vm.use_kvm() else "tcg",
                              "host_cpus": os.cpu_count(), "vm_cpus": vm.vm_resources()[1],
                              "host_load_1m_at_start": os.getloadavg()[0]}
    if a.cold:
        with tempfile.TemporaryDirectory(prefix="provision-bench-cache-") as cache:
            env_old = os.environ.get("XDG_CACHE_HOME")
            os.environ["XDG_CACHE_HOME"] = cache
            t = time.monotonic()
            d = vmimage.build(vmimage.plan_recipe("amd64"))
            out["image_build_cold_s"] = round(time.monotonic() - t, 1)
            out["image_debootstrap_s"] = json.loads((d / "image.json").read_text())[
                "debootstrap_s"]
            if env_old is None:
                del os.environ["XDG_CACHE_HOME"]
            else:
                os.environ["XDG_CACHE_HOME"] = env_old
    t = time.monotonic()
    base = vm.ensure_image("amd64", None)
    first = time.monotonic() - t
    t = time.monotonic()
    vm.ensure_image("amd64", None)
    out["image_cached_s"] = round(time.monotonic() - t, 3)
    if first > 5:
        out["image_build_s"] = round(first, 1)
    out["image_size_mib"] = round(Path(base).stat().st_size / 2**20)
    with tempfile.TemporaryDirectory(prefix="provision-bench-vm-") as tmp:
        d = Path(tmp)
        user_key = d / "id_ed25519"
        pub = keys.generate_ed25519(user_key, "bench")
        node_dir = d / "lab-bench"
        host_keys = keys.make_host_keys(node_dir, "lab-bench")
        port = free_port()
        kh = d / "known_hosts"
        keys.write_known_hosts(kh, keys.known_hosts_lines("127.0.0.1", port, host_keys))
        spec = NodeSpec(name="lab-bench", kind="vm", arch="amd64", image=None, disk=a.disk,
                        ssh_port=port, user="provision", pubkey=pub, host_keys=host_keys,
                        state_dir=node_dir)
        base_cmd = ssh_cmd(user_key, kh, port, "provision")
        t = time.monotonic()
        rec = vm.up(spec)
        out["up_return_s"] = round(time.monotonic() - t, 2)
        try:
            wait_ssh(base_cmd, 900, rec)
            out["up_to_ssh_s"] = round(time.monotonic() - t, 1)
            boot1 = subprocess.run([*base_cmd, "cat /proc/sys/kernel/random/boot_id"],
                                   capture_output=True, text=True, check=True).stdout.strip()
            t = time.monotonic()
            vm.reboot(rec)
            out["reboot_went_down_s"] = round(time.monotonic() - t, 1)
            wait_ssh(base_cmd, 900, rec)
            out["reboot_to_ssh_s"] = round(time.monotonic() - t, 1)
            boot2 = subprocess.run([*base_cmd, "cat /proc/sys/kernel/random/boot_id"],
                                   capture_output=True, text=True, check=True).stdout.strip()
            out["rebooted"] = boot1 != boot2
        except TimeoutError as exc:  # keep the figures measured so far
            out["error"] = str(exc)
        finally:
            t = time.monotonic()
            vm.down(rec)
            out["down_s"] = round(time.monotonic() - t, 2)
    out["host_load_1m_at_end"] = os.getloadavg()[0]
    print(json.dumps(out, indent=2, sort_keys=True))
    return 1 if "error" in out else 0


if __name__ == "__main__":
    raise SystemExit(main())
