"""The last validated load of a static inventory directory, keyed by everything it was read from.

Reading an inventory through ansible-core (``provision.ansible_inventory``) costs ~0.6 s of
imports and plugin set-up on every command, for the same answer while nothing changed. When an
inventory directory loaded and validated without a problem, its model (hosts, groups, every
variable with its source) is kept here, under a key that is the SHA-256 of:

- the content and name of every file and directory under the inventory directory (a file added,
  removed, renamed or edited: another key; hidden ones, which Ansible never reads, aside), the
  inventory path as given, the working directory;
- provision's own code (every ``provision/**/*.py``), the project's ansible.cfg, every
  ``ANSIBLE_*`` environment variable, the Python and the ansible-core and PyYAML in use.

Only what is decided by those inputs alone is kept, so nothing else can change the answer: never
an inventory with a vault (a ``--vault-password-file``/``--ask-vault-pass``/
``ANSIBLE_VAULT_PASSWORD_FILE``, a ``$ANSIBLE_VAULT`` text anywhere), an executable file (a
script inventory), an inventory plugin configuration (``plugin:``), an inventory or vars plugin
other than ansible-core's own, a symbolic link, a special or too big file, or a variable whose
value is secret (never written to the cache: no secrets in
provision's state). Only the load is reused: ``provision.validate`` checks the model again on
every command (so files the checks look at outside the inventory, such as SSH keys, are looked
at again). Every command reads the cache; a command that is about to run a playbook (and so
writes its run dir anyway) stores it once every check has passed (today: ``provision etcd``),
so bad input, a refused option and ``provision validate`` write nothing.

The cache is one file per inventory path in ``$XDG_STATE_HOME/provision/inventory-cache``
(directory 0700, files 0600); a file not owned by the user or open to others is ignored.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import pickle
import re
import stat
import sys
from pathlib import Path
from typing import Any

from provision.paths import REPO_ROOT, state_home

FORMAT = b"provision-inventory-cache 1"
_PACKAGE = Path(__file__).resolve().parent
_MAX_FILE = 8 * 1024 * 1024  # provision.safeload.MAX_BYTES: a bigger file is refused anyway
_MAX_TOTAL = 64 * 1024 * 1024
_PLUGIN = re.compile(rb"^\s*[\"']?plugin[\"']?\s*[:=]", re.M)
_LOADED: set[str] = set()  # keys this process took from the cache (not written again)


def cache_dir() -> Path:
    return state_home() / "inventory-cache"


def _cache_file(path: Path) -> Path:
    name = hashlib.sha256(os.fsencode(path.absolute())).hexdigest()[:32]
    return cache_dir() / f"{name}.pickle"


def _module_file(name: str, relative: str) -> bytes:
    """The bytes of a file of an installed package (its version), found without importing it."""
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        return b"-"
    target = Path(next(iter(spec.submodule_search_locations))) / relative
    try:
        return os.fsencode(target) + b"\0" + target.read_bytes()
    except OSError:
        return b"-"


def _environment(h: Any) -> None:
    h.update(FORMAT + b"\0" + sys.version.encode() + b"\0" + os.fsencode(sys.executable))
    for source in sorted(_PACKAGE.rglob("*.py")):
        h.update(os.fsencode(source.relative_to(_PACKAGE)) + b"\0" + source.read_bytes())
    config = REPO_ROOT / "ansible.cfg"
    h.update(b"ansible.cfg\0" + (config.read_bytes() if config.is_file() else b"-"))
    h.update(_module_file("ansible", "release.py") + _module_file("yaml", "__init__.py"))
    for name, value in sorted(os.environ.items()):
        if name.startswith("ANSIBLE_"):
            h.update(os.fsencode(name) + b"=" + os.fsencode(value) + b"\0")


def key(path: Path, vault: Any) -> str | None:
    """The cache key of the inventory at ``path`` read with ``vault``, or None when its load
    is not decided by its files alone (see the module docstring) or is not a directory."""
    if vault is not None and (getattr(vault, "given", False) or getattr(vault, "ask", False)):
        return None
    if os.environ.get("ANSIBLE_VAULT_PASSWORD_FILE") or not path.is_dir() or path.is_symlink():
        return None
    h = hashlib.sha256()
    h.update(os.fsencode(path) + b"\0" + os.fsencode(os.getcwd()) + b"\0")
    total = 0
    for root, dirs, files in os.walk(path):
        # hidden entries: Ansible never reads them (manager.IGNORED_ALWAYS, and the vars
        # files of DataLoader._get_dir_vars_files), nor provision (ansible_inventory.prescan)
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        base = Path(root)
        h.update(b"D" + os.fsencode(base.relative_to(path)) + b"\0")
        for name in [*dirs, *sorted(f for f in files if not f.startswith("."))]:
            entry = base / name
            st = entry.lstat()
            if stat.S_ISDIR(st.st_mode):
                continue
            if not stat.S_ISREG(st.st_mode) or st.st_mode & 0o111 or st.st_size > _MAX_FILE:
                return None  # a link, FIFO, device, script inventory or too big a file
            total += st.st_size
            if total > _MAX_TOTAL:
                return None
            data = entry.read_bytes()
            if b"$ANSIBLE_VAULT" in data or _PLUGIN.search(data):
                return None
            h.update(b"F" + os.fsencode(name) + b"\0" + str(len(data)).encode() + b"\0" + data)
    _environment(h)
    return h.hexdigest()


def load(path: Path, cache_key: str) -> Any | None:
    """The inventory kept for ``path`` under ``cache_key``, or None."""
    file = _cache_file(path)
    try:
        with open(file, "rb") as f:
            st = os.fstat(f.fileno())
            if st.st_uid != os.geteuid() or st.st_mode & 0o077:
                return None
            kept = pickle.load(f)  # noqa: S301 - the user's own 0600 file, in a 0700 dir
    except (OSError, pickle.UnpicklingError, EOFError, AttributeError, ImportError,
            IndexError, TypeError, ValueError):
        return None
    if not isinstance(kept, dict) or kept.get("key") != cache_key:
        return None
    inv = kept.get("inventory")
    if inv is None:
        return None
    inv.cache_key = cache_key
    _LOADED.add(cache_key)
    return inv


# ansible-core's own inventory plugins and its one default vars plugin: what they read is the
# inventory directory alone (a collection's plugin may read anything: never cached)
_BUILTIN_INVENTORY = frozenset({"host_list", "script", "auto", "yaml", "ini", "toml",
                                "ansible.builtin.host_list", "ansible.builtin.script",
                                "ansible.builtin.auto", "ansible.builtin.yaml",
                                "ansible.builtin.ini", "ansible.builtin.toml"})
_BUILTIN_VARS = frozenset({"host_group_vars", "ansible.builtin.host_group_vars"})


def storable(inv: Any) -> bool:
    """Read by ansible-core's own plugins only, and no secret in the model: no vault value, no
    value of a secret variable (a password, a token, a no_log role option) and no password
    inside a URL."""
    from provision.redact import secret_values

    constants = sys.modules.get("ansible.constants")
    if constants is None or inv.secrets:
        return False  # not loaded by Ansible in this process (e.g. built by a test)
    if not set(constants.INVENTORY_ENABLED) <= _BUILTIN_INVENTORY or not set(
            constants.VARIABLE_PLUGINS_ENABLED) <= _BUILTIN_VARS:
        return False
    if any(secret_values({s.key: s.value}) for s in inv.sources):
        return False
    return not any(secret_values(host.vars) for host in inv.hosts.values())


def store(inv: Any) -> None:
    """Keep ``inv`` (validated, loaded under ``inv.cache_key``) when it holds no secret."""
    cache_key = getattr(inv, "cache_key", None)
    if not cache_key or cache_key in _LOADED or not storable(inv):
        return
    manager, inv.manager = inv.manager, None
    try:
        data = pickle.dumps({"key": cache_key, "inventory": inv},
                            protocol=pickle.HIGHEST_PROTOCOL)
    except (pickle.PicklingError, TypeError, AttributeError):
        return
    finally:
        inv.manager = manager
    directory = cache_dir()
    try:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        target = _cache_file(inv.path)
        tmp = target.with_name(f".{target.name}.{os.getpid()}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, target)
    except OSError:
        return  # a cache: a read-only state dir costs time, not correctness
