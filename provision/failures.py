"""Turn an Ansible module's failed result into one short message that names the cause.

Pure functions over the result dicts ansible-runner hands us (``event_data["res"]``). The
module's own ``msg`` is often too vague to act on ("Error executing command.", "Request
failed"); the cause is in other fields of the same result: ``cmd`` and ``rc`` (the errno when the
program could not be started), ``url``, ``status_code``/``status``, ``response``. Command lines
are not echoed (they may carry tokens); only the program name is. URLs lose their user-info.
"""

from __future__ import annotations

import errno
import json
import os
import re
import shlex
from typing import Any
from urllib.parse import urlsplit, urlunsplit

_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")


def strip_ansi(text: str) -> str:
    """``"\\x1b[0;31mfatal\\x1b[0m"`` -> ``"fatal"``."""
    return _ANSI.sub("", text)


def failure_message(res: dict[str, Any]) -> str:
    """The module message with its cause, plus the tail of stderr/stdout: short, actionable."""
    if isinstance(res.get("results"), list):  # a loop: the first failed item says why
        for item in res["results"]:
            if isinstance(item, dict) and item.get("failed"):
                label = item.get("item")
                inner = failure_message(item)
                return f"item {label}: {inner}" if label is not None else inner
    parts: list[str] = []
    msg = res.get("msg") or res.get("reason") or ""
    if isinstance(msg, str) and msg:
        parts.append(strip_ansi(msg.strip()))
    for detail in (program_cause(res), url_cause(res, parts[0] if parts else ""),
                   ssh_cause(res)):
        if detail:
            parts.append(detail)
    for stream in ("stderr", "module_stderr", "stdout"):
        text = res.get(stream)
        if isinstance(text, str) and text.strip() and text.strip() not in parts:
            tail = "\n".join(strip_ansi(text).strip().splitlines()[-5:])
            parts.append(f"{stream}: {tail}")
            break
    return "\n".join(parts) or json.dumps(res, default=str)[:500]


def program_name(cmd: Any) -> str | None:
    """The program a ``command`` result ran: ``"kubectl get nodes"`` or ``["kubectl", ...]``
    -> ``"kubectl"``."""
    if isinstance(cmd, list) and cmd:
        return str(cmd[0])
    if isinstance(cmd, str) and cmd.strip():
        try:
            words = shlex.split(cmd)
        except ValueError:
            words = cmd.split()
        return words[0] if words else None
    return None


def program_cause(res: dict[str, Any]) -> str | None:
    """The command/shell module could not start the program: its ``rc`` is the errno
    (2: not found, 13: permission denied) and stdout/stderr are empty."""
    msg = str(res.get("msg") or "")
    rc = res.get("rc")
    if not msg.startswith("Error executing command") or not isinstance(rc, int) or rc <= 0:
        return None
    program = program_name(res.get("cmd"))
    if program is None:
        return None
    if rc == errno.ENOENT:
        where = "" if "/" in program else " on the host's PATH"
        return f"program not found{where}: {program} (is it installed?)"
    if rc == errno.EACCES:
        return f"program not executable: {program} (permission denied)"
    return f"could not run {program}: {os.strerror(rc)}"


def redact_url(url: str) -> str:
    """Drop ``user:password@`` from a URL before it is shown or stored."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def url_cause(res: dict[str, Any], msg: str) -> str | None:
    """For get_url/uri/unarchive failures: the URL and the HTTP status, when the message does
    not already name them."""
    url = res.get("url")
    if not isinstance(url, str) or not url:
        return None
    status = res.get("status_code", res.get("status"))
    bits: list[str] = []
    if url not in msg:
        bits.append(f"URL {redact_url(url)}")
    if isinstance(status, int) and status > 0 and str(status) not in msg:
        response = res.get("response")
        reason = f" ({response})" if isinstance(response, str) and response else ""
        bits.append(f"HTTP status {status}{reason}")
    elif isinstance(status, int) and status <= 0 and "status" not in msg.lower():
        bits.append("no HTTP response")
    return ", ".join(bits) if bits else None


_SSH_CAUSES: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"Host key verification failed|REMOTE HOST IDENTIFICATION HAS CHANGED", re.I),
     "hint: the host key does not match the known_hosts file. If the host was rebuilt, check "
     "the new fingerprint (above, or `provision doctor`) on its console, remove the old key "
     "with `ssh-keygen -R '[address]:port' -f <known_hosts>` and add the new one"),
    (re.compile(r"Permission denied|Too many authentication failures", re.I),
     "hint: authentication failed: check ansible_user, ansible_ssh_private_key_file and that "
     "the public key is in the user's ~/.ssh/authorized_keys on the host (`provision doctor` "
     "checks the login)"),
    (re.compile(r"banner exchange", re.I),
     "hint: the port accepts TCP connections but sshd never answered within the SSH "
     "connection timeout (ansible.cfg `timeout`, for each of the connection attempts): an "
     "overloaded host, a stuck sshd, or something else listening on that port"),
    (re.compile(r"Connection timed out|Operation timed out", re.I),
     "hint: no answer within the SSH connection timeout (ansible.cfg `timeout`, for each of "
     "the connection attempts): is the address right, is the host up, does a firewall or "
     "cloud security list drop the port?"),
]


def ssh_cause(res: dict[str, Any]) -> str | None:
    """For an unreachable host: what the SSH error means and what to check."""
    if not res.get("unreachable"):
        return None
    text = str(res.get("msg") or "")
    for pattern, hint in _SSH_CAUSES:
        if pattern.search(text):
            return hint
    return None
