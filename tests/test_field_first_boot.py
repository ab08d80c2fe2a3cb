"""The first run on a fresh cloud image (issue 15), on a real systemd container lab host.

What is real here: Debian's cloud-init 22.4 with a NoCloud seed, started through its own
systemd units (cloud-init-local, cloud-init, cloud-config, cloud-final) after its generator
enabled it, so `cloud-init status` says "running" when bootstrap starts; fcntl locks on
/var/lib/dpkg/lock-frontend, /var/lib/dpkg/lock and /var/lib/apt/lists/lock held by a real
process (as apt and unattended-upgrades take them); Debian's needrestart 3.6 with its apt hook,
set to automatic restarts as Ubuntu 24.04 does; apt installs from the Debian mirror.

What is simulated, and how: the lock holder is a python3 process, not unattended-upgrades;
cloud-init's module lists are cut down to `runcmd` (no network, SSH key or user changes in the
lab container); the "new containerd binary" that makes needrestart want a restart is a copy of
the same binary renamed over the old one (what dpkg does on an upgrade), so that containerd
runs a deleted executable as after a real package update.
"""

from __future__ import annotations

import json
import re
import shlex
from typing import Any

import pytest
from test_bootstrap_container import assert_no_change, run_log, set_host_vars, ssh_ok

pytestmark = [pytest.mark.container]

# cloud-init: only runcmd (the lab container keeps its network, SSH keys and users).
CLOUD_CFG = """\
datasource_list: [NoCloud, None]
network: {config: disabled}
cloud_init_modules: []
cloud_config_modules: [runcmd]
cloud_final_modules: [scripts-user, final-message]
"""
# The slow first-boot step: runs until bootstrap is waiting for cloud-init, then 5 s more (the
# bracket keeps pgrep from finding this shell's own command line).
USER_DATA = """\
#cloud-config
runcmd:
  - - sh
    - -c
    - >-
      while ! pgrep -f 'cloud-init status --wai[t]' >/dev/null; do sleep 1; done;
      sleep 5; touch /run/lab-runcmd-done
"""
META_DATA = "instance-id: lab-first-boot\nlocal-hostname: lab-1\n"

# Holds the three apt/dpkg locks like a first-boot apt run; lets go 30 s after bootstrap wrote
# its apt drop-in (bootstrap's last step before it looks at the lock, after cloud-init).
HOLDER = """\
import fcntl, os, time
files = [open(p, "a") for p in ("/var/lib/dpkg/lock-frontend", "/var/lib/dpkg/lock",
                                "/var/lib/apt/lists/lock")]
for f in files:
    fcntl.lockf(f, fcntl.LOCK_EX)
open("/run/lab-holder-locked", "w").close()
while not os.path.exists("/etc/apt/apt.conf.d/90provision-lock-timeout"):
    time.sleep(0.5)
time.sleep(30)
for f in files:
    f.close()
open("/run/lab-holder-released", "w").close()
"""


def write_root_file(lab: Any, host: str, path: str, text: str) -> None:
    ssh_ok(lab, host, f"printf '%s' {shlex.quote(text)} | sudo tee {shlex.quote(path)} "
                      ">/dev/null")


def main_pid(lab: Any, host: str, unit: str) -> int:
    return int(ssh_ok(lab, host, f"systemctl show -p MainPID --value {unit}").strip())


def bootstrap_with_progress(lab: Any, *args: str) -> tuple[dict[str, Any], str]:
    """``provision -i lab --json bootstrap ARGS``: the JSON result and the progress lines
    (stderr in --json mode); asserts exit 0."""
    proc = lab.cli("-i", "lab", "--json", "bootstrap", *args, timeout=2400)
    try:
        result = json.loads(proc.stdout)
    except json.JSONDecodeError:
        pytest.fail(f"bootstrap printed no JSON (exit {proc.returncode}):\n{proc.stdout}\n"
                    f"{proc.stderr[-4000:]}")
    assert proc.returncode == 0 and result["ok"], (
        f"bootstrap {args} failed (exit {proc.returncode}): {result['errors']}\n"
        f"{proc.stderr[-4000:]}")
    return result, proc.stderr


@pytest.mark.slow
@pytest.mark.timeout(3600)
def test_first_boot_waits_for_cloud_init_and_dpkg_lock_and_needrestart_lists_only(
        lab_host: Any) -> None:
    """Fresh-image conditions when `bootstrap --components base,containerd` starts: real
    cloud-init still running (slow runcmd) and the dpkg/apt locks held by another process.
    Bootstrap waits for cloud-init, then for the lock (its progress names the holder), and
    succeeds; apt reads the DPkg::Lock::Timeout drop-in. Then needrestart (automatic mode as on
    Ubuntu 24.04): an apt install in the base role does not restart the outdated containerd
    (same MainPID, needrestart still lists it); re-run changed=0, and the runs after cloud-init
    finished do not wait for it again; and, as the control, without provision's needrestart
    drop-in the same kind of apt run restarts containerd."""
    lab = lab_host()
    host = lab.hosts[0]
    ssh_ok(lab, host, "sudo DEBIAN_FRONTEND=noninteractive apt-get update -q && "
                      "sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -q "
                      "cloud-init needrestart", timeout=1800)
    # Ubuntu 24.04 restarts services after apt runs; Debian's default asks interactively.
    ssh_ok(lab, host, "sudo sed -i \"s/^#\\$nrconf{restart} = 'i';/\\$nrconf{restart} = 'a';/\" "
                      "/etc/needrestart/needrestart.conf && "
                      "grep -q \"^\\$nrconf{restart} = 'a';\" /etc/needrestart/needrestart.conf")

    ssh_ok(lab, host, "sudo mkdir -p /var/lib/cloud/seed/nocloud")
    write_root_file(lab, host, "/var/lib/cloud/seed/nocloud/meta-data", META_DATA)
    write_root_file(lab, host, "/var/lib/cloud/seed/nocloud/user-data", USER_DATA)
    write_root_file(lab, host, "/etc/cloud/cloud.cfg.d/99-lab.cfg", CLOUD_CFG)
    # cloud-init's generator (ds-identify) runs again and now finds the NoCloud seed
    ssh_ok(lab, host, "sudo rm -rf /run/cloud-init && sudo systemctl daemon-reload")
    assert ssh_ok(lab, host, "cloud-init status").split() == ["status:", "not", "run"]
    ssh_ok(lab, host, "sudo systemctl start --no-block cloud-init-local.service "
                      "cloud-init.service cloud-config.service cloud-final.service")
    ssh_ok(lab, host, f"sudo systemd-run --unit=lab-apt-holder --collect python3 -c "
                      f"{shlex.quote(HOLDER)}")
    ssh_ok(lab, host, "for i in $(seq 100); do test -e /run/lab-holder-locked && exit 0; "
                      "sleep 0.2; done; exit 1")
    assert "running" in ssh_ok(lab, host, "cloud-init status"), "cloud-init must still run"
    busy = lab.ssh(host, "sudo apt-get install -y -q -o DPkg::Lock::Timeout=0 tree")
    assert busy.returncode != 0 and "lock" in (busy.stdout + busy.stderr).lower(), \
        "the lock holder must block apt"

    first, progress = bootstrap_with_progress(lab, "--components", "base,containerd")
    log = run_log(first)
    assert re.search(r"TASK (apt_ready : )?Wait for cloud-init to finish \(first boot\)",
                     progress), progress[:6000]
    held = re.search(r"TASK (apt_ready : )?Wait for the dpkg lock held by python3 \(pid \d+: "
                     r"[^)]*/var/lib/dpkg/lock-frontend", progress)
    assert held, f"the progress does not name the lock holder:\n{progress[-3000:]}"
    assert re.search(r"FAILED - RETRYING: \[lab-1\]: Wait for the dpkg lock held by", log), \
        "bootstrap did not wait for the lock"
    ssh_ok(lab, host, "test -e /run/lab-runcmd-done && test -e /run/lab-holder-released")
    assert ssh_ok(lab, host, "cloud-init status").split() == ["status:", "done"]
    apt_config = ssh_ok(lab, host, "apt-config dump DPkg::Lock::Timeout")
    assert 'DPkg::Lock::Timeout "600";' in apt_config, apt_config
    dropin = ssh_ok(lab, host, "cat /etc/needrestart/conf.d/provision.conf")
    assert "$nrconf{restart} = 'l';" in dropin

    # needrestart: containerd runs an outdated binary, then the base role installs a package
    assert lab.ssh(host, "dpkg -s tree >/dev/null 2>&1").returncode != 0
    before = main_pid(lab, host, "containerd")
    ssh_ok(lab, host, "sudo sh -c 'cp -p /usr/bin/containerd /usr/bin/containerd.new && "
                      "mv /usr/bin/containerd.new /usr/bin/containerd'")
    assert "NEEDRESTART-SVC: containerd.service" in ssh_ok(lab, host, "sudo needrestart -b")
    set_host_vars(lab, host, {"base_packages": ["curl", "ca-certificates", "gnupg", "conntrack",
                                                "socat", "iptables", "tree"]})
    second, _ = bootstrap_with_progress(lab, "--components", "base,containerd")
    assert "base : Install the packages every node needs" in run_log(second)
    ssh_ok(lab, host, "dpkg -s tree >/dev/null")
    assert main_pid(lab, host, "containerd") == before, "needrestart restarted containerd"
    assert "NEEDRESTART-SVC: containerd.service" in ssh_ok(lab, host, "sudo needrestart -b"), \
        "containerd should still be listed as needing a restart"

    third, _ = bootstrap_with_progress(lab, "--components", "base,containerd")
    assert_no_change(third, host)
    # cloud-init finished this boot (its result.json): the later runs did not start it to wait
    for later in (second, third):
        assert "Wait for cloud-init to finish (first boot)" not in run_log(later)
    assert main_pid(lab, host, "containerd") == before

    # control: the lab reproduces Ubuntu's behaviour (without the drop-in, apt restarts it)
    ssh_ok(lab, host, "sudo mv /etc/needrestart/conf.d/provision.conf /root/provision.conf")
    ssh_ok(lab, host, "sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -q ed",
           timeout=900)
    assert main_pid(lab, host, "containerd") != before, \
        "control: without the drop-in needrestart should have restarted containerd"
