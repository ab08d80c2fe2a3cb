"""The end-to-end suite (tests/e2e, `make e2e`) cannot run here (no internet), but its
skip logic can: without hosts it skips naming the variables to set; with real hosts that are
offline (a lab container: it reaches only Debian's mirror) it skips naming the endpoints
doctor found unreachable from the hosts. A suite that silently passed would hide both."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parent.parent


def run_e2e(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pytest", "tests/e2e", "-m", "e2e", "-rs",
                           "-q", "-p", "no:cacheprovider"], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=900, check=False)


def test_e2e_suite_skips_without_hosts() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROVISION_E2E_")}
    proc = run_e2e(env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "6 skipped" in proc.stdout and "passed" not in proc.stdout, proc.stdout
    assert "PROVISION_E2E_INVENTORY" in proc.stdout and "PROVISION_E2E_IMAGE" in proc.stdout


@pytest.mark.container
def test_e2e_suite_skips_when_the_hosts_are_offline(lab_host: Any) -> None:
    """A real lab host without internet: doctor's HTTPS checks fail from the host, so the
    suite skips and says which endpoints were unreachable; it never bootstraps."""
    lab = lab_host()
    env = {**lab.env, "PROVISION_E2E_INVENTORY": str(lab.inventory_dir)}
    proc = run_e2e(env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "6 skipped" in proc.stdout, proc.stdout
    assert "offline:" in proc.stdout and "pkgs.k8s.io" in proc.stdout, proc.stdout
    # nothing was installed: the host layer never ran
    assert lab.ssh(lab.hosts[0], "command -v kubeadm containerd").returncode != 0


def test_e2e_suite_expects_the_schema_default_and_names_no_version() -> None:
    """`make e2e` follows the defaults: without kubernetes_version in the inventory it expects
    the schema's default (what `provision bootstrap` installs), and no string in the suite's
    code (docstrings aside) is a Kubernetes version that could go stale."""
    import ast
    from types import SimpleNamespace

    from e2e.e2e_versions import expected_kubernetes_version, kubelet_matches

    from provision.schema import BY_NAME

    default = str(BY_NAME["kubernetes_version"].default)

    def inv(**host_vars: str) -> SimpleNamespace:
        return SimpleNamespace(hosts={"cp1": SimpleNamespace(vars=host_vars)})

    assert expected_kubernetes_version(inv()) == default
    assert expected_kubernetes_version(inv(kubernetes_version="1.36.1")) == "1.36.1"
    assert kubelet_matches(f"v{default}.1", default)
    assert kubelet_matches("v1.36.1", "1.36.1") and not kubelet_matches("v1.36.2", "1.36.1")
    assert not kubelet_matches("v1.36.1", "1.3") and not kubelet_matches("v1.36.1", "1.37")
    assert not kubelet_matches("garbage", default)

    version = re.compile(r"v?1\.[0-9]{1,2}(\.[0-9]+)?")
    for path in sorted((REPO / "tests" / "e2e").glob("*.py")):
        tree = ast.parse(path.read_text())
        docstrings = {id(n.body[0].value) for n in ast.walk(tree)
                      if isinstance(n, ast.Module | ast.FunctionDef | ast.ClassDef) and n.body
                      and isinstance(n.body[0], ast.Expr)
                      and isinstance(n.body[0].value, ast.Constant)}
        literals = [n.value for n in ast.walk(tree) if isinstance(n, ast.Constant)
                    and isinstance(n.value, str) and id(n) not in docstrings]
        stale = [s for s in literals if version.search(s)]
        assert not stale, f"{path.name} names a Kubernetes version: {stale}"
