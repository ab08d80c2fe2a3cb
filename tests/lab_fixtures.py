"""Real lab hosts for tests: systemd containers (and qemu VMs) from `provision lab`.

Fixtures (imported into tests/conftest.py, usable from any test module):

``lab_host(kind="container", arch="amd64", **up_flags) -> Lab``
    A fresh one-host lab (``lab-1`` in ``control_plane``) in its own ``XDG_STATE_HOME``
    (a tmp dir; the env var is set for the test). Removed after the test, and the teardown
    asserts that no container, network or lab file is left.
``lab_cluster(control_planes=1, workers=0, kind="container", arch="amd64") -> Lab``
    The same with ``control_planes + workers`` hosts (``lab-1..N``; the first ones in
    ``control_plane``, the rest in ``workers``).
``lab_image(arch="amd64") -> str``
    Session-scoped: builds (or reuses) the lab container image once per session.

A ``Lab`` has ``.inventory`` (the loaded ``provision.inventory.Inventory`` of ``-i lab``),
``.inventory_dir``, ``.hosts`` (names), ``.state_home``, ``.env`` (os.environ with this lab's
XDG_STATE_HOME, for subprocesses), ``.ssh(name, "cmd") -> CompletedProcess`` (checked host
key, lab key) and ``.cli("lab", "status") -> CompletedProcess`` (runs ``python -m provision``).

Example::

    import pytest
    from provision.runner import run_playbook

    @pytest.mark.container
    def test_my_role(lab_host):
        lab = lab_host()                       # or lab_host(arch="arm64") + @pytest.mark.arm64
        result = run_playbook(command="test", playbook="/abs/play.yml",
                              inventory=lab.inventory, quiet=True)
        assert result.ok

``KUBERNETES_MINORS`` / ``kubernetes_minors()``
    The Kubernetes minors the lab scenarios (clusters, add-ons, upgrades) run at: the new-cluster
    default (the schema's ``kubernetes_version`` default, the one place) and the newest minor
    provision supports (``provision.versions.NEWEST_MINOR``). ``kubernetes_minors()`` gives them
    as pytest params with ids ``"1.35"``, ``"1.37"``; the newest is marked ``slow`` (make
    test-all), the default keeps the marks of its test. Example::

        @pytest.mark.parametrize("minor", kubernetes_minors())
        def test_my_scenario_simulated(minor: int, ...): ...

Tests skip (with the reason) when docker, root for the first image build, qemu-aarch64 binfmt
(arm64) or the VM backend (kind="vm") is missing: run ``sudo scripts/testenv.sh`` first.
Mark your tests ``container`` / ``vm`` / ``arm64`` (and ``slow`` when over ~30 s).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parent.parent


def default_minor() -> int:
    """The minor new clusters get: the schema's ``kubernetes_version`` default (the one place;
    ``provision init`` reads the same), e.g. "1.35" -> 35."""
    from provision.schema import BY_NAME
    from provision.versions import parse_version

    parsed = parse_version(str(BY_NAME["kubernetes_version"].default))
    assert parsed is not None, "the schema's kubernetes_version default is not a version"
    return parsed[1]


def newest_minor() -> int:
    """The newest minor provision supports (provision/versions.py)."""
    from provision.versions import NEWEST_MINOR

    return NEWEST_MINOR


#: [default, newest] without repeats (the same minor once when they are equal).
KUBERNETES_MINORS: tuple[int, ...] = tuple(dict.fromkeys((default_minor(), newest_minor())))


def kubernetes_minors() -> list[Any]:
    """``KUBERNETES_MINORS`` as pytest params (id "1.N"); every minor but the default is
    ``slow`` (make test-all), so adding the newest costs ``make test`` nothing."""
    return [pytest.param(m, id=f"1.{m}",
                         marks=() if m == default_minor() else (pytest.mark.slow,))
            for m in KUBERNETES_MINORS]


def lab_unavailable(kind: str = "container", arch: str = "amd64") -> str | None:
    """Why a lab of this kind/arch cannot run here (None when it can)."""
    if kind == "container":
        if shutil.which("docker") is None:
            return "docker is not installed (run: sudo scripts/testenv.sh)"
        if subprocess.run(["docker", "info"], capture_output=True).returncode != 0:
            return "docker daemon not reachable (run: sudo scripts/testenv.sh)"
        from provision.lab import images

        if os.geteuid() != 0 and not images.image_exists(images.image_tag(arch)):
            return f"the lab image for {arch} is not built and building needs root"
    elif kind == "vm":
        try:
            import provision.lab.vm  # noqa: F401
        except ModuleNotFoundError:
            return "the VM backend (provision/lab/vm.py) is not available"
        qemu = "qemu-system-x86_64" if arch == "amd64" else "qemu-system-aarch64"
        if shutil.which(qemu) is None:
            return f"{qemu} is not installed"
    if kind == "container":
        from provision.lab import images

        return images.binfmt_problem(arch)
    return None


@dataclass
class Lab:
    state_home: Path
    kind: str
    arch: str
    hosts: list[str] = field(default_factory=list)
    timings: dict[str, Any] = field(default_factory=dict)

    @property
    def env(self) -> dict[str, str]:
        return dict(os.environ, XDG_STATE_HOME=str(self.state_home))

    @property
    def lab_dir(self) -> Path:
        return self.state_home / "provision" / "lab"

    @property
    def inventory_dir(self) -> Path:
        return self.lab_dir / "inventory"

    @property
    def inventory(self) -> Any:
        from provision.inventory import load_inventory

        return load_inventory(self.inventory_dir)

    def cli(self, *args: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
        return run_cli(*args, env=self.env, timeout=timeout)

    def ssh(self, name: str, command: str, timeout: float = 300
            ) -> subprocess.CompletedProcess[str]:
        return self.cli("lab", "ssh", name, "--", "sh", "-c", command, timeout=timeout)


def run_cli(*args: str, env: dict[str, str] | None = None, timeout: float = 900
            ) -> subprocess.CompletedProcess[str]:
    """``python -m provision ARGS`` in the repo, output captured."""
    return subprocess.run([sys.executable, "-m", "provision", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=timeout, check=False)


def lab_leftovers(state_home: Path) -> list[str]:
    """Containers, networks and files of the lab in ``state_home`` that still exist."""
    from provision.lab import state

    lab_dir = state_home / "provision" / "lab"
    lid = state.lab_id(lab_dir)
    left: list[str] = []
    if shutil.which("docker"):
        for what in (["ps", "-a"], ["network", "ls"]):
            out = subprocess.run(["docker", *what, "-q", "--filter", f"label=provision.lab={lid}"],
                                 capture_output=True, text=True).stdout.split()
            left += [f"docker {what[0]} {x}" for x in out]
    if lab_dir.exists():
        left += [str(p) for p in lab_dir.rglob("*")] or [str(lab_dir)]
    return left


@pytest.fixture(scope="session")
def lab_image() -> Callable[[str], str]:
    """Session-scoped image build: ``lab_image("arm64")`` -> image tag (built once)."""
    built: dict[str, str] = {}

    def get(arch: str = "amd64") -> str:
        if arch not in built:
            reason = lab_unavailable("container", arch)
            if reason:
                pytest.skip(reason)
            from provision.lab import images

            built[arch], _ = images.ensure(arch, progress=lambda m: print(m, file=sys.stderr))
        return built[arch]

    return get


def _make_lab_factory(tmp_path_factory: pytest.TempPathFactory,
                      monkeypatch: pytest.MonkeyPatch,
                      lab_image: Callable[[str], str]) -> Iterator[Callable[..., Lab]]:
    from provision.lab import manager

    labs: list[Lab] = []

    def make(control_planes: int = 1, workers: int = 0, kind: str = "container",
             arch: str = "amd64", **flags: Any) -> Lab:
        reason = lab_unavailable(kind, arch)
        if reason:
            pytest.skip(reason)
        if kind == "container":
            lab_image(arch)
        home = tmp_path_factory.mktemp("labstate")
        monkeypatch.setenv("XDG_STATE_HOME", str(home))
        lab = Lab(state_home=home, kind=kind, arch=arch)
        labs.append(lab)
        plan = manager.make_plan(nodes=control_planes + workers,
                                 control_planes=control_planes, kind=kind, arch=arch, **flags)
        st, lab.timings = manager.up(plan, progress=lambda m: print(m, file=sys.stderr))
        lab.hosts = [n.name for n in st.nodes]
        return lab

    yield make
    problems: list[str] = []
    for lab in labs:
        monkeypatch.setenv("XDG_STATE_HOME", str(lab.state_home))
        manager.down(progress=lambda m: None)
        problems += lab_leftovers(lab.state_home)
    assert not problems, f"lab down left things behind: {problems}"


@pytest.fixture
def lab_host(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch,
             lab_image: Callable[[str], str]) -> Iterator[Callable[..., Lab]]:
    """``lab_host(kind="container", arch="amd64", **flags)``: a fresh one-host lab."""
    factory = _make_lab_factory(tmp_path_factory, monkeypatch, lab_image)
    make = next(factory)

    def host(kind: str = "container", arch: str = "amd64", **flags: Any) -> Lab:
        return make(control_planes=1, workers=0, kind=kind, arch=arch, **flags)

    yield host
    next(factory, None)


@pytest.fixture
def lab_cluster(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch,
                lab_image: Callable[[str], str]) -> Iterator[Callable[..., Lab]]:
    """``lab_cluster(control_planes=1, workers=0, kind="container", arch="amd64")``."""
    factory = _make_lab_factory(tmp_path_factory, monkeypatch, lab_image)
    yield next(factory)
    next(factory, None)


def port_is_listening(port: int, host: str = "127.0.0.1") -> bool:
    """True when something accepts TCP connections on host:port (TIME_WAIT does not count)."""
    import socket

    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex((host, port)) == 0
