"""One version parser for both sides: provision/versions.py is also the Jinja filter plugin of
every role and playbook (roles/provision_defaults/filter_plugins/provision_versions.py links to
it). The table is answered the same by the Python functions, by the plugin as Ansible loads it
(its FilterModule) and by a real ansible-playbook run; no role parses a Kubernetes, containerd
or etcd version with its own regex any more."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from provision import versions

REPO = Path(__file__).resolve().parent.parent
PLUGIN = REPO / "roles/provision_defaults/filter_plugins/provision_versions.py"

# (input, parts, minor, release in text, release after "etcdctl version:")
TABLE: list[tuple[object, list[int], str, str, str]] = [
    ("1.35", [1, 35], "1.35", "", ""),
    ("1.35.1", [1, 35, 1], "1.35", "1.35.1", ""),
    ("v1.31.2", [1, 31, 2], "1.31", "1.31.2", ""),
    ("1.31.2-1.1", [1, 31, 2], "1.31", "1.31.2", ""),  # pkgs.k8s.io's Debian version
    (" 1.30.4\n", [1, 30, 4], "1.30", "1.30.4", ""),
    ("3.5.15-0", [3, 5, 15], "3.5", "3.5.15", ""),  # the etcd image tag
    ("1.7.24~ds1-1+deb12u1", [1, 7, 24], "1.7", "1.7.24", ""),
    ("containerd containerd.io 1.7.24 88bf19b2105c", [], "", "1.7.24", ""),
    ("containerd github.com/containerd/containerd/v2 v2.0.0 207ad711", [], "", "2.0.0", ""),
    ("etcdctl version: 3.5.1\nAPI version: 3.5", [], "", "3.5.1", "3.5.1"),
    ("etcdctl version:3.6.6", [], "", "", "3.6.6"),
    ("1.３１", [], "", "", ""),  # non-ASCII digits are not a version
    ("1.31.1234567", [], "", "", ""),
    ("x1.31.2", [], "", "", ""),
    ("", [], "", "", ""),
    ("latest", [], "", "", ""),
    (1.3, [], "", "", ""),  # an unquoted YAML version is a float, not a version
    (None, [], "", "", ""),
]


def test_the_plugin_is_versions_py() -> None:
    assert PLUGIN.is_symlink() and PLUGIN.resolve() == Path(versions.__file__).resolve()
    assert (REPO / "playbooks/filter_plugins").resolve() == PLUGIN.parent.resolve()
    assert (REPO / "tests/playbooks/filter_plugins").resolve() == PLUGIN.parent.resolve()


def plugin() -> ModuleType:
    spec = importlib.util.spec_from_file_location("provision_versions_plugin", PLUGIN)
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.parametrize("text, parts, minor, release, etcdctl", TABLE)
def test_python_and_the_filter_agree(text, parts, minor, release, etcdctl) -> None:
    filters = plugin().FilterModule().filters()
    for side in (versions, filters):
        get = side.get if isinstance(side, dict) else lambda n, s=side: getattr(s, n)
        assert get("version_parts")(text) == parts, (side, text)
        assert get("version_minor")(text) == minor, (side, text)
        assert get("version_of")(text) == release, (side, text)
        assert get("version_of")(text, "etcdctl version:") == etcdctl, (side, text)


def test_the_kubernetes_parsers_agree_with_the_generic_ones() -> None:
    """parse_version / parse_release (the declared version) read what version_parts reads."""
    for text, parts, *_ in TABLE:
        if versions.parse_version(text) is not None:
            assert [p for p in versions.parse_version(text) if p is not None] == parts
        if versions.parse_release(text) is not None:
            assert list(versions.parse_release(text)) == parts


def test_ansible_runs_the_same_filters(tmp_path: Path) -> None:
    """A real ansible-playbook run: the filters load through the role and answer as Python."""
    inputs = [t for t, *_ in TABLE if isinstance(t, str)]
    out = tmp_path / "out.json"
    exe = Path(sys.executable).parent / "ansible-playbook"
    env = {**os.environ, "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"),
           "ANSIBLE_LOCALHOST_WARNING": "false", "ANSIBLE_INVENTORY_UNPARSED_WARNING": "false"}
    proc = subprocess.run([str(exe), "-i", "localhost,", "-c", "local",
                           "-e", json.dumps({"inputs": inputs, "out": str(out),
                                             "ansible_python_interpreter": sys.executable}),
                           str(REPO / "tests/playbooks/version-filters.yml")],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    want = [[versions.version_parts(t) for t in inputs],
            [versions.version_minor(t) for t in inputs], [versions.version_of(t) for t in inputs],
            [versions.version_of(t, "etcdctl version:") for t in inputs]]
    assert json.loads(out.read_text()) == want


ROLE_VERSION_REGEX = re.compile(
    r"""regex_\w+\(['"][^'"]*(?:\\d|\[0-9\])\+?\\\.(?:\\d|\[0-9\])"""  # a regex on N.N
    r"""|\.split\(['"]\.['"]\)""")  # or a split on dots


def test_no_role_or_playbook_parses_versions_itself() -> None:
    """The regexes and dot-splits that parsed versions in seven places are gone."""
    found = []
    for path in sorted([*REPO.glob("roles/*/tasks/**/*.yml"), *REPO.glob("roles/*/vars/*.yml"),
                        *REPO.glob("roles/*/defaults/*.yml"), *REPO.glob("roles/*/templates/*"),
                        *REPO.glob("playbooks/**/*.yml")]):
        for n, line in enumerate(path.read_text().splitlines(), 1):
            if ROLE_VERSION_REGEX.search(line):
                found.append(f"{path.relative_to(REPO)}:{n}: {line.strip()}")
    assert not found, "\n".join(found)
    # the scan can fail: the lines it replaced are caught
    for old in ("| regex_search('\\s(v?[0-9]+\\.[0-9]+\\.[0-9]+)', '\\1') or [''])",
                "| regex_findall('etcdctl version:\\s*(\\d+\\.\\d+)') | first",
                "_containerd_minor: \"{{ (kubernetes_version | string).split('.')[:2] }}\""):
        assert ROLE_VERSION_REGEX.search(old), old
