"""A real OpenSSH server for tests: Debian's /usr/sbin/sshd on a loopback port (or inside a
network namespace) with its own host key, a generated user key and an authorized_keys file.

Works as root (then root logs in with ``PermitRootLogin prohibit-password``) and as an ordinary
user (sshd then runs unprivileged and only that user can log in). Reuse it:

    from sshd_fixtures import SshServer, start_sshd, netns_with_veth, write_inventory

    with start_sshd(tmp_path / "s1") as server:
        inv = write_inventory(tmp_path / "inv", {"h1": server})

or the ``sshd_server`` pytest fixture (import it into the test module or conftest.py).
"""

from __future__ import annotations

import contextlib
import getpass
import os
import secrets
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

SSHD = "/usr/sbin/sshd"
SSH_KEYGEN = shutil.which("ssh-keygen") or "/usr/bin/ssh-keygen"

needs_sshd = pytest.mark.skipif(
    not (os.path.exists(SSHD) and os.path.exists(SSH_KEYGEN)),
    reason="needs Debian's openssh-server and openssh-client (apt-get install openssh-server)",
)
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="network namespaces need root")


def free_port(address: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((address, 0))
        return int(s.getsockname()[1])


def keygen(path: Path, kind: str = "ed25519", comment: str = "provision-test") -> str:
    """Generate an unencrypted key pair at ``path``; returns the public key line."""
    subprocess.run([SSH_KEYGEN, "-q", "-t", kind, "-N", "", "-C", comment, "-f", str(path)],
                   check=True, capture_output=True)
    path.chmod(0o600)
    return path.with_suffix(path.suffix + ".pub").read_text().strip()


@dataclass
class SshServer:
    directory: Path
    address: str
    port: int
    user: str
    host_key: Path
    host_public_key: str  # "ssh-ed25519 AAAA... comment"
    user_key: Path
    known_hosts: Path  # holds exactly this server's host key
    netns: str | None = None
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def known_hosts_name(self) -> str:
        return self.address if self.port == 22 else f"[{self.address}]:{self.port}"

    def known_hosts_line(self) -> str:
        kind, blob = self.host_public_key.split()[:2]
        return f"{self.known_hosts_name} {kind} {blob}\n"

    def host_vars(self, **extra: Any) -> dict[str, Any]:
        """Inventory host variables that reach this server."""
        return {"ansible_host": self.address, "ansible_port": self.port,
                "ansible_user": self.user, "ansible_ssh_private_key_file": str(self.user_key),
                "ssh_known_hosts_file": str(self.known_hosts), **extra}

    def log(self) -> str:
        path = self.directory / "sshd.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)


def _wait_for_banner(address: str, port: int, proc: subprocess.Popen[bytes],
                     deadline: float, log: Path) -> None:
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"sshd exited with {proc.returncode}: {log.read_text()[-2000:]}")
        try:
            with socket.create_connection((address, port), timeout=0.5) as s:
                if s.recv(64).startswith(b"SSH-"):
                    return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"sshd on {address}:{port} did not answer: {log.read_text()[-2000:]}")


@contextlib.contextmanager
def start_sshd(directory: Path, *, address: str = "127.0.0.1", port: int | None = None,
               netns: str | None = None, user: str | None = None,
               extra_config: str = "") -> Iterator[SshServer]:
    """Run sshd in the foreground on ``address:port`` (inside ``netns`` if given)."""
    directory.mkdir(parents=True, exist_ok=True)
    user = user or getpass.getuser()
    port = port or (22 if netns else free_port(address))
    host_key = directory / "ssh_host_ed25519_key"
    host_pub = keygen(host_key, comment="host")
    user_key = directory / "id_ed25519"
    user_pub = keygen(user_key)
    (directory / "authorized_keys").write_text(user_pub + "\n")
    (directory / "authorized_keys").chmod(0o600)
    config = directory / "sshd_config"
    config.write_text(f"""\
Port {port}
ListenAddress {address}
HostKey {host_key}
PidFile {directory}/sshd.pid
AuthorizedKeysFile {directory}/authorized_keys
StrictModes no
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
UsePAM no
AllowUsers {user}
PrintMotd no
LogLevel VERBOSE
{extra_config}
""")
    if os.geteuid() == 0:
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # privilege separation dir
    test = subprocess.run([SSHD, "-t", "-f", str(config)], capture_output=True, text=True)
    if test.returncode != 0:
        raise RuntimeError(f"sshd -t rejected {config}: {test.stderr}")
    cmd = [SSHD, "-D", "-e", "-f", str(config)]
    if netns:
        cmd = ["ip", "netns", "exec", netns, *cmd]
    log = directory / "sshd.log"
    with log.open("wb") as log_file:
        proc = subprocess.Popen(cmd, stdout=log_file, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL)
    server = SshServer(directory, address, port, user, host_key, host_pub, user_key,
                       directory / "known_hosts", netns, proc)
    server.known_hosts.write_text(server.known_hosts_line())
    try:
        _wait_for_banner(address, port, proc, time.monotonic() + 15, log)
        yield server
    finally:
        server.stop()


def write_inventory(directory: Path, hosts: dict[str, dict[str, Any]],
                    all_vars: dict[str, Any] | None = None,
                    workers: tuple[str, ...] = ()) -> Path:
    """A YAML inventory: ``hosts`` = {name: host vars}; names in ``workers`` go there, the
    rest under control_plane. Returns the inventory directory."""
    directory.mkdir(parents=True, exist_ok=True)
    cp = {n: v for n, v in hosts.items() if n not in workers}
    wk = {n: v for n, v in hosts.items() if n in workers}
    data = {"all": {"children": {"control_plane": {"hosts": cp}, "workers": {"hosts": wk}}}}
    (directory / "hosts.yml").write_text(yaml.safe_dump(data, sort_keys=False))
    if all_vars:
        (directory / "group_vars").mkdir(exist_ok=True)
        (directory / "group_vars" / "all.yml").write_text(yaml.safe_dump(all_vars))
    return directory


@dataclass
class NetNs:
    name: str
    host_ip: str  # our end of the veth pair (root namespace)
    ns_ip: str  # the namespace's end

    def run(self, *cmd: str, input_text: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["ip", "netns", "exec", self.name, *cmd], input=input_text,
                              capture_output=True, text=True, check=True)


def _used_ipv4() -> str:
    return subprocess.run(["ip", "-o", "-4", "addr", "show"], capture_output=True,
                          text=True).stdout + subprocess.run(
        ["ip", "-4", "route", "show"], capture_output=True, text=True).stdout


@contextlib.contextmanager
def netns_with_veth(prefix: str = "doctor") -> Iterator[NetNs]:
    """A network namespace joined to the root namespace by a veth pair on a free 10.x/30."""
    tag = secrets.token_hex(3)
    name = f"{prefix}-{tag}"
    used = _used_ipv4()
    start = int(tag, 16) % 250
    third = next(n for n in ((start + i) % 250 + 1 for i in range(250))
                 if f"10.231.{n}." not in used)
    host_ip, ns_ip = f"10.231.{third}.1", f"10.231.{third}.2"
    host_if, ns_if = f"dr{tag}h", f"dr{tag}n"
    subprocess.run(["ip", "netns", "add", name], check=True, capture_output=True)
    try:
        for cmd in (
            ["ip", "link", "add", host_if, "type", "veth", "peer", "name", ns_if],
            ["ip", "link", "set", ns_if, "netns", name],
            ["ip", "addr", "add", f"{host_ip}/30", "dev", host_if],
            ["ip", "link", "set", host_if, "up"],
            ["ip", "netns", "exec", name, "ip", "addr", "add", f"{ns_ip}/30", "dev", ns_if],
            ["ip", "netns", "exec", name, "ip", "link", "set", ns_if, "up"],
            ["ip", "netns", "exec", name, "ip", "link", "set", "lo", "up"],
        ):
            subprocess.run(cmd, check=True, capture_output=True)
        yield NetNs(name, host_ip, ns_ip)
    finally:
        subprocess.run(["ip", "netns", "del", name], capture_output=True)
        subprocess.run(["ip", "link", "del", host_if], capture_output=True)


@pytest.fixture
def sshd_server(tmp_path: Path) -> Iterator[SshServer]:
    """A running sshd on 127.0.0.1:<free port> for the current user (see start_sshd)."""
    if not (os.path.exists(SSHD) and os.path.exists(SSH_KEYGEN)):
        pytest.skip("needs Debian's openssh-server (apt-get install openssh-server)")
    with start_sshd(tmp_path / "sshd") as server:
        yield server
