"""The containerd role's config.toml: version 3 for containerd 2.x, version 2 for 1.x.

Table paths are containerd's own, from docs/cri/config.md ("Cgroup Driver" and "Full
configuration"):
- containerd v2.0.0 (commit 207ad711eabd375a01713109a8a197d197ff6542), still the same at v2.3.4
  (db880954): ``version = 3``, ``[plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes
  .runc.options] SystemdCgroup = true``, ``[plugins.'io.containerd.cri.v1.images'
  .pinned_images] sandbox``, ``[plugins.'io.containerd.cri.v1.images'.registry] config_path``;
- containerd v1.7.30 (commit 71c1c8666c6a999cc8c319160b6b2ea38c4a2c9e): ``version = 2``,
  ``[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options] SystemdCgroup``,
  ``sandbox_image`` and ``registry.config_path`` under ``plugins."io.containerd.grpc.v1.cri"``.

Rendering: the role's template through Jinja2 with Ansible's settings (trim_blocks, the
``to_json`` filter); the lab proof in tests/test_bootstrap_container.py and the one at the end
of this file render it through Ansible itself. Validation is real: ``containerd config dump``
of Debian 12's containerd 1.6 (installed with docker.io) and of a containerd 2.x binary from
Debian unstable's package (scripts/testenv.sh puts it in /var/tmp/provision-testenv), each
reading the rendered file and printing the configuration it would run with.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import jinja2
import pytest
import yaml

from provision import containerd

REPO = Path(__file__).resolve().parent.parent
ROLE = REPO / "roles" / "containerd"
TESTENV = Path("/var/tmp/provision-testenv")
CONTAINERD2 = TESTENV / "containerd2" / "usr" / "bin" / "containerd"
PAUSE = "registry.k8s.io/pause:3.10"
CERTS = "/etc/containerd/certs.d"

RUNTIME_V3 = ("plugins", "io.containerd.cri.v1.runtime", "containerd", "runtimes", "runc")
RUNTIME_V2 = ("plugins", "io.containerd.grpc.v1.cri", "containerd", "runtimes", "runc")


def render(installed: str, pause: str = PAUSE, certs: str = CERTS) -> str:
    """config.toml.j2 as the role renders it for an installed containerd ``installed``."""
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(ROLE / "templates"),
                             trim_blocks=True, keep_trailing_newline=True,
                             undefined=jinja2.StrictUndefined)
    env.filters["to_json"] = lambda value: json.dumps(value)
    major = int(installed.split(".")[0])
    return env.get_template("config.toml.j2").render(
        ansible_managed="Ansible managed", kubernetes_version="1.31",
        _containerd_installed=installed, _containerd_config_version=3 if major >= 2 else 2,
        _containerd_pause=pause, containerd_certs_dir=certs)


def dig(data: dict[str, Any], *path: str) -> Any:
    for key in path:
        data = data[key]
    return data


def role_vars() -> dict[str, Any]:
    return yaml.safe_load((ROLE / "vars" / "main.yml").read_text())


def test_rendered_v3_has_the_tables_of_containerd_2_docs() -> None:
    """containerd 2.x: version 3, SystemdCgroup in io.containerd.cri.v1.runtime's runc options,
    the pause image as pinned_images.sandbox, registry hosts in io.containerd.cri.v1.images."""
    doc = tomllib.loads(render("2.1.9"))
    assert doc["version"] == 3
    runc = dig(doc, *RUNTIME_V3)
    assert runc["runtime_type"] == "io.containerd.runc.v2"
    assert runc["options"] == {"SystemdCgroup": True}
    images = dig(doc, "plugins", "io.containerd.cri.v1.images")
    assert images["pinned_images"] == {"sandbox": PAUSE}
    assert images["registry"] == {"config_path": CERTS}
    assert "io.containerd.grpc.v1.cri" not in doc["plugins"]  # no version 2 table mixed in


def test_rendered_v2_has_the_tables_of_containerd_1_7_docs() -> None:
    doc = tomllib.loads(render("1.7.24"))
    assert doc["version"] == 2
    assert dig(doc, *RUNTIME_V2, "options") == {"SystemdCgroup": True}
    cri = dig(doc, "plugins", "io.containerd.grpc.v1.cri")
    assert cri["sandbox_image"] == PAUSE
    assert cri["registry"] == {"config_path": CERTS}
    assert set(doc["plugins"]) == {"io.containerd.grpc.v1.cri"}


@pytest.mark.parametrize("installed", ["2.1.9", "1.6.20"])
def test_rendered_strings_are_toml_quoted(installed: str) -> None:
    """A quote or backslash in a value stays inside its TOML string (the role also refuses
    such values before rendering: tasks/config.yml)."""
    odd = 'a"b\\c'
    doc = tomllib.loads(render(installed, pause=odd, certs="/x" + odd))
    if installed.startswith("2"):
        assert dig(doc, "plugins", "io.containerd.cri.v1.images", "pinned_images",
                   "sandbox") == odd
    else:
        assert dig(doc, "plugins", "io.containerd.grpc.v1.cri", "sandbox_image") == odd


@pytest.mark.parametrize(("output", "expected"), [
    ("containerd github.com/containerd/containerd 1.6.20~ds1 1.6.20~ds1-1+deb12u3", (1, 6, 20)),
    ("containerd github.com/containerd/containerd/v2 2.1.9+unknown ", (2, 1, 9)),
    ("containerd containerd.io v1.7.28 05044ec0a9a75232cad458027ca83437aae3f4da", (1, 7, 28)),
    ("containerd github.com/containerd/containerd/v2 v2.0.0 207ad711eabd", (2, 0, 0)),
    ("bash: containerd: command not found", None),
    ("", None),
])
def test_reported_version(output: str, expected: tuple[int, int, int] | None) -> None:
    """The first 1.6.20 / v2.0.0 after a space (the module path's /v2 is not a version)."""
    assert containerd.reported_version(output) == expected


def test_config_version_and_support_rules() -> None:
    assert containerd.config_version((2, 0, 0)) == 3
    assert containerd.config_version((1, 7, 30)) == 2
    assert containerd.supports(1, 36) and not containerd.supports(1, 37)
    assert containerd.supports(2, 37) and containerd.supports(2, 28)


def test_role_and_python_agree_on_the_kubernetes_limit() -> None:
    """The role refuses containerd 1.x from the same Kubernetes minor as provision.containerd
    (and the pins row that cites why)."""
    from provision import pins

    assert role_vars()["_containerd_v1_newest_kubernetes_minor"] == \
        containerd.V1_NEWEST_KUBERNETES_MINOR
    row = pins.BY_COMPONENT["containerd (minimum on nodes)"].why
    assert f"1.{containerd.V1_NEWEST_KUBERNETES_MINOR + 1} needs containerd 2.x" in row


@pytest.mark.parametrize(("package", "minor", "refused"), [
    ("containerd.io=1.7.28-1", 37, True),
    ("containerd=1.7.24~ds1-6", 38, True),
    ("containerd.io=1.7.28-1", 36, False),
    ("containerd.io=2.1.5-1", 37, False),
    ("containerd", 37, False),  # not pinned: known only on the host (the role checks it)
    ("", 37, False),
])
def test_inventory_refusal(package: str, minor: int, refused: bool) -> None:
    problem = containerd.inventory_refusal(minor, package)
    assert (problem is not None) == refused
    if refused:
        assert package in str(problem) and "containerd 2.x" in str(problem)


def config_dump(binary: str | Path, config: Path) -> dict[str, Any]:
    """What a real containerd makes of ``config``: `containerd --config F config dump`."""
    proc = subprocess.run([str(binary), "--config", str(config), "config", "dump"],
                          capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    return tomllib.loads(proc.stdout)


def debian_containerd_1() -> str:
    path = shutil.which("containerd")
    if path is None:
        pytest.skip("no containerd on this machine (docker.io brings Debian's: "
                    "sudo scripts/testenv.sh)")
    out = subprocess.run([path, "--version"], capture_output=True, text=True).stdout
    version = containerd.reported_version(out)
    if version is None or version[0] != 1:
        pytest.skip(f"this machine's containerd is not 1.x: {out.strip()}")
    return path


def test_real_containerd_1_reads_the_v2_rendering(tmp_path: Path) -> None:
    """Debian 12's real containerd 1.6 loads the version 2 file with our values, and ignores
    a version 3 file's tables (SystemdCgroup stays false): why the installed version decides."""
    binary = debian_containerd_1()
    v2 = tmp_path / "v2.toml"
    v2.write_text(render("1.6.20"))
    dump = config_dump(binary, v2)
    assert dump["version"] == 2
    assert dig(dump, *RUNTIME_V2, "options", "SystemdCgroup") is True
    assert dig(dump, "plugins", "io.containerd.grpc.v1.cri", "sandbox_image") == PAUSE
    assert dig(dump, "plugins", "io.containerd.grpc.v1.cri", "registry",
               "config_path") == CERTS
    v3 = tmp_path / "v3.toml"
    v3.write_text(render("2.1.9"))
    ignored = config_dump(binary, v3)
    assert dig(ignored, *RUNTIME_V2, "options", "SystemdCgroup") is False
    assert dig(ignored, "plugins", "io.containerd.grpc.v1.cri", "sandbox_image") != PAUSE


def test_real_containerd_2_reads_the_v3_rendering(tmp_path: Path) -> None:
    """A real containerd 2.x (Debian unstable's package, fetched by scripts/testenv.sh) loads
    the version 3 file with our values in the tables its docs name."""
    if not CONTAINERD2.exists():
        pytest.skip(f"{CONTAINERD2} is missing (sudo scripts/testenv.sh fetches Debian "
                    "unstable's containerd 2.x)")
    out = subprocess.run([str(CONTAINERD2), "--version"], capture_output=True, text=True).stdout
    assert (containerd.reported_version(out) or (0,))[0] == 2, out
    v3 = tmp_path / "v3.toml"
    v3.write_text(render("2.1.9"))
    dump = config_dump(CONTAINERD2, v3)
    assert dump["version"] == 3
    assert dig(dump, *RUNTIME_V3, "options", "SystemdCgroup") is True
    images = dig(dump, "plugins", "io.containerd.cri.v1.images")
    assert images["pinned_images"]["sandbox"] == PAUSE
    assert images["registry"]["config_path"] == CERTS
