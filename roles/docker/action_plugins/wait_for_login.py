"""``wait_for_login``: ``ansible.builtin.wait_for_connection`` that gives up at once when the
SSH login is refused for good.

A wrong key (``Permission denied``) or a changed/unknown host key (``Host key verification
failed``) does not fix itself by waiting: the task fails on the first such answer, with what
to check (the key and ``authorized_keys``, or the fingerprint, ``ssh-keygen -R`` and
``ssh-keyscan``). Anything else (a connection refused while sshd restarts, a control master
still closing) is retried until ``timeout`` as before; a host that accepts TCP but whose sshd
never answers is reported as such when the time is up.
"""

from __future__ import annotations

import re
import shlex
import time

from ansible.plugins.action.wait_for_connection import ActionModule as WaitForConnection
from ansible.plugins.action.wait_for_connection import TimedOutException

AUTH = re.compile(r"Permission denied|Too many authentication failures|"
                  r"Authentication failed|no more authentication methods", re.I)
HOST_KEY = re.compile(r"Host key verification failed|REMOTE HOST IDENTIFICATION HAS CHANGED|"
                      r"host key .* (?:has changed|is not known)", re.I)
FINGERPRINT = re.compile(r"SHA256:[A-Za-z0-9+/]+")
NO_BANNER = re.compile(r"banner exchange|timed out", re.I)


def login_hint(error: str, hv: dict) -> str | None:
    """What to do about a refused login; None when waiting may still help."""
    user = hv.get("ansible_user") or "the SSH user"
    host = hv.get("ansible_host") or hv.get("inventory_hostname", "?")
    port = int(hv.get("ansible_port") or 22)
    name = host if port == 22 else f"[{host}]:{port}"
    known = hv.get("ssh_known_hosts_file") or "~/.ssh/known_hosts"
    if HOST_KEY.search(error):
        offered = FINGERPRINT.findall(error)
        fp = f" The host now offers the key {offered[-1]}." if offered else ""
        port_flag = f"-p {port} " if port != 22 else ""
        scan = f"ssh-keyscan {port_flag}{shlex.quote(host)}"
        return (f"the host key of {name} does not match {known}.{fp} If the host was rebuilt, "
                f"check that fingerprint on its console, remove the old key "
                f"(ssh-keygen -R {shlex.quote(name)} -f {known}) and add the new one "
                f"({scan} >> {known}); otherwise someone may be intercepting the connection. "
                f"`provision doctor` shows both fingerprints")
    if AUTH.search(error):
        key = hv.get("ansible_ssh_private_key_file") or hv.get(
            "ansible_private_key_file") or "ssh-agent/default keys"
        return (f"the login as {user} to {name} was refused (authentication failed with key "
                f"{key}): check ansible_user and that the public key is in "
                f"~{user}/.ssh/authorized_keys on {hv.get('inventory_hostname', host)}; "
                f"`provision doctor` checks the login")
    return None


class ActionModule(WaitForConnection):
    def run(self, tmp=None, task_vars=None):
        self._login_vars = task_vars or {}
        return super().run(tmp, task_vars)

    def do_until_success_or_timeout(self, what, timeout, connect_timeout, what_desc, sleep=1):
        """wait_for_connection's loop, except that a refused login ends it at once."""
        deadline = time.monotonic() + timeout
        error: Exception | None = None
        while time.monotonic() < deadline:
            try:
                what(connect_timeout)
                return
            except Exception as exc:  # noqa: BLE001 - classified below, like the original
                hint = login_hint(str(exc), getattr(self, "_login_vars", {}))
                if hint:
                    raise TimedOutException(f"SSH login refused, not retried: {hint}. "
                                            f"ssh said: {str(exc).strip()}") from exc
                error = exc
                time.sleep(sleep)
        why = (" (the port accepts connections but sshd never answered: is the host "
               "overloaded or sshd stuck?)" if error and NO_BANNER.search(str(error)) else "")
        raise TimedOutException(f"no answer to a new SSH login ({what_desc}) within {timeout} "
                                f"s{why}: {error}")
