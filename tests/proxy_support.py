"""A small real HTTP forward proxy for tests (standard library only): absolute-URI requests
(``GET http://host/path``, what apt sends to a proxy) and ``CONNECT host:port`` tunnels, with
Basic proxy authentication. It forwards only to the hosts it is given and records every
request it served, so a test can prove that traffic went through it."""

from __future__ import annotations

import base64
import http.client
import select
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

_HOP = {"proxy-authorization", "proxy-connection", "connection", "keep-alive", "te",
        "trailers", "transfer-encoding", "upgrade"}


class ForwardProxy:
    """``with ForwardProxy("172.18.0.1", {"deb.debian.org"}, ("user", "pw")) as p: p.url``"""

    def __init__(self, bind: str, allowed_hosts: set[str],
                 credentials: tuple[str, str] | None = None) -> None:
        self.allowed = set(allowed_hosts)
        self.requests: list[tuple[str, str, int]] = []  # (method, host, status)
        self.refused: list[tuple[str, str]] = []  # (reason, target)
        expected = None
        if credentials:
            token = base64.b64encode(":".join(credentials).encode()).decode()
            expected = f"Basic {token}"
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:  # quiet
                pass

            def _authorised(self, target: str) -> bool:
                if expected and self.headers.get("Proxy-Authorization") != expected:
                    proxy.refused.append(("auth", target))
                    self.send_response(407)
                    self.send_header("Proxy-Authenticate", 'Basic realm="test"')
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return False
                return True

            def _allowed(self, host: str, target: str) -> bool:
                if host in proxy.allowed:
                    return True
                proxy.refused.append(("host", target))
                self.send_response(403)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return False

            def do_CONNECT(self) -> None:  # noqa: N802 - http.server's name
                host, _, port = self.path.rpartition(":")
                if not self._authorised(self.path) or not self._allowed(host, self.path):
                    return
                try:
                    upstream = socket.create_connection((host, int(port)), timeout=30)
                except OSError:
                    self.send_error(502)
                    return
                proxy.requests.append(("CONNECT", host, 200))
                self.send_response(200, "Connection established")
                self.end_headers()
                self.close_connection = True
                conns = [self.connection, upstream]
                try:
                    while True:
                        readable, _, _ = select.select(conns, [], [], 60)
                        if not readable:
                            break
                        for s in readable:
                            data = s.recv(65536)
                            if not data:
                                return
                            (upstream if s is self.connection else self.connection).sendall(data)
                finally:
                    upstream.close()

            def _forward(self) -> None:
                parts = urlsplit(self.path)
                if parts.scheme != "http" or not parts.hostname:
                    self.send_error(400)
                    return
                if not self._authorised(self.path) or not self._allowed(parts.hostname,
                                                                         self.path):
                    return
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP}
                conn = http.client.HTTPConnection(parts.hostname, parts.port or 80, timeout=60)
                try:
                    path = parts.path + (f"?{parts.query}" if parts.query else "")
                    conn.request(self.command, path or "/", body=body, headers=headers)
                    resp = conn.getresponse()
                    data = resp.read()
                except OSError:
                    self.send_error(502)
                    return
                finally:
                    conn.close()
                proxy.requests.append((self.command, parts.hostname, resp.status))
                self.send_response(resp.status, resp.reason)
                for k, v in resp.getheaders():
                    if k.lower() not in _HOP and k.lower() != "content-length":
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)

            do_GET = do_HEAD = do_POST = _forward  # noqa: N815

        self.server = ThreadingHTTPServer((bind, 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.bind = bind
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def url(self, credentials: tuple[str, str] | None = None) -> str:
        auth = f"{credentials[0]}:{credentials[1]}@" if credentials else ""
        return f"http://{auth}{self.bind}:{self.port}"

    def __enter__(self) -> ForwardProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(timeout=10)
