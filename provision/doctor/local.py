"""Hosts with ``ansible_connection: local`` (the controller itself): run the probe with sh."""

from __future__ import annotations

import subprocess
import time

from provision.doctor.model import FAIL, PASS, CheckResult
from provision.doctor.probe import parse_sections
from provision.doctor.ssh import SCRIPT_TIMEOUT, Gathered


def gather_local(name: str, script: str, *, timeout: float = SCRIPT_TIMEOUT) -> Gathered:
    started = time.monotonic()
    try:
        proc = subprocess.run(["/bin/sh", "-s"], input=script, capture_output=True, text=True,
                              timeout=timeout, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return Gathered(name, CheckResult(name, "ssh", FAIL, f"local probe failed: {exc}"),
                        "error", {}, time.monotonic() - started)
    sections = parse_sections(proc.stdout)
    if "end" not in sections:
        return Gathered(name, CheckResult(name, "ssh", FAIL, "local probe was cut short"),
                        "error", sections, time.monotonic() - started)
    return Gathered(name, CheckResult(name, "ssh", PASS,
                                      "ansible_connection local: probed on this machine"),
                    "ok", sections, time.monotonic() - started)


def unsupported(name: str, connection: str) -> Gathered:
    return Gathered(name, CheckResult(
        name, "ssh", FAIL, f"ansible_connection '{connection}' is not supported by doctor "
                           "(it checks hosts over ssh, or 'local' for this machine)"), "error")
