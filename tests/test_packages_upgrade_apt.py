"""Packages during upgrades, with real apt, gpg and the role's real tasks (SIMULATED: the
pkgs.k8s.io repository is the simulator's, served on 127.0.0.1; apt runs on this machine with
private state directories through APT_CONFIG, the dpkg status read-only, nothing installed).

- The signing key is fetched again when the repository changes, and when apt reports the kept
  key as expired (EXPKEYSIG: pkgs.k8s.io extended its key on 2024-11-02, kubernetes/release#3818).
- Before anything changes, the hop's install is simulated (apt-get install --simulate with the
  exact versions); a repository without kubernetes-cni (release day of several minors) stops
  the run naming the missing package.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from simulator import packaging

REPO = Path(__file__).resolve().parent.parent
pytestmark = [
    pytest.mark.slow,  # one ansible-playbook run per test: ~12 s, ~70 s on a loaded machine
    pytest.mark.in_make_test,
    pytest.mark.skipif(
        shutil.which("apt-get") is None or shutil.which("gpg") is None or os.geteuid() != 0,
        reason="needs apt-get, gpg and root (apt's private state directories)"),
]

VERSION = "1.31.3-1.1"


def apt_root(base: Path, name: str) -> dict[str, str]:
    """A private apt tree; returns the role variables and the APT_CONFIG file for it."""
    root = base / name
    for sub in ("etc/sources.list.d", "etc/preferences.d", "etc/apt.conf.d", "state/lists/partial",
                "cache/archives/partial", "keyrings"):
        (root / sub).mkdir(parents=True)
    conf = root / "apt.conf"
    conf.write_text(
        f'Dir::Etc "{root}/etc";\nDir::Etc::sourcelist "{root}/sources.list";\n'
        f'Dir::State "{root}/state";\nDir::State::status "/var/lib/dpkg/status";\n'
        f'Dir::Cache "{root}/cache";\nAPT::Sandbox::User "root";\nDebug::NoLocking "1";\n')
    return {"apt_config": str(conf), "keyring": str(root / "keyrings/kubernetes.asc"),
            "sources": str(root / "sources.list")}


def scenario_play(name: str, paths: dict[str, str], tasks_from: str, extra: dict) -> dict:
    """One block running a task file of kubernetes_packages; the rescue records the failure."""
    return {
        "name": name,
        "environment": {"APT_CONFIG": paths["apt_config"]},
        "block": [
            {"ansible.builtin.include_role": {"name": "kubernetes_packages",
                                              "tasks_from": tasks_from},
             "vars": {"kubernetes_packages_keyring": paths["keyring"],
                      "kubernetes_packages_sources_file": paths["sources"], **extra}},
            {"ansible.builtin.set_fact": {"results": "{{ results | combine({_name: 'ok'}) }}"},
             "vars": {"_name": name}},
        ],
        "rescue": [
            {"ansible.builtin.set_fact": {
                "results": "{{ results | combine({_name: ansible_failed_result.msg}) }}"},
             "vars": {"_name": name}},
        ],
    }


def run_scenarios(tmp_path: Path, blocks: list[dict]) -> dict[str, str]:
    out = tmp_path / "results.json"
    play = [{"hosts": "localhost", "connection": "local", "gather_facts": False,
             "vars": {"results": {}, "ansible_python_interpreter": sys.executable},
             "tasks": [*blocks, {"ansible.builtin.copy": {
                 "content": "{{ results | to_json }}", "dest": str(out), "mode": "0600"}}]}]
    playbook = tmp_path / "play.yml"
    playbook.write_text(yaml.safe_dump(play, sort_keys=False))
    env = dict(os.environ, ANSIBLE_ROLES_PATH=str(REPO / "roles"), ANSIBLE_NOCOLOR="1",
               ANSIBLE_LOCALHOST_WARNING="0", ANSIBLE_INVENTORY_UNPARSED_WARNING="0")
    bindir = Path(sys.executable).parent
    proc = subprocess.run([str(bindir / "ansible-playbook"), "-i", "localhost,", str(playbook)],
                          capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    return json.loads(out.read_text())


def madison(paths: dict[str, str]) -> list[str]:
    env = dict(os.environ, APT_CONFIG=paths["apt_config"])
    text = subprocess.run(["apt-cache", "madison", "kubeadm"], capture_output=True, text=True,
                          env=env, check=True).stdout
    return [line.split("|")[1].strip() for line in text.splitlines()]


@pytest.fixture(scope="module")
def repos(tmp_path_factory):
    """Two repositories signed with a key that was extended after it expired (Release.key
    serves the extended key): a complete one, and one whose v1.31 lacks kubernetes-cni.
    A third serves only the expired key. Only v1.30 and v1.31 are built (fast)."""
    base = tmp_path_factory.mktemp("apt-repos")
    cache = Path(os.environ.get("PROVISION_SIM_DEB_CACHE") or base / "debs")
    key, expired = packaging.make_extended_signing_key(base / "gnupg")
    full = packaging.build_repo(base / "full", cache, minors=[30, 31], key=key)
    broken = packaging.build_repo(base / "broken", cache, minors=[31], key=key,
                                  omit={31: ("kubernetes-cni",)})
    stale = packaging.build_repo(base / "stale", cache, minors=[31], key=key)
    (stale.path(31) / "Release.key").write_text(expired)
    servers = {n: packaging.RepoServer(r.root) for n, r in
               (("full", full), ("broken", broken), ("stale", stale))}
    try:
        yield {n: s.url for n, s in servers.items()}, expired
    finally:
        for s in servers.values():
            s.stop()


def url(base: str, minor: int) -> str:
    return f"{base}/core:/stable:/v1.{minor}/deb/"


def test_expired_key_is_fetched_again_simulated(repos, tmp_path: Path) -> None:
    """A host that kept the expired copy of the key: moving to the next minor fetches the key
    again (the old role kept it: force: false), and with the same repository apt's EXPKEYSIG
    makes the role fetch it again; a server that still serves an expired key stops the run
    naming the keyring, the key URL and the variable to set."""
    urls, expired = repos
    moved, same, stale = (apt_root(tmp_path, n) for n in ("moved", "same", "stale"))
    for paths, old in ((moved, url(urls["full"], 30)), (same, url(urls["full"], 31)),
                       (stale, url(urls["stale"], 31))):
        Path(paths["keyring"]).write_text(expired)
        Path(paths["sources"]).write_text(
            "# Managed by provision (role kubernetes_packages)\n"
            f"deb [signed-by={paths['keyring']}] {old} /\n")
    results = run_scenarios(tmp_path, [
        scenario_play("moved", moved, "repository.yml",
                      {"kubernetes_packages_repo_url": url(urls["full"], 31)}),
        scenario_play("same", same, "repository.yml",
                      {"kubernetes_packages_repo_url": url(urls["full"], 31)}),
        scenario_play("stale", stale, "repository.yml",
                      {"kubernetes_packages_repo_url": url(urls["stale"], 31)}),
    ])
    assert results["moved"] == "ok", results
    assert results["same"] == "ok", results
    assert madison(moved) == madison(same) == ["1.31.3-1.1", "1.31.2-1.1", "1.31.1-1.1"]
    assert Path(same["keyring"]).read_text() != expired
    msg = results["stale"]
    assert msg.startswith(f"apt-get update of {url(urls['stale'], 31)} failed on localhost "
                          "(exit 100):"), msg
    assert (f"- apt reports EXPKEYSIG for the key at {stale['keyring']}, also after downloading "
            f"{url(urls['stale'], 31)}Release.key again: set kubernetes_packages_key to the "
            "current key, or kubernetes_packages_key_url to where it is published") in msg, msg


def test_missing_kubernetes_cni_stops_before_any_change_simulated(repos, tmp_path: Path) -> None:
    """The hop's install simulated with the exact versions: a repository without
    kubernetes-cni stops the run naming it; the complete repository passes."""
    urls, _ = repos
    broken, full = apt_root(tmp_path, "broken"), apt_root(tmp_path, "full")
    names = {"kubernetes_packages_names": ["kubeadm", "kubelet", "kubectl"],
             "kubernetes_packages_deb_version": VERSION}
    results = run_scenarios(tmp_path, [
        scenario_play("broken-repo", broken, "repository.yml",
                      {"kubernetes_packages_repo_url": url(urls["broken"], 31)}),
        scenario_play("broken", broken, "simulate.yml",
                      {"kubernetes_packages_repo_url": url(urls["broken"], 31), **names}),
        scenario_play("full-repo", full, "repository.yml",
                      {"kubernetes_packages_repo_url": url(urls["full"], 31)}),
        scenario_play("full", full, "simulate.yml",
                      {"kubernetes_packages_repo_url": url(urls["full"], 31), **names}),
    ])
    assert results["broken-repo"] == results["full-repo"] == "ok", results
    assert results["full"] == "ok", results
    msg = results["broken"]
    assert msg.startswith(f"apt cannot install kubeadm={VERSION} kubelet={VERSION} "
                          f"kubectl={VERSION} on localhost: kubelet : Depends: kubernetes-cni "
                          "(>= 1.1.1) but it is not installable"), msg
    assert (f"the repository {url(urls['broken'], 31)} does not offer kubernetes-cni (yet); "
            "nothing was changed") in msg, msg
