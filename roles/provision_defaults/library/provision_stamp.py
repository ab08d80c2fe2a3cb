#!/usr/bin/python
"""provision_stamp: the state a role manages, read in one round trip, and a stamp of it.

A role reads the stamp first: when its inputs (a digest computed on the controller) and the
managed state on the host (package versions, file contents and modes, service states, group
members, live sysctls, loaded modules) are the same as when the role last finished, its install
steps are skipped. Any drift (a removed package, an edited or deleted file, a stopped service)
makes the stamp differ, and the steps run again and repair it. After the steps, the role
records the stamp (record: true). The stamp file (/var/lib/provision/stamps/NAME.json, 0600)
is provision's own cache: recording it is not reported as a change of the host.

Roles link to this one file from their library/ (apt_ready, base, containerd, docker,
kubernetes_packages; a test checks the links), and to the action plugin of the same name
(action_plugins/provision_stamp.py) that runs it: this file's code as a plain Python script,
``python3 -I -S -c <read both from stdin>`` with the arguments as JSON and this file's code on
its standard input, with no module payload to build, copy and unpack (the host's CPU for a
read: about 0.05 s instead of 0.26 s for a module). Without a known interpreter the action runs
it as an ordinary module.
"""

from __future__ import annotations

import grp
import json
import os
import pwd
import re
import sys

# The host gate runs this file on every host on every run, so what it imports is part of a
# no-op run's cost on each host: not subprocess (os.posix_spawnp, see run), platform
# (os.uname), typing (annotations only) or hashlib's OpenSSL (CPython's own SHA-256), ~25 ms of
# a gate's ~60 ms in a lab container (python3 -X importtime).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any
try:
    from _sha2 import sha256  # CPython 3.12+
except ImportError:
    try:
        from _sha256 import sha256  # CPython 3.11 and older
    except ImportError:
        from hashlib import sha256

DOCUMENTATION = r"""
module: provision_stamp
short_description: Read the state a role manages and compare it with the role's last stamp
options:
  name: {type: str, required: true, description: stamp name (a-z, 0-9, _)}
  inputs: {type: str, required: true, description: digest of the role's inputs}
  packages: {type: list, elements: str, default: [], description: dpkg packages}
  files: {type: list, elements: path, default: [], description: files (content, mode, owner)}
  services: {type: list, elements: str, default: [], description: systemd units (active, enabled)}
  enabled_services: {type: list, elements: str, default: [], description: systemd units (enabled only)}
  holds: {type: list, elements: str, default: [], description: dpkg packages (selection is hold)}
  groups: {type: list, elements: str, default: [], description: groups (members)}
  users: {type: list, elements: str, default: [], description: users (exist or not)}
  sysctls: {type: list, elements: str, default: [], description: live kernel parameters}
  kernel_modules: {type: list, elements: str, default: [], description: loaded modules}
  exists: {type: list, elements: path, default: [], description: paths (exist or not; not stamped)}
  per_run: {type: list, elements: str, default: [], description: steps run on every run (host gate)}
  record: {type: bool, default: false, description: write the stamp of the current state}
  dir: {type: path, default: /var/lib/provision/stamps, description: where stamps live}
"""

NAME = re.compile(r"\A[a-z0-9_]{1,64}\Z")
PLAIN = re.compile(r"\A[A-Za-z0-9][A-Za-z0-9_.+:@-]{0,200}\Z")


def file_state(path: str) -> str | None:
    try:
        st = os.stat(path)
        with open(path, "rb") as f:
            digest = sha256(f.read()).hexdigest()
    except OSError:
        return None
    return f"{digest} {st.st_mode & 0o7777:o} {st.st_uid}:{st.st_gid}"


def run(argv: list[str]) -> str:
    """A command's standard output (C locale: the output is parsed), whatever its exit code;
    its input and error output are /dev/null. OSError when the program is not found (under
    qemu-user, which runs posix_spawn's vfork as a plain fork, the child exits 127 instead
    and the output is "", as command() answers for a missing program)."""
    env = dict(os.environ, LC_ALL="C", LANG="C")
    read_end, write_end = os.pipe()  # both close-on-exec; the child's fd 1 is a dup
    try:
        pid = os.posix_spawnp(argv[0], argv, env, file_actions=[
            (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
            (os.POSIX_SPAWN_DUP2, write_end, 1),
            (os.POSIX_SPAWN_OPEN, 2, os.devnull, os.O_WRONLY, 0)])
    except BaseException:
        os.close(read_end)
        raise
    finally:
        os.close(write_end)
    with os.fdopen(read_end, "rb") as out:
        data = out.read()  # to the end: the child has exited or closed its output
    os.waitpid(pid, 0)
    return data.decode("utf-8", errors="replace")


def packages_state(names: list[str]) -> dict[str, str | None]:
    if not names:
        return {}
    bare = [n.split("=", 1)[0] for n in names]
    out = run(
        ["dpkg-query", "-W", "-f=${Package}\t${Version}\t${db:Status-Abbrev}\n", *bare])
    found: dict[str, str] = {}
    for line in out.splitlines():
        parts = line.split("\t")
        if len(parts) == 3 and parts[2].strip() in ("ii", "hi"):  # installed (held or not)
            found[parts[0].split(":", 1)[0]] = parts[1]
    return {n: found.get(n) for n in bare}


def services_state(names: list[str]) -> dict[str, str]:
    state = {}
    for name in names:
        active = run(["systemctl", "is-active", name])
        enabled = run(["systemctl", "is-enabled", name])
        state[name] = f"{active.strip()} {enabled.strip()}"
    return state


def enabled_state(names: list[str]) -> dict[str, str]:
    """Only `is-enabled` (units whose activity is not the role's, e.g. the kubelet's)."""
    return {n: run(["systemctl", "is-enabled", n]).strip() for n in names}


def holds_state(names: list[str]) -> dict[str, bool]:
    out = run(["dpkg-query", "-W", "-f=${Package}\t${db:Status-Want}\n", *names])
    held = {line.split("\t")[0].split(":", 1)[0] for line in out.splitlines()
            if line.endswith("\thold")}
    return {n: n in held for n in names}


def groups_state(names: list[str]) -> dict[str, list[str] | None]:
    state: dict[str, list[str] | None] = {}
    for name in names:
        try:
            state[name] = sorted(grp.getgrnam(name).gr_mem)
        except KeyError:
            state[name] = None
    return state


def users_state(names: list[str]) -> dict[str, bool]:
    state = {}
    for name in names:
        try:
            pwd.getpwnam(name)
            state[name] = True
        except KeyError:
            state[name] = False
    return state


def read(path: str) -> str | None:
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return None


def host_state(p: dict[str, Any]) -> dict:
    return {
        "packages": packages_state(p["packages"]),
        "files": {f: file_state(f) for f in p["files"]},
        "services": services_state(p["services"]),
        "groups": groups_state(p["groups"]),
        "users": users_state(p["users"]),
        "sysctls": {s: read("/proc/sys/" + s.replace(".", "/")) for s in p["sysctls"]},
        "kernel_modules": {m: os.path.isdir("/sys/module/" + m) for m in p["kernel_modules"]},
        # only when asked for: the stamps of roles that do not use them stay as they were
        **({"enabled_services": enabled_state(p["enabled_services"])}
           if p["enabled_services"] else {}),
        **({"holds": holds_state(p["holds"])} if p["holds"] else {}),
    }


def drift(old: dict, new: dict) -> list[str]:
    """The keys whose state differs ("packages docker.io", "files /etc/docker/daemon.json")."""
    keys = []
    for kind, values in new.items():
        before = old.get(kind, {}) if isinstance(old.get(kind), dict) else {}
        keys += [f"{kind} {k}" for k in values if before.get(k, "?unset") != values[k]]
    return keys


ARGUMENT_SPEC: dict[str, dict[str, Any]] = {
    "name": {"type": "str", "required": True},
    "inputs": {"type": "str", "required": True},
    "packages": {"type": "list", "elements": "str", "default": []},
    "files": {"type": "list", "elements": "path", "default": []},
    "services": {"type": "list", "elements": "str", "default": []},
    "enabled_services": {"type": "list", "elements": "str", "default": []},
    "holds": {"type": "list", "elements": "str", "default": []},
    "groups": {"type": "list", "elements": "str", "default": []},
    "users": {"type": "list", "elements": "str", "default": []},
    "sysctls": {"type": "list", "elements": "str", "default": []},
    "kernel_modules": {"type": "list", "elements": "str", "default": []},
    "exists": {"type": "list", "elements": "path", "default": []},
    "per_run": {"type": "list", "elements": "str", "default": []},
    "record": {"type": "bool", "default": False},
    "dir": {"type": "path", "default": "/var/lib/provision/stamps"},
}


def problem(p: dict[str, Any]) -> str | None:
    """Why these arguments are refused (names that are not plain, paths not absolute)."""
    names = [*p["packages"], *p["services"], *p["groups"], *p["users"], *p["sysctls"],
             *p["kernel_modules"], *p["enabled_services"], *p["holds"], *p["per_run"]]
    bad = [n for n in names if not PLAIN.match(n.split("=", 1)[0])]
    paths = [*p["files"], *p["exists"]]
    if not NAME.match(p["name"]) or bad or any(not f.startswith("/") for f in paths):
        return f"provision_stamp: bad name {p['name']!r} or entries {bad}"
    return None


def stamp_of(inputs: Any, state: dict[str, Any]) -> str:
    """The stamp: the digest of a role's inputs digest and the state it manages."""
    return sha256(json.dumps([inputs, state], sort_keys=True).encode()).hexdigest()


def load(path: str) -> dict[str, Any]:
    """A recorded stamp or gate file (JSON object), or {} when absent or unreadable."""
    try:
        with open(path) as f:
            value = json.load(f)
    except (OSError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def write_private(path: str, data: dict[str, Any]) -> None:
    """DATA as JSON in PATH (0600, its directory 0700 when created), replaced atomically."""
    os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
    tmp = path + ".tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(data, f, indent=1, sort_keys=True)
    os.replace(tmp, path)


def stamp_result(p: dict[str, Any], check_mode: bool) -> dict[str, Any]:
    """Read the state, compare it with the recorded stamp, record it when asked."""
    state = host_state(p)
    stamp = stamp_of(p["inputs"], state)
    path = os.path.join(p["dir"], p["name"] + ".json")
    recorded = load(path)
    # not "path": exit_json would add that file's stat info and overwrite "state"
    result = {"changed": False, "stamp": stamp, "stamp_file": path,
              "current": recorded.get("stamp") == stamp, "state": state,
              "inputs_changed": bool(recorded) and recorded.get("inputs") != p["inputs"],
              "drift": drift(recorded.get("state", {}), state) if recorded else [],
              # read with the state, not part of it (e.g. a marker of this boot)
              "exists": {f: os.path.exists(f) for f in p["exists"]}}
    if p["record"] and not check_mode:
        write_private(path, {"stamp": stamp, "inputs": p["inputs"], "state": state,
                             "per_run": p["per_run"]})
        result["current"] = True
    return result


KINDS = ("packages", "files", "services", "groups", "users", "sysctls", "kernel_modules",
         "enabled_services", "holds")
DIGEST = re.compile(r"\A[0-9a-f]{64}\Z")
# The host gate's arguments (run only by the action plugin provision_host_gate, never as a
# module): see gate_result.
GATE_SPEC: dict[str, dict[str, Any]] = {
    "name": {"type": "str", "required": True},
    "digest": {"type": "str", "required": True},
    "stamps": {"type": "list", "elements": "str", "default": []},
    "files": {"type": "list", "elements": "path", "default": []},
    "exists": {"type": "list", "elements": "path", "default": []},
    "peers": {"type": "dict", "default": {}},
    "addresses": {"type": "bool", "default": False},
    "record": {"type": "bool", "default": False},
    "dir": {"type": "path", "default": "/var/lib/provision/stamps"},
}


def gate_problem(g: dict[str, Any]) -> str | None:
    """Why these gate arguments are refused (names not plain, paths not absolute)."""
    names = [g["name"], *g["stamps"]]
    if (any(not NAME.match(n) for n in names) or not DIGEST.match(g["digest"])
            or any(not isinstance(d, str) or not DIGEST.match(d) for d in g["peers"].values())
            or any(not f.startswith("/") for f in [*g["files"], *g["exists"], g["dir"]])):
        return f"provision_host_gate: bad name or stamp in {names} or a path not absolute"
    return None


def verify(directory: str, name: str) -> dict[str, Any] | None:
    """Role NAME's stamp and per-run steps when the state it recorded still holds, else None.

    The state is read again for the keys the stamp file recorded (its packages, files,
    services...), and hashed with its recorded inputs exactly as stamp_result does: a removed
    package, an edited file or a stopped service makes it differ (drift).
    """
    recorded = load(os.path.join(directory, name + ".json"))
    state = recorded.get("state")
    if not isinstance(state, dict):
        return None
    p = {k: [str(x) for x in (state.get(k) or {})] for k in KINDS}
    if any(not PLAIN.match(n) for k in KINDS if k != "files" for n in p[k]):
        return None
    stamp = stamp_of(recorded.get("inputs"), host_state(p))
    if stamp != recorded.get("stamp"):
        return None
    return {"stamp": stamp, "per_run": [str(s) for s in recorded.get("per_run") or []]}


def command(argv: list[str]) -> str:
    """run(), or "" when the program is not installed."""
    try:
        return run(argv)
    except OSError:
        return ""


def node_facts(addresses: bool) -> dict[str, Any]:
    """What this host contributes to the other nodes' host layer (their /etc/hosts lines, with
    a proxy their no_proxy lists), as Ansible's fact gathering computes it (ansible-core 2.19,
    module_utils/facts): ``hostname`` (system/platform.py: platform.node(), os.uname()'s
    nodename, up to the first dot), ``default_ipv4`` interface, address and gateway
    (network/linux.py get_default_interfaces: ``ip -4 route get 8.8.8.8``, nothing is sent),
    with ``addresses`` ``all_ipv4_addresses`` (network/linux.py get_interfaces_info: every IPv4
    address not in 127/8, the interfaces in the order of glob('/sys/class/net/*'), primary
    before secondary).
    The host gate returns them as facts of the host, so a node whose layer is skipped (its
    facts not gathered) is still written into the others' files as a gathered one would be."""
    default: dict[str, str] = {}
    lines = command(["ip", "-4", "route", "get", "8.8.8.8"]).splitlines()
    words = lines[0].split() if lines else []
    if words and words[0] == "8.8.8.8":
        for i in range(len(words) - 1):
            if words[i] == "dev":
                default["interface"] = words[i + 1]
            elif words[i] == "src":
                default["address"] = words[i + 1]
            elif words[i] == "via" and words[i + 1] != "8.8.8.8":
                default["gateway"] = words[i + 1]
    facts: dict[str, Any] = {"hostname": os.uname().nodename.split(".")[0],
                             "default_ipv4": default}
    if addresses:
        import glob

        found: dict[str, list[tuple[bool, str]]] = {}
        for line in command(["ip", "-o", "-4", "addr", "show"]).splitlines():
            w = line.replace("\\", " ").split()
            if len(w) > 3 and w[2] == "inet":
                found.setdefault(w[1].rstrip(":").split("@")[0], []).append(
                    ("secondary" in w, w[3].split("/")[0]))
        facts["all_ipv4_addresses"] = [
            a for path in glob.glob("/sys/class/net/*")
            for _, a in sorted(found.get(os.path.basename(path), []), key=lambda x: x[0])
            if not a.startswith("127.")]
    return facts


def digest_of(text: str | None) -> str | None:
    return None if text is None else sha256(text.encode()).hexdigest()


def lines_of(path: str, pattern: str) -> list[str]:
    return sorted({line.strip() for line in (read(path) or "").splitlines()
                   if re.match(pattern, line)})


# The files and commands Ansible's fact gathering reads for the facts the host layer's roles
# use (provision_host_gate FACTS; ansible-core 2.19, module_utils/facts): a change of any of
# them may change a fact, so the host gate does not hold. Only the parts a fact is made of are
# kept (the lines of /proc/cpuinfo it matches, not its MHz; container= of PID 1's environment).
VIRTUAL_FILES = ("/proc/1/cgroup", "/run/systemd/container", "/proc/xen/capabilities",
                 "/sys/devices/virtual/dmi/id/product_name",
                 "/sys/devices/virtual/dmi/id/sys_vendor",
                 "/sys/devices/virtual/dmi/id/product_family",
                 "/sys/devices/virtual/dmi/id/bios_vendor")
VIRTUAL_PATHS = ("/proc/vz", "/proc/lve", "/proc/bc", "/.dockerenv", "/.dockerinit",
                 "/proc/xen", "/dev/kvm", "/rhev")
VIRTUAL_MODULES = ("kvm", "vboxdrv", "virtio")
RELEASE_FILES = ("/etc/os-release", "/usr/lib/os-release", "/etc/lsb-release",
                 "/etc/debian_version")


def host_facts(node: dict[str, Any]) -> dict[str, Any]:
    """The fingerprint of the facts the host layer reads, one entry per fact family, from
    the sources ansible-core 2.19's collectors read (module_utils/facts): system/platform.py
    (hostname, machine, architecture), system/distribution.py and system/lsb.py (the release
    files Debian and Ubuntu are told by, the lsb_release program), virtual/linux.py (the
    container and hypervisor signs it tests, in its order), network/linux.py (the default
    route, and the default interface's IPv4 addresses, MAC, MTU and type: not the lifetimes
    of a DHCP lease), system/service_mgr.py (PID 1's name, systemd's runtime directory), and
    the Python the gate runs with (the interpreter discovery's answer, same fallback list)."""
    iface = str(node["default_ipv4"].get("interface", ""))
    inet = []
    if iface and "/" not in iface:
        for line in command(["ip", "-o", "-4", "addr", "show", "dev", iface]).splitlines():
            w = line.split()
            inet += [f"{w[i]} {w[i + 1]}" for i in range(len(w) - 1)
                     if w[i] in ("inet", "peer", "brd")]
    try:
        with open("/proc/1/environ", "rb") as f:  # root's only (the gate runs with become)
            environ = f.read().decode(errors="replace").split("\0")
    except OSError:
        environ = []
    modules = {line.split(" ", 1)[0] for line in (read("/proc/modules") or "").splitlines()}
    return {
        "hostname": [node["hostname"], os.uname().nodename],
        "machine": os.uname().machine,
        "release": {f: digest_of(read(f)) for f in RELEASE_FILES},
        "lsb_release": os.path.exists("/usr/bin/lsb_release"),
        "virtual": {**{f: digest_of(read(f)) for f in VIRTUAL_FILES},
                    **{f: os.path.exists(f) for f in VIRTUAL_PATHS},
                    "environ": sorted(e for e in environ if e.startswith("container=")),
                    "status": lines_of("/proc/self/status", r"VxID:"),
                    "cpuinfo": lines_of("/proc/cpuinfo", r"(model name|vendor_id|machine)\b"),
                    "modules": sorted(m for m in VIRTUAL_MODULES if m in modules)},
        "default_ipv4": [node["default_ipv4"], inet,
                         *(read(f"/sys/class/net/{iface}/{k}") if iface and "/" not in iface
                           else None for k in ("address", "mtu", "type"))],
        "service_mgr": [read("/proc/1/comm"), os.path.isdir("/run/systemd/system")],
        "python": [sys.executable, list(sys.version_info[:3])],
    }


def gate_result(g: dict[str, Any], check_mode: bool) -> dict[str, Any]:
    """Whether a layer of roles can be skipped on this host: the inputs digest (computed on the
    controller) is the one recorded when the layer last finished, every role stamp of the layer
    still holds (no drift), the files and paths it watches and the sources of the facts its
    roles read (host_facts) are as they were. The other nodes' contributions (peers) are
    compared on the controller once every node's gate has answered with its own (node_facts):
    the answer carries the recorded ones. With record, the current state and the peers given
    are written when every stamp holds (at the end of a finished layer)."""
    path = os.path.join(g["dir"], g["name"] + ".gate.json")
    roles = {n: verify(g["dir"], n) for n in g["stamps"]}
    node = node_facts(bool(g.get("addresses")))
    now = {"digest": g["digest"], "stamps": {n: (v or {}).get("stamp") for n, v in roles.items()},
           "files": {f: file_state(f) for f in g["files"]},
           "exists": {f: os.path.exists(f) for f in g["exists"]},
           "host": host_facts(node)}
    recorded = load(path)
    stale = sorted(n for n, v in roles.items() if v is None)
    changed = sorted(k for k in ("stamps", "files", "exists") if recorded.get(k) != now[k])
    before = recorded.get("host") if isinstance(recorded.get("host"), dict) else {}
    changed += [f"host facts {k}" for k in now["host"] if before.get(k) != now["host"][k]]
    why = ("first run" if not recorded
           else "inputs changed" if recorded.get("digest") != now["digest"]
           else f"role state changed: {', '.join(stale)}" if stale
           else f"changed since the last run: {', '.join(changed)}" if changed else "")
    current = not why
    peers = recorded.get("peers") if isinstance(recorded.get("peers"), dict) else {}
    if g["record"] and not check_mode and not stale:
        # the nodes outside this run (--limit) keep what they contributed when last recorded
        peers = {**peers, **g["peers"]}
        write_private(path, {**now, "peers": peers})
        current, why = True, ""
    return {"changed": False, "current": current, "why": why, "gate_file": path,
            "peers": peers, "node": node,
            "per_run": {n: v["per_run"] for n, v in roles.items() if v and v["per_run"]},
            "python": sys.executable}


def main() -> None:
    if sys.argv[0] == "-c":  # run by the action plugin (its BOOT sets argv to [-c, <JSON>])
        p = json.loads(sys.argv[1])
        check_mode = bool(p.pop("_check_mode", False))
        if "_gate" in p:  # run by the action plugin provision_host_gate
            bad = gate_problem(p["_gate"])
            print(json.dumps({"failed": True, "msg": bad} if bad
                             else gate_result(p["_gate"], check_mode)))
            return
        bad = problem(p)
        print(json.dumps({"failed": True, "msg": bad} if bad else stamp_result(p, check_mode)))
        return
    from ansible.module_utils.basic import AnsibleModule

    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    bad = problem(module.params)
    if bad:
        module.fail_json(msg=bad)
    module.exit_json(**stamp_result(module.params, module.check_mode))


if __name__ == "__main__":
    main()
