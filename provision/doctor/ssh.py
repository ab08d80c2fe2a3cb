"""One paramiko session per host: verify the host key, log in, run the probe script once.

Host keys are checked against the host's known_hosts file (``ssh_known_hosts_file``) with a
reject policy: an unknown or changed key is a FAIL with what to do, never accepted.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import socket
import time
from dataclasses import dataclass, field
from typing import Any

from provision.connection import ConnectionSpec
from provision.doctor.model import FAIL, PASS, WARN, CheckResult
from provision.doctor.probe import MARKER, parse_sections

CONNECT_TIMEOUT = 10.0
SCRIPT_TIMEOUT = 120.0


# doctor connects with the one connection spec Ansible runs use too (check_host_key is False
# only with provision_insecure_ssh_host_keys: true)
Target = ConnectionSpec


@dataclass
class Gathered:
    """What one SSH session brought back: the connection result and the probe sections."""

    name: str
    connection: CheckResult
    reason: str  # ok | unreachable | unknown_host_key | host_key_changed | auth_failed | error
    sections: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def unreachable(self) -> bool:
        return self.reason == "unreachable"


class UnknownHostKey(Exception):
    def __init__(self, hostname: str, key: Any) -> None:
        super().__init__(hostname)
        self.hostname, self.key = hostname, key


def fingerprint(key: Any) -> str:
    digest = hashlib.sha256(key.asbytes()).digest()
    return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")


def known_hosts_name(address: str, port: int) -> str:
    return address if port == 22 else f"[{address}]:{port}"


def _scan_hint(t: Target) -> str:
    port = f"-p {t.port} " if t.port != 22 else ""
    return f"ssh-keyscan {port}{t.address} >> {t.known_hosts_file}"


def _connect(client: Any, t: Target, timeout: float, unchecked: list[str],
             sock: Any = None) -> tuple[str, str] | None:
    """Open ``client`` to ``t`` (through ``sock``: a jump host's channel or a ProxyCommand)
    with its host key checked; (reason, message) when that fails, None when connected."""
    import paramiko

    class _Reject(paramiko.MissingHostKeyPolicy):
        def missing_host_key(self, client: Any, hostname: str, key: Any) -> None:
            if t.check_host_key:
                raise UnknownHostKey(hostname, key)
            unchecked.append(f"{key.get_name()} {fingerprint(key)}")

    kh_name = known_hosts_name(t.address, t.port)
    try:
        if t.known_hosts_file.is_file():
            client.load_host_keys(str(t.known_hosts_file))
        client.set_missing_host_key_policy(_Reject())
        client.connect(
            t.address, port=t.port, username=t.user,
            key_filename=str(t.key_file) if t.key_file else None,
            allow_agent=t.key_file is None, look_for_keys=t.key_file is None,
            timeout=timeout, banner_timeout=timeout, auth_timeout=timeout, sock=sock,
        )
    except UnknownHostKey as exc:
        missing = "" if t.known_hosts_file.is_file() else " (the file does not exist)"
        others = client.get_host_keys().lookup(kh_name)
        if others:  # known under another key type: as suspicious as a changed key
            known = ", ".join(f"{k.get_name()} {fingerprint(k)}" for k in others.values())
            return ("host_key_changed",
                    f"host key changed for {kh_name}: {t.known_hosts_file} has {known} "
                    f"but the host offered the {exc.key.get_name()} key "
                    f"{fingerprint(exc.key)}. If the host was rebuilt, remove the old line "
                    f"(ssh-keygen -R '{kh_name}' -f {t.known_hosts_file}) and add the new "
                    f"key ({_scan_hint(t)})")
        return ("unknown_host_key",
                f"unknown host key: {kh_name} offered the {exc.key.get_name()} key "
                f"{fingerprint(exc.key)}, which is not in {t.known_hosts_file}{missing}. "
                f"Never accepted automatically: check the fingerprint on the host's "
                f"console, then add it: {_scan_hint(t)}")
    except paramiko.BadHostKeyException as exc:
        return ("host_key_changed",
                f"host key changed for {kh_name}: {t.known_hosts_file} has "
                f"{exc.expected_key.get_name()} {fingerprint(exc.expected_key)} but the "
                f"host offered {exc.key.get_name()} {fingerprint(exc.key)}. If the host was "
                f"rebuilt, remove the old line "
                f"(ssh-keygen -R '{kh_name}' -f {t.known_hosts_file}) and add the new "
                f"key ({_scan_hint(t)}); otherwise someone may be intercepting the "
                f"connection")
    except paramiko.PasswordRequiredException:
        return ("auth_failed",
                f"authentication failed for user {t.user} with key {t.key_file}: the key "
                "is encrypted; load it into ssh-agent and unset "
                "ansible_ssh_private_key_file")
    except paramiko.AuthenticationException as exc:
        key = str(t.key_file) if t.key_file else "ssh-agent/default keys"
        return ("auth_failed",
                f"authentication failed for user {t.user} with key {key} ({exc}): check "
                f"ansible_user and that the public key is in ~{t.user}/.ssh/authorized_keys "
                f"on {t.name}")
    except paramiko.ssh_exception.NoValidConnectionsError as exc:
        causes = "; ".join(sorted({(e.strerror or str(e)).lower()
                                   for e in exc.errors.values()})) or str(exc)
        return ("unreachable",
                f"cannot reach {t.address}:{t.port}: {causes}; is sshd running, is the "
                "port right, do the firewall and the cloud security list allow it?")
    except TimeoutError as exc:
        return ("unreachable",
                f"cannot reach {t.address}:{t.port}: timed out after {timeout:g} s ({exc})")
    except socket.gaierror as exc:
        return ("unreachable", f"cannot resolve {t.address}: {exc.strerror or exc}")
    except OSError as exc:
        if exc.filename:  # the private key file
            return ("auth_failed",
                    f"authentication failed for user {t.user} with key {t.key_file}: "
                    f"cannot read {exc.filename}: {exc.strerror}")
        return ("unreachable",  # no route to host, network unreachable, ...
                f"cannot reach {t.address}:{t.port}: {(exc.strerror or str(exc)).lower()}")
    except paramiko.SSHException as exc:
        transport = client.get_transport()
        if transport is not None and not transport.remote_version:
            # paramiko's start_client gives up silently after the timeout
            return ("unreachable",
                    f"cannot reach {t.address}:{t.port}: timed out after {timeout:g} s "
                    "waiting for the SSH banner (is this port an SSH server?)")
        return ("unreachable", f"SSH handshake with {t.address}:{t.port} failed: {exc}")
    return None


def _tunnel(t: Target, timeout: float, unchecked: list[str], opened: list[Any]
            ) -> tuple[Any, tuple[str, str] | None]:
    """The socket to reach ``t`` through: its jump host's direct-tcpip channel (the jump host
    checked like any host), the inventory's ProxyCommand, or None (a direct connection)."""
    import paramiko

    jump = t.jump_spec()
    if jump is not None:
        client = paramiko.SSHClient()
        opened.append(client)
        failed = _connect(client, jump, timeout, unchecked)
        if failed is not None:
            return None, (failed[0], f"{jump.name}: {failed[1]}")
        try:
            channel = client.get_transport().open_channel(
                "direct-tcpip", (t.address, t.port), ("127.0.0.1", 0), timeout=timeout)
        except (paramiko.SSHException, OSError) as exc:
            return None, ("unreachable", f"cannot reach {t.address}:{t.port} through "
                                         f"{jump.name}: {exc}")
        return channel, None
    if t.proxy_command:
        command = (t.proxy_command.replace("%h", t.address).replace("%p", str(t.port))
                   .replace("%r", t.user).replace("%%", "%"))
        try:
            return paramiko.ProxyCommand(command), None
        except paramiko.SSHException as exc:
            return None, ("unreachable", f"ProxyCommand {command!r} failed: {exc}")
    return None, None


def gather(t: Target, script: str, *, timeout: float = CONNECT_TIMEOUT,
           script_timeout: float = SCRIPT_TIMEOUT) -> Gathered:
    """Connect to ``t`` (through its jump host or ProxyCommand, if any), run ``script`` with
    ``sh -s`` once; never raises for host problems."""
    import paramiko

    # paramiko logs handshake errors itself; doctor reports them once, in the table
    paramiko_log = logging.getLogger("paramiko")
    if not paramiko_log.handlers:
        paramiko_log.addHandler(logging.NullHandler())
    started = time.monotonic()

    def done(status: str, reason: str, message: str, sections: dict[str, str] | None = None
             ) -> Gathered:
        return Gathered(t.name, CheckResult(t.name, "ssh", status, message), reason,
                        sections or {}, time.monotonic() - started)

    unchecked: list[str] = []
    opened: list[Any] = []
    client = paramiko.SSHClient()
    opened.append(client)
    try:
        sock, failed = _tunnel(t, timeout, unchecked, opened)
        if failed is None:
            failed = _connect(client, t, timeout, unchecked, sock)
        if failed is not None:
            return done(FAIL, *failed)
        try:
            stdin, stdout, _stderr = client.exec_command("/bin/sh -s", timeout=script_timeout)
            stdin.write(script)
            stdin.channel.shutdown_write()
            output = stdout.read().decode("utf-8", errors="replace")
            stdout.channel.recv_exit_status()
        except (paramiko.SSHException, OSError) as exc:
            return done(FAIL, "error", f"connected, but running the probe failed: {exc}")
    finally:
        for opened_client in reversed(opened):
            opened_client.close()
    sections = parse_sections(output)
    if "end" not in sections:
        return done(FAIL, "error", "connected, but the probe script was cut short "
                                   f"(last section: {list(sections)[-1:] or 'none'})", sections)
    via = f" via {t.jump_spec().name}" if t.jump is not None else ""  # type: ignore[union-attr]
    if unchecked:  # provision_insecure_ssh_host_keys: true
        return done(WARN, "ok", f"{t.user}@{t.address}:{t.port}{via}, host key NOT verified "
                                f"(offered {unchecked[0]}, not in {t.known_hosts_file}; "
                                f"provision_insecure_ssh_host_keys: true)", sections)
    transport_key = f"host key verified against {t.known_hosts_file}"
    return done(PASS, "ok", f"{t.user}@{t.address}:{t.port}{via}, {transport_key}", sections)


__all__ = ["MARKER", "Gathered", "Target", "gather", "fingerprint", "known_hosts_name"]
