"""benchmarks/bootstrap.py's pure parts: the fair floor follows the roles' defaults (it cannot
drift from what base and docker install), its shell command quotes every value, and the re-run
breakdown adds up. No host is contacted."""

from __future__ import annotations

import importlib.util
import shlex
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_bootstrap",
                                                  ROOT / "benchmarks" / "bootstrap.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_fair_floor_installs_what_the_roles_install(bench: ModuleType) -> None:
    base, docker = bench.role_defaults("base"), bench.role_defaults("docker")
    names = bench.fair_packages(base, docker)
    assert set(base["base_packages"]) <= set(names)
    assert set(docker["docker_distro_packages"]) <= set(names)
    assert "systemd-timesyncd" in names and "chrony" not in names
    # a package added to a role's defaults is in the floor too
    grown = bench.fair_packages({**base, "base_packages": [*base["base_packages"], "jq"]},
                                docker)
    assert grown == [*names[:len(base["base_packages"])], "jq",
                     *names[len(base["base_packages"]):]]
    assert "chrony" in bench.fair_packages({**base, "base_time_sync": "chrony"}, docker)


def test_fair_floor_command_one_apt_call_and_kernel_steps(bench: ModuleType) -> None:
    base, docker = bench.role_defaults("base"), bench.role_defaults("docker")
    container = bench.fair_floor_command("container", base, docker)
    vm = bench.fair_floor_command("vm", base, docker)
    assert container.count("apt-get install") == 1 and container.count("apt-get update") == 1
    assert "modprobe" not in container and "sysctl --load" not in container
    assert "sudo modprobe --all overlay br_netfilter" in vm
    assert "sudo sysctl --load /etc/sysctl.d/90-provision.conf" in vm
    # every step parses as shell words; a hostile package name stays one quoted word
    for step in vm.split(" && "):
        shlex.split(step)
    odd = bench.fair_floor_command("vm", {**base, "base_packages": ["a; rm -rf /"]}, docker)
    assert "'a; rm -rf /'" in odd


def test_breakdown_adds_up(bench: ModuleType) -> None:
    def event(kind: str, at: float, **data: object) -> dict[str, object]:
        from datetime import UTC, datetime

        return {"event": kind, "created": datetime.fromtimestamp(at, UTC).isoformat(),
                "event_data": data}

    events = [event("playbook_on_start", 102.0),
              event("playbook_on_task_start", 103.0, task="a"),
              event("runner_on_ok", 104.0, task="a", duration=1.0),
              event("playbook_on_task_start", 104.5, task="b"),
              event("runner_on_skipped", 105.0, task="b", duration=0.25),
              event("playbook_on_stats", 106.0)]
    parts = bench.breakdown(events, started=100.0, ended=107.0, runner_started=101.5)
    assert parts == {"total_s": 7.0, "cli_s": 1.5, "ansible_startup_s": 1.5,
                     "tasks_sum_s": 1.25, "after_last_event_s": 1.0, "rest_s": 1.75}
    unknown = bench.breakdown(events, started=100.0, ended=107.0, runner_started=None)
    assert unknown["cli_s"] is None and unknown["ansible_startup_s"] is None
    assert unknown["rest_s"] == 7.0 - 1.25 - 1.0
