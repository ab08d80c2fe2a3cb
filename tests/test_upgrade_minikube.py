"""minikube upgrades: the hop planning (pure, no host) and the SIMULATED minikube's
K8S_DOWNGRADE_UNSUPPORTED rule (tests/simulator_minikube/minikube run locally with --force in
a temporary HOME; it needs the local docker daemon for its `docker version` probe)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from provision.upgrade.minikube import (
    Profile,
    plan_json,
    plan_minikube,
    plan_table,
    profile_from_report,
    releases_from_list,
)
from provision.upgrade.repository import PlanError
from provision.versions import format_release

SIMULATOR = Path(__file__).parent / "simulator_minikube" / "minikube"
# what `minikube config defaults kubernetes-version --output=json` prints (newest first)
RELEASES = ["v1.32.0", "v1.31.2", "v1.31.0", "v1.30.4", "v1.30.0", "v1.29.8", "v1.29.0",
            "v1.28.13"]


def report(version: str = "v1.29.0", releases: list[str] | None = None) -> dict:
    return {"host": "lab-1", "user": "ubuntu", "running": True,
            "config": {"Name": "minikube", "CPUs": 2, "Memory": 2048,
                       "KubernetesConfig": {"KubernetesVersion": version}},
            "releases": RELEASES if releases is None else releases}


def profile(version: str = "v1.29.0") -> Profile:
    return profile_from_report(report(version), "discovery.json")


def hops(target: str, version: str = "v1.29.0") -> list[tuple[str, str]]:
    plan = plan_minikube(profile(version), target)
    return [(format_release(h.from_version), format_release(h.to_version)) for h in plan.hops]


def test_upgrade_minikube_plan_one_minor_per_hop_newest_patch_between() -> None:
    """Each hop one minor; hops in between go to the newest patch minikube lists, the last
    to --to's patch (or the newest of its minor)."""
    assert hops("1.31") == [("1.29.0", "1.30.4"), ("1.30.4", "1.31.2")]
    assert hops("1.31.0") == [("1.29.0", "1.30.4"), ("1.30.4", "1.31.0")]
    assert hops("1.32", "v1.29.8") == [("1.29.8", "1.30.4"), ("1.30.4", "1.31.2"),
                                       ("1.31.2", "1.32.0")]
    assert hops("1.29.8") == [("1.29.0", "1.29.8")]  # a patch hop


def test_upgrade_minikube_plan_at_target_does_nothing() -> None:
    plan = plan_minikube(profile("v1.31.2"), "1.31")
    assert plan.nothing_to_do
    assert "Nothing to do" in plan_table(profile("v1.31.2"), plan)
    # the profile's own patch counts even when this minikube no longer lists it
    assert plan_minikube(profile("v1.31.1"), "1.31.1").nothing_to_do


@pytest.mark.parametrize(("target", "reason"), [
    ("1.28", "downgrades are not supported"),
    ("1.29.0", None),  # same version: nothing to do, not a refusal
    ("1.33", "newer than the package repository offers"),
    ("1.31.7", "newer than the package repository offers"),
    ("1.30.2", "not a released version"),
])
def test_upgrade_minikube_plan_refusals(target: str, reason: str | None) -> None:
    if reason is None:
        assert plan_minikube(profile("v1.29.0"), target).nothing_to_do
        return
    with pytest.raises(PlanError) as exc:
        plan_minikube(profile("v1.29.8"), target)
    assert reason in str(exc.value)
    assert exc.value.exit_code == 2


def test_upgrade_minikube_plan_table_and_json_name_the_commands() -> None:
    p = profile()
    plan = plan_minikube(p, "1.31")
    text = plan_table(p, plan)
    assert "minikube start --kubernetes-version=v1.30.4" in text
    assert "minikube start --kubernetes-version=v1.31.2" in text
    assert "user ubuntu" in text
    assert plan_json(p, plan)["hops"] == [{"hop": 1, "from": "1.29.0", "to": "1.30.4"},
                                          {"hop": 2, "from": "1.30.4", "to": "1.31.2"}]


def test_upgrade_minikube_discovery_report_errors_name_the_source() -> None:
    with pytest.raises(PlanError, match="discovery.json: host lab-1: no minikube profile"):
        profile_from_report({**report(), "config": None}, "discovery.json")
    with pytest.raises(PlanError, match="KubernetesVersion 'latest' is not a release"):
        profile_from_report(report("latest"), "discovery.json")
    with pytest.raises(PlanError, match="listed no releases"):
        profile_from_report(report(releases=[]), "discovery.json")
    with pytest.raises(PlanError, match="not a Kubernetes release: 'v1.x'"):
        releases_from_list(["v1.31.0", "v1.x"], "releases")
    assert releases_from_list(["v1.31.0", "1.30.4", "v1.31.2"], "r") == {
        30: ((1, 30, 4),), 31: ((1, 31, 0), (1, 31, 2))}



def test_minikube_prereleases_are_skipped_not_read_as_releases() -> None:
    """minikube lists prereleases beside releases (kubernetes/minikube
    cmd/minikube/cmd/config/kubernetes_version.go: "including prereleases";
    pkg/minikube/constants/constants_kubernetes_versions.go has "v1.33.0-rc.1"). The planner
    skips them: the newest 1.31 patch of ["v1.31.0-rc.1", "v1.30.4"] does not exist, and a
    plan to 1.31 is refused rather than started with a release candidate."""
    listed = ["v1.33.0-rc.1", "v1.32.4", "v1.32.0", "v1.32.0-rc.2", "v1.31.0-rc.1",
              "v1.31.0-beta.0", "v1.30.4", "v1.30.0-alpha.3"]
    assert releases_from_list(listed, "r") == {
        30: ((1, 30, 4),), 32: ((1, 32, 0), (1, 32, 4))}
    with pytest.raises(PlanError, match="only prereleases listed"):
        releases_from_list(["v1.31.0-rc.1"], "r")
    # a Debian revision or any other suffix is not a minikube release either
    with pytest.raises(PlanError, match="not a Kubernetes release: '1.31.2-1.1'"):
        releases_from_list(["v1.31.0", "1.31.2-1.1"], "r")
    profile = profile_from_report(report("v1.30.4", releases=listed), "discovery.json")
    with pytest.raises(PlanError):  # 1.31 has only prereleases: no hop through it
        plan_minikube(profile, "1.31")
    newest = profile_from_report(report("v1.32.0", releases=listed), "discovery.json")
    assert [h.to_version for h in plan_minikube(newest, "1.32").hops] == [(1, 32, 4)]

def docker_reachable() -> bool:
    return shutil.which("docker") is not None and subprocess.run(
        ["docker", "version"], capture_output=True).returncode == 0


@pytest.mark.skipif(not docker_reachable(), reason="the simulator probes `docker version`")
def test_upgrade_minikube_simulated_refuses_downgrade_like_minikube(tmp_path: Path) -> None:
    """Simulated minikube: a newer --kubernetes-version upgrades the profile in place (kept
    CPUs and memory); an older one exits 106 with K8S_DOWNGRADE_UNSUPPORTED and changes
    nothing; `config defaults kubernetes-version` lists the releases."""
    env = {**os.environ, "HOME": str(tmp_path)}

    def mk(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(SIMULATOR), *args], capture_output=True, text=True, env=env,
                              check=False, timeout=60)

    config = tmp_path / ".minikube" / "profiles" / "minikube" / "config.json"
    assert mk("start", "--force", "--kubernetes-version=v1.29.0", "--cpus=2",
              "--memory=2048").returncode == 0
    up = mk("start", "--force", "--kubernetes-version=v1.30.4", "--cpus=4", "--memory=4096")
    assert up.returncode == 0, up.stderr
    cfg = json.loads(config.read_text())
    assert cfg["KubernetesConfig"]["KubernetesVersion"] == "v1.30.4"
    assert (cfg["CPUs"], cfg["Memory"]) == (2, 2048)
    down = mk("start", "--force", "--kubernetes-version=v1.29.8")
    assert down.returncode == 106
    assert ("Exiting due to K8S_DOWNGRADE_UNSUPPORTED: Unable to safely downgrade existing "
            "Kubernetes v1.30.4 cluster to v1.29.8") in down.stderr
    assert json.loads(config.read_text())["KubernetesConfig"]["KubernetesVersion"] == "v1.30.4"
    starts = (tmp_path / ".minikube" / "simulator-starts.jsonl").read_text().splitlines()
    assert len(starts) == 2
    listed = mk("config", "defaults", "kubernetes-version", "--output=json")
    assert listed.returncode == 0
    assert "v1.31.0" in json.loads(listed.stdout)
