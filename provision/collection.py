"""The Ansible collection ``provision.kubernetes``, generated from ``roles/`` and ``playbooks/``.

There is no second copy in the repository: ``build`` lays the collection out in a temporary
directory (galaxy.yml with the Python package's version, meta/runtime.yml, README, the roles,
the playbooks with every role reference rewritten to its FQCN) and runs ``ansible-galaxy
collection build``; ``install`` installs that tarball with ``ansible-galaxy collection
install --offline``. ``make collection`` / ``make collection-install`` call these.

    python -m provision.collection build [--out DIR]
    python -m provision.collection install [--path DIR] [--out DIR]
    python -m provision.collection ee [--context DIR]

``ee``: the execution environment's build context (``ee/execution-environment.yml``, staged
with the tarball as ``collections/provision-kubernetes.tar.gz``) by ``ansible-builder
create``; ``make ee``.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from provision import __version__

REPO = Path(__file__).resolve().parent.parent
NAMESPACE = "provision"
NAME = "kubernetes"
FQCN = f"{NAMESPACE}.{NAME}"
REQUIRES_ANSIBLE = ">=2.15.0"
# collections the roles use besides ansible.builtin (the `ansible` package ships them)
DEPENDENCIES = {"ansible.posix": ">=1.5.0", "community.general": ">=8.0.0"}
ROLE_KEYS = ("include_role", "import_role", "ansible.builtin.include_role",
             "ansible.builtin.import_role")
_BLOCK = re.compile(r"^(\s*)(?:-\s+)?(?:ansible\.builtin\.)?(?:include_role|import_role):\s*$")
_ROLE_LINE = re.compile(r"^(\s*(?:-\s+)?role:\s*)([A-Za-z0-9_]+)(\s*(?:#.*)?)$")
_NAME_LINE = re.compile(r"^(\s*name:\s*)(.+)$")


def role_names(roles_dir: Path = REPO / "roles") -> list[str]:
    return sorted(p.name for p in roles_dir.iterdir() if (p / "tasks").is_dir())


def galaxy_meta(version: str = __version__) -> dict[str, Any]:
    return {
        "namespace": NAMESPACE,
        "name": NAME,
        "version": version,
        "readme": "README.md",
        "authors": ["provision"],
        "description": "Kubernetes hosts from fresh Linux VMs (kubeadm or minikube), one-minor "
                       "upgrades, verified etcd backups: the roles and playbooks of provision.",
        "license": ["Apache-2.0"],
        "tags": ["kubernetes", "kubeadm", "minikube", "etcd", "containerd", "docker"],
        "dependencies": dict(DEPENDENCIES),
        "build_ignore": ["*.pyc", "__pycache__"],
    }


def fqcn_text(text: str, roles: set[str]) -> str:
    """Role references in a playbook or task file rewritten to FQCNs: ``role: NAME`` lines
    and the ``name:`` of ``include_role``/``import_role`` (also names inside a templated
    expression). Layout and comments are kept; unknown names are left alone."""
    words = re.compile(r"(?<![\w.])(" + "|".join(sorted(roles, key=len, reverse=True))
                       + r")(?![\w.])") if roles else None
    out: list[str] = []
    block: int | None = None  # indentation of the include_role/import_role key
    for line in text.splitlines(keepends=True):
        body = line.rstrip("\n")
        indent = len(body) - len(body.lstrip())
        if block is not None and body.strip() and indent <= block:
            block = None
        m = _ROLE_LINE.match(body)
        if m and m.group(2) in roles:
            line = f"{m.group(1)}{FQCN}.{m.group(2)}{m.group(3)}" + line[len(body):]
        elif block is not None and words and (n := _NAME_LINE.match(body)):
            line = n.group(1) + words.sub(rf"{FQCN}.\1", n.group(2)) + line[len(body):]
        b = _BLOCK.match(body)
        if b:
            block = len(b.group(1)) + (2 if body.lstrip().startswith("- ") else 0)
        out.append(line)
    return "".join(out)


def role_references(data: Any) -> Iterator[str]:
    """Every role name a parsed playbook/task file refers to (plays' roles, include_role,
    import_role), for checking the generated collection."""
    if isinstance(data, list):
        for item in data:
            yield from role_references(item)
    elif isinstance(data, dict):
        for entry in data.get("roles") or []:
            yield entry if isinstance(entry, str) else str(entry.get("role") or entry.get("name"))
        for key in ROLE_KEYS:
            if isinstance(data.get(key), dict):
                yield str(data[key].get("name"))
        for key in ("block", "rescue", "always", "tasks", "pre_tasks", "post_tasks",
                    "handlers"):
            if isinstance(data.get(key), list):
                yield from role_references(data[key])


def layout(dest: Path, version: str = __version__) -> Path:
    """Write the collection's source tree into ``dest`` (created; must not exist)."""
    roles = set(role_names())
    dest.mkdir(parents=True)
    (dest / "galaxy.yml").write_text(yaml.safe_dump(galaxy_meta(version), sort_keys=False))
    (dest / "meta").mkdir()
    (dest / "meta" / "runtime.yml").write_text(
        yaml.safe_dump({"requires_ansible": REQUIRES_ANSIBLE}))
    (dest / "README.md").write_text(readme(sorted(roles)))
    shutil.copytree(REPO / "roles", dest / "roles",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "molecule"))
    shutil.copytree(REPO / "playbooks", dest / "playbooks",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    for path in [*(dest / "playbooks").rglob("*.yml"), *(dest / "roles").glob("*/tasks/*.yml"),
                 *(dest / "roles").glob("*/meta/main.yml"),
                 *(dest / "roles").glob("*/handlers/*.yml")]:
        path.write_text(fqcn_text(path.read_text(), roles))
    return dest


def readme(roles: list[str]) -> str:
    lines = [f"# {FQCN}", "",
             f"The roles and playbooks of provision {__version__}, generated from its "
             "repository (`make collection`). Use them from your own playbooks:", "",
             "```yaml", "- hosts: all", "  become: true", "  roles:",
             f"    - role: {FQCN}.base", f"    - role: {FQCN}.docker", "```", "",
             f"or run a playbook: `ansible-playbook -i INVENTORY {FQCN}.bootstrap`. Variables "
             "are those of the inventory reference in provision's README; each role's README "
             "lists its own.", "", "## Roles", ""]
    lines += [f"- `{FQCN}.{r}`" for r in roles]
    return "\n".join(lines) + "\n"


def galaxy(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([_tool("ansible-galaxy"), "collection", *args], capture_output=True,
                          text=True, check=False, timeout=600)


def base_image() -> str:
    data = yaml.safe_load((EE_DIR / "execution-environment.yml").read_text())
    return str(data["images"]["base_image"]["name"])


def build(out: Path, version: str = __version__) -> Path:
    """The collection tarball in ``out`` (built from a temporary layout)."""
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="provision-collection-") as tmp:
        src = layout(Path(tmp) / FQCN, version)
        proc = galaxy("build", str(src), "--output-path", str(out), "--force")
        if proc.returncode != 0:
            raise RuntimeError(f"ansible-galaxy collection build failed:\n{proc.stderr}")
    tarball = out / f"{NAMESPACE}-{NAME}-{version}.tar.gz"
    if not tarball.is_file():
        raise RuntimeError(f"ansible-galaxy collection build wrote no {tarball}")
    return tarball


def install(tarball: Path, path: Path) -> Path:
    """Install ``tarball`` into the collections path ``path`` (its dependencies must already
    be installed: the `ansible` package ships them). Returns the collection's directory."""
    proc = galaxy("install", str(tarball), "-p", str(path), "--offline", "--force")
    if proc.returncode != 0:
        raise RuntimeError(f"ansible-galaxy collection install failed:\n{proc.stderr}")
    return path / "ansible_collections" / NAMESPACE / NAME


EE_DIR = REPO / "ee"
EE_TARBALL = f"{NAMESPACE}-{NAME}.tar.gz"  # the name ee/requirements.yml installs


def _tool(name: str) -> str:
    return shutil.which(name, path=str(Path(sys.executable).parent)) or shutil.which(
        name) or name


def ee_context(context: Path, version: str = __version__) -> Path:
    """``ansible-builder create`` of ee/execution-environment.yml into ``context``, with
    the collection built now (its version: the Python package's)."""
    with tempfile.TemporaryDirectory(prefix="provision-ee-") as tmp:
        stage = Path(tmp) / "ee"
        shutil.copytree(EE_DIR, stage)
        (stage / "collections").mkdir()
        tarball = build(Path(tmp) / "dist", version)
        shutil.copy(tarball, stage / "collections" / EE_TARBALL)
        try:
            proc = subprocess.run(
                [_tool("ansible-builder"), "create", "-f",
                 str(stage / "execution-environment.yml"), "-c", str(context),
                 "--output-filename", "Containerfile"],
                capture_output=True, text=True, check=False, timeout=600)
        except FileNotFoundError:
            raise RuntimeError("ansible-builder is not installed (pip install "
                               "ansible-builder)") from None
        if proc.returncode != 0:
            raise RuntimeError(f"ansible-builder create failed:\n{proc.stdout}{proc.stderr}")
    return context


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m provision.collection",
                                     description=f"Build or install the {FQCN} collection.")
    parser.add_argument("action", choices=("build", "install", "ee"))
    parser.add_argument("--out", type=Path, default=REPO / "dist",
                        help="where the tarball goes (default: dist/)")
    parser.add_argument("--path", type=Path, default=Path.home() / ".ansible" / "collections",
                        help="collections path to install into (default: ~/.ansible/collections)")
    parser.add_argument("--context", type=Path, default=REPO / "build" / "ee",
                        help="ee: the build context directory (default: build/ee)")
    args = parser.parse_args(argv)
    try:
        if args.action == "ee":
            print(ee_context(args.context))
            print(f"build the image (needs a registry to pull {base_image()}): docker build "
                  f"-t provision-ee:{__version__} {args.context}")
            return 0
        tarball = build(args.out)
        print(tarball)
        if args.action == "install":
            print(install(tarball, args.path))
    except RuntimeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
