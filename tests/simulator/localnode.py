"""Simulated nodes as directories on the test machine (fast tests without containers).

A LocalNode runs the same kubeadm/kubelet/kubectl code the .deb packages install, with every
host path under its own root (SIM_ROOT), and supervises its kubelet like systemd does
(Restart=always; `kubeadm` restarts it through SIM_RESTART_KUBELET). "Installing" a package
version is setting the version the node's programs run with.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

TESTS = Path(__file__).resolve().parent.parent


class LocalNode:
    def __init__(self, root: Path, name: str, server_url: str, version: str) -> None:
        self.root, self.name = root, name
        self.versions = {"kubeadm": version, "kubelet": version, "kubectl": version}
        (root / "etc/provision-sim").mkdir(parents=True, exist_ok=True)
        (root / "etc/provision-sim/server").write_text(server_url + "\n")
        self._bin = root / "usr/bin"
        self._bin.mkdir(parents=True, exist_ok=True)
        self.install(**self.versions)
        self._restart = root / "run-restart-kubelet"
        self._proc: subprocess.Popen | None = None
        self._stop = threading.Event()
        self._enabled = True
        self._thread = threading.Thread(target=self._supervise, daemon=True)
        self._thread.start()

    # ------------------------------------------------------------------ packages
    def install(self, **versions: str) -> None:
        """Set the version of kubeadm/kubelet/kubectl (like installing that package)."""
        self.versions.update(versions)
        for prog, version in self.versions.items():
            path = self._bin / prog
            path.write_text(
                f'#!/bin/sh\nexec {sys.executable} -m simulator.run {prog} {version} "$@"\n'
            )
            path.chmod(0o755)

    @property
    def env(self) -> dict[str, str]:
        return dict(
            os.environ,
            SIM_ROOT=str(self.root),
            SIM_NODE_NAME=self.name,
            SIM_KUBELET=str(self._bin / "kubelet"),
            SIM_KUBELET_INTERVAL="0.5",
            SIM_RESTART_KUBELET=f"touch {self._restart}",
            PYTHONPATH=str(TESTS) + os.pathsep + os.environ.get("PYTHONPATH", ""),
        )

    def run(self, prog: str, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
        return subprocess.run(
            [str(self._bin / prog), *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def kubectl(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
        return self.run(
            "kubectl",
            "--kubeconfig",
            str(self.root / "etc/kubernetes/admin.conf"),
            *args,
            timeout=timeout,
        )

    def path(self, host_path: str) -> Path:
        return self.root / host_path.lstrip("/")

    # ------------------------------------------------------------------ kubelet "service"
    def restart_kubelet(self) -> None:
        self._restart.touch()

    def stop_kubelet(self) -> None:
        self._enabled = False
        self._kill()

    def start_kubelet(self) -> None:
        self._enabled = True
        self.restart_kubelet()

    def _kill(self) -> None:
        if self._proc and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(5)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()

    def _start(self) -> None:
        config = self.path("/var/lib/kubelet/config.yaml")
        if not config.exists():
            return
        flags = [
            "--kubeconfig=/etc/kubernetes/kubelet.conf",
            "--config=/var/lib/kubelet/config.yaml",
            f"--hostname-override={self.name}",
        ]
        log = open(self.root / "kubelet.log", "a")  # noqa: SIM115 - owned by the process
        self._proc = subprocess.Popen(
            [str(self._bin / "kubelet"), *flags], env=self.env, stdout=log, stderr=log
        )

    def _supervise(self) -> None:
        last_start = 0.0
        while not self._stop.is_set():
            if self._restart.exists():
                self._restart.unlink()
                self._kill()
                if self._enabled:
                    self._start()
                    last_start = time.time()
            elif (
                self._enabled
                and (self._proc is None or self._proc.poll() is not None)
                and time.time() - last_start > 1.0
            ):
                self._start()
                last_start = time.time()
            time.sleep(0.1)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self._kill()
