"""Failure summaries name the cause: the missing program, the URL, the HTTP status.

The table holds result dicts captured from real ansible-core 2.19 modules run with connection
local (command with a missing program, get_url/uri against a closed loopback port and against
a local HTTP server answering 404), trimmed to the fields a failure message reads. The last
test re-runs those modules for real, so a change in the modules' result shape shows up here.
"""

from __future__ import annotations

import http.server
import socket
import sys
import threading
from pathlib import Path

import pytest

from provision.failures import failure_message, program_name, redact_url, strip_ansi
from provision.runner import run_playbook

PLAYS = Path(__file__).parent / "playbooks"

# (name, real result shape, substrings the message must contain)
CASES: list[tuple[str, dict, list[str]]] = [
    ("command: program not on PATH",
     {"rc": 2, "stdout": "", "stderr": "", "cmd": "kubectl get nodes",
      "msg": "Error executing command.", "changed": False},
     ["Error executing command.", "program not found on the host's PATH: kubectl"]),
    ("command: absolute path missing",
     {"rc": 2, "stdout": "", "stderr": "", "cmd": "/usr/local/bin/minikube status",
      "msg": "Error executing command.", "changed": False},
     ["program not found: /usr/local/bin/minikube"]),
    ("command: argv form, permission denied",
     {"rc": 13, "stdout": "", "stderr": "", "cmd": ["/opt/tool", "version"],
      "msg": "Error executing command.", "changed": False},
     ["program not executable: /opt/tool"]),
    ("command: non-zero exit keeps stderr",
     {"changed": True, "stdout": "", "rc": 2, "cmd": ["ls", "/nonexistent-dir"],
      "stderr": "ls: cannot access '/nonexistent-dir': No such file or directory",
      "msg": "non-zero return code"},
     ["non-zero return code", "stderr: ls: cannot access '/nonexistent-dir'"]),
    ("shell: program not found (rc 127)",
     {"changed": True, "stdout": "", "stderr": "/bin/sh: 1: kubectl: not found", "rc": 127,
      "cmd": "kubectl get nodes", "msg": "non-zero return code"},
     ["stderr: /bin/sh: 1: kubectl: not found"]),
    ("get_url: connection refused",
     {"url": "http://127.0.0.1:44509/file.tgz", "dest": "/tmp/x.tgz", "elapsed": 0,
      "msg": "Request failed: <urlopen error [Errno 111] Connection refused>",
      "changed": False},
     ["Connection refused", "URL http://127.0.0.1:44509/file.tgz"]),
    ("get_url: HTTP 404",
     {"status_code": 404, "response": "HTTP Error 404: File not found",
      "url": "http://127.0.0.1:44327/missing.tgz", "dest": "/tmp/x.tgz", "elapsed": 0,
      "msg": "Request failed", "changed": False},
     ["Request failed", "URL http://127.0.0.1:44327/missing.tgz",
      "HTTP status 404 (HTTP Error 404: File not found)"]),
    ("uri: connection refused",
     {"redirected": False, "url": "http://127.0.0.1:44509/file.tgz", "status": -1,
      "elapsed": 0, "changed": False,
      "msg": "Status code was -1 and not [200]: Request failed: <urlopen error [Errno 111] "
             "Connection refused>"},
     ["Connection refused", "URL http://127.0.0.1:44509/file.tgz"]),
    ("uri: HTTP 404",
     {"redirected": False, "url": "http://127.0.0.1:44327/missing.tgz", "status": 404,
      "elapsed": 0, "changed": False,
      "msg": "Status code was 404 and not [200]: HTTP Error 404: File not found"},
     ["Status code was 404", "URL http://127.0.0.1:44327/missing.tgz"]),
    ("uri in a loop: the failed item",
     {"results": [{"url": "http://127.0.0.1:44327/missing.tgz", "status": 404,
                   "changed": False, "failed": True, "item": "kubeadm",
                   "msg": "Status code was 404 and not [200]: HTTP Error 404: File not found"}],
      "msg": "One or more items failed", "changed": False},
     ["item kubeadm: Status code was 404", "URL http://127.0.0.1:44327/missing.tgz"]),
    ("unarchive: URL already in the message",
     {"msg": "Failure downloading http://127.0.0.1:44327/missing.tgz, HTTP Error 404: File "
             "not found", "changed": False},
     ["Failure downloading http://127.0.0.1:44327/missing.tgz"]),
    ("unreachable: wrong key",
     {"unreachable": True, "changed": False,
      "msg": "Failed to connect to the host via ssh: ubuntu@10.0.0.5: Permission denied "
             "(publickey)."},
     ["Permission denied (publickey)", "authorized_keys", "provision doctor"]),
    ("unreachable: changed host key",
     {"unreachable": True, "changed": False,
      "msg": "Failed to connect to the host via ssh: @@@ WARNING: REMOTE HOST IDENTIFICATION "
             "HAS CHANGED! @@@\nHost key verification failed."},
     ["ssh-keygen -R", "fingerprint"]),
    ("unreachable: connect timeout",
     {"unreachable": True, "changed": False,
      "msg": "Failed to connect to the host via ssh: ssh: connect to host 10.0.0.9 port 22: "
             "Connection timed out"},
     ["Connection timed out", "SSH connection timeout (ansible.cfg `timeout`"]),
    ("get_url: credentials in the URL are not shown",
     {"url": "https://bob:hunter2@example.test/f.tgz", "msg": "Request failed: timed out"},
     ["URL https://example.test/f.tgz"]),
]


@pytest.mark.parametrize(("shape", "expected"), [(c[1], c[2]) for c in CASES],
                         ids=[c[0] for c in CASES])
def test_failure_message_names_the_cause(shape, expected):
    message = failure_message(shape)
    for text in expected:
        assert text in message, message
    assert "hunter2" not in message
    assert message.count("URL ") <= 1


def test_program_name_and_redaction_and_ansi():
    assert program_name("'/opt/my tool' --x") == "/opt/my tool"
    assert program_name(["kubeadm", "init"]) == "kubeadm"
    assert program_name("") is None
    assert redact_url("https://u:p@h.test:8443/x?y=1") == "https://h.test:8443/x?y=1"
    assert redact_url("https://h.test/x") == "https://h.test/x"
    assert strip_ansi("\x1b[0;31mfatal: [h]\x1b[0m") == "fatal: [h]"


@pytest.fixture()
def http_404_server():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _NotFound)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


class _NotFound(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        self.send_error(404, "File not found")

    def log_message(self, *args: object) -> None:
        pass


def test_real_module_failures_name_program_url_and_status(tmp_path, monkeypatch,
                                                          http_404_server):
    """Real command/get_url/uri failures, one per host, one run: the summary has the cause."""
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    hosts = "".join(f"    {h}:\n      ansible_connection: local\n"
                    f"      ansible_python_interpreter: {sys.executable}\n"
                    for h in ("missing", "refused", "notfound", "api404"))
    inv = tmp_path / "hosts.yml"
    inv.write_text(f"all:\n  hosts:\n{hosts}")
    result = run_playbook(command="causes", playbook=str(PLAYS / "failure-causes.yml"),
                          inventory=inv, quiet=True,
                          extravars={"closed_port": closed, "http_port": http_404_server,
                                     "scratch": str(tmp_path)})
    by_host = {f.host: f.message for f in result.failures}
    assert set(by_host) == {"missing", "refused", "notfound", "api404"}
    assert "program not found on the host's PATH: provision-test-no-such-kubectl" in by_host[
        "missing"]
    assert f"URL http://127.0.0.1:{closed}/file.tgz" in by_host["refused"]
    assert "Connection refused" in by_host["refused"]
    assert f"URL http://127.0.0.1:{http_404_server}/missing.tgz" in by_host["notfound"]
    assert "HTTP status 404" in by_host["notfound"]
    assert "404" in by_host["api404"] and "/api/missing" in by_host["api404"]


def test_host_that_accepts_tcp_but_never_answers_is_reported_as_such(tmp_path, monkeypatch):
    """A real listener that accepts and stays silent (SSH timeout cut to 2 s, no retries, so
    the test is short): unreachable, and the summary says sshd never answered in time."""
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        port = listener.getsockname()[1]
        inv = tmp_path / "hosts.yml"
        inv.write_text(f"all:\n  hosts:\n    silent:\n      ansible_host: 127.0.0.1\n"
                       f"      ansible_port: {port}\n      ansible_user: nobody\n")
        result = run_playbook(command="silent", playbook=str(PLAYS / "runner-ok.yml"),
                              inventory=inv, quiet=True, extravars={"marker_path": "/x"},
                              envvars={"ANSIBLE_TIMEOUT": "2", "ANSIBLE_SSH_RETRIES": "0"})
    [failure] = result.failures
    assert failure.unreachable and result.exit_code == 3
    assert "banner exchange" in failure.message
    assert "sshd never answered within the SSH connection timeout" in failure.message
