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

A jump host (``-o ProxyJump=[user@]host[:port]`` or ``-J`` in ``ansible_ssh_common_args`` /
``ansible_ssh_extra_args``, the first one given wins as in ssh) is part of the spec
(``ConnectionSpec.jump``): doctor tunnels through it (paramiko, a direct-tcpip channel) and
``ansible_ssh_args`` turns it into a ``ProxyCommand`` that runs ``ssh -W`` with the same strict
checking against the same ``ssh_known_hosts_file`` and the host's private key; OpenSSH's own
ProxyJump would check the jump host against ``~/.ssh/known_hosts`` instead. Being first on the
command line, that ProxyCommand wins over the inventory's ProxyJump. A literal
``ProxyCommand`` is the user's own bastion command: doctor runs it too (paramiko's
ProxyCommand), Ansible as given.
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
class JumpHost:
    """The one jump host (bastion) of a ProxyJump: reached with the target's key and
    known_hosts file; ``user`` None means the local user, as ssh does."""

    address: str
    port: int = 22
    user: str | None = None

    def __str__(self) -> str:
        user = f"{self.user}@" if self.user else ""
        return f"{user}{self.address}" + (f":{self.port}" if self.port != 22 else "")


@dataclass(frozen=True)
class ConnectionSpec:
    name: str
    address: str
    port: int
    user: str
    key_file: Path | None
    known_hosts_file: Path
    check_host_key: bool = True
    jump: JumpHost | None = None
    proxy_command: str | None = None  # the inventory's literal ProxyCommand (%h, %p, %r)

    def jump_spec(self) -> ConnectionSpec | None:
        """The jump host as a spec of its own (same key, known_hosts file and checking)."""
        if self.jump is None:
            return None
        import getpass

        return ConnectionSpec(f"jump host {self.jump}", self.jump.address, self.jump.port,
                              self.jump.user or getpass.getuser(), self.key_file,
                              self.known_hosts_file, self.check_host_key)


# [user@]host[:port], the host a name or an address ([v6]): nothing ssh could read as an option
_JUMP = re.compile(r"^(?:ssh://)?(?:(?P<user>[A-Za-z_][A-Za-z0-9._-]{0,63})@)?"
                   r"(?P<host>\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9][A-Za-z0-9.-]{0,252})"
                   r"(?::(?P<port>[0-9]{1,5}))?$")


def parse_jump(value: str) -> JumpHost | str:
    """A ProxyJump value as a JumpHost, or why provision cannot use it."""
    if "," in value:
        return "more than one jump host: provision supports one (ProxyJump=user@bastion)"
    match = _JUMP.match(value.strip())
    if not match:
        return f"{value!r} is not [user@]host[:port]"
    port = int(match.group("port") or 22)
    if not 1 <= port <= 65535:
        return f"port {port} is not 1-65535"
    return JumpHost(match.group("host").strip("[]"), port, match.group("user"))


def proxy_settings(host_vars: Mapping[str, Any]) -> tuple[str, str, str] | None:
    """(variable, "proxyjump" or "proxycommand", value): the first proxy setting in the SSH
    arguments, the one ssh uses; None without one (or with ProxyJump=none)."""
    for key in ARGS_VARS:
        value = host_vars.get(key)
        if not isinstance(value, str):
            continue
        for name, opt in ssh_options(value):
            if name in ("proxyjump", "proxycommand"):
                return None if opt.lower() == "none" else (key, name, opt)
    return None


def proxy_problem(host_vars: Mapping[str, Any]) -> tuple[str, str] | None:
    """(variable, why) when the proxy setting cannot be used by provision."""
    found = proxy_settings(host_vars)
    if found is None or found[1] != "proxyjump":
        return None
    parsed = parse_jump(found[2])
    return (found[0], f"ProxyJump: {parsed}") if isinstance(parsed, str) else None


def opted_in(host_vars: Mapping[str, Any]) -> bool:
    """The host's explicit opt-out of host key checking (``provision_insecure_ssh_host_keys``).
    It takes effect only together with a setting that turns checking off (``insecure_settings``):
    without one, provision still checks strictly."""
    return host_vars.get(INSECURE_OPT_IN) is True


def connection_spec(host: Host) -> ConnectionSpec:
    unchecked = opted_in(host.vars) and bool(insecure_settings(host.vars))
    jump: JumpHost | None = None
    command: str | None = None
    found = proxy_settings(host.vars)
    if found is not None and found[1] == "proxyjump":
        parsed = parse_jump(found[2])
        jump = parsed if isinstance(parsed, JumpHost) else None  # else refused by validation
    elif found is not None:
        command = found[2]
    return ConnectionSpec(host.name, host.address, host.port, host.user, host.key_file,
                          host.known_hosts_file, check_host_key=not unchecked, jump=jump,
                          proxy_command=command)


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
        elif word == "-J" and i + 1 < len(words):  # ssh -J jump == -o ProxyJump=jump
            text = f"ProxyJump={words[i + 1]}"
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


def _checking(known_hosts: Path, escape: str = "%%") -> list[str]:
    path = '"' + str(known_hosts).replace("%", escape) + '"'
    return ["-o", "StrictHostKeyChecking=yes", "-o", f"UserKnownHostsFile={path}",
            "-o", "GlobalKnownHostsFile=/dev/null"]


def jump_command(spec: ConnectionSpec) -> str | None:
    """The ``ProxyCommand`` that reaches ``spec`` through its jump host: ``ssh -W`` with the
    same strict checking, known_hosts file and key as the target (None without a jump)."""
    jump = spec.jump_spec()
    if jump is None:
        return None
    # % is expanded twice: in ProxyCommand, then in the inner ssh's UserKnownHostsFile
    words = ["ssh", "-o", "BatchMode=yes"]
    words += _checking(jump.known_hosts_file, "%%%%") if spec.check_host_key else []
    if jump.key_file is not None:
        words += ["-i", str(jump.key_file).replace("%", "%%%%")]
    words += ["-p", str(jump.port), "-l", jump.user, "-W", "[%h]:%p", jump.address]
    return shlex.join(words)


def ansible_ssh_args(spec: ConnectionSpec) -> str:
    """The ``ansible_ssh_args`` value for this host: ansible.cfg's ssh_args, then (unless the
    host opted out) strict checking against ``spec.known_hosts_file`` only, then the jump
    host's ProxyCommand (checked the same way)."""
    words = shlex.split(base_ssh_args())
    if spec.check_host_key:
        words += _checking(spec.known_hosts_file)
    command = jump_command(spec)
    if command is not None:
        words += ["-o", f"ProxyCommand={command}"]
    return shlex.join(words)
