"""How provision reaches a host over SSH: one spec, used by `doctor` (paramiko) and by Ansible.

``connection_spec(host)`` derives address, port, user, key and the known_hosts file from the
inventory (``ssh_known_hosts_file``, default ``~/.ssh/known_hosts``). ``ansible_ssh_args(spec)``
turns the same spec into the ``ansible_ssh_args`` every provision run sets per host, so Ansible
checks host keys against exactly the file doctor checked: ``StrictHostKeyChecking=yes``, that
``UserKnownHostsFile`` and no global known_hosts. These options come first on ssh's command line
and ssh keeps the first value it reads, so an inventory's ``-o StrictHostKeyChecking=no`` cannot
override them; only ``provision_insecure_ssh_host_keys: true`` (validated, warned about on every
run) leaves host key checking to the inventory's own settings.

``insecure_settings(vars)`` is the pure check behind validation: which connection settings turn
host key checking off.
"""

from __future__ import annotations

import configparser
import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from provision.inventory import Host
from provision.paths import REPO_ROOT

INSECURE_OPT_IN = "provision_insecure_ssh_host_keys"
ARGS_VARS = ("ansible_ssh_common_args", "ansible_ssh_extra_args")
CHECKING_VARS = ("ansible_ssh_host_key_checking", "ansible_host_key_checking")
# "-o Name=value", "-oName=value", "-o Name value", "-o 'Name = value'"
_OPTION = re.compile(r"^\s*([A-Za-z]+)\s*(?:=\s*|\s+)(.*?)\s*$")


@dataclass(frozen=True)
class ConnectionSpec:
    name: str
    address: str
    port: int
    user: str
    key_file: Path | None
    known_hosts_file: Path
    check_host_key: bool = True


def opted_in(host_vars: Mapping[str, Any]) -> bool:
    """The host's explicit opt-out of host key checking (``provision_insecure_ssh_host_keys``).
    It takes effect only together with a setting that turns checking off (``insecure_settings``):
    without one, provision still checks strictly."""
    return host_vars.get(INSECURE_OPT_IN) is True


def connection_spec(host: Host) -> ConnectionSpec:
    unchecked = opted_in(host.vars) and bool(insecure_settings(host.vars))
    return ConnectionSpec(host.name, host.address, host.port, host.user, host.key_file,
                          host.known_hosts_file, check_host_key=not unchecked)


def ssh_options(args: str) -> list[tuple[str, str]]:
    """The ``-o`` options in an SSH argument string: [(lowercase name, value)]."""
    try:
        words = shlex.split(args)
    except ValueError:
        words = args.split()
    found: list[tuple[str, str]] = []
    for i, word in enumerate(words):
        text = None
        if word == "-o" and i + 1 < len(words):
            text = words[i + 1]
        elif word.startswith("-o") and len(word) > 2:
            text = word[2:]
        match = _OPTION.match(text) if text is not None else None
        if match:
            found.append((match.group(1).lower(), match.group(2).strip("\"'")))
    return found


def insecure_settings(host_vars: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Settings in ``host_vars`` that turn SSH host key checking off: [(key, why)]."""
    problems: list[tuple[str, str]] = []
    for key in CHECKING_VARS:
        value = host_vars.get(key)
        if value is not None and str(value).strip().lower() in ("false", "no", "0", "off", "n"):
            problems.append((key, f"{value} turns SSH host key checking off"))
    for key in ARGS_VARS:
        value = host_vars.get(key)
        if not isinstance(value, str):
            continue
        for name, opt in ssh_options(value):
            if name == "stricthostkeychecking" and opt.lower() in ("no", "off", "accept-new"):
                what = "new" if opt.lower() == "accept-new" else "any"
                problems.append((key, f"StrictHostKeyChecking={opt} accepts {what} host keys "
                                      f"without checking them"))
            elif name in ("userknownhostsfile", "globalknownhostsfile") and opt in (
                    "/dev/null", "none"):
                option = "UserKnownHostsFile" if name[0] == "u" else "GlobalKnownHostsFile"
                problems.append((key, f"{option}={opt} forgets every host key"))
    return problems


def conflicting_known_hosts(host: Host) -> list[tuple[str, str]]:
    """A ``UserKnownHostsFile`` in the SSH arguments that is not ``ssh_known_hosts_file``: doctor
    and Ansible would check different files. [(key, why)]"""
    out: list[tuple[str, str]] = []
    for key in ARGS_VARS:
        value = host.vars.get(key)
        if not isinstance(value, str):
            continue
        for name, opt in ssh_options(value):
            if name == "userknownhostsfile" and opt not in ("/dev/null", "none") and (
                    Path(opt).expanduser() != host.known_hosts_file):
                out.append((key, f"UserKnownHostsFile={opt} is not the file doctor "
                                 f"checks ({host.known_hosts_file}): set ssh_known_hosts_file: "
                                 f"{opt} instead (provision passes it to Ansible) and remove "
                                 f"this option"))
            elif name in ("controlpath", "controlmaster"):
                out.append((key, f"{name} is set by provision (a private control "
                                 f"socket per run): remove it"))
    return out


@lru_cache(maxsize=1)
def base_ssh_args() -> str:
    """``[ssh_connection] ssh_args`` of the project's ansible.cfg (ControlPersist etc.)."""
    cfg = configparser.ConfigParser(interpolation=None)
    cfg.read(REPO_ROOT / "ansible.cfg")
    return cfg.get("ssh_connection", "ssh_args", fallback="").strip()


def _ssh_config_path(path: Path) -> str:
    """A path as an ssh option value: double-quoted (spaces), ``%`` escaped (ssh tokens)."""
    return '"' + str(path).replace("%", "%%") + '"'


def ansible_ssh_args(spec: ConnectionSpec) -> str:
    """The ``ansible_ssh_args`` value for this host: ansible.cfg's ssh_args, then (unless the
    host opted out) strict checking against ``spec.known_hosts_file`` only."""
    words = shlex.split(base_ssh_args())
    if spec.check_host_key:
        words += ["-o", "StrictHostKeyChecking=yes",
                  "-o", f"UserKnownHostsFile={_ssh_config_path(spec.known_hosts_file)}",
                  "-o", "GlobalKnownHostsFile=/dev/null"]
    return shlex.join(words)
