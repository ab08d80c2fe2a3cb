"""Inventory validation: every check runs in Python before any host is contacted.

``validate(inv)`` returns ``(errors, warnings)``: plain strings that name the file (and line),
the host or group, the key, and what was expected. ``load_valid_inventory(spec)`` loads,
validates, prints warnings to stderr and raises ``ValidationError`` (exit 2) on any error.
"""

from __future__ import annotations

import bisect
import datetime
import ipaddress
import re
import shlex
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path
from typing import Any

from provision.errors import UsageError, ValidationError
from provision.inventory import (
    Host,
    Inventory,
    UnsafeText,
    VarSource,
    VaultText,
    did_you_mean,
    load_inventory,
)
from provision.patterns import PATTERNS, address_problem, is_template
from provision.pins import eol_warning, outside_documented_warning
from provision.redact import MASK, is_secret_var, redact_text
from provision.schema import BY_NAME, CONNECTION_PASSTHROUGH, ROLE_OPTION_PATTERNS, Var
from provision.versions import SUPPORTED_MINORS, parse_version

# Ansible's own connection/behaviour variables that are passed through (not toolkit schema).
ANSIBLE_PASSTHROUGH = frozenset({
    "ansible_ssh_extra_args", "ansible_ssh_pipelining", "ansible_ssh_executable",
    "ansible_private_key_file", "ansible_become_method", "ansible_become_user",
    "ansible_become_password", "ansible_password", "ansible_shell_type",
    "ansible_remote_tmp", "ansible_ssh_timeout", "ansible_timeout",
    "ansible_ssh_host_key_checking", "ansible_host_key_checking", "ansible_become_flags",
})

# Ansible argument_spec types -> schema kinds
_SPEC_KINDS = {"str": "str", "int": "int", "bool": "bool", "list": "list", "dict": "dict",
               "path": "path", "float": "float", "raw": "raw"}

_DURATION = re.compile(r"^\d+[smhdw]$")


def role_options() -> dict[str, dict[str, Any]]:
    """Every option declared in roles/*/meta/argument_specs.yml: name -> spec (+ 'role'),
    generated into provision/schema_roles.py (no YAML parsed here)."""
    from provision.schema_roles import ROLE_OPTIONS

    return ROLE_OPTIONS


def known_variable(name: str) -> Var | None:
    """The schema entry for ``name``: the toolkit schema first, then role argument specs."""
    if name in BY_NAME:
        return BY_NAME[name]
    spec = role_options().get(name)
    if spec is None:
        return None
    kind = _SPEC_KINDS.get(str(spec.get("type", "str")), "raw")
    pattern, templatable = ROLE_OPTION_PATTERNS.get(name, (None, False))
    # an option whose role default is a template may be templated in the inventory too
    templatable = templatable or (pattern is None and is_template(spec.get("default")))
    return Var(name, kind, spec.get("default"), str(spec.get("description", "")),
               choices=tuple(spec.get("choices") or ()), elements=spec.get("elements"),
               pattern=pattern, templatable=templatable)


_SECRET_CONNECTION = frozenset({"ansible_become_password", "ansible_password"})


def connection_variable(name: str) -> Var | None:
    """Ansible's own pass-through variables as schema entries tagged "connection"."""
    if name not in ANSIBLE_PASSTHROUGH:
        return None
    kind = "str" if name in _SECRET_CONNECTION else "raw"  # a password is a string
    return Var(name, kind, None, "", tags=("ansible", "connection"),
               pattern=CONNECTION_PASSTHROUGH.get(name))


def _refuses_templates(var: Var) -> bool:
    """A template is refused where Ansible would run it on the controller before our check
    (connection variables) or where it would skip a declared check (pattern, choices, a type
    other than a free string), unless the schema marks the variable templatable."""
    if var.templatable:
        return False
    return ("connection" in var.tags or var.pattern is not None or bool(var.choices)
            or var.kind not in ("str", "path", "raw", "list", "dict"))


def _template_problem(var: Var) -> str:
    if "connection" in var.tags:
        why = "templates in connection variables run on your machine before any check"
    else:
        why = (f"a template would be evaluated by Ansible on your machine and skip the check "
               f"of {var.name}")
    return f"Jinja templates ({{{{ }}}}, {{% %}}, {{# #}}) are not allowed here: {why}; " \
           "write the value itself"


def _pattern_problem(var: Var, value: Any) -> str | None:
    if var.pattern is None:
        return None
    items = value if isinstance(value, list) else [value]
    for item in items:
        problem = PATTERNS[var.pattern].problem(item)
        if problem:
            return problem if not isinstance(value, list) else f"element {problem}"
    return None


def _type_name(value: Any) -> str:
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, int | float):
        return f"the number {value}"
    if value is None:
        return "an empty value"
    kind = next((name for t, name in ((dict, "a mapping"), (list, "a list"), (str, "a string"))
                 if isinstance(value, t)), "a value")
    return kind + (f" '{value}'" if isinstance(value, str) else "")


def _templated(value: Any) -> bool:
    """A template Ansible would evaluate: ``is_template`` but for ``!unsafe`` text, which
    Ansible never templates."""
    if isinstance(value, UnsafeText):
        return False
    if isinstance(value, list | tuple):
        return any(_templated(v) for v in value)
    if isinstance(value, dict):
        return any(_templated(k) or _templated(v) for k, v in value.items())
    return is_template(value)


def check_value(var: Var, value: Any) -> str | None:
    """What is wrong with ``value`` for ``var``, or None when it is valid."""
    if value is None:
        return None
    if _templated(value):
        return _template_problem(var) if _refuses_templates(var) else None
    if var.name in _SECRET_CONNECTION:  # a secret: only its type, never its value
        return None if isinstance(value, str) else f"expected a string, got {_type_name(value)}"
    if var.kind == "raw":
        return _pattern_problem(var, value) if isinstance(value, str) else (
            None if var.pattern is None else f"expected a string, got {_type_name(value)}")
    kind = var.kind
    if kind == "version":
        if isinstance(value, float | int) and not isinstance(value, bool):
            return (f"expected a version string, got {_type_name(value)}: YAML reads an "
                    f"unquoted version as a number (1.30 becomes 1.3); quote it, "
                    f'e.g. {var.name}: "1.30"')
        if not isinstance(value, str):
            return f'expected a version string like "1.31" or "1.31.2", got {_type_name(value)}'
        parsed = parse_version(value)
        if parsed is None:
            return f"malformed version {value!r}: expected \"1.31\" or \"1.31.2\" (no leading v)"
        if parsed[1] not in SUPPORTED_MINORS:
            lo, hi = min(SUPPORTED_MINORS), max(SUPPORTED_MINORS)
            return (f"{value!r} is not a Kubernetes release provision supports "
                    f"(1.{lo} to 1.{hi})")
        return None
    if kind in ("str", "path"):
        if not isinstance(value, str):
            return f"expected a string, got {_type_name(value)}"
        problem = _pattern_problem(var, value)
        if problem:
            return problem
    elif kind == "int" or kind == "port":
        if isinstance(value, bool) or not isinstance(value, int):
            return f"expected an integer, got {_type_name(value)}"
        if kind == "port" and not 1 <= value <= 65535:
            return f"expected a port 1-65535, got {value}"
        if var.minimum is not None and value < var.minimum:
            return f"expected an integer >= {var.minimum}, got {value}"
    elif kind == "float":
        if isinstance(value, bool) or not isinstance(value, int | float):
            return f"expected a number, got {_type_name(value)}"
    elif kind == "bool":
        if not isinstance(value, bool):
            hint = " (write true or false, unquoted)" if isinstance(value, str) else ""
            return f"expected true or false, got {_type_name(value)}{hint}"
    elif kind == "list":
        if not isinstance(value, list):
            return f"expected a list, got {_type_name(value)}"
        if var.elements == "str" and any(not isinstance(v, str) for v in value):
            bad = next(v for v in value if not isinstance(v, str))
            return f"expected a list of strings, found {_type_name(bad)}"
        problem = _pattern_problem(var, value)
        if problem:
            return problem
    elif kind == "dict":
        if not isinstance(value, dict):
            return f"expected a mapping, got {_type_name(value)}"
    elif kind == "cidr":
        return _check_cidr(value)
    elif kind == "ip":
        try:
            ipaddress.ip_address(str(value))
        except ValueError:
            return f"invalid IP address '{value}'"
    elif kind == "ip_pool":
        if not isinstance(value, list):
            return f"expected a list of CIDRs or A-B ranges, got {_type_name(value)}"
        for item in value:
            problem = check_pool_entry(item)
            if problem:
                return problem
    elif kind == "duration" and not (isinstance(value, str) and _DURATION.match(value)):
        return f"expected a duration like 30d, 12h or 15m, got {_type_name(value)}"
    if var.choices and value not in var.choices:
        allowed = ", ".join(str(c) for c in var.choices)
        return f"'{value}' is not one of: {allowed}" + did_you_mean(str(value), var.choices)
    return None


def _check_cidr(value: Any) -> str | None:
    if not isinstance(value, str):
        return f"expected a CIDR like 10.244.0.0/16, got {_type_name(value)}"
    try:
        ipaddress.ip_network(value, strict=True)
    except ValueError as exc:
        if "host bits set" in str(exc):
            fixed = ipaddress.ip_network(value, strict=False)
            return f"invalid CIDR '{value}': host bits set; did you mean {fixed}?"
        return f"invalid CIDR '{value}'"
    if "/" not in value:
        return f"invalid CIDR '{value}': missing the prefix length (e.g. {value}/16)"
    return None


def check_pool_entry(item: Any) -> str | None:
    """A MetalLB pool entry: a CIDR or an ``A-B`` range of the same family with A <= B."""
    if not isinstance(item, str):
        return f"pool entry {_type_name(item)} is not a CIDR or an A-B range"
    if "-" in item:
        first, _, last = (p.strip() for p in item.partition("-"))
        try:
            a, b = ipaddress.ip_address(first), ipaddress.ip_address(last)
        except ValueError:
            return f"invalid address range '{item}': expected A-B with two IP addresses"
        if a.version != b.version or a > b:
            return f"invalid address range '{item}': the first address must be <= the last"
        return None
    if "/" not in item:
        try:
            ipaddress.ip_address(item)
        except ValueError:
            return f"invalid pool entry '{item}': expected a CIDR or an A-B range"
        return f"invalid pool entry '{item}': a single address needs a prefix: {item}/32"
    return _check_cidr(item)


def pool_networks(entries: Iterable[str]) -> list[Any]:
    """Networks covered by valid pool entries (ranges summarised to CIDRs)."""
    nets: list[Any] = []
    for item in entries:
        if not isinstance(item, str) or check_pool_entry(item):
            continue
        if "-" in item:
            first, _, last = (p.strip() for p in item.partition("-"))
            nets.extend(ipaddress.summarize_address_range(ipaddress.ip_address(first),
                                                          ipaddress.ip_address(last)))
        else:
            nets.append(ipaddress.ip_network(item))
    return nets


@lru_cache(maxsize=1)
def _all_names() -> tuple[str, ...]:
    return tuple(sorted(set(BY_NAME) | set(role_options()) | ANSIBLE_PASSTHROUGH))


@lru_cache(maxsize=4096)
def _unknown_hint(key: str) -> str:
    """The suggestion for an unknown variable (cached: the same typo on 2,000 hosts is one
    difflib search, not 2,000)."""
    return did_you_mean(key, _all_names()) or " (see the inventory reference in README)"


def _check_source(src: VarSource) -> str | None:
    var = known_variable(src.key) or connection_variable(src.key)
    if var is None:
        return f"{src.where}: {src.key}: unknown variable" + _unknown_hint(src.key)
    if var.scope == "host" and src.scope.startswith("group "):
        return f"{src.where}: {src.key}: must be set per host, not for a group"
    problem = check_value(var, src.value)
    if problem and (is_secret_var(src.key) or _has_vault(src.value)):  # never echo a secret
        problem = redact_text(problem, {str(v) for v in _secret_leaves(src.value)}).replace(
            MASK, "(hidden)") + f" (the value is hidden: {src.key} is a secret)"
    return f"{src.where}: {src.key}: {problem}" if problem else None


def _has_vault(value: Any) -> bool:
    """A !vault value anywhere in ``value``: a secret whatever its name."""
    return any(isinstance(leaf, VaultText) for leaf in _secret_leaves(value))


def _secret_leaves(value: Any) -> list[Any]:
    if isinstance(value, dict):
        return [leaf for v in value.values() for leaf in _secret_leaves(v)]
    if isinstance(value, list):
        return [leaf for v in value for leaf in _secret_leaves(v)]
    return [] if value is None or isinstance(value, bool) or str(value) == "" else [value]


def host_source(inv: Inventory, host: Host, key: str) -> VarSource | None:
    """Where ``key`` was last set for ``host`` in the inventory files: the latest source among
    the host's own scope, its groups and ``all`` (an index lookup per scope, not a scan of
    every source, so that reporting an error on every host stays linear); None: not set."""
    return inv.last_source(key, [f"host {host.name}", *(f"group {g}" for g in host.groups),
                                 "group all"])


def _host_where(inv: Inventory, host: Host, key: str) -> str:
    """The file (and line) where ``key`` was last set for ``host`` (its recorded origin, else
    :func:`host_source`)."""
    src = host.origins.get(key)
    if src is not None:
        return src.where
    src = host_source(inv, host, key)
    if src is not None:
        return src.where
    return f"{inv.files[0] if inv.files else inv.path}: host {host.name}"


def _var(host: Host, name: str) -> Any:
    return host.vars.get(name, BY_NAME[name].default if name in BY_NAME else None)


def validate(inv: Inventory) -> tuple[list[str], list[str]]:
    """Check an inventory; nothing is contacted. Returns (errors, warnings)."""
    errors: list[str] = list(inv.structure_problems)
    warnings: list[str] = []
    for src in inv.sources:
        problem = _check_source(src)
        if problem:
            errors.append(problem)
    main_file = inv.files[0] if inv.files else inv.path
    if not inv.hosts:
        errors.append(f"{main_file}: no hosts: add hosts under all.children.control_plane.hosts")
        return errors, warnings
    errors += _check_groups(inv, main_file, warnings)
    errors += _check_hosts(inv)
    errors += _check_networks(inv)
    errors += check_connection_security(inv, warnings)
    warnings += version_support_warnings(inv)
    errors += _check_oci_s3_region(inv)
    errors += _etcd_problems(inv)
    warnings += gateway_problems(inv)  # bootstrap refuses them when it installs the add-ons
    errors += _containerd_problems(inv)
    return errors, warnings


def _containerd_problems(inv: Inventory) -> list[str]:
    """A containerd_package pinned to 1.x with a Kubernetes minor that needs containerd 2.x
    (provision.containerd): exit 2 before contact, naming file and host."""
    from provision import containerd

    if inv.mode != "kubeadm":
        return []
    out = []
    for host in inv.hosts.values():
        version = _var(host, "kubernetes_version")
        parsed = parse_version(version) if isinstance(version, str) else None
        if parsed is None:
            continue
        problem = containerd.inventory_refusal(parsed[1], host.vars.get("containerd_package"))
        if problem:
            out.append(f"{_host_where(inv, host, 'containerd_package')}: {problem}")
    return out


def gateway_problems(inv: Inventory) -> list[str]:
    """ingress_controller: gateway settings that cannot work (provision.gateway), named by
    where ingress_controller was set. Warnings here (an inventory may be used without the
    add-ons); `bootstrap` refuses them (exit 2) when it installs the ingress add-on."""
    from provision import gateway

    if inv.mode != "kubeadm" or not inv.control_plane:
        return []
    first = inv.control_plane[0]
    values = {k: v for k in gateway.KEYS if (v := _var(first, k)) is not None}
    return [f"{_host_where(inv, first, 'ingress_controller')}: {p}"
            for p in gateway.problems(values)]


def _check_minikube_user(inv: Inventory) -> list[str]:
    """minikube runs as a non-root user (DRV_AS_ROOT): minikube_user, else ansible_user, must
    name one. The role refuses it too, but only after contacting the host."""
    errors: list[str] = []
    for host in inv.hosts.values():
        user = host.vars.get("minikube_user") or host.vars.get("ansible_user")
        if isinstance(user, str) and is_template(user):
            continue  # minikube_user's own default is a template over ansible_user
        if not user or user == "root":
            key = "minikube_user" if host.vars.get("minikube_user") else "ansible_user"
            got = "root" if user == "root" else "not set"
            errors.append(f"{_host_where(inv, host, key)}: {key}: {got} (host {host.name}); "
                          "minikube refuses the docker driver as root (DRV_AS_ROOT): set "
                          "ansible_user (or minikube_user) to a non-root user with sudo")
    return errors


def version_support_warnings(inv: Inventory, today: datetime.date | None = None) -> list[str]:
    """One warning per requested Kubernetes version past upstream end of life (provision.pins
    declares the dates and their source), and one per version outside the range the pinned
    cert-manager documents (kubeadm mode, whose add-ons install it); never an error: old
    clusters must stay manageable."""
    by_version: dict[str, list[Host]] = {}
    for host in inv.hosts.values():
        value = _var(host, "kubernetes_version")
        if isinstance(value, str) and parse_version(value) and not is_template(value):
            by_version.setdefault(value, []).append(host)
    out = []
    for version, hosts in sorted(by_version.items()):
        minor = parse_version(version)[1]  # type: ignore[index]
        where = _at(inv, hosts[0], "kubernetes_version", [h.name for h in hosts])
        msg = eol_warning(where, version, minor, today or datetime.date.today())
        if msg:
            out.append(msg)
        if inv.mode == "kubeadm":  # kubeadm's default components include cert-manager
            msg = outside_documented_warning(where, "cert-manager", version, minor)
            if msg:
                out.append(msg)
    return out


def _etcd_problems(inv: Inventory) -> list[str]:
    """etcd paths (never a system dir, normalised) and timer values (no injection)."""
    from provision.etcd.checks import problems

    return problems(inv.sources)


def _check_groups(inv: Inventory, main_file: Path, warnings: list[str]) -> list[str]:
    errors: list[str] = []
    modes = {str(_var(h, "provision_mode")) for h in inv.hosts.values()}
    if len(modes) > 1:
        errors.append(f"{main_file}: provision_mode differs between hosts "
                      f"({', '.join(sorted(modes))}): one cluster has one mode")
    mode = modes.pop() if len(modes) == 1 else "kubeadm"
    cps, workers = inv.control_plane, inv.workers
    cp_names, worker_names = {h.name for h in cps}, {h.name for h in workers}
    if mode == "minikube" and len(inv.hosts) > 1:
        errors.append(f"{main_file}: provision_mode: minikube runs on exactly one host, the "
                      f"inventory has {len(inv.hosts)} ({', '.join(sorted(inv.hosts))})")
    if mode == "minikube":
        errors += _check_minikube_user(inv)
    if mode == "kubeadm":
        if not cps:
            errors.append(f"{main_file}: group control_plane: kubeadm mode needs at least one "
                          f"control-plane host (all.children.control_plane.hosts)")
        elif len(cps) > 1 and len(cps) % 2 == 0:
            warnings.append(f"{main_file}: group control_plane: {len(cps)} control-plane hosts: "
                            f"etcd quorum needs an odd number (3 tolerates one failure, "
                            f"{len(cps)} does not tolerate more)")
    for host in cps:
        if host.name in worker_names:
            errors.append(f"{main_file}: host {host.name}: is in both control_plane and "
                          f"workers; a control plane without workers runs workloads itself")
    for name in inv.hosts:
        if name not in cp_names and name not in worker_names:
            warnings.append(f"{main_file}: host {name}: in neither control_plane nor workers; "
                            f"provision will not configure it")
    return errors


def _check_hosts(inv: Inventory) -> list[str]:
    errors: list[str] = []
    seen: dict[tuple[str, int], str] = {}
    for name, host in inv.hosts.items():
        if host.connection in ("local", "docker"):
            continue
        if any(is_template(host.vars.get(k)) for k in ("ansible_host", "ansible_port")):
            continue  # refused by the per-key checks; never evaluated
        try:
            endpoint = (host.address, host.port)
        except (TypeError, ValueError):
            continue  # a bad ansible_port is reported by the per-key checks
        if endpoint in seen:
            errors.append(f"{_host_where(inv, host, 'ansible_host')}: host {name}: "
                          f"{host.address}:{host.port} is the same host as '{seen[endpoint]}' "
                          f"under another name")
        else:
            seen[endpoint] = name
        if "ansible_host" not in host.vars and host.connection in ("ssh", "paramiko"):
            problem = address_problem(name)
            if problem:
                main = inv.files[0] if inv.files else inv.path
                errors.append(f"{main}: host {name}: the inventory name is the SSH address "
                              f"(no ansible_host): {problem}")
                continue
        key = host.key_file
        if key is not None and not is_template(str(key)) and not key.is_file():
            errors.append(f"{_host_where(inv, host, 'ansible_ssh_private_key_file')}: "
                          f"host {name}: ansible_ssh_private_key_file: {key} does not exist")
    return errors


class _NodeAddresses:
    """The IP addresses of the hosts (DNS names left out), sorted per IP version, so that the
    hosts inside a network are found by bisection instead of testing every host."""

    def __init__(self, inv: Inventory) -> None:
        found: dict[int, list[tuple[int, int, str, Any]]] = {4: [], 6: []}
        for i, (name, host) in enumerate(inv.hosts.items()):
            try:
                addr = ipaddress.ip_address(host.address)
            except ValueError:
                continue  # a DNS name
            found[addr.version].append((int(addr), i, name, addr))
        self.rows = {v: sorted(rows) for v, rows in found.items()}
        self.keys = {v: [r[0] for r in rows] for v, rows in self.rows.items()}

    def inside(self, net: Any) -> list[tuple[str, Any]]:
        """(host name, address) of every host inside ``net``, in inventory order."""
        keys, rows = self.keys[net.version], self.rows[net.version]
        lo = bisect.bisect_left(keys, int(net.network_address))
        hi = bisect.bisect_right(keys, int(net.broadcast_address))
        return [(name, addr) for _, _, name, addr in sorted(rows[lo:hi], key=lambda r: r[1])]


def _check_networks(inv: Inventory) -> list[str]:
    errors: list[str] = []
    reported: set[str] = set()
    addresses = _NodeAddresses(inv)
    searched: set[str] = set()  # pod CIDRs whose hosts were already looked for
    parsed: dict[tuple[str, str], tuple[Any, Any] | None] = {}  # (pod, svc) -> networks
    for name, host in inv.hosts.items():
        pod, svc = _var(host, "pod_cidr"), _var(host, "service_cidr")
        pair = (pod, svc) if isinstance(pod, str) and isinstance(svc, str) else None
        if pair is None or pair not in parsed:
            nets = None if _check_cidr(pod) or _check_cidr(svc) else (
                ipaddress.ip_network(pod), ipaddress.ip_network(svc))
            if pair is not None:
                parsed[pair] = nets
        else:
            nets = parsed[pair]
        if nets is None:
            continue  # already reported per key
        pod_net, svc_net = nets
        if "overlap" not in reported and pod_net.overlaps(svc_net):
            reported.add("overlap")
            errors.append(f"{_host_where(inv, host, 'pod_cidr')}: pod_cidr {pod} overlaps "
                          f"service_cidr {svc}: choose disjoint networks")
        inside = [] if pod in searched else addresses.inside(pod_net)
        searched.add(pod)
        for other_name, addr in inside:
            if f"node:{other_name}" not in reported:
                reported.add(f"node:{other_name}")
                errors.append(f"{_host_where(inv, host, 'pod_cidr')}: pod_cidr {pod} contains "
                              f"the address {addr} of host {other_name}: pods would shadow "
                              f"the node network")
        pool = _var(host, "metallb_addresses") or []
        if (_var(host, "kube_proxy_mode") == "ipvs" and pool
                and _var(host, "metallb_strict_arp") is False and "arp" not in reported):
            reported.add("arp")
            errors.append(f"{_host_where(inv, host, 'metallb_strict_arp')}: host {name}: "
                          f"metallb_strict_arp: false with kube_proxy_mode ipvs and MetalLB "
                          f"addresses: MetalLB requires strictARP with IPVS")
    return errors


# --- connection security: host keys and private keys ------------------------------------------

def check_connection_security(inv: Inventory, warnings: list[str]) -> list[str]:
    """Host key checking cannot be turned off without ``provision_insecure_ssh_host_keys: true``
    (then a warning); ``ssh_known_hosts_file`` is the one known_hosts file (doctor and Ansible)
    and a safe ssh option value; private keys are not readable by group or others."""
    from provision.connection import (
        INSECURE_OPT_IN,
        conflicting_known_hosts,
        insecure_settings,
        opted_in,
        proxy_problem,
    )

    errors: list[str] = []
    loose_keys: dict[Path, list[str]] = {}
    for name, host in inv.hosts.items():
        if host.connection in ("local", "docker"):
            continue
        insecure = insecure_settings(host.vars)
        if opted_in(host.vars) and insecure:
            warnings.append(f"{_at(inv, host, INSECURE_OPT_IN)}: SSH host "
                            f"keys are NOT checked ({INSECURE_OPT_IN}: true)")
        elif insecure:
            for key, why in insecure:
                errors.append(
                    f"{_at(inv, host, key)}: {key}: {why}. provision checks "
                    f"SSH host keys: put the host's key in {host.known_hosts_file} (ssh-keyscan, "
                    f"then compare the fingerprint with the host's console) and remove this "
                    f"setting, or opt out explicitly with {INSECURE_OPT_IN}: true (warned about "
                    f"on every run)")
        for key, why in conflicting_known_hosts(host):
            errors.append(f"{_at(inv, host, key)}: {key}: {why}")
        bad_proxy = proxy_problem(host.vars)
        if bad_proxy is not None:
            errors.append(f"{_at(inv, host, bad_proxy[0])}: {bad_proxy[0]}: {bad_proxy[1]}")
        if host.connection == "paramiko" and "ssh_known_hosts_file" in host.vars:
            errors.append(f"{_at(inv, host, 'ansible_connection')}: ansible_connection: "
                          f"paramiko: Ansible's paramiko connection ignores "
                          f"ssh_known_hosts_file (doctor would check another file than the "
                          f"runs): use ssh, the default")
        known = host.vars.get("ssh_known_hosts_file")
        if isinstance(known, str) and (not known.strip() or any(
                c in known for c in '"\n\r\t\\') or not known.isprintable()):
            errors.append(f"{_at(inv, host, 'ssh_known_hosts_file')}: "
                          f"ssh_known_hosts_file: {known!r} is not a usable path (empty, or "
                          f"with quotes, backslashes or control characters)")
        key_file = host.key_file
        if (key_file is not None and not is_template(str(key_file)) and key_file.is_file()
                and key_file.stat().st_mode & 0o077):
            loose_keys.setdefault(key_file, []).append(name)
    for key_file, names in loose_keys.items():
        host = inv.hosts[names[0]]
        mode = oct(key_file.stat().st_mode & 0o777)[2:]
        errors.append(
            f"{_at(inv, host, 'ansible_ssh_private_key_file', names)}: "
            f"ansible_ssh_private_key_file: {key_file} is readable by "
            f"group or others (mode {mode}); ssh refuses such a key. Run: "
            f"chmod 600 {shlex.quote(str(key_file))}")
    return errors


def _at(inv: Inventory, host: Host, key: str, names: list[str] | None = None) -> str:
    """Where ``key`` was set for ``host`` (file:line: scope), naming the host(s) as well."""
    where = _host_where(inv, host, key)
    hosts = ", ".join(names or [host.name])
    return where if where.endswith(f"host {hosts}") else f"{where}: host {hosts}"




_OCI_S3_ENDPOINT = re.compile(r"\.compat\.objectstorage\.([a-z0-9-]+)\.oraclecloud\.com")


def _check_oci_s3_region(inv: Inventory) -> list[str]:
    """OCI Object Storage's S3 endpoint signs with its own region: the us-east-1 default (or
    any other region than the endpoint's) fails every upload."""
    errors: list[str] = []
    for name, host in inv.hosts.items():
        endpoint = host.vars.get("etcd_backup_s3_endpoint")
        region = host.vars.get("etcd_backup_s3_region", "us-east-1")
        if not isinstance(endpoint, str) or is_template(endpoint) or is_template(region):
            continue
        match = _OCI_S3_ENDPOINT.search(endpoint)
        if "oraclecloud.com" not in endpoint or (match and match.group(1) == region):
            continue
        if not match and region != "us-east-1":
            continue  # an OCI endpoint whose region we cannot read, with a region set
        wanted = f" (the endpoint's region is {match.group(1)})" if match else ""
        key = ("etcd_backup_s3_region" if "etcd_backup_s3_region" in host.vars
               else "etcd_backup_s3_endpoint")
        where = _host_where(inv, host, key)
        where += "" if where.endswith(f"host {name}") else f": host {name}"
        errors.append(f"{where}: "
                      f"etcd_backup_s3_region: {region} does not match the OCI Object Storage "
                      f"endpoint {endpoint}{wanted}: set etcd_backup_s3_region to the OCI "
                      f"region identifier, e.g. eu-frankfurt-1")
    return errors


def load_valid_inventory(spec: str | None, vault: Any = None) -> Inventory:
    """Load and validate; warnings to stderr; ValidationError (exit 2) on any error.
    ``vault`` (provision.vault.VaultOptions): by default the running command's
    --vault-password-file/--ask-vault-pass, else ANSIBLE_VAULT_PASSWORD_FILE."""
    if not spec:
        raise UsageError("no inventory: pass -i PATH (a file, a directory, or 'lab' after "
                         "'provision lab up') or set PROVISION_INVENTORY")
    if vault is None:
        from provision.interrupt import current_options
        from provision.vault import from_command

        vault = from_command(current_options())
    inv = load_inventory(spec, vault)
    errors, warnings = validate(inv)
    warnings = [f"Ansible: {w}" for w in inv.ansible_warnings] + warnings
    if warnings:
        from provision.output import echo

        for w in warnings:
            echo(f"warning: {w}", err=True)
    if errors:
        raise ValidationError(errors)
    return inv


def _limit_parts(limit: str) -> list[str]:
    """The parts of a host pattern as Ansible splits it (',' and ':', IPv6 and ranges kept)."""
    from provision.ansible_inventory import split_pattern

    return [p.strip() for p in split_pattern(limit)]


def check_limit(inv: Inventory, limit: str | None) -> list[Host]:
    """Hosts selected by ``--limit``; a pattern naming no host or group, an empty pattern or
    an empty part (``--limit ,``, ``a,,b``) is a usage error. None: every host."""
    if limit is None:
        return list(inv.hosts.values())
    raw = _limit_parts(limit)
    if not limit.strip() or any(not p or p in ("!", "&") for p in raw):
        raise UsageError(f"--limit {limit!r}: an empty host or group name; give host or group "
                         "names separated by commas (e.g. 'workers,!w3')")
    parts = [p.lstrip("!&") for p in raw]
    known = set(inv.hosts) | set(inv.groups)
    for part in parts:
        if part not in known and not any(c in part for c in "*?[~@"):
            raise UsageError(f"--limit {limit}: '{part}' is not a host or group of "
                             f"{inv.path}" + did_you_mean(part, sorted(known)))
    selected = inv.limited(limit)
    if not selected:
        raise UsageError(f"--limit {limit}: selects no host of {inv.path}")
    return selected
