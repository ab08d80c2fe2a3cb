"""`provision bootstrap` on real systemd container hosts (docker-in-docker capable).

What is real here: apt installs of docker.io / containerd from the Debian mirror, the docker
daemon inside the host, the docker group, SSH logins as the non-root lab user, the runner's
stats. What is NOT real inside a container (and therefore covered by tests/test_bootstrap_vm.py):
kernel modules, global sysctls, swap, the clock, disks and reboots; the roles skip those steps
with a visible "skipped: container host" message, which these tests assert.
"""

from __future__ import annotations

import json
import re
import shlex
import socket
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

pytestmark = [pytest.mark.container]

VERIFY_IMAGE = "provision-verify:1"
VERIFY_ARCHIVE = "/var/tmp/provision-verify.tar"
# `crictl info` for hosts without crictl (Debian 12): the same CRI call, see the file.
CRI_INFO = Path(__file__).parent / "data" / "cri_info.py"

# Runs ON the lab host (python3 is in every lab image): builds the offline proof image archive.
MAKE_IMAGE = (Path(__file__).parent.parent / "roles" / "docker" / "files"
              / "make_verify_image.py").read_text()


# Oracle Cloud's Ubuntu images ship this (abridged) /etc/iptables/rules.v4.
OCI_RULES_V4 = """\
*filter
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:InstanceServices - [0:0]
-A INPUT -m state --state RELATED,ESTABLISHED -j ACCEPT
-A INPUT -p icmp -j ACCEPT
-A INPUT -i lo -j ACCEPT
-A INPUT -p udp --sport 123 -j ACCEPT
-A INPUT -p tcp -m state --state NEW -m tcp --dport 22 -j ACCEPT
-A INPUT -j REJECT --reject-with icmp-host-prohibited
-A FORWARD -j REJECT --reject-with icmp-host-prohibited
-A OUTPUT -d 169.254.0.0/16 -j InstanceServices
-A InstanceServices -d 169.254.0.2/32 -p tcp -m owner --uid-owner 0 -m tcp --dport 3260 -j ACCEPT
COMMIT
"""

BANNER = "provision-6443"
# A listener on 6443 that greets every client (started with systemd-run, survives the SSH).
LISTENER = ("sudo systemd-run --unit=provision-listen --collect python3 -c "
            "\"import socket; s=socket.socket(); "
            "s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); "
            "s.bind(('0.0.0.0', 6443)); s.listen()\n"
            "while True:\n c, _ = s.accept(); c.sendall(b'" + BANNER + "\\\\n'); c.close()\"")


def greeting(address: str, port: int, tries: int = 3) -> str:
    """What a client reading from address:port receives ('' when the host refuses)."""
    text = ""
    for _ in range(tries):
        try:
            with socket.create_connection((address, port), timeout=5) as c:
                c.settimeout(5)
                text = c.recv(100).decode(errors="replace").strip()
        except OSError:
            text = ""
        if text:
            return text
        time.sleep(1)
    return text


def start_listener(lab: Any, host: str) -> None:
    ssh_ok(lab, host, LISTENER)
    ssh_ok(lab, host, "for i in $(seq 50); do ss -ltn | grep -q ':6443 ' && exit 0; "
                      "sleep 0.2; done; exit 1")


def count_rule(lab: Any, host: str, needle: str) -> tuple[int, int]:
    """How often a rule with ``needle`` is in the live INPUT chain and in rules.v4."""
    live = ssh_ok(lab, host, "sudo iptables -S INPUT")
    saved = ssh_ok(lab, host, "sudo cat /etc/iptables/rules.v4")
    return (sum(needle in line for line in live.splitlines()),
            sum(needle in line for line in saved.splitlines()))


def ssh_ok(lab: Any, host: str, command: str, timeout: float = 300) -> str:
    """Run ``command`` as the lab user over SSH; fail the test with its output if it fails."""
    proc = lab.ssh(host, command, timeout=timeout)
    assert proc.returncode == 0, f"{host}: {command!r} exited {proc.returncode}:\n" \
                                 f"{proc.stdout}\n{proc.stderr}"
    return proc.stdout


def prepare_verify_image(lab: Any, host: str) -> None:
    """Build the offline proof image archive on ``host`` and point the docker role at it."""
    ssh_ok(lab, host, f"OUT={VERIFY_ARCHIVE} TAG={VERIFY_IMAGE} python3 -c "
                      f"{shlex.quote(MAKE_IMAGE)}")
    set_host_vars(lab, host, {
        "docker_verify_image": VERIFY_IMAGE,
        "docker_verify_command": ["/echo", "proof"],
        "docker_verify_image_archive": VERIFY_ARCHIVE,
    })


def set_host_vars(lab: Any, host: str, values: dict[str, Any]) -> None:
    path = Path(lab.inventory_dir) / "host_vars" / f"{host}.yml"
    path.parent.mkdir(parents=True, exist_ok=True)
    current = yaml.safe_load(path.read_text()) if path.exists() else {}
    current.update(values)
    path.write_text(yaml.safe_dump(current, sort_keys=True))


def bootstrap(lab: Any, *args: str, timeout: float = 900) -> dict[str, Any]:
    """``provision -i lab --json bootstrap ARGS``: the JSON result (asserts exit 0)."""
    proc = lab.cli("-i", "lab", "--json", "bootstrap", *args, timeout=timeout)
    try:
        result = json.loads(proc.stdout)
    except json.JSONDecodeError:
        pytest.fail(f"bootstrap printed no JSON (exit {proc.returncode}):\n{proc.stdout}\n"
                    f"{proc.stderr[-4000:]}")
    assert proc.returncode == 0 and result["ok"], (
        f"bootstrap {args} failed (exit {proc.returncode}): {result['errors']}\n"
        f"{proc.stderr[-4000:]}")
    return result


def run_log(result: dict[str, Any]) -> str:
    return Path(result["log"]).read_text()


def changed_tasks(result: dict[str, Any]) -> list[str]:
    """Names of the tasks that reported ``changed`` in a run (from its ansible log)."""
    names: list[str] = []
    task = ""
    for line in re.sub(r"\x1b\[[0-9;]*m", "", run_log(result)).splitlines():
        if line.startswith("TASK ["):
            task = line[len("TASK ["):line.rfind("]")]
        elif line.startswith("changed: ") and task and (not names or names[-1] != task):
            names.append(task)
    return names


def ran_tasks(result: dict[str, Any]) -> list[str]:
    """Names of the tasks that ran (ok, changed or failed; not skipped) in a run."""
    names: list[str] = []
    task = ""
    for line in re.sub(r"\x1b\[[0-9;]*m", "", run_log(result)).splitlines():
        if line.startswith("TASK ["):
            task = line[len("TASK ["):line.rfind("]")]
        elif line.startswith(("ok: ", "changed: ", "fatal: ")) and task and task not in names:
            names.append(task)
    return names


GATE_TASK = "Compare the host layer with its last finished run (inputs, role stamps, drift)"


def gate_result(result: dict[str, Any], host: str) -> dict[str, Any]:
    """The host gate's result for HOST in a run (from the run's ansible-runner events)."""
    events = Path(result["log"]).parent / "job_events"
    for path in sorted(events.glob("*.json")):
        event = json.loads(path.read_text())
        data = event.get("event_data", {})
        if (event.get("event") == "runner_on_ok" and data.get("task") == GATE_TASK
                and data.get("host") == host):
            return data["res"]
    raise AssertionError(f"no host gate result for {host} in {events}")


def flat(text: str) -> str:
    """A log with every run of whitespace as one space (the YAML callback wraps messages)."""
    return " ".join(text.split())


def assert_no_change(result: dict[str, Any], host: str) -> None:
    """The run changed nothing on ``host`` (runner stats), naming the tasks that did."""
    stats = result["hosts"][host]
    assert stats["failed"] == 0 and stats["changed"] == 0, (
        f"re-run changed {stats['changed']} task(s) on {host}: {changed_tasks(result)}")


def check_docker_as_user(lab: Any, host: str) -> None:
    """Over SSH as the non-root lab user, without sudo: id, docker info, docker run."""
    uid = ssh_ok(lab, host, "id -u").strip()
    assert uid != "0", "the lab user must not be root for this proof"
    groups = ssh_ok(lab, host, "id -nG").split()
    assert "docker" in groups, f"{host}: docker not in the user's groups: {groups}"
    info = ssh_ok(lab, host, "docker info --format '{{.CgroupDriver}} {{.LoggingDriver}}'")
    assert info.split() == ["systemd", "json-file"], f"{host}: daemon.json not applied: {info}"
    out = ssh_ok(lab, host, f"docker run --rm {VERIFY_IMAGE} /echo hello-from-{host}")
    assert out.strip() == f"hello-from-{host}"


def docker_bootstrap_and_rerun(lab: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    host = lab.hosts[0]
    assert lab.ssh(host, "command -v docker").returncode != 0, "fresh host already has docker"
    prepare_verify_image(lab, host)
    first = bootstrap(lab, "--components", "base,docker", timeout=1500)
    assert first["components"] == ["base", "docker"]
    assert first["hosts"][host]["changed"] > 0
    log = run_log(first)
    assert "skipped: container host" in log
    assert f"works without sudo for {lab.inventory.hosts[host].user}" in log
    check_docker_as_user(lab, host)
    daemon = json.loads(ssh_ok(lab, host, "cat /etc/docker/daemon.json"))
    assert daemon["log-opts"] == {"max-size": "10m", "max-file": "3"}
    assert daemon["exec-opts"] == ["native.cgroupdriver=systemd"]
    second = bootstrap(lab, "--components", "base,docker", timeout=900)
    assert_no_change(second, host)
    return first, second


@pytest.mark.in_make_test  # about 60-80 s each on an idle machine
@pytest.mark.slow
@pytest.mark.timeout(3600)  # apt installs; far longer when the machine is loaded
def test_bootstrap_docker_on_container_host(lab_host: Any) -> None:
    """base,docker on a fresh host: the non-root user runs docker without sudo; rerun is a
    no-op (changed=0 from the runner's stats)."""
    lab = lab_host()
    docker_bootstrap_and_rerun(lab)
    host = lab.hosts[0]
    # base: persisted files exist even where the kernel steps were skipped
    assert "br_netfilter" in ssh_ok(lab, host, "cat /etc/modules-load.d/provision.conf")
    sysctl = ssh_ok(lab, host, "cat /etc/sysctl.d/90-provision.conf")
    assert "net.ipv4.ip_forward=1" in sysctl.replace(" ", "")
    assert "conntrack" in ssh_ok(lab, host, "dpkg-query -W -f='${Package}\\n' conntrack socat")


@pytest.mark.in_make_test  # about 60-80 s each on an idle machine
@pytest.mark.slow
@pytest.mark.timeout(3600)
def test_bootstrap_containerd_systemd_cgroup(lab_host: Any) -> None:
    """base,containerd: `crictl info` reports the systemd cgroup driver, through the endpoint
    in the /etc/crictl.yaml the role wrote. crictl is not packaged in Debian 12 (no cri-tools;
    on real clusters it comes with kubeadm's packages), so the CRI call crictl info makes
    (runtime.v1.RuntimeService/Status, verbose) is made by tests/data/cri_info.py with Debian's
    python3-grpcio: the answer is the real containerd CRI plugin's. `containerd config dump`
    and `ctr plugins` confirm it; a real crictl is checked too when the host has one."""
    lab = lab_host()
    host = lab.hosts[0]
    set_host_vars(lab, host, {"kubernetes_version": "1.31",
                              "docker_registry_mirrors": ["https://mirror.example.test"]})
    bootstrap(lab, "--components", "base,containerd", timeout=1200)
    dump = ssh_ok(lab, host, "sudo containerd config dump")
    assert "SystemdCgroup = true" in dump
    assert 'sandbox_image = "registry.k8s.io/pause:3.10"' in dump
    plugins = ssh_ok(lab, host, "sudo ctr plugins ls")
    cri = [line.split() for line in plugins.splitlines() if " cri " in f" {line} "]
    assert cri and cri[0][-1] == "ok", f"CRI plugin not loaded:\n{plugins}"
    assert ssh_ok(lab, host, "systemctl is-active containerd").strip() == "active"
    crictl_cfg = ssh_ok(lab, host, "cat /etc/crictl.yaml")
    assert "unix:///run/containerd/containerd.sock" in crictl_cfg
    hosts_toml = ssh_ok(lab, host, "cat /etc/containerd/certs.d/docker.io/hosts.toml")
    assert '[host."https://mirror.example.test"]' in hosts_toml
    tools = [f"python3 -c {shlex.quote(CRI_INFO.read_text())}"]
    if lab.ssh(host, "command -v crictl").returncode == 0:
        tools.append("crictl info")
    ssh_ok(lab, host, "sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -q python3-grpcio",
           timeout=900)
    for tool in tools:
        info = json.loads(ssh_ok(lab, host, f"sudo {tool}"))
        runc = info["config"]["containerd"]["runtimes"]["runc"]
        assert runc["options"]["SystemdCgroup"] is True, (tool, runc)
        assert info["config"]["sandboxImage"] == "registry.k8s.io/pause:3.10", tool
        ready = {c["type"]: c["status"] for c in info["status"]["conditions"]}
        assert ready.get("RuntimeReady") is True, (tool, info["status"])
    second = bootstrap(lab, "--components", "base,containerd")
    assert_no_change(second, host)


def test_bootstrap_rejects_unknown_component() -> None:
    """A bad component name is a usage error (exit 2) before any host is contacted."""
    from lab_fixtures import run_cli

    proc = run_cli("-i", "lab", "bootstrap", "--components", "base,dockr")
    assert proc.returncode == 2
    assert "dockr" in proc.stderr and "base, docker, containerd" in proc.stderr


@pytest.mark.in_make_test  # about 60-80 s each on an idle machine
@pytest.mark.slow
@pytest.mark.timeout(3600)
def test_bootstrap_oci_firewall_on_container_host(lab_host: Any) -> None:
    """OCI-style rules.v4 in the host's own network namespace (iptables is real there): 6443
    is refused before and reachable after `bootstrap --components base`, the rules sit before
    the REJECT live and in the file, the user's other rules stay, a re-run changes nothing and
    duplicates nothing, and a container restart reloads them through netfilter-persistent
    (after it, only /etc/hosts, which docker rewrites at every container start, is changed)."""
    lab = lab_host()
    host = lab.hosts[0]
    ssh_ok(lab, host, "sudo DEBIAN_FRONTEND=noninteractive apt-get update -q && "
                      "sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -q iptables",
           timeout=1800)
    ssh_ok(lab, host, f"sudo mkdir -p /etc/iptables && printf '%s' '{OCI_RULES_V4}' "
                      "| sudo tee /etc/iptables/rules.v4 >/dev/null && "
                      "sudo iptables-restore < /etc/iptables/rules.v4")
    address = ssh_ok(lab, host, "hostname -I").split()[0]
    start_listener(lab, host)
    assert greeting(address, 6443) == "", "6443 should be refused before bootstrap"
    first = bootstrap(lab, "--components", "base", timeout=1800)
    assert first["hosts"][host]["changed"] > 0
    assert greeting(address, 6443) == BANNER, "6443 not reachable after bootstrap"
    live = ssh_ok(lab, host, "sudo iptables -S INPUT").splitlines()
    reject = max(i for i, line in enumerate(live) if "-j REJECT" in line)
    assert reject == len(live) - 1 and any("--dport 6443" in x for x in live[:reject]), live
    saved = ssh_ok(lab, host, "sudo cat /etc/iptables/rules.v4")
    assert "-A InstanceServices" in saved, "the user's other rules must stay"
    lines = saved.splitlines()
    assert lines.index(next(x for x in lines if "--dport 6443" in x)) < lines.index(
        "-A INPUT -j REJECT --reject-with icmp-host-prohibited")
    assert count_rule(lab, host, "--dport 6443") == (1, 1)
    second = bootstrap(lab, "--components", "base", timeout=1800)
    assert_no_change(second, host)
    assert count_rule(lab, host, "--dport 6443") == (1, 1)
    # the host gate held, and still ran base's firewall step (it runs on every run)
    gate = gate_result(second, host)
    assert gate["current"] is True and gate["per_run"] == {"base": ["firewall"]}, gate
    assert "base : Read the live rules" in ran_tasks(second)
    # a live rule lost while the file keeps it: the gate holds (nothing it watches changed)
    # and the per-run firewall step puts the rule back
    rule = next(x for x in ssh_ok(lab, host, "sudo iptables -S INPUT").splitlines()
                if "--dport 6443" in x)
    ssh_ok(lab, host, "sudo iptables -D " + rule.removeprefix("-A "))
    assert count_rule(lab, host, "--dport 6443") == (0, 1)
    repaired = bootstrap(lab, "--components", "base", timeout=1800)
    assert gate_result(repaired, host)["current"] is True
    assert changed_tasks(repaired) == ["base : Insert the ACCEPT rules before the live REJECT"]
    assert count_rule(lab, host, "--dport 6443") == (1, 1)
    restart = lab.cli("lab", "reboot", host, timeout=900)
    assert restart.returncode == 0, restart.stderr
    assert count_rule(lab, host, "--dport 6443") == (1, 1), "not reloaded at boot"
    start_listener(lab, host)
    address = ssh_ok(lab, host, "hostname -I").split()[0]
    assert greeting(address, 6443) == BANNER
    # docker writes a fresh /etc/hosts into a container at every start, so after a container
    # restart the cluster-nodes block is (rightly) written again; nothing else may change.
    third = bootstrap(lab, "--components", "base", timeout=1800)
    assert changed_tasks(third) == ["base : Write the cluster nodes into /etc/hosts"], \
        changed_tasks(third)
    assert count_rule(lab, host, "--dport 6443") == (1, 1)


@pytest.mark.slow
@pytest.mark.timeout(7200)  # four bootstraps; apt installs crawl on a loaded machine
def test_bootstrap_stamps_skip_unchanged_roles_and_repair_drift(lab_host: Any) -> None:
    """The base and docker roles' stamps (library/provision_stamp.py), on a real host with the
    production defaults (no proof image: `docker info` as the user): a re-run skips their
    install steps (changed=0); then drift made by hand on the host (base: a removed package,
    an edited sysctl file; docker: an edited daemon.json loaded by a restart, the user taken
    out of the docker group) is named in the next run's log and repaired by it (the package is
    back, the files are the role's again, dockerd runs with the role's daemon.json again, the
    user is a member again; the opt-in proof image the role builds is run and removed again);
    the run after that changes nothing. Also: a fresh install does not restart docker
    (daemon.json was in place before the package)."""
    lab = lab_host()
    host = lab.hosts[0]
    user = lab.inventory.hosts[host].user
    first = bootstrap(lab, "--components", "base,docker", timeout=3000)
    assert first["hosts"][host]["changed"] > 0
    log = flat(run_log(first))
    assert f"works without sudo for {user} (docker info;" in log
    assert "docker : Restart docker for the changed daemon.json" not in changed_tasks(first)
    assert ssh_ok(lab, host, "docker image ls -q").strip() == ""
    check = ssh_ok(lab, host, "docker info --format '{{.CgroupDriver}} {{.LoggingDriver}}'")
    assert check.split() == ["systemd", "json-file"]

    second = bootstrap(lab, "--components", "base,docker", timeout=1500)
    assert_no_change(second, host)
    # the host gate (playbooks/bootstrap.yml) held: no role of the host layer ran at all
    ran = ran_tasks(second)
    assert GATE_TASK in ran, ran
    roles = [t for t in ran if t.startswith(("apt_ready : ", "base : ", "docker : "))]
    assert not roles, f"host layer roles ran although the gate held: {roles}"
    assert gate_result(second, host)["current"] is True

    daemon = ssh_ok(lab, host, "sudo cat /etc/docker/daemon.json")
    log_driver = "docker info --format '{{.LoggingDriver}}'"
    ssh_ok(lab, host, "sudo DEBIAN_FRONTEND=noninteractive apt-get remove -y -q socat && "
                      "echo 'net.ipv4.ip_forward=0' | sudo tee /etc/sysctl.d/90-provision.conf && "
                      "echo '{\"log-driver\": \"local\"}' | sudo tee /etc/docker/daemon.json && "
                      f"sudo systemctl restart docker && sudo gpasswd -d {user} docker",
           timeout=900)
    assert ssh_ok(lab, host, f"sudo {log_driver}").strip() == "local"
    # the opt-in proof image, built by the role on the host: removed again after the proof
    set_host_vars(lab, host, {"docker_verify_image": VERIFY_IMAGE})

    third = bootstrap(lab, "--components", "base,docker", timeout=3000)
    log = flat(run_log(third))
    # the gate found the drift (its inputs changed too: docker_verify_image)
    assert gate_result(third, host)["current"] is False
    assert "drift: packages socat, files /etc/sysctl.d/90-provision.conf" in log, log[-3000:]
    assert "drift: files /etc/docker/daemon.json, groups docker" in log, log[-3000:]
    changed = changed_tasks(third)
    assert "docker : Restart docker for the changed daemon.json" in changed, changed
    assert ssh_ok(lab, host, "dpkg-query -W -f='${Status}' socat") == "install ok installed"
    assert "net.ipv4.ip_forward=1" in ssh_ok(lab, host, "cat /etc/sysctl.d/90-provision.conf")
    assert ssh_ok(lab, host, "sudo cat /etc/docker/daemon.json") == daemon
    assert ssh_ok(lab, host, f"sudo {log_driver}").strip() == "json-file"
    assert "docker" in ssh_ok(lab, host, "id -nG").split()
    assert f"(docker info and docker run {VERIFY_IMAGE})" in log
    assert ssh_ok(lab, host, "docker image ls -q").strip() == "", "the proof image was left"
    assert lab.ssh(host, "test -e /var/tmp/provision-verify-image.tar").returncode != 0
    assert_no_change(bootstrap(lab, "--components", "base,docker", timeout=1500), host)


def changed_by_host(result: dict[str, Any]) -> dict[str, list[str]]:
    """host -> the tasks that reported changed on it (from the run's ansible-runner events)."""
    found: dict[str, list[str]] = {}
    for path in sorted((Path(result["log"]).parent / "job_events").glob("*.json")):
        event = json.loads(path.read_text())
        data = event.get("event_data", {})
        if event.get("event") == "runner_on_ok" and (data.get("res") or {}).get("changed"):
            found.setdefault(data["host"], []).append(data.get("task", ""))
    return found


def hosts_block(lab: Any, host: str) -> list[str]:
    text = ssh_ok(lab, host, "cat /etc/hosts")
    return text.split("# BEGIN provision cluster nodes", 1)[1].split(
        "# END provision cluster nodes", 1)[0].strip().splitlines()


@pytest.mark.in_make_test  # about 2-3 minutes: two hosts, base only
@pytest.mark.slow
@pytest.mark.timeout(3600)
def test_host_gate_two_nodes_skipped_node_keeps_its_line_and_peer_change_reruns(
        lab_cluster: Any) -> None:
    """Two real lab hosts, ``--components base``. The host gate runs before any fact is
    gathered: on the no-op re-run neither host gathers facts or runs a role task. When only
    lab-1's layer runs (drift on it), lab-2 is skipped without gathered facts, yet lab-1's
    /etc/hosts line for lab-2 is unchanged (the gate answered with lab-2's hostname and
    default address as its facts). When what lab-2 contributes changes (its base_node_ip),
    lab-1's gate holds on its own inputs but the peers compared on the controller make its
    layer run, and its /etc/hosts names lab-2's new address; the run after changes nothing."""
    lab = lab_cluster(control_planes=1, workers=1)
    one, two = lab.hosts
    bootstrap(lab, "--components", "base", timeout=3000)
    block = hosts_block(lab, one)
    assert any(line.split()[-1] == two for line in block), block

    second = bootstrap(lab, "--components", "base", timeout=1500)
    for host in (one, two):
        assert_no_change(second, host)
        assert gate_result(second, host)["current"] is True
    ran = ran_tasks(second)
    assert not [t for t in ran if t.startswith(("apt_ready : ", "base : "))], ran
    assert "Gather facts" not in ran and "Gathering Facts" not in ran, ran
    # sudo logs every command line it runs (the host's journal; auth.log on Ubuntu): the
    # gate's and the stamps' code reaches Python on its standard input, so none of it is there
    # (as an argument it was ~25 "command continued" lines per gate and stamp read)
    sudo_log = ssh_ok(lab, two, "sudo journalctl -t sudo --no-pager -o cat")
    assert "sys.stdin.buffer.read()" in sudo_log, sudo_log[-2000:]
    for code in ("def gate_result", "provision_stamp: the state", '"_gate": {'):
        assert code not in sudo_log, code

    ssh_ok(lab, one, "echo 'net.ipv4.ip_forward=0' | sudo tee /etc/sysctl.d/90-provision.conf")
    third = bootstrap(lab, "--components", "base", timeout=1500)
    assert gate_result(third, one)["current"] is False
    assert gate_result(third, two)["current"] is True
    changed = changed_by_host(third)
    assert two not in changed, changed
    assert [t for t in changed.get(one, []) if "/etc/hosts" in t] == [], changed
    assert hosts_block(lab, one) == block

    set_host_vars(lab, two, {"base_node_ip": "10.99.0.2"})
    fourth = bootstrap(lab, "--components", "base", timeout=1500)
    log = flat(run_log(fourth))
    assert gate_result(fourth, one)["current"] is True  # its own inputs are unchanged
    assert f"host layer runs again on {one} (the /etc/hosts part of {two} changed)" in log, \
        log[-3000:]
    assert f"10.99.0.2 {two}" in " ".join(hosts_block(lab, one))
    fifth = bootstrap(lab, "--components", "base", timeout=1500)
    for host in (one, two):
        assert_no_change(fifth, host)
        assert gate_result(fifth, host)["current"] is True
