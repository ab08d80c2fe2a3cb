"""The one state read of the kubeadm_control_plane role
(roles/kubeadm_control_plane/library/kubeadm_control_plane_state.py), in process: files in a
temp dir, the user's home a temp dir (pwd entry replaced), kubectl's answers scripted (a
stand-in for the API server, SIMULATED here; the role's no-op re-run against the simulated
cluster is proven in tests/test_cluster_kubeadm.py). A set-up control plane is `current`;
every step that would act is named (no admin.conf, an API server that does not answer, a
node that has not joined, the user's kubeconfig missing, edited, of another owner or mode,
the control-plane taint still on a schedulable node, taints that cannot be read)."""

from __future__ import annotations

import importlib.util
import os
import pwd
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parent.parent
SPEC = importlib.util.spec_from_file_location(
    "kubeadm_control_plane_state",
    REPO / "roles/kubeadm_control_plane/library/kubeadm_control_plane_state.py")
assert SPEC and SPEC.loader
state = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(state)

TAINT = "node-role.kubernetes.io/control-plane"


class FakeModule:
    """AnsibleModule's params and run_command; kubectl answers from ``answers``."""

    def __init__(self, params: dict[str, Any], answers: dict[str, tuple[int, str]]) -> None:
        self.params = params
        self.answers = answers
        self.calls: list[list[str]] = []

    def run_command(self, argv: list[str]) -> tuple[int, str, str]:
        self.calls.append(argv)
        rc, out = self.answers.get(argv[4] if argv[3].startswith("--request") else argv[3],
                                   (1, ""))
        return rc, out, ""


@pytest.fixture
def node(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """A set-up first control plane: admin.conf, kubelet.conf, the user's ~/.kube/config."""
    admin = tmp_path / "admin.conf"
    admin.write_text("apiVersion: v1\nkind: Config\n")
    (tmp_path / "kubelet.conf").write_text("kubelet\n")
    home = tmp_path / "home"
    (home / ".kube").mkdir(parents=True)
    (home / ".kube").chmod(0o700)
    (home / ".kube" / "config").write_bytes(admin.read_bytes())
    (home / ".kube" / "config").chmod(0o600)
    entry = pwd.struct_passwd(("ops", "x", os.getuid(), os.getgid(), "", str(home), "/bin/sh"))

    def getpwnam(name: str) -> pwd.struct_passwd:
        if name != "ops":
            raise KeyError(name)
        return entry

    monkeypatch.setattr(state.pwd, "getpwnam", getpwnam)
    return {"params": {"first": True, "admin_conf": str(admin),
                       "kubelet_conf": str(tmp_path / "kubelet.conf"), "user": "ops",
                       "node_name": "cp1", "untaint": True},
            "answers": {"get": (0, "ok")}, "home": home, "admin": admin}


def reasons(node: dict[str, Any], **params: Any) -> list[str]:
    return state.reasons(FakeModule({**node["params"], **params}, node["answers"]))


def test_a_set_up_control_plane_is_current(node: dict[str, Any]) -> None:
    module = FakeModule(node["params"], node["answers"])
    assert state.reasons(module) == []
    # /readyz and the taints, nothing else; never a write
    assert [c[4:] for c in module.calls] == [
        ["get", "--raw", "/readyz"], ["get", "node", "cp1", "-o", "jsonpath={.spec.taints[*].key}"]]
    assert reasons(node, user="", untaint=False) == []


def test_missing_cluster_and_unanswering_api_are_not_current(node: dict[str, Any]) -> None:
    node["answers"]["get"] = (1, "")
    assert reasons(node) == ["the API server does not answer /readyz"]
    node["admin"].unlink()
    assert reasons(node) == [f"{node['admin']} is missing"]


def test_a_control_plane_not_joined_is_not_current(node: dict[str, Any]) -> None:
    Path(node["params"]["kubelet_conf"]).unlink()
    assert reasons(node, first=True) == []  # the first control plane answers /readyz
    kubelet_conf = node["params"]["kubelet_conf"]
    assert reasons(node, first=False) == [f"{kubelet_conf} is missing (not joined)"]


def test_the_user_kubeconfig_must_be_the_roles_copy(node: dict[str, Any]) -> None:
    config = node["home"] / ".kube" / "config"
    config.chmod(0o644)
    assert reasons(node) == [f"{config}: owner or mode differs"]
    config.chmod(0o600)
    config.write_text("edited\n")
    assert reasons(node) == [f"{config} differs from {node['admin']}"]
    (node["home"] / ".kube").chmod(0o755)
    assert reasons(node) == [f"{node['home'] / '.kube'}: owner or mode differs"]
    config.unlink()
    assert reasons(node) == [f"{config} is missing"]
    assert reasons(node, user="nobody-here") == ["user nobody-here does not exist"]


def test_a_schedulable_control_plane_must_not_carry_the_taint(node: dict[str, Any]) -> None:
    node["answers"]["get"] = (0, f"other {TAINT}")
    assert reasons(node) == [f"node cp1 carries the {TAINT} taint"]
    assert reasons(node, untaint=False) == []


def test_node_name_pattern_matches_provision_patterns() -> None:
    """The node name goes into kubectl's argv: the module's pattern is provision's."""
    from provision.patterns import PATTERNS

    ours = state.NODE_NAME.pattern
    for name in ("cp1", "cp1.example.org", "a" * 63):
        assert state.NODE_NAME.match(name) and PATTERNS["node_name"].ok(name), name
    for name in ("--all", "Cp1", "-cp", "cp_1", "a" * 64, "", "a." * 127 + "ab"):
        assert not state.NODE_NAME.match(name), (name, ours)
        assert not PATTERNS["node_name"].ok(name), name
