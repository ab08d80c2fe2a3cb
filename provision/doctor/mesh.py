"""Node-to-node probes (pure): which host must reach which port of which other host, the
listener and probe scripts, and the verdicts.

The default OCI security list allows only 22/tcp and ICMP between instances, so a cluster
whose nodes cannot reach each other's 6443, 10250, VXLAN or memberlist ports fails in ways
``kubeadm`` does not explain. ``doctor`` starts a tiny listener (python3, stdlib, a deadline
of its own) on every host for the ports that host must receive, then every other host
connects (TCP) or sends a datagram and waits for the echo (UDP). A port already in use on the
listening host is skipped with a note (the running cluster owns it). IP-in-IP (calico's
default encapsulation, IP protocol 4) has no port and cannot be probed by a listener.
"""

from __future__ import annotations

import ipaddress
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from provision.doctor.model import FAIL, PASS, WARN, CheckResult

CHECK = "node-to-node"
PROBE_TIMEOUT = 3  # seconds per connection attempt / UDP echo
LISTEN_SECONDS = 60  # the listener exits by itself after this (killed earlier when done)
MARK = "@@mesh "


@dataclass(frozen=True)
class MeshHost:
    """One host as the mesh sees it (from the inventory and the gathered ``ip addr``)."""

    name: str
    address: str  # the address other nodes use (private address on OCI)
    control_plane: bool
    subnet: str = ""  # the address's network (for the security-list rule), "" if unknown


@dataclass(frozen=True)
class Flow:
    src: str
    dst: str
    port: int
    proto: str  # tcp | udp
    why: str


def node_address(ansible_host: str, ip_addr_text: str, *, local: bool = False
                 ) -> tuple[str, str]:
    """(address, subnet) other nodes reach this host on: ``ansible_host`` when it is one of
    the host's own addresses, else the first address of a real interface (OCI: the public IP
    is NAT, not on the interface; a lab: 127.0.0.1 is an SSH port forward). A loopback
    ``ansible_host`` counts only for ``ansible_connection: local`` hosts (127.0.0.2 on lo)."""
    from provision.doctor.netchecks import IGNORED_IFACE_PREFIXES

    ifaces: list[tuple[str, ipaddress.IPv4Interface]] = []
    for line in ip_addr_text.splitlines():
        parts = line.split()
        if len(parts) >= 4 and parts[2] == "inet":
            try:
                ifaces.append((parts[1], ipaddress.IPv4Interface(parts[3])))
            except ValueError:
                continue
    try:
        wanted = ipaddress.IPv4Address(ansible_host)
    except ValueError:
        wanted = None
    if wanted is not None:
        for _, iface in ifaces:
            if wanted.is_loopback and not local:
                break
            if wanted in iface.network and (iface.ip == wanted or iface.ip.is_loopback):
                return str(wanted), str(iface.network)
    for name, iface in ifaces:
        if not name.startswith(IGNORED_IFACE_PREFIXES):
            return str(iface.ip), str(iface.network)
    return ansible_host, ""


def plan(hosts: Sequence[MeshHost], *, cni_plugin: str, metallb_pool: bool,
         node_port: int | None) -> list[Flow]:
    """Every (src, dst, port, proto) a kubeadm cluster of these hosts needs open."""
    flows: list[Flow] = []
    cps = [h for h in hosts if h.control_plane]
    for dst in hosts:
        for src in hosts:
            if src.name == dst.name:
                continue
            if dst.control_plane:
                flows.append(Flow(src.name, dst.name, 6443, "tcp", "Kubernetes API"))
            if src.control_plane:
                flows.append(Flow(src.name, dst.name, 10250, "tcp", "kubelet API"))
            if src.control_plane and dst.control_plane and len(cps) > 1:
                flows.append(Flow(src.name, dst.name, 2379, "tcp", "etcd client"))
                flows.append(Flow(src.name, dst.name, 2380, "tcp", "etcd peer"))
            if cni_plugin == "flannel":
                flows.append(Flow(src.name, dst.name, 8472, "udp", "flannel VXLAN"))
            elif cni_plugin == "calico":
                flows.append(Flow(src.name, dst.name, 179, "tcp", "calico BGP"))
            if metallb_pool:
                flows.append(Flow(src.name, dst.name, 7946, "tcp", "MetalLB memberlist"))
                flows.append(Flow(src.name, dst.name, 7946, "udp", "MetalLB memberlist"))
            if node_port:
                flows.append(Flow(src.name, dst.name, node_port, "tcp", "ingress NodePort"))
    return flows


def listen_ports(flows: Sequence[Flow], host: str) -> list[str]:
    """``port/proto`` items the host must listen on (sorted, unique)."""
    items = {(f.port, f.proto) for f in flows if f.dst == host}
    return [f"{p}/{proto}" for p, proto in sorted(items)]


_LISTENER = r"""
import os, select, socket, sys, time
addr, items, seconds = sys.argv[1], sys.argv[2].split(","), float(sys.argv[3])
socks = []
for item in items:
    port, proto = item.split("/")
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM if proto == "tcp" else socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        s.bind((addr, int(port)))
        if proto == "tcp":
            s.listen(64)
    except OSError as e:
        print("@@mesh busy", item, (e.strerror or str(e)).replace(" ", "_"))
        s.close()
        continue
    print("@@mesh ready", item)
    socks.append((s, proto))
sys.stdout.flush()
pid = os.fork()
if pid:
    print("@@mesh pid", pid)
    sys.exit(0)
os.setsid()
null = os.open(os.devnull, os.O_RDWR)
for fd in (0, 1, 2):
    os.dup2(null, fd)
end = time.time() + seconds
while socks and time.time() < end:
    ready, _, _ = select.select([s for s, _ in socks], [], [], 1)
    for s in ready:
        try:
            if s.type == socket.SOCK_STREAM:
                c, _ = s.accept()
                c.sendall(b"ok")
                c.close()
            else:
                data, peer = s.recvfrom(512)
                s.sendto(data, peer)
        except OSError:
            pass
"""

_PROBER = r"""
import socket, sys, threading
timeout = float(sys.argv[1])
out = []
def probe(addr, port, proto):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM if proto == "tcp" else socket.SOCK_DGRAM)
    s.settimeout(timeout)
    try:
        s.connect((addr, int(port)))
        if proto == "udp":
            s.send(b"provision-doctor")
        got = s.recv(64)
        result = "ok" if got else "closed"
    except socket.timeout:
        result = "timeout"
    except ConnectionRefusedError:
        result = "refused"
    except OSError as e:
        result = (e.strerror or str(e)).replace(" ", "_")
    finally:
        s.close()
    out.append("@@mesh %s %s %s %s" % (addr, port, proto, result))
threads = []
for item in sys.argv[2:]:
    addr, port, proto = item.split(":")
    t = threading.Thread(target=probe, args=(addr, port, proto))
    t.start()
    threads.append(t)
for t in threads:
    t.join()
print("\n".join(out))
"""

_SUDO = 'S=""; [ "$(id -u)" = 0 ] || S="sudo -n"\n'


def listener_script(address: str, items: Sequence[str], seconds: int = LISTEN_SECONDS) -> str:
    """Shell: start the listener (root via sudo -n where possible: 179 is privileged)."""
    args = " ".join(shlex.quote(a) for a in (address, ",".join(items), str(int(seconds))))
    return (_SUDO + "printf '\\n@@doctor:mesh\\n'\n"
            f"$S python3 -c {shlex.quote(_LISTENER)} {args} 2>&1 || "
            f"python3 -c {shlex.quote(_LISTENER)} {args} 2>&1\n"
            "printf '\\n@@doctor:end\\n'\n")


def prober_script(targets: Sequence[tuple[str, int, str]], timeout: int = PROBE_TIMEOUT) -> str:
    args = " ".join(shlex.quote(f"{a}:{p}:{proto}") for a, p, proto in targets)
    return ("printf '\\n@@doctor:mesh\\n'\n"
            f"python3 -c {shlex.quote(_PROBER)} {int(timeout)} {args} 2>&1\n"
            "printf '\\n@@doctor:end\\n'\n")


def stop_script(pid: int) -> str:
    """Shell: stop the background listener and wait (up to 5 s) until it is gone."""
    p = int(pid)
    return (_SUDO + f"$S kill {p} 2>/dev/null || kill {p} 2>/dev/null\n"
            f"i=0; while [ $i -lt 50 ] && ($S kill -0 {p} || kill -0 {p}) 2>/dev/null; do "
            "sleep 0.1; i=$((i+1)); done\n"
            "printf '\\n@@doctor:end\\n'\n")


def parse_listener(text: str) -> tuple[set[str], dict[str, str], int | None]:
    """(ready items, {busy item: reason}, pid of the background listener)."""
    ready: set[str] = set()
    busy: dict[str, str] = {}
    pid = None
    for line in text.splitlines():
        parts = line.split()
        if len(parts) >= 3 and line.startswith(MARK):
            if parts[1] == "ready":
                ready.add(parts[2])
            elif parts[1] == "busy":
                busy[parts[2]] = " ".join(parts[3:]).replace("_", " ")
            elif parts[1] == "pid" and parts[2].isdigit():
                pid = int(parts[2])
    return ready, busy, pid


def parse_probes(text: str) -> dict[tuple[str, int, str], str]:
    out: dict[tuple[str, int, str], str] = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 5 and line.startswith(MARK) and parts[2].isdigit():
            out[(parts[1], int(parts[2]), parts[3])] = parts[4].replace("_", " ")
    return out


def rule(src: MeshHost, dst: MeshHost, port: int, proto: str) -> str:
    """The OCI security-list (or NSG) ingress rule that lets ``src`` reach ``dst``."""
    source = src.subnet or f"{src.address}/32"
    return (f"OCI: add a stateful ingress rule to the security list (or NSG) of {dst.name}'s "
            f"subnet: source CIDR {source}, IP protocol {proto.upper()}, destination port "
            f"{port}; and allow it in {dst.name}'s host firewall")


_HOW = {"timeout": f"no answer within {PROBE_TIMEOUT} s (dropped)",
        "refused": "refused (rejected by a firewall)"}


def verdicts(hosts: Sequence[MeshHost], flows: Sequence[Flow],
             listening: Mapping[str, tuple[set[str], dict[str, str]]],
             probed: Mapping[str, Mapping[tuple[str, int, str], str]],
             *, calico_ipip: bool = False) -> list[CheckResult]:
    """One FAIL per blocked (src, dst, port), one PASS line per destination host, a WARN per
    port that could not be probed (in use, no listener), and the IP-in-IP note."""
    by_name = {h.name: h for h in hosts}
    results: list[CheckResult] = []
    for dst in hosts:
        ready, busy = listening.get(dst.name, (set(), {}))
        ok: list[str] = []
        skipped: dict[str, str] = {}
        for f in (f for f in flows if f.dst == dst.name):
            item = f"{f.port}/{f.proto}"
            if item not in ready:
                skipped[item] = busy.get(item, "no listener")
                continue
            src = by_name[f.src]
            answer = probed.get(f.src, {}).get((dst.address, f.port, f.proto))
            if answer == "ok":
                ok.append(f"{f.src}->{item}")
                continue
            how = _HOW.get(answer or "", answer or "not probed (the source host gave no answer)")
            results.append(CheckResult(
                dst.name, CHECK, FAIL,
                f"{f.src} ({src.address}) -> {dst.name} ({dst.address}) {item} ({f.why}): "
                f"{how}. {rule(src, dst, f.port, f.proto)}"))
        for item, why in sorted(skipped.items()):
            results.append(CheckResult(
                dst.name, CHECK, WARN,
                f"{item} not probed: {why} on {dst.name} (in use: the running cluster or "
                f"another service owns it; doctor listens only on free ports)"))
        if ok:
            results.append(CheckResult(dst.name, CHECK, PASS,
                                       f"reachable from the other hosts: {', '.join(ok)}"))
    if calico_ipip and len(hosts) > 1:
        results.append(CheckResult(
            "all", CHECK, WARN,
            "calico IP-in-IP (IP protocol 4) cannot be probed by a listener: allow IP protocol "
            "4 between the nodes' subnets in the OCI security list, or use VXLAN "
            "encapsulation (4789/udp)"))
    return results
