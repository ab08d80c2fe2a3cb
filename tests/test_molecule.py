"""The molecule scenarios of the base and docker roles, run for real on the lab's systemd
container image (molecule's full sequence: create, prepare, converge, idempotence, verify,
destroy)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent


@pytest.mark.container
@pytest.mark.timeout(2400)
@pytest.mark.parametrize("scenario", ["base", "docker"])
def test_molecule_scenario_with_idempotence(scenario: str, lab_image, tmp_path: Path) -> None:
    tag = lab_image("amd64")
    molecule = Path(sys.executable).parent / "molecule"
    env = {**os.environ, "PROVISION_LAB_IMAGE": tag,
           "MOLECULE_EPHEMERAL_DIRECTORY": str(tmp_path / "molecule"),
           "ANSIBLE_ROLES_PATH": str(REPO / "roles"),
           "PATH": f"{molecule.parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    proc = subprocess.run([str(molecule), "test", "-s", scenario], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=2300)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-6000:]
    # molecule raises on a non-idempotent second converge; make sure the step really ran
    sequence = yaml.safe_load((REPO / "molecule" / scenario / "molecule.yml").read_text())
    assert "idempotence" in sequence["scenario"]["test_sequence"]
    assert "Idempotence test failed" not in out
    assert "idempotence" in out.lower(), out[-3000:]
