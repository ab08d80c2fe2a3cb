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
    such values before rendering: tasks/main.yml)."""
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


CONTAINERD2_DEBS = sorted((TESTENV / "debs").glob("containerd_2.*_amd64.deb"))


def install_containerd2(lab: Any, host: str) -> None:
    """Install Debian unstable's real containerd 2.x package on a container lab host (what
    Kubernetes 1.37+ needs; Debian 12 has 1.6): copied in with `docker cp`, installed with apt
    (runc comes from Debian 12). Skips the test when scripts/testenv.sh has not fetched it.
    Usable by other lab tests that run the containerd role at 1.37."""
    import shlex

    from test_bootstrap_container import ssh_ok

    from provision.lab import container as lab_container
    from provision.lab import state as lab_state

    if not CONTAINERD2_DEBS:
        pytest.skip("no containerd 2.x .deb in /var/tmp/provision-testenv/debs "
                    "(sudo scripts/testenv.sh fetches Debian unstable's)")
    deb = CONTAINERD2_DEBS[-1]
    name = lab_container.container_name(lab_state.lab_id(lab.lab_dir), host)
    subprocess.run(["docker", "cp", str(deb), f"{name}:/var/tmp/{deb.name}"], check=True,
                   timeout=300)
    ssh_ok(lab, host, "sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -q "
                      f"/var/tmp/{shlex.quote(deb.name)}", timeout=900)
    assert ssh_ok(lab, host, "containerd --version").split()[2].startswith("2.")


@pytest.mark.container
@pytest.mark.slow
@pytest.mark.timeout(3600)
def test_lab_containerd_1_refused_for_1_37_then_2x_gets_v3(lab_host: Any) -> None:
    """On a real Debian 12 container host, through `provision bootstrap`:

    1. kubernetes_version 1.37 with the distribution's containerd (1.6.20, a real 1.x): the
       run fails on the host with the named reason, before config.toml is written (it is
       still the package's own conffile);
    2. containerd 2.x installed from Debian unstable's real package (as an operator would from
       a newer suite; Docker's repository is not reachable here): the role writes a version 3
       config.toml; `containerd config dump` shows SystemdCgroup and the pause image in the
       version 3 tables, the real CRI plugin reports SystemdCgroup and RuntimeReady
       (tests/data/cri_info.py: crictl info's call); a second run changes nothing."""
    from test_bootstrap_container import (
        CRI_INFO,
        assert_no_change,
        bootstrap,
        set_host_vars,
        ssh_ok,
    )

    if not CONTAINERD2_DEBS:
        pytest.skip("no containerd 2.x .deb in /var/tmp/provision-testenv/debs "
                    "(sudo scripts/testenv.sh fetches Debian unstable's)")
    import shlex

    lab = lab_host()
    host = lab.hosts[0]
    set_host_vars(lab, host, {"kubernetes_version": "1.37"})
    proc = lab.cli("-i", "lab", "--json", "bootstrap", "--components", "base,containerd",
                   timeout=1800)
    assert proc.returncode != 0, proc.stdout
    result = json.loads(proc.stdout)
    text = json.dumps(result["errors"])
    assert "has containerd 1.6.20" in text and "Kubernetes 1.37 needs containerd 2.x" in text, \
        text
    # config.toml is still the package's own conffile (Debian ships one): md5 as dpkg recorded
    conffiles = ssh_ok(lab, host, "dpkg-query -W -f='${Conffiles}' containerd")
    recorded = {line.split()[0]: line.split()[1] for line in conffiles.splitlines()
                if line.strip()}
    current = ssh_ok(lab, host, "md5sum /etc/containerd/config.toml").split()[0]
    assert recorded.get("/etc/containerd/config.toml") == current, (recorded, current)

    install_containerd2(lab, host)

    bootstrap(lab, "--components", "base,containerd", timeout=1800)
    tags = role_vars()["_containerd_pause_tags"]
    pause = "registry.k8s.io/pause:" + tags.get("1.37", tags[list(tags)[-1]])
    config = tomllib.loads(ssh_ok(lab, host, "sudo cat /etc/containerd/config.toml"))
    assert config["version"] == 3
    assert dig(config, *RUNTIME_V3, "options", "SystemdCgroup") is True
    dump = tomllib.loads(ssh_ok(lab, host, "sudo containerd config dump"))
    assert dig(dump, *RUNTIME_V3, "options", "SystemdCgroup") is True
    assert dig(dump, "plugins", "io.containerd.cri.v1.images", "pinned_images",
               "sandbox") == pause
    ssh_ok(lab, host, "sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -q python3-grpcio",
           timeout=900)
    info = json.loads(ssh_ok(lab, host, f"sudo python3 -c {shlex.quote(CRI_INFO.read_text())}"))
    runc = info["config"]["containerd"]["runtimes"]["runc"]
    assert runc["options"]["SystemdCgroup"] is True, runc
    # containerd 2.x's CRI status carries the runtime config only (internal/cri/server/
    # status.go marshals criconfig.Config = RuntimeConfig + dirs): the sandbox image is in the
    # images plugin, checked in `config dump` above
    ready = {c["type"]: c["status"] for c in info["status"]["conditions"]}
    assert ready.get("RuntimeReady") is True, info["status"]
    second = bootstrap(lab, "--components", "base,containerd", timeout=1800)
    assert_no_change(second, host)


def containerd_io_deb(debian_deb: Path, out_dir: Path) -> Path:
    """Debian unstable's real containerd 2.x package renamed ``containerd.io`` (as Docker names
    it; Provides/Conflicts/Replaces ``containerd`` as Docker's does). Only the package name and
    those relations are changed: the binaries are Debian's containerd 2.x. Built uncompressed
    (fast; apt does not care)."""
    tree = out_dir / "tree"
    subprocess.run(["dpkg-deb", "-R", str(debian_deb), str(tree)], check=True, timeout=600)
    control = tree / "DEBIAN" / "control"
    fields = control.read_text().splitlines()
    out = []
    for line in fields:
        if line.startswith("Package:"):
            line = "Package: containerd.io"
        elif line.startswith(("Provides:", "Conflicts:", "Replaces:", "Breaks:")):
            continue
        out.append(line)
    out += ["Provides: containerd", "Conflicts: containerd", "Replaces: containerd"]
    control.write_text("\n".join(out) + "\n")
    version = next(x.split(":", 1)[1].strip() for x in out if x.startswith("Version:"))
    deb = out_dir / f"containerd.io_{version}_amd64.deb"
    subprocess.run(["dpkg-deb", "-Znone", "-b", str(tree), str(deb)], check=True, timeout=600,
                   capture_output=True)
    shutil.rmtree(tree)
    return deb


def docker_shaped_repo(root: Path, deb: Path, key: Any) -> None:
    """An apt repository laid out as Docker's (<url>/debian/gpg, dists/bookworm/stable/
    binary-amd64, signed InRelease), holding ``deb``: what the docker role's repository tasks
    read (roles/docker/tasks/repository.yml)."""
    import gzip
    import hashlib

    from simulator.packaging import _sign, packages_index

    debian = root / "debian"
    pool = debian / "pool" / "stable"
    pool.mkdir(parents=True)
    shutil.copy2(deb, pool / deb.name)
    (debian / "gpg").write_text(key.armored)
    dist = debian / "dists" / "bookworm"
    binary = dist / "stable" / "binary-amd64"
    binary.mkdir(parents=True)
    index = packages_index(pool).replace(b"Filename: ./", b"Filename: pool/stable/")
    (binary / "Packages").write_bytes(index)
    (binary / "Packages.gz").write_bytes(gzip.compress(index, mtime=0))
    lines = ["Origin: Docker", "Label: Docker CE", "Suite: bookworm", "Codename: bookworm",
             "Architectures: amd64", "Components: stable",
             "Date: Sat, 01 Nov 2025 00:00:00 UTC", "SHA256:"]
    for name in ("Packages", "Packages.gz"):
        data = (binary / name).read_bytes()
        lines.append(f" {hashlib.sha256(data).hexdigest()} {len(data):>8} "
                     f"stable/binary-amd64/{name}")
    (dist / "Release").write_text("\n".join(lines) + "\n")
    _sign(key, dist)


@pytest.mark.container
@pytest.mark.slow
@pytest.mark.timeout(3600)
def test_lab_docker_ce_source_installs_containerd_io_2_with_v3_config(lab_host: Any,
                                                                      tmp_path: Path) -> None:
    """kubeadm mode (containerd component, no docker role) with docker_source: docker-ce and
    kubernetes_version 1.37 on a real Debian 12 container host: the containerd role adds the
    Docker repository through the docker role's repository tasks, installs containerd.io from
    it, finds 2.x and writes a version 3 config the real containerd runs with; a second run
    changes nothing.

    Simulated: Docker's repository (unreachable here). It is served from this machine with
    Docker's layout and a gpg signature, and its containerd.io is Debian unstable's real
    containerd 2.x package under Docker's package name (see containerd_io_deb)."""
    from simulator.fixtures import lab_gateway
    from simulator.packaging import RepoServer, make_signing_key
    from test_bootstrap_container import assert_no_change, bootstrap, set_host_vars, ssh_ok

    if not CONTAINERD2_DEBS:
        pytest.skip("no containerd 2.x .deb in /var/tmp/provision-testenv/debs "
                    "(sudo scripts/testenv.sh fetches Debian unstable's)")
    deb = containerd_io_deb(CONTAINERD2_DEBS[-1], tmp_path)
    docker_shaped_repo(tmp_path / "repo", deb, make_signing_key(tmp_path / "gnupg"))
    lab = lab_host()
    host = lab.hosts[0]
    server = RepoServer(tmp_path / "repo", lab_gateway(lab), 0)
    try:
        set_host_vars(lab, host, {"kubernetes_version": "1.37", "docker_source": "docker-ce",
                                  "docker_ce_repo_url": server.url})
        bootstrap(lab, "--components", "base,containerd", timeout=1800)
        policy = ssh_ok(lab, host, "apt-cache policy containerd.io")
        assert "Installed: " + deb.name.split("_")[1] in policy, policy
        assert server.url in policy
        assert ssh_ok(lab, host, "containerd --version").split()[2].startswith("2.")
        config = tomllib.loads(ssh_ok(lab, host, "sudo cat /etc/containerd/config.toml"))
        assert config["version"] == 3
        dump = tomllib.loads(ssh_ok(lab, host, "sudo containerd config dump"))
        assert dig(dump, *RUNTIME_V3, "options", "SystemdCgroup") is True
        plugins = ssh_ok(lab, host, "sudo ctr plugins ls")
        cri = [line.split() for line in plugins.splitlines() if " cri " in f" {line} "]
        assert cri and cri[0][-1] == "ok", f"CRI plugin not loaded:\n{plugins}"
        second = bootstrap(lab, "--components", "base,containerd", timeout=1800)
        assert_no_change(second, host)
    finally:
        server.stop()


def test_validate_refuses_a_containerd_1_pin_for_kubernetes_1_37(tmp_path, capsys) -> None:
    """`provision validate` (and every command, before contact): a containerd_package pinned
    to 1.x with kubernetes_version 1.37 is exit 2 naming the file and host."""
    import pytest

    from provision.cli import main

    inv = tmp_path / "inv"
    (inv / "group_vars").mkdir(parents=True)
    (inv / "hosts.yml").write_text(
        "all:\n  children:\n    control_plane:\n      hosts:\n        cp1:\n"
        "          ansible_host: 127.0.0.1\n          ansible_port: 9\n")
    (inv / "group_vars" / "all.yml").write_text(
        'kubernetes_version: "1.37"\ncontainerd_package: "containerd.io=1.7.28-1"\n')
    with pytest.raises(SystemExit) as exc:
        main(["-i", str(inv), "validate"])
    err = capsys.readouterr().err
    assert exc.value.code == 2, err
    assert "group_vars/all.yml:2: group all" in err and "needs containerd 2.x" in err, err
    (inv / "group_vars" / "all.yml").write_text(
        'kubernetes_version: "1.36"\ncontainerd_package: "containerd.io=1.7.28-1"\n')
    with pytest.raises(SystemExit) as exc:
        main(["-i", str(inv), "validate"])
    assert exc.value.code == 0, capsys.readouterr().err
