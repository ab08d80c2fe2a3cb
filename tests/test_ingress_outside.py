"""The ingress smoke test's second request, from the machine running provision (the role's
real tasks/outside.yml through ansible-playbook; SIMULATED ingress: a local HTTP server that
echoes like agnhost netexec, and a closed port for a closed security list). The on-node
request passes with a closed security list (kube-proxy short-circuits local traffic); this
one tells "reachable from this machine" from "only from inside", as a WARN, never a failure."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent
pytestmark = [pytest.mark.slow, pytest.mark.in_make_test]  # one ansible-playbook run, 3-60 s


class _Echo(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        if self.headers.get("Host") != "smoke.provision.test":
            self.send_response(404)
            self.end_headers()
            return
        body = parse_qs(urlparse(self.path).query).get("msg", [""])[0].encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_reachable_and_only_from_inside_are_reported_honestly(tmp_path: Path) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Echo)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    open_url = f"http://127.0.0.1:{server.server_address[1]}/echo?msg=provision-smoke-v1.11.3"
    port = closed_port()
    closed_url = f"http://127.0.0.1:{port}/echo?msg=provision-smoke-v1.11.3"
    out = tmp_path / "out.json"

    def case(name: str, url: str, port: int) -> list[dict]:
        return [
            {"ansible.builtin.include_role": {"name": "ingress_nginx",
                                              "tasks_from": "outside.yml"},
             "vars": {"_ingress_nginx_outside_url": url, "_ingress_nginx_outside_port": port,
                      "ingress_nginx_outside_timeout": 5}},
            {"ansible.builtin.set_fact": {"results": "{{ results | combine({_n: {'reachable': "
                                          "ingress_nginx_reachable_from_controller | bool, "
                                          "'report': ingress_nginx_outside_report}}) }}"},
             "vars": {"_n": name}},
        ]

    play = [{"hosts": "localhost", "connection": "local", "gather_facts": False,
             "vars": {"results": {}, "ansible_python_interpreter": sys.executable},
             "tasks": [*case("open", open_url, 80), *case("closed", closed_url, port),
                       {"ansible.builtin.copy": {"content": "{{ results | to_json }}",
                                                 "dest": str(out), "mode": "0600"}}]}]
    playbook = tmp_path / "play.yml"
    playbook.write_text(yaml.safe_dump(play, sort_keys=False))
    env = dict(os.environ, ANSIBLE_ROLES_PATH=str(REPO / "roles"), ANSIBLE_NOCOLOR="1",
               ANSIBLE_LOCALHOST_WARNING="0", ANSIBLE_INVENTORY_UNPARSED_WARNING="0")
    try:
        proc = subprocess.run([str(Path(sys.executable).parent / "ansible-playbook"), "-i",
                               "localhost,", str(playbook)], capture_output=True, text=True,
                              env=env, timeout=600)
    finally:
        server.shutdown()
        server.server_close()
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    results = json.loads(out.read_text())
    assert results["open"] == {"reachable": True,
                               "report": f"ingress reachable from this machine at {open_url}"}
    assert results["closed"]["reachable"] is False
    report = results["closed"]["report"]
    assert report.startswith("WARN: the ingress answers only from inside the cluster (from "
                             f"localhost), not from this machine at {closed_url} ("), report
    assert "Connection refused" in report
    assert report.endswith(f"): open {port}/tcp from your network in the OCI security list (or "
                           "NSG) of the node subnet, or set ingress_nginx_external_address to "
                           "the address users reach it on (a reserved public IP, the network "
                           "load balancer)"), report
    assert "failed=0" in proc.stdout, proc.stdout
