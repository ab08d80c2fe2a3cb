"""Simulated MetalLB controller (v0.14, CRD-based): LoadBalancer Service IP assignment.

Pure functions; `server.Cluster` calls `assign()` while it holds its lock. The rules follow
the MetalLB documentation of v0.14 ("Usage": requesting specific IPs, address pools, IP address
sharing; "Configuration": IPAddressPool autoAssign and avoidBuggyIPs) and the controller's
allocator (pkg/allocator):

- Only Services of type LoadBalancer get an address, and only while the MetalLB controller
  Deployment (``metallb-system/controller``) is available; ``spec.loadBalancerClass`` set to
  anything else opts a Service out.
- ``metallb.io/loadBalancerIPs`` (comma separated; the deprecated ``spec.loadBalancerIP`` too)
  asks for given addresses: they must lie in a pool (in the pool ``metallb.io/address-pool``
  names, when set). Each ``metallb.io/`` annotation is also read under its deprecated
  ``metallb.universe.tf/`` prefix when the ``metallb.io/`` key is absent (MetalLB v0.16.1).
- Otherwise the first free address of the first pool with ``autoAssign`` (default true), pools
  in name order, addresses in order; ``avoidBuggyIPs`` skips IPv4 .0 and .255; a named pool is
  used even when its autoAssign is false.
- Two Services share an address only when both carry the same
  ``metallb.io/allow-shared-ip`` key, use no common port/protocol, and both have
  ``externalTrafficPolicy: Cluster`` or both ``Local`` with the same selector.
- An address once assigned stays while it remains valid (pool and request unchanged).
- Nothing free: no address, and a Warning Event ``AllocationFailed`` on the Service.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from typing import Any

# Annotation names without their prefix. MetalLB v0.16.1 reads ``metallb.io/<name>`` and, when
# that key is absent, the deprecated ``metallb.universe.tf/<name>`` (controller/service.go:
# AnnotationPrefix, DeprecatedAnnotationPrefix, valueForAnnotation, SharingKey; the prefix was
# deprecated in v0.14.9, metallb#2495).
SHARE = "allow-shared-ip"
POOL = "address-pool"
REQUEST = "loadBalancerIPs"
PREFIX = "metallb.io"
DEPRECATED_PREFIX = "metallb.universe.tf"
GROUP = "metallb.io"


def pool_ranges(pool: dict) -> list[tuple[Any, Any]]:
    """(first, last) addresses of each entry of ``spec.addresses``: CIDR or ``a-b``."""
    out = []
    for entry in (pool.get("spec") or {}).get("addresses") or []:
        text = str(entry).strip()
        if "-" in text:
            a, b = (ipaddress.ip_address(x.strip()) for x in text.split("-", 1))
            out.append((a, b))
        else:
            net = ipaddress.ip_network(text, strict=False)
            out.append((net.network_address, net.broadcast_address))
    return out


def pool_addresses(pool: dict) -> Iterator[Any]:
    buggy = bool((pool.get("spec") or {}).get("avoidBuggyIPs"))
    for first, last in pool_ranges(pool):
        ip = first
        while ip <= last:
            if not (buggy and ip.version == 4 and int(ip) & 0xFF in (0, 255)):
                yield ip
            ip += 1


def in_pool(pool: dict, ip: Any) -> bool:
    return any(first.version == ip.version and first <= ip <= last
               for first, last in pool_ranges(pool))


def _annotations(svc: dict) -> dict:
    return svc["metadata"].get("annotations") or {}


def annotation(svc: dict, name: str) -> str:
    """MetalLB's valueForAnnotation: ``metallb.io/<name>`` when the key is there (even empty),
    else ``metallb.universe.tf/<name>``, else ""."""
    ann = _annotations(svc)
    for key in (f"{PREFIX}/{name}", f"{DEPRECATED_PREFIX}/{name}"):
        if key in ann:
            return str(ann[key])
    return ""


def requested(svc: dict) -> list[Any]:
    value = annotation(svc, REQUEST)
    if value:
        return [ipaddress.ip_address(x.strip()) for x in value.split(",") if x.strip()]
    lb_ip = (svc.get("spec") or {}).get("loadBalancerIP")
    return [ipaddress.ip_address(lb_ip)] if lb_ip else []


def _ports(svc: dict) -> set[tuple[int, str]]:
    return {(int(p.get("port", 0)), p.get("protocol", "TCP"))
            for p in (svc.get("spec") or {}).get("ports") or []}


def _policy(svc: dict) -> str:
    return (svc.get("spec") or {}).get("externalTrafficPolicy") or "Cluster"


def can_share(a: dict, b: dict) -> str | None:
    """None when Services a and b may use the same address, else why not."""
    key_a, key_b = annotation(a, SHARE), annotation(b, SHARE)
    if not key_a or key_a != key_b:
        return "sharing key mismatch or missing"
    common = _ports(a) & _ports(b)
    if common:
        port, proto = sorted(common)[0]
        return f"port {port}/{proto} is already in use"
    pa, pb = _policy(a), _policy(b)
    if pa != pb:
        return "externalTrafficPolicy differs"
    if pa == "Local" and (a.get("spec") or {}).get("selector") != (b.get("spec") or {}).get(
            "selector"):
        return "externalTrafficPolicy Local with different selectors"
    return None


def _key(svc: dict) -> str:
    return f"{svc['metadata'].get('namespace', 'default')}/{svc['metadata']['name']}"


def wants_address(svc: dict) -> bool:
    spec = svc.get("spec") or {}
    cls = spec.get("loadBalancerClass")
    return spec.get("type") == "LoadBalancer" and (not cls or cls == "metallb")


def assign(services: list[dict], pools: list[dict]) -> dict[str, tuple[str | None, str]]:
    """{ns/name: (ip or None, message)} for every LoadBalancer Service, given the current
    assignments in ``svc["metadata"]["_lb_ip"]`` (kept while valid)."""
    by_name = {p["metadata"]["name"]: p for p in pools}
    holders: dict[Any, list[dict]] = {}
    result: dict[str, tuple[str | None, str]] = {}
    lb = [s for s in services if wants_address(s)]
    lb.sort(key=lambda s: (s["metadata"].get("_created", 0), _key(s)))

    def pools_for(svc: dict) -> list[dict] | str:
        name = annotation(svc, POOL)
        if name:
            return [by_name[name]] if name in by_name else f'unknown pool "{name}"'
        return [p for n, p in sorted(by_name.items())
                if (p.get("spec") or {}).get("autoAssign", True)]

    def usable(svc: dict, ip: Any) -> str | None:
        for other in holders.get(ip, []):
            why = can_share(svc, other)
            if why:
                return f"address also in use by {_key(other)} ({why})"
        return None

    def take(svc: dict, ip: Any) -> None:
        holders.setdefault(ip, []).append(svc)
        result[_key(svc)] = (str(ip), "assigned")

    pending = []
    for svc in lb:  # keep valid current assignments first
        cur = svc["metadata"].get("_lb_ip")
        cands = pools_for(svc)
        if cur and not isinstance(cands, str):
            ip = ipaddress.ip_address(cur)
            want = requested(svc)
            if (not want or ip in want) and any(in_pool(p, ip) for p in cands or pools) \
                    and usable(svc, ip) is None:
                take(svc, ip)
                continue
        pending.append(svc)
    for svc in pending:
        cands = pools_for(svc)
        if isinstance(cands, str):
            result[_key(svc)] = (None, cands)
            continue
        want = requested(svc)
        if want:
            ip = want[0]
            scope = cands if annotation(svc, POOL) else pools
            if not any(in_pool(p, ip) for p in scope):
                result[_key(svc)] = (None, f'"{ip}" is not allowed in config')
                continue
            why = usable(svc, ip)
            if why:
                result[_key(svc)] = (None, f"can't assign {ip}: {why}")
                continue
            take(svc, ip)
            continue
        family = 6 if "IPv6" in ((svc.get("spec") or {}).get("ipFamilies") or ["IPv4"])[:1] \
            else 4
        for pool in cands:
            ip = next((a for a in pool_addresses(pool)
                       if a.version == family and usable(svc, a) is None), None)
            if ip is not None:
                take(svc, ip)
                break
        else:
            result[_key(svc)] = (None, "no available IPs")
    return result
