"""Simulated `kubelet`: a real long-running process (kubelet.service) that registers its node
with the simulated API server, posts heartbeats with its version, and reports the static pods
in its staticPodPath (so kube-apiserver etc. "run" the image tags kubeadm wrote).

Like the real kubelet it exits with an error when /var/lib/kubelet/config.yaml is missing
(the crash loop before `kubeadm init`/`join`), refuses unknown config fields and removed flags.
With SIM_KUBELET_RUN_STATIC_PODS (opt-in) it runs the listed static pods as real host processes
(StaticPodRunner: etcd from the manifest's command, a kube-apiserver stand-in).
"""

from __future__ import annotations

import glob
import hashlib
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import yaml

from . import rules
from .client import Api, ApiFailure, err, host_path, kubeconfig_server
from .rules import Version

#: flags removed from the kubelet, by the minor that removed them
REMOVED_FLAGS = {
    "--container-runtime": 27,
    "--network-plugin": 24,
    "--cni-bin-dir": 24,
    "--cni-conf-dir": 24,
    "--pod-infra-container-image": 35,
    "--experimental-allocatable-ignore-eviction": 24,
}


def log(level: str, text: str) -> None:
    err(f"{level}{time.strftime('%m%d %H:%M:%S')}.000000    {os.getpid()} kubelet.go:1] {text}")


def parse_flags(argv: list[str], version: Version) -> dict[str, str]:
    flags: dict[str, str] = {}
    i = 0
    while i < len(argv):
        arg = argv[i]
        if not arg.startswith("--"):
            i += 1
            continue
        name, eq, value = arg.partition("=")
        if not eq and i + 1 < len(argv) and not argv[i + 1].startswith("--"):
            value, i = argv[i + 1], i + 1
        removed = REMOVED_FLAGS.get(name)
        if removed is not None and version.minor >= removed:
            raise SystemExit(
                f'E0000 run.go:72] "command failed" err="failed to parse kubelet '
                f'flag: unknown flag: {name}"'
            )
        flags[name[2:]] = value or "true"
        i += 1
    return flags


def static_pods(path: str) -> dict[str, str]:
    pods: dict[str, str] = {}
    for f in sorted(glob.glob(host_path(path) + "/*.yaml")):
        try:
            with open(f, encoding="utf-8") as fh:
                pod = yaml.safe_load(fh)
            comp = pod["metadata"].get("labels", {}).get("component") or pod["metadata"]["name"]
            pods[comp] = pod["spec"]["containers"][0]["image"]
        except (OSError, yaml.YAMLError, KeyError, IndexError, TypeError) as exc:
            log("E", f'"Could not process manifest file" err="{exc}" path="{f}"')
    return pods


def manifests_stamp(path: str) -> tuple:
    return tuple((f, os.stat(f).st_mtime_ns) for f in sorted(glob.glob(host_path(path) + "/*")))


class StaticProcesses:
    """One host process per static pod, named like the pod's container command (argv[0]
    ``kube-apiserver``, ``etcd`` ...), so tools on the host see the control plane the way they
    see real containers' processes (``pgrep -f '^kube-apiserver( |$)'``). Started when a
    manifest appears, stopped when it leaves the staticPodPath, restarted when its image
    changes (a new PID, like the real kubelet recreating the pod). Only on real hosts
    (not under SIM_ROOT, where nodes are directories on the test machine)."""

    def __init__(self) -> None:
        self.enabled = not os.environ.get("SIM_ROOT")
        self.procs: dict[str, tuple[str, subprocess.Popen]] = {}

    def sync(self, pods: dict[str, str]) -> None:
        if not self.enabled:
            return
        for comp in list(self.procs):
            image, proc = self.procs[comp]
            if pods.get(comp) != image or proc.poll() is not None:
                self._stop(comp)
        for comp, image in pods.items():
            if comp not in self.procs:
                try:
                    proc = subprocess.Popen(
                        [comp, "infinity"], executable="/bin/sleep",
                        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                        stderr=subprocess.DEVNULL,
                    )
                except OSError as exc:
                    log("E", f'"Failed to start static pod" pod="{comp}" err="{exc}"')
                    continue
                self.procs[comp] = (image, proc)
                log("I", f'"Started static pod" pod="{comp}" pid={proc.pid}')

    def _stop(self, comp: str) -> None:
        _, proc = self.procs.pop(comp)
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log("I", f'"Killed static pod" pod="{comp}"')

    def stop_all(self) -> None:
        for comp in list(self.procs):
            self._stop(comp)


# ------------------------------------------------------------------ running static pods
# Opt-in (SIM_KUBELET_RUN_STATIC_PODS=etcd,kube-apiserver): the kubelet runs the listed static
# pods as real host processes (hostNetwork), like the real kubelet runs their containers:
# started when the manifest appears, stopped (SIGTERM, SIGKILL after 10 s) when it leaves the
# staticPodPath, restarted when its content changes or the process exits (back-off doubling up
# to 10 s). etcd runs the manifest's own command (the real etcd binary found in PATH).
# kube-apiserver has no binary here: a stand-in process (serve_apiserver) listens on
# --secure-port with the serving certificate and answers /livez, /readyz, /healthz like
# kube-apiserver: /readyz is 200 "ok" only while etcd (--etcd-servers, with --etcd-cafile,
# --etcd-certfile, --etcd-keyfile) answers. Components listed here are not also started as
# StaticProcesses placeholders.

STANDIN = ("import sys; sys.path.insert(0, {path!r}); "
           "from {pkg}.cli_kubelet import serve_apiserver; serve_apiserver(sys.argv[1:])")


def pod_command(pod: dict) -> list[str]:
    c = pod["spec"]["containers"][0]
    return [str(x) for x in (c.get("command") or []) + (c.get("args") or [])]


def pod_flags(command: list[str]) -> dict[str, str]:
    return dict(a[2:].split("=", 1) for a in command if a.startswith("--") and "=" in a)


class StaticPodRunner:
    def __init__(self, components: list[str], log_dir: str) -> None:
        self.components = components
        self.log_dir = log_dir
        self.procs: dict[str, tuple[str, subprocess.Popen]] = {}  # comp -> (digest, process)
        self.backoff: dict[str, tuple[float, float]] = {}  # comp -> (next start, delay)

    def _argv(self, comp: str, pod: dict) -> list[str] | None:
        command = pod_command(pod)
        if comp == "kube-apiserver":
            here = os.path.dirname(os.path.abspath(__file__))
            code = STANDIN.format(path=os.path.dirname(here), pkg=__package__ or "simulator")
            return [sys.executable, "-c", code, *command[1:]]
        exe = shutil.which(command[0]) if command else None
        if exe is None:
            log("E", f'"Error syncing pod" err="executable {command[:1]} not found" pod="{comp}"')
            return None
        return [exe, *command[1:]]

    def _start(self, comp: str, digest: str, pod: dict) -> None:
        argv = self._argv(comp, pod)
        if argv is None:
            return
        os.makedirs(host_path(self.log_dir), exist_ok=True)
        with open(host_path(f"{self.log_dir}/{comp}.log"), "ab") as out:
            proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out,
                                    stderr=subprocess.STDOUT, start_new_session=True)
        log("I", f'"Started static pod" pod="{comp}" pid={proc.pid}')
        self.procs[comp] = (digest, proc)

    def _stop(self, comp: str) -> None:
        _, proc = self.procs.pop(comp)
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(10)
        log("I", f'"Killed static pod" pod="{comp}"')

    def sync(self, path: str) -> None:
        desired: dict[str, tuple[str, dict]] = {}
        for f in sorted(glob.glob(host_path(path) + "/*.yaml")):
            try:
                with open(f, "rb") as fh:
                    raw = fh.read()
                pod = yaml.safe_load(raw)
                meta = pod["metadata"]
                comp = (meta.get("labels") or {}).get("component") or meta["name"]
            except (OSError, yaml.YAMLError, KeyError, TypeError):
                continue
            if comp in self.components:
                desired[comp] = (hashlib.sha256(raw).hexdigest(), pod)
        for comp in list(self.procs):
            digest, proc = self.procs[comp]
            if comp not in desired or desired[comp][0] != digest:
                self._stop(comp)
                self.backoff.pop(comp, None)
            elif proc.poll() is not None:
                log("E", f'"Static pod exited" pod="{comp}" code={proc.poll()}')
                self.procs.pop(comp)
                _, delay = self.backoff.get(comp, (0.0, 0.5))
                self.backoff[comp] = (time.time() + delay, min(delay * 2, 10.0))
        for comp, (digest, pod) in desired.items():
            if comp not in self.procs and time.time() >= self.backoff.get(comp, (0.0, 0.0))[0]:
                self._start(comp, digest, pod)

    def stop_all(self) -> None:
        for comp in list(self.procs):
            self._stop(comp)


def serve_apiserver(argv: list[str]) -> None:
    """The kube-apiserver stand-in of a running static pod (see StaticPodRunner)."""
    import http.client
    import http.server
    import ssl
    from urllib.parse import urlsplit

    flags = pod_flags(["kube-apiserver", *argv])
    pki = "/etc/kubernetes/pki"
    etcd_url = urlsplit(flags.get("etcd-servers", "https://127.0.0.1:2379").split(",")[0])

    def etcd_ok() -> bool:
        ctx = ssl.create_default_context(
            cafile=host_path(flags.get("etcd-cafile", f"{pki}/etcd/ca.crt")))
        ctx.load_cert_chain(
            host_path(flags.get("etcd-certfile", f"{pki}/apiserver-etcd-client.crt")),
            host_path(flags.get("etcd-keyfile", f"{pki}/apiserver-etcd-client.key")))
        conn = http.client.HTTPSConnection(etcd_url.hostname or "127.0.0.1",
                                           etcd_url.port or 2379, context=ctx, timeout=3)
        try:
            conn.request("POST", "/v3/maintenance/status", "{}",
                         {"Content-Type": "application/json"})
            return conn.getresponse().status == 200
        except (OSError, http.client.HTTPException):
            return False
        finally:
            conn.close()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            path = self.path.split("?")[0]
            if path not in ("/livez", "/readyz", "/healthz"):
                code, body = 403, b'{"kind":"Status","status":"Failure","code":403}'
            elif path == "/livez" or etcd_ok():
                code, body = 200, b"ok"
            else:
                code, body = 500, b"[-]etcd failed: reason withheld\nreadyz check failed"
            self.send_response(code)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(
        (flags.get("bind-address", "0.0.0.0"), int(flags.get("secure-port", "6443"))), Handler)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(host_path(flags.get("tls-cert-file", f"{pki}/apiserver.crt")),
                        host_path(flags.get("tls-private-key-file", f"{pki}/apiserver.key")))
    httpd.socket = ctx.wrap_socket(httpd.socket, server_side=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    httpd.serve_forever()


class IngressProxy:
    """The node's simulated kube-proxy for the ingress controller: listens where the API
    server says (a MetalLB address:port, put on ``lo`` like kube-proxy's IPVS mode puts
    LoadBalancer addresses on kube-ipvs0, or 0.0.0.0:nodePort) and hands each HTTP request
    to the simulated API server, which plays ingress-nginx and the backend. Only on real
    hosts (not under SIM_ROOT)."""

    def __init__(self, api: Api, node: str) -> None:
        self.enabled = not os.environ.get("SIM_ROOT")
        self.api, self.node = api, node
        self.servers: dict[tuple[str, int], Any] = {}

    def sync(self, listeners: list[dict]) -> None:
        if not self.enabled:
            return
        want = {(str(x["ip"]), int(x["port"])) for x in listeners}
        for key in set(self.servers) - want:
            self._close(key)
        for key in want - set(self.servers):
            ip, port = key
            if ip != "0.0.0.0":
                subprocess.run(["ip", "addr", "replace", f"{ip}/32", "dev", "lo"],
                               capture_output=True, check=False)
            try:
                server = ThreadingHTTPServer((ip, port), self._handler(ip, port))
            except OSError as exc:
                log("E", f'"Failed to listen" address="{ip}:{port}" err="{exc}"')
                continue
            server.daemon_threads = True
            threading.Thread(target=server.serve_forever, daemon=True).start()
            self.servers[key] = server
            log("I", f'"Serving the ingress" address="{ip}:{port}"')

    def _close(self, key: tuple[str, int]) -> None:
        server = self.servers.pop(key)
        server.shutdown()
        server.server_close()
        if key[0] != "0.0.0.0" and not any(k[0] == key[0] for k in self.servers):
            subprocess.run(["ip", "addr", "del", f"{key[0]}/32", "dev", "lo"],
                           capture_output=True, check=False)

    def close(self) -> None:
        for key in list(self.servers):
            self._close(key)

    def _handler(self, ip: str, port: int) -> type:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                try:
                    reply = proxy.api.post("/sim/ingress/request", {
                        "node": proxy.node, "ip": ip, "port": port, "method": self.command,
                        "host": self.headers.get("Host", ""), "path": self.path})
                    code, body = int(reply["code"]), str(reply.get("body", ""))
                except ApiFailure as exc:
                    code, body = 502, f"[simulator] {exc.message}\n"
                data = body.encode()
                self.send_response(code)
                self.send_header("Content-Type", "text/plain; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)

            do_GET = do_POST = do_HEAD = _answer

            def log_message(self, *_: Any) -> None:
                pass

        return Handler


def addresses() -> list[str]:
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.connect(("10.255.255.255", 1))
            return [s.getsockname()[0]]
    except OSError:
        return []


def main(argv: list[str], package_version: str) -> int:
    version = Version.parse(package_version)
    if "--version" in argv or "version" in argv[:1]:
        print(f"Kubernetes {version}")
        return 0
    try:
        flags = parse_flags(argv, version)
    except SystemExit as exc:
        err(str(exc))
        return 1
    config_path = flags.get("config", "/var/lib/kubelet/config.yaml")
    try:
        with open(host_path(config_path), encoding="utf-8") as fh:
            config = yaml.safe_load(fh) or {}
    except OSError as exc:
        log(
            "E",
            f'"command failed" err="failed to load kubelet config file, path: {config_path}, '
            f"error: failed to load Kubelet config file {config_path}, error failed to read "
            f'kubelet config file \\"{config_path}\\", error: {exc}"',
        )
        return 1
    unknown = [
        k
        for k in config
        if k not in ("apiVersion", "kind") and rules.KUBELET_FIELDS.get(k, 99) > version.minor
    ]
    if unknown:
        log(
            "E",
            f'"command failed" err="failed to load kubelet config file, path: {config_path}, '
            f'error: strict decoding error: unknown field \\"{unknown[0]}\\""',
        )
        return 1
    kubeconfig = flags.get("kubeconfig", "/etc/kubernetes/kubelet.conf")
    try:
        api = Api(kubeconfig_server(host_path(kubeconfig)), timeout=10)
    except (OSError, ApiFailure) as exc:
        log(
            "E",
            f'"command failed" err="failed to construct kubelet dependencies: unable to load '
            f'client config file {kubeconfig}: {exc}"',
        )
        return 1
    node = (
        flags.get("hostname-override") or os.environ.get("SIM_NODE_NAME") or socket.gethostname()
    ).lower()
    try:
        fault = api.fault("kubelet-start", node, version=version.plain)
    except ApiFailure:
        fault = None
    if fault:
        log("E", f'"command failed" err="{fault}"')
        return 1
    static_path = config.get("staticPodPath", "/etc/kubernetes/manifests")
    interval = float(os.environ.get("SIM_KUBELET_INTERVAL", "2"))
    log("I", f'"Starting kubelet" version="{version}" node="{node}"')
    stop = {"now": False}

    def on_term(*_: object) -> None:
        stop["now"] = True

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    last_sent, stamp = 0.0, None
    processes = StaticProcesses()
    proxy = IngressProxy(api, node)
    run_pods = [c for c in os.environ.get("SIM_KUBELET_RUN_STATIC_PODS", "").split(",") if c]
    runner = StaticPodRunner(run_pods, "/var/log/sim-static-pods") if run_pods else None
    arch = {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())
    while not stop["now"]:
        if runner is not None:
            runner.sync(static_path)
        new_stamp = manifests_stamp(static_path)
        if time.time() - last_sent >= interval or new_stamp != stamp:
            stamp = new_stamp
            last_sent = time.time()
            pods = static_pods(static_path)
            processes.sync({c: i for c, i in pods.items() if c not in run_pods})
            cni = bool(glob.glob(host_path("/etc/cni/net.d") + "/*.conf*"))
            try:
                reply = api.post(
                    "/sim/kubelet/heartbeat",
                    {
                        "node": node,
                        "kubelet_version": version.plain,
                        "static_pods": pods,
                        "addresses": addresses(),
                        "cni_configured": cni,
                        "arch": arch,
                        "kernel": platform.release(),
                        "register_taints": config.get("registerWithTaints") or [],
                    },
                )
                proxy.sync((reply or {}).get("listeners") or [])
            except ApiFailure as exc:
                log(
                    "E",
                    f'"Unable to register node with API server" err="{exc.message}" node="{node}"',
                )
        time.sleep(0.2)
    processes.stop_all()
    proxy.close()
    if runner is not None:
        runner.stop_all()
    log("I", '"Shutting down kubelet"')
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main(sys.argv[1:], os.environ.get("SIM_KUBELET_VERSION", "1.31.2")))
