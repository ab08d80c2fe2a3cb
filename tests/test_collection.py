"""The Ansible collection provision.kubernetes (provision/collection.py): generated from roles/
and playbooks/ with FQCN role references, versioned with the Python package, built and
installed with the real ansible-galaxy, and used from a user's own playbook without the CLI
(connection local against a temp dir: the read-only kubeconfig_fetch role)."""

from __future__ import annotations

import base64
import importlib.util
import json
import os
import shutil
import stat
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

import provision
from provision import collection as col

REPO = Path(__file__).resolve().parent.parent


def test_one_version_for_the_package_and_the_collection() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert "version" not in project and "version" in project["dynamic"]
    dynamic = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert dynamic["dynamic"]["version"] == {"attr": "provision.__version__"}
    assert col.galaxy_meta()["version"] == provision.__version__


def test_role_references_are_rewritten_to_fqcn_and_nothing_else() -> None:
    roles = {"base", "minikube", "etcd_snapshot"}
    text = """\
- name: base
  hosts: all
  roles:
    - role: base  # comment kept
    - role: unknown_role
  tasks:
    - name: minikube
      ansible.builtin.include_role:
        name: minikube
        tasks_from: user.yml
      when: base is defined
    - include_role:
        name: "{{ 'etcd_snapshot' if x else 'base' }}"
    - name: Not a role
      ansible.builtin.debug:
        msg: base
"""
    out = col.fqcn_text(text, roles)
    assert out == text.replace("role: base", "role: provision.kubernetes.base").replace(
        "        name: minikube", "        name: provision.kubernetes.minikube").replace(
        "'etcd_snapshot' if x else 'base'",
        "'provision.kubernetes.etcd_snapshot' if x else 'provision.kubernetes.base'")
    assert col.fqcn_text(out, roles) == out  # idempotent


def test_generated_tree_refers_to_roles_only_by_fqcn(tmp_path: Path) -> None:
    """Every role reference in the generated playbooks and role task files (plays' roles,
    include_role, import_role; templated names too) is provision.kubernetes.<an existing
    role>; the repository's files are not changed."""
    before = {p: p.read_bytes() for p in (REPO / "playbooks").glob("*.yml")}
    dest = col.layout(tmp_path / "c")
    assert {p: p.read_bytes() for p in (REPO / "playbooks").glob("*.yml")} == before
    roles = set(col.role_names())
    seen = []
    for path in [*dest.glob("playbooks/*.yml"), *dest.glob("roles/*/tasks/*.yml")]:
        for ref in col.role_references(yaml.safe_load(path.read_text())):
            names = [ref] if "{{" not in ref else [
                w.strip("'\"") for w in ref.split() if w.strip("'\"").count(".") == 2]
            assert names, f"{path}: {ref}"
            for name in names:
                assert name.startswith(f"{col.FQCN}.") and name.split(".")[2] in roles, (
                    f"{path.relative_to(dest)}: role reference {name!r}")
                seen.append(name)
    assert f"{col.FQCN}.base" in seen and len(seen) > 30
    meta = yaml.safe_load((dest / "galaxy.yml").read_text())
    assert (meta["namespace"], meta["name"], meta["version"]) == (
        "provision", "kubernetes", provision.__version__)
    assert yaml.safe_load((dest / "meta" / "runtime.yml").read_text()) == {
        "requires_ansible": col.REQUIRES_ANSIBLE}
    assert sorted(p.name for p in (dest / "roles").iterdir()) == sorted(roles)


def clean_env(tmp_path: Path, collections: Path) -> dict[str, str]:
    """Ansible without the repository's ansible.cfg or roles: only the installed collection."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")}
    (tmp_path / "no-roles").mkdir(exist_ok=True)
    env.update(ANSIBLE_COLLECTIONS_PATH=str(collections), ANSIBLE_ROLES_PATH=str(
        tmp_path / "no-roles"), ANSIBLE_LOCAL_TEMP=str(tmp_path / "ansible-tmp"),
        ANSIBLE_HOME=str(tmp_path / "ansible-home"), ANSIBLE_NOCOLOR="1",
        ANSIBLE_STDOUT_CALLBACK="json")
    return env


def play(tmp_path: Path, env: dict[str, str], *args: str) -> dict:
    exe = shutil.which("ansible-playbook", path=str(Path(sys.executable).parent))
    proc = subprocess.run([exe or "ansible-playbook", *args], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    return json.loads(proc.stdout)


@pytest.mark.slow  # about 30-70 s: ansible-galaxy build + install, two ansible-playbook runs
@pytest.mark.in_make_test  # the only proof that the collection works without the CLI
def test_collection_builds_installs_and_runs_from_a_user_playbook(tmp_path: Path) -> None:
    """`python -m provision.collection install` (ansible-galaxy build + install --offline)
    into a temp collections path; a user playbook (outside the repo, no roles path) runs
    provision.kubernetes.kubeconfig_fetch with connection local against a temp admin.conf:
    the report holds its content (0600), nothing changed, the secret is not in the output;
    the collection's own playbook provision.kubernetes.kubeconfig runs the same way."""
    cp = tmp_path / "collections"
    assert col.main(["install", "--out", str(tmp_path / "dist"), "--path", str(cp)]) == 0
    tarball = tmp_path / "dist" / f"provision-kubernetes-{provision.__version__}.tar.gz"
    assert tarball.is_file()
    installed = cp / "ansible_collections" / "provision" / "kubernetes"
    manifest = json.loads((installed / "MANIFEST.json").read_text())["collection_info"]
    assert manifest["version"] == provision.__version__
    assert (installed / "roles" / "docker" / "tasks" / "main.yml").is_file()
    # bootstrap's host gate, copied beside the collection's playbooks: finds the collection's
    # roles and playbooks (its tree digest) and the stamp action it runs the host side with
    gate_file = installed / "playbooks" / "action_plugins" / "provision_host_gate.py"
    spec = importlib.util.spec_from_file_location("collection_host_gate", gate_file)
    gate = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gate)
    assert installed.resolve() == gate.ROOT and len(gate.tree_digest()) == 64
    assert "gate_result" in gate.STAMP._module_namespace()

    secret = "client-key-data: c2VjcmV0LWtleQ=="
    admin = tmp_path / "admin.conf"
    admin.write_text(f"apiVersion: v1\nkind: Config\n{secret}\n")
    report = tmp_path / "report"
    report.mkdir(mode=0o700)
    (tmp_path / "hosts.yml").write_text(yaml.safe_dump({"all": {"hosts": {"localhost": {
        "ansible_connection": "local", "ansible_become": False,
        "ansible_python_interpreter": sys.executable}}}}))
    (tmp_path / "site.yml").write_text(yaml.safe_dump([{
        "name": "A user's own playbook", "hosts": "all", "gather_facts": False,
        "roles": [{"role": "provision.kubernetes.kubeconfig_fetch",
                   "vars": {"kubeconfig_fetch_report_dir": str(report),
                            "kubeconfig_fetch_admin_conf": str(admin)}}]}]))
    env = clean_env(tmp_path, cp)
    out = play(tmp_path, env, "-i", "hosts.yml", "site.yml")
    assert out["stats"]["localhost"]["changed"] == 0 and out["stats"]["localhost"]["ok"] > 0
    assert secret not in json.dumps(out) and base64.b64encode(admin.read_bytes()).decode() \
        not in json.dumps(out)
    got = json.loads((report / "kubeconfig.json").read_text())
    assert base64.b64decode(got["kubeconfig"]) == admin.read_bytes()
    assert (got["mode"], got["context"], got["files"]) == ("kubeadm", None, {})
    assert stat.S_IMODE((report / "kubeconfig.json").stat().st_mode) == 0o600

    (report / "kubeconfig.json").unlink()
    out = play(tmp_path, env, "-i", "hosts.yml", "provision.kubernetes.kubeconfig",
               "-e", json.dumps({"kubeconfig_fetch_host": "localhost",
                                 "kubeconfig_fetch_report_dir": str(report),
                                 "kubeconfig_fetch_admin_conf": str(admin)}))
    assert out["stats"]["localhost"]["changed"] == 0
    assert base64.b64decode(json.loads((report / "kubeconfig.json").read_text())[
        "kubeconfig"]) == admin.read_bytes()


@pytest.mark.slow  # about 20-30 s: the collection build and ansible-builder create
@pytest.mark.in_make_test
def test_execution_environment_build_context_by_ansible_builder(tmp_path: Path) -> None:
    """`python -m provision.collection ee`: the real `ansible-builder create` (v3) writes
    the build context of ee/execution-environment.yml: a Containerfile from the declared base
    image that installs ansible-core and ansible-runner, and _build/ with the requirements
    and the collection tarball of this version; the image's galaxy step (`ansible-galaxy
    collection install -r requirements.yml` in _build) replayed here offline installs
    provision.kubernetes. The image build itself is not run: it pulls the base image and
    packages from registries this test machine cannot reach."""
    ee = yaml.safe_load((REPO / "ee" / "execution-environment.yml").read_text())
    assert ee["version"] == 3
    context = tmp_path / "context"
    assert col.main(["ee", "--context", str(context)]) == 0
    containerfile = (context / "Containerfile").read_text()
    assert f'ARG EE_BASE_IMAGE="{ee["images"]["base_image"]["name"]}"' in containerfile
    assert "ansible-core>=" in containerfile and "ansible-runner>=" in containerfile
    assert "ansible-galaxy collection install" in containerfile
    build = context / "_build"
    assert {p.name for p in build.iterdir()} >= {"requirements.yml", "requirements.txt",
                                                 "bindep.txt", "collections", "scripts"}
    assert (build / "collections" / col.EE_TARBALL).is_file()
    cp = tmp_path / "collections"
    exe = shutil.which("ansible-galaxy", path=str(Path(sys.executable).parent))
    proc = subprocess.run([exe or "ansible-galaxy", "collection", "install", "-r",
                           "requirements.yml", "--offline", "-p", str(cp)], cwd=build,
                          capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    manifest = cp / "ansible_collections" / "provision" / "kubernetes" / "MANIFEST.json"
    assert json.loads(manifest.read_text())["collection_info"]["version"] == (
        provision.__version__)


@pytest.mark.parametrize("argv", [["bogus"], ["build", "--nope"]])
def test_collection_cli_usage(argv: list[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        col.main(argv)
    assert exc.value.code == 2
