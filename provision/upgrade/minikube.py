"""minikube upgrades (pure): `minikube start --kubernetes-version` one minor at a time.

minikube upgrades an existing profile in place when `start` is given a newer
``--kubernetes-version`` and refuses an older one (K8S_DOWNGRADE_UNSUPPORTED). There is no
package repository: the releases come from the installed minikube itself
(`minikube config defaults kubernetes-version`, its list of valid Kubernetes versions). The
single node is modelled as a one-control-plane ClusterState so the kubeadm planner's rules
(refuse downgrades and unreleased targets, one minor per hop, newest patch for the hops in
between, the given patch for the last) apply unchanged.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from provision.upgrade.plan import Plan, plan_upgrade
from provision.upgrade.repository import PlanError, Repository
from provision.upgrade.state import ClusterState, Node
from provision.versions import Release, format_release, parse_release


@dataclass(frozen=True)
class Profile:
    host: str
    user: str
    version: Release  # KubernetesConfig.KubernetesVersion of the profile
    running: bool
    releases: Repository  # what this minikube can start, per minor


# A semver prerelease ("v1.31.0-rc.1", "v1.33.0-alpha.3"). minikube's `config defaults
# kubernetes-version` lists constants.ValidKubernetesVersions within [Oldest, Newest] "including
# prereleases" (kubernetes/minikube cmd/minikube/cmd/config/kubernetes_version.go,
# supportedKubernetesVersions; pkg/minikube/constants/constants_kubernetes_versions.go lists
# "v1.33.0-rc.1" beside "v1.33.0"). A prerelease is never an upgrade target: skipped, not read
# as the release it precedes.
_PRERELEASE = re.compile(r"v?1\.[0-9]{1,6}\.[0-9]{1,6}-(?:alpha|beta|rc)\.[0-9]{1,6}", re.ASCII)


def releases_from_list(versions: Sequence[Any], source: str) -> Repository:
    """["v1.31.0", "v1.31.0-rc.1", "v1.30.4", ...] -> {31: ((1, 31, 0),), 30: (...)}.
    Prereleases are skipped; any other entry that is not a release refuses."""
    repo: dict[int, set[Release]] = {}
    stable = [v for v in versions if not (isinstance(v, str) and _PRERELEASE.fullmatch(v))]
    bad = [repr(v) for v in stable
           if parse_release(v) is None or (isinstance(v, str) and "-" in v)]
    if bad:
        raise PlanError([f"{source}: not a Kubernetes release: {', '.join(bad)}"])
    if not stable:
        raise PlanError([f"{source}: only prereleases listed: {', '.join(map(str, versions))}"])
    for v in stable:
        rel = parse_release(v)
        assert rel is not None
        repo.setdefault(rel[1], set()).add(rel)
    return {minor: tuple(sorted(vs)) for minor, vs in sorted(repo.items())}


def profile_from_report(data: Mapping[str, Any], source: str) -> Profile:
    """The discovery report (playbooks/upgrade-minikube-discover.yml) -> Profile."""
    problems: list[str] = []
    host, user = str(data.get("host", "")), str(data.get("user", ""))
    config = data.get("config")
    if not isinstance(config, Mapping):
        raise PlanError([f"{source}: host {host}: no minikube profile for {user} "
                         "(~/.minikube/profiles/minikube/config.json): run `provision "
                         "bootstrap` first; nothing to upgrade"])
    raw = (config.get("KubernetesConfig") or {}).get("KubernetesVersion")
    version = parse_release(raw)
    if version is None:
        problems.append(f"{source}: host {host}: KubernetesConfig.KubernetesVersion "
                        f"{raw!r} is not a release")
    versions = data.get("releases")
    if not isinstance(versions, list) or not versions:
        problems.append(f"{source}: host {host}: `minikube config defaults kubernetes-version` "
                        "listed no releases")
    if problems:
        raise PlanError(problems)
    assert version is not None and isinstance(versions, list)
    return Profile(host, user, version, bool(data.get("running")),
                   releases_from_list(versions, f"{source}: releases"))


def plan_minikube(profile: Profile, target: str) -> Plan:
    """The hops from the profile's version to ``--to target`` (PlanError refuses, exit 2)."""
    node = Node(profile.host, "control-plane", profile.version, api_server=profile.version)
    state = ClusterState(profile.version, (node,))
    repo = dict(profile.releases)
    # the profile's own version counts as released even when this minikube no longer lists it
    repo[profile.version[1]] = tuple(sorted({*repo.get(profile.version[1], ()),
                                             profile.version}))
    return plan_upgrade(state, target, repo)


def start_args(to: Release) -> str:
    """The `--kubernetes-version` flag value of a hop: 'v1.31.2'."""
    return "v" + format_release(to)


def plan_table(profile: Profile, plan: Plan) -> str:
    """The plan as text: one line per hop (minikube takes no etcd snapshot)."""
    head = (f"minikube on {profile.host} (user {profile.user}): Kubernetes "
            f"{format_release(plan.current)} -> {format_release(plan.target)}")
    if plan.nothing_to_do:
        return head + "\nNothing to do: the profile already runs the target."
    rows = [f"  {'hop':<4} {'from':<9} {'to':<9} command (as {profile.user})"]
    rows += [f"  {h.index:<4} {format_release(h.from_version):<9} "
             f"{format_release(h.to_version):<9} minikube start --kubernetes-version="
             f"{start_args(h.to_version)}" for h in plan.hops]
    return "\n".join([head, *rows, *[f"note: {n}" for n in plan.notes]])


def plan_json(profile: Profile, plan: Plan) -> dict[str, Any]:
    return {"mode": "minikube", "host": profile.host, "user": profile.user,
            "current": format_release(plan.current), "target": format_release(plan.target),
            "hops": [{"hop": h.index, "from": format_release(h.from_version),
                      "to": format_release(h.to_version)} for h in plan.hops]}
