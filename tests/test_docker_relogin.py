"""The docker role's "wait until the host answers the new login" step against a real sshd:
a wrong key or a changed host key fails at once with what to check, instead of being retried
for 300 s. The breakage is real (the test rewrites the sshd's authorized_keys or the client's
known_hosts between the first login and the new one)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from provision.runner import run_playbook

PLAYS = Path(__file__).parent / "playbooks"
pytestmark = pytest.mark.sshd


@pytest.mark.parametrize("broken", ["authorized_keys", "known_hosts"])
def test_refused_relogin_fails_at_once_with_the_hint(tmp_path, monkeypatch, broken):
    from sshd_fixtures import SSHD, keygen, start_sshd

    if not Path(SSHD).exists():
        pytest.skip("needs Debian's openssh-server")
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    other = keygen(tmp_path / "other_key")  # a key the server does not know / must not have
    with start_sshd(tmp_path / "sshd") as server:
        if broken == "authorized_keys":
            path, content = server.directory / "authorized_keys", other + "\n"
        else:
            kind, blob = other.split()[:2]
            path, content = server.known_hosts, f"{server.known_hosts_name} {kind} {blob}\n"
        host_vars = server.host_vars(
            ansible_python_interpreter=sys.executable, break_path=str(path),
            break_content=content,
            ansible_ssh_common_args=f"-o UserKnownHostsFile={server.known_hosts} "
                                    "-o StrictHostKeyChecking=yes")
        inv = tmp_path / "hosts.yml"
        inv.write_text(json.dumps({"all": {"hosts": {"h1": host_vars}}}))
        result = run_playbook(command="relogin", playbook=str(PLAYS / "relogin.yml"),
                              inventory=inv, quiet=True)
    [failure] = result.failures
    assert failure.task == "Wait until the host answers the new login", failure
    assert not failure.unreachable and result.exit_code == 1
    assert "SSH login refused, not retried" in failure.message
    if broken == "authorized_keys":
        assert f"~{server.user}/.ssh/authorized_keys" in failure.message
        assert str(server.user_key) in failure.message
    else:
        assert f"ssh-keygen -R '{server.known_hosts_name}' -f {server.known_hosts}" in \
            failure.message
        real = subprocess.run(["ssh-keygen", "-lf", f"{server.host_key}.pub"], check=True,
                              capture_output=True, text=True).stdout.split()[1]
        assert f"The host now offers the key {real}." in failure.message
