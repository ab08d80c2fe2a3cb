"""The SIMULATED minikube (tests/simulator_minikube/minikube) exits with the codes real minikube
uses when the docker provider is unusable. Sources (kubernetes/minikube):
cmd/minikube/cmd/start.go validateDriver -> exitIfNotForced(reason.Kind{ID: st.Reason,
ExitCode: ExProviderUnavailable | ExProviderNotRunning}); pkg/minikube/registry/drvs/docker/
docker.go suggestFix ("permission denied" -> PROVIDER_DOCKER_NEWGRP, Running: true);
pkg/minikube/reason/exitcodes.go (ExProviderNotRunning = 63, ExProviderUnavailable = 69)."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

SIMULATOR = Path(__file__).parent / "simulator_minikube" / "minikube"


def run_with_docker(tmp_path: Path, stderr: str) -> subprocess.CompletedProcess[str]:
    """Run the simulator's `start` with a `docker` on PATH that fails with ``stderr``."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    docker = bin_dir / "docker"
    docker.write_text(f"#!/bin/sh\necho {json.dumps(stderr)} >&2\nexit 1\n")
    docker.chmod(docker.stat().st_mode | stat.S_IXUSR)
    env = {"PATH": f"{bin_dir}:{os.environ['PATH']}", "HOME": str(tmp_path)}
    return subprocess.run(
        [sys.executable, str(SIMULATOR), "start", "--driver=docker", "--force",
         "--kubernetes-version=v1.31.0"], capture_output=True, text=True, env=env, timeout=60)


@pytest.mark.parametrize(("stderr", "reason", "code"), [
    ("permission denied while trying to connect to the Docker daemon socket at "
     "unix:///var/run/docker.sock", "PROVIDER_DOCKER_NEWGRP", 69),
    ("Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker "
     "daemon running?", "PROVIDER_DOCKER_NOT_RUNNING", 63),
])
def test_simulated_minikube_docker_provider_exit_codes(tmp_path: Path, stderr: str, reason: str,
                                                       code: int) -> None:
    result = run_with_docker(tmp_path, stderr)
    assert result.returncode == code, result.stderr
    assert f"Exiting due to {reason}" in result.stderr
    assert not (tmp_path / ".minikube" / "profiles" / "minikube" / "config.json").exists()
