#!/usr/bin/env python3
"""Remove the network state a kubeadm cluster layer left on this host, and nothing else.

What counts as ours (created by the cluster layer provision installed):
- iptables/ip6tables chains named KUBE-* (kubelet, kube-proxy), FLANNEL-* (flannel), cali-*
  (calico) and CNI-* (the portmap/bridge plugins of kubernetes-cni), and the rules of other
  chains that jump to them; every other chain and rule is kept.
- IPVS virtual services kube-proxy made: an address on kube-ipvs0 or in the service CIDR.
- interfaces: kube-ipvs0 (kube-proxy), and the CNI plugin's own (flannel: flannel.1, cni0;
  calico: vxlan.calico).
- the CNI plugin's files: its config in /etc/cni/net.d, its state dirs and the plugin binary it
  copied into /opt/cni/bin.

Prints one JSON object: {"changed": bool, "removed": [...], "errors": [...]}; exit 1 when a
removal failed. Pure planning functions are tested in tests/test_node_commands.py.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import shlex
import shutil
import subprocess
import sys

OUR_CHAIN_PREFIXES = ("KUBE-", "FLANNEL-", "cali-", "CNI-")

CNI_FILES = {
    "flannel": ["/etc/cni/net.d/10-flannel.conflist", "/opt/cni/bin/flannel"],
    "calico": ["/etc/cni/net.d/10-calico.conflist", "/etc/cni/net.d/calico-kubeconfig",
               "/opt/cni/bin/calico", "/opt/cni/bin/calico-ipam"],
}
CNI_DIRS = {
    "flannel": ["/run/flannel", "/var/lib/cni/flannel", "/var/lib/cni/networks/cbr0"],
    "calico": ["/var/lib/calico", "/run/calico", "/var/lib/cni/networks/k8s-pod-network"],
}
CNI_LINKS = {"flannel": ["flannel.1", "cni0"], "calico": ["vxlan.calico"]}
PROXY_LINK = "kube-ipvs0"


def ours(chain: str) -> bool:
    return chain.startswith(OUR_CHAIN_PREFIXES)


def iptables_commands(save: str, binary: str) -> list[list[str]]:
    """The commands that remove our chains and the jumps to them from an ``iptables-save``
    text: first each rule of another chain whose target is ours (``-D``), then flush every
    chain of ours, then delete them (a chain can be deleted only when nothing refers to it)."""
    cmds: list[list[str]] = []
    table = ""
    chains: list[str] = []
    flush: list[list[str]] = []
    delete: list[list[str]] = []
    for line in save.splitlines():
        line = line.strip()
        if line.startswith("*"):
            table = line[1:]
        elif line.startswith(":"):
            chain = line[1:].split()[0]
            if ours(chain):
                chains.append(chain)
                flush.append([binary, "-w", "-t", table, "-F", chain])
                delete.append([binary, "-w", "-t", table, "-X", chain])
        elif line.startswith("-A "):
            words = shlex.split(line)
            chain = words[1]
            target = next((words[i + 1] for i, w in enumerate(words[:-1])
                           if w in ("-j", "-g", "--jump", "--goto")), "")
            if not ours(chain) and ours(target):
                cmds.append([binary, "-w", "-t", table, "-D", chain, *words[2:]])
    return cmds + flush + delete


def ipvs_commands(save: str, service_cidr: str, proxy_addresses: list[str]) -> list[list[str]]:
    """``ipvsadm -D`` for each virtual service of ``ipvsadm-save -n`` whose address is in the
    service CIDR or on kube-ipvs0."""
    nets = [ipaddress.ip_network(c.strip(), strict=False)
            for c in service_cidr.split(",") if c.strip()]
    mine = {ipaddress.ip_address(a) for a in proxy_addresses}
    cmds = []
    for line in save.splitlines():
        words = line.split()
        if len(words) < 3 or words[0] != "-A" or words[1] not in ("-t", "-u", "--sctp-service"):
            continue
        addr = words[2].rsplit(":", 1)[0].strip("[]")
        try:
            ip = ipaddress.ip_address(addr)
        except ValueError:
            continue
        if ip in mine or any(ip.version == n.version and ip in n for n in nets):
            cmds.append(["ipvsadm", "-D", words[1], words[2]])
    return cmds


def run(cmd: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, check=False)


def link_addresses(name: str) -> list[str]:
    proc = run(["ip", "-j", "addr", "show", "dev", name])
    if proc.returncode != 0:
        return []
    try:
        return [a["local"] for i in json.loads(proc.stdout or "[]")
                for a in i.get("addr_info", [])]
    except (ValueError, KeyError, TypeError):
        return []


def link_exists(name: str) -> bool:
    return run(["ip", "link", "show", "dev", name]).returncode == 0


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cni", choices=sorted(CNI_FILES), required=True)
    ap.add_argument("--service-cidr", required=True)
    args = ap.parse_args(argv)
    removed: list[str] = []
    errors: list[str] = []

    def do(cmd: list[str], what: str) -> None:
        proc = run(cmd)
        if proc.returncode == 0:
            removed.append(what)
        else:
            errors.append(f"{shlex.join(cmd)}: {proc.stderr.strip() or proc.returncode}")

    if shutil.which("ipvsadm-save") and shutil.which("ipvsadm"):
        save = run(["ipvsadm-save", "-n"])
        if save.returncode == 0:
            for cmd in ipvs_commands(save.stdout, args.service_cidr,
                                     link_addresses(PROXY_LINK)):
                do(cmd, f"ipvs service {cmd[2]} {cmd[3]}")
    for binary in ("iptables", "ip6tables"):
        saver = f"{binary}-save"
        if not shutil.which(saver) or not shutil.which(binary):
            continue
        save = run([saver])
        if save.returncode != 0:
            continue
        for cmd in iptables_commands(save.stdout, binary):
            what = {"-D": "rule", "-F": "flush", "-X": "chain"}[cmd[4]]
            do(cmd, f"{binary} {cmd[3]} {what} {shlex.join(cmd[5:])}")
    for name in (PROXY_LINK, *CNI_LINKS[args.cni]):
        if link_exists(name):
            do(["ip", "link", "delete", name], f"interface {name}")
    for path in CNI_FILES[args.cni]:
        if os.path.lexists(path):
            os.unlink(path)
            removed.append(path)
    for path in CNI_DIRS[args.cni]:
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path)
            removed.append(path)
    # removing only "flush" entries of empty chains would report a change every run: a flush
    # happens only together with the chain's deletion, so it counts
    print(json.dumps({"changed": bool(removed), "removed": removed, "errors": errors}))
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
