"""Real .deb packages of the simulated tools and a signed apt repository laid out like
pkgs.k8s.io (one flat repository per minor: <root>/core:/stable:/v1.N/deb/).

Tools used: dpkg-deb (build), dpkg-scanpackages (Packages index), gpg (key, InRelease,
Release.gpg). The Release file is written here (apt-ftparchive is not needed).
"""

from __future__ import annotations

import gzip
import hashlib
import os
import shutil
import subprocess
import tempfile
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import yaml

from . import rules

HERE = Path(__file__).parent
#: modules shipped inside every package (the server, fixtures and packaging stay on the test host)
SHIPPED = (
    "__init__.py",
    "rules.py",
    "client.py",
    "pki.py",
    "jsonpath.py",
    "cli_kubeadm.py",
    "cli_kubelet.py",
    "cli_kubectl.py",
)
MAINTAINER = "Kubernetes Authors <dev@kubernetes.io>"
RELEASE_DATE = "Sat, 01 Nov 2025 00:00:00 UTC"  # fixed: the repository is deterministic

KUBELET_SERVICE = """\
[Unit]
Description=kubelet: The Kubernetes Node Agent (simulator)
Documentation=https://kubernetes.io/docs/
Wants=network-online.target
After=network-online.target

[Service]
ExecStart=/usr/bin/kubelet
Restart=always
StartLimitInterval=0
RestartSec=10

[Install]
WantedBy=multi-user.target
"""

KUBEADM_DROPIN = """\
# Note: This dropin only works with kubeadm and kubelet v1.11+
[Service]
Environment="KUBELET_KUBECONFIG_ARGS=--bootstrap-kubeconfig=/etc/kubernetes/bootstrap-kubelet.conf --kubeconfig=/etc/kubernetes/kubelet.conf"
Environment="KUBELET_CONFIG_ARGS=--config=/var/lib/kubelet/config.yaml"
# This is a file that "kubeadm init" and "kubeadm join" generates at runtime, populating the KUBELET_KUBEADM_ARGS variable dynamically
EnvironmentFile=-/var/lib/kubelet/kubeadm-flags.env
# This is a file that the user can use for overrides of the kubelet args as a last resort.
EnvironmentFile=-/etc/default/kubelet
ExecStart=
ExecStart=/usr/bin/kubelet $KUBELET_KUBECONFIG_ARGS $KUBELET_CONFIG_ARGS $KUBELET_KUBEADM_ARGS $KUBELET_EXTRA_ARGS
"""  # noqa: E501 - the real drop-in's lines

WRAPPER = """\
#!/usr/bin/python3
# {prog} {version} (provision's Kubernetes simulator; see tests/simulator/README.md)
import sys
sys.path.insert(0, "/usr/lib/k8s-sim/{pkg}")
from k8ssim.cli_{prog} import main
sys.exit(main(sys.argv[1:], "{version}"))
"""

# preinst: the test can make a package installation fail ("package-install" fault) and every
# installation is recorded in the simulator's call log.
PREINST = """\
#!/bin/sh
set -e
if [ "$1" = install ] || [ "$1" = upgrade ]; then
  if [ -r /etc/provision-sim/server ]; then
    python3 - "{package}" "{version}" <<'EOF'
import json, socket, sys, urllib.request
url = open("/etc/provision-sim/server").read().strip() + "/sim/fault/consume"
body = {{"op": "package-install", "node": socket.gethostname().lower(),
        "details": {{"package": sys.argv[1], "version": sys.argv[2]}}}}
req = urllib.request.Request(url, json.dumps(body).encode(), {{"Content-Type": "application/json"}})
try:
    answer = json.load(urllib.request.urlopen(req, timeout=10))
except OSError:
    sys.exit(0)
if answer.get("fail"):
    print(answer["message"], file=sys.stderr)
    sys.exit(1)
EOF
  fi
fi
"""

KUBELET_POSTINST = """\
#!/bin/sh
set -e
if [ "$1" = configure ] && [ -z "$2" ] && [ -d /run/systemd/system ]; then
  systemctl daemon-reload || true
  systemctl enable kubelet.service >/dev/null 2>&1 || true
  systemctl start kubelet.service || true
fi
"""

KUBELET_PRERM = """\
#!/bin/sh
set -e
if [ "$1" = remove ] && [ -d /run/systemd/system ]; then
  systemctl stop kubelet.service || true
fi
"""

CRICTL = """\
#!/bin/sh
# crictl {version} (provision's Kubernetes simulator): answers version queries only
case "$1" in
  --version|-v) echo "crictl version v{version}" ;;
  *) echo "crictl (simulator): $*" ;;
esac
"""


@dataclass(frozen=True)
class Package:
    name: str
    version: str  # upstream version, e.g. 1.31.2
    minor: int

    @property
    def deb_version(self) -> str:
        return f"{self.version}-{rules.DEB_REVISION}"

    def filename(self, arch: str) -> str:
        return f"{self.name}_{self.deb_version}_{arch}.deb"


def host_arch() -> str:
    return subprocess.run(
        ["dpkg", "--print-architecture"], capture_output=True, text=True, check=True
    ).stdout.strip()


def catalog(minors: list[int] | None = None,
            omit: dict[int, tuple[str, ...]] | None = None) -> dict[int, list[Package]]:
    """Packages in each per-minor repository; ``omit`` leaves packages out of a minor's
    repository, like kubernetes-cni on the release day of several minors ("kubelet : Depends:
    kubernetes-cni (>= 1.2.0) but it is not installable": v1.30
    https://github.com/kubernetes/release/issues/3575, v1.34
    https://github.com/kubernetes/kubernetes/issues/133735)."""
    out: dict[int, list[Package]] = {}
    for minor in minors or sorted(rules.RELEASES):
        pkgs = [
            Package(name, v, minor)
            for v in rules.RELEASES[minor]
            for name in ("kubeadm", "kubelet", "kubectl")
        ]
        pkgs.append(Package("cri-tools", rules.CRI_TOOLS[minor], minor))
        pkgs.append(Package("kubernetes-cni", rules.KUBERNETES_CNI[minor], minor))
        out[minor] = [p for p in pkgs if p.name not in (omit or {}).get(minor, ())]
    return out


def _control(pkg: Package, arch: str, size_kb: int) -> str:
    depends = {
        "kubeadm": f"cri-tools (>= {rules.CRI_TOOLS[pkg.minor]}), python3",
        "kubelet": "kubernetes-cni (>= 1.1.1), python3",
        "kubectl": "python3",
    }.get(pkg.name)
    desc = {
        "kubeadm": "Command-line utility for administering a Kubernetes cluster",
        "kubelet": "Node agent for Kubernetes clusters",
        "kubectl": "Command-line utility for interacting with a Kubernetes cluster",
        "cri-tools": "Command-line utility for interacting with a container runtime",
        "kubernetes-cni": "Binaries required to provision kubernetes container networking",
    }[pkg.name]
    lines = [
        f"Package: {pkg.name}",
        f"Version: {pkg.deb_version}",
        f"Architecture: {arch}",
        f"Maintainer: {MAINTAINER}",
        f"Installed-Size: {size_kb}",
    ]
    if depends:
        lines.append(f"Depends: {depends}")
    lines += ["Section: admin", "Priority: optional", "Homepage: https://kubernetes.io"]
    lines.append(f"Description: {desc}")
    lines.append(" SIMULATED by provision's test suite (tests/simulator): talks to a fake API")
    lines.append(" server; never install outside a test lab.")
    return "\n".join(lines) + "\n"


def _yaml_package_dir() -> Path:
    return Path(yaml.__file__).parent


def build_deb(pkg: Package, arch: str, out_dir: Path) -> Path:
    """Build one .deb with dpkg-deb and return its path."""
    target = out_dir / pkg.filename(arch)
    if target.exists():
        return target
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "pkg"
        debian = root / "DEBIAN"
        debian.mkdir(parents=True)
        if pkg.name in ("kubeadm", "kubelet", "kubectl"):
            lib = root / "usr/lib/k8s-sim" / pkg.name
            (lib / "k8ssim").mkdir(parents=True)
            for f in SHIPPED:
                shutil.copy2(HERE / f, lib / "k8ssim" / f)
            (lib / "yaml").mkdir()
            for f in _yaml_package_dir().glob("*.py"):
                shutil.copy2(f, lib / "yaml" / f.name)
            _write(
                root / "usr/bin" / pkg.name,
                WRAPPER.format(prog=pkg.name, pkg=pkg.name, version=pkg.version),
                0o755,
            )
            _write(
                debian / "preinst", PREINST.format(package=pkg.name, version=pkg.deb_version), 0o755
            )
        if pkg.name == "kubeadm":
            _write(
                root / "usr/lib/systemd/system/kubelet.service.d/10-kubeadm.conf", KUBEADM_DROPIN
            )
        if pkg.name == "kubelet":
            _write(root / "usr/lib/systemd/system/kubelet.service", KUBELET_SERVICE)
            _write(debian / "postinst", KUBELET_POSTINST, 0o755)
            _write(debian / "prerm", KUBELET_PRERM, 0o755)
        if pkg.name == "cri-tools":
            _write(root / "usr/bin/crictl", CRICTL.format(version=pkg.version), 0o755)
        if pkg.name == "kubernetes-cni":
            _write(
                root / "opt/cni/bin/README.simulator",
                f"kubernetes-cni {pkg.version}: no CNI plugins in the simulator\n",
            )
        size = sum(f.stat().st_size for f in root.rglob("*") if f.is_file()) // 1024 + 1
        _write(debian / "control", _control(pkg, arch, size))
        tmp_deb = out_dir / (pkg.filename(arch) + ".part")
        subprocess.run(
            ["dpkg-deb", "--root-owner-group", "-Zgzip", "-z1", "--build", str(root), str(tmp_deb)],
            check=True,
            capture_output=True,
        )
        os.replace(tmp_deb, target)
    return target


def _write(path: Path, text: str, mode: int = 0o644) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(mode)


# ----------------------------------------------------------------------------- signing
@dataclass
class SigningKey:
    gnupghome: Path
    fingerprint: str
    armored: str  # the public key, ASCII armored (what pkgs.k8s.io serves as Release.key)


def make_signing_key(home: Path) -> SigningKey:
    home.mkdir(parents=True, exist_ok=True, mode=0o700)
    env = dict(os.environ, GNUPGHOME=str(home))
    subprocess.run(
        [
            "gpg",
            "--batch",
            "--pinentry-mode",
            "loopback",
            "--passphrase",
            "",
            "--quick-gen-key",
            "provision simulator repo <sim@provision.invalid>",
            "ed25519",
            "sign",
            "0",
        ],
        env=env,
        check=True,
        capture_output=True,
    )
    listing = subprocess.run(
        ["gpg", "--batch", "--with-colons", "--list-secret-keys"],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    fpr = next(line.split(":")[9] for line in listing.splitlines() if line.startswith("fpr"))
    armored = subprocess.run(
        ["gpg", "--batch", "--armor", "--export", fpr],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return SigningKey(home, fpr, armored)


def make_extended_signing_key(home: Path) -> tuple[SigningKey, str]:
    """A key first published with an expiry date that has passed, then extended (same
    fingerprint, new self-signature): what pkgs.k8s.io did on 2024-11-02, when hosts that kept
    the old copy of the key got ``EXPKEYSIG 234654DA9A296436`` from apt
    (https://github.com/kubernetes/release/issues/3818; the v1.24-v1.27 Release.key showed
    ``[expired: 2024-11-02]``, https://github.com/kubernetes/kubernetes/issues/128609).

    Returns the key (``armored``: the extended public key, what Release.key serves now) and the
    expired copy (ASCII armored) a host downloaded before.
    """
    home.mkdir(parents=True, exist_ok=True, mode=0o700)
    env = dict(os.environ, GNUPGHOME=str(home))
    gpg = ["gpg", "--batch", "--pinentry-mode", "loopback", "--passphrase", ""]
    subprocess.run(
        [*gpg, "--faked-system-time", "20200101T000000", "--quick-gen-key",
         "provision simulator repo <sim@provision.invalid>", "ed25519", "sign", "1d"],
        env=env, check=True, capture_output=True,
    )
    listing = subprocess.run(
        ["gpg", "--batch", "--with-colons", "--list-secret-keys"],
        env=env, check=True, capture_output=True, text=True,
    ).stdout
    fpr = next(line.split(":")[9] for line in listing.splitlines() if line.startswith("fpr"))

    def export() -> str:
        return subprocess.run(["gpg", "--batch", "--armor", "--export", fpr], env=env,
                              check=True, capture_output=True, text=True).stdout

    expired = export()
    subprocess.run([*gpg, "--quick-set-expire", fpr, "0"], env=env, check=True,
                   capture_output=True)
    return SigningKey(home, fpr, export()), expired


def _sign(key: SigningKey, directory: Path) -> None:
    env = dict(os.environ, GNUPGHOME=str(key.gnupghome))
    base = [
        "gpg",
        "--batch",
        "--yes",
        "--pinentry-mode",
        "loopback",
        "--passphrase",
        "",
        "--local-user",
        key.fingerprint,
    ]
    subprocess.run(
        [*base, "--clearsign", "-o", str(directory / "InRelease"), str(directory / "Release")],
        env=env,
        check=True,
        capture_output=True,
    )
    subprocess.run(
        [
            *base,
            "--armor",
            "--detach-sign",
            "-o",
            str(directory / "Release.gpg"),
            str(directory / "Release"),
        ],
        env=env,
        check=True,
        capture_output=True,
    )


# ----------------------------------------------------------------------------- repository
@dataclass
class Repo:
    root: Path
    key: SigningKey | None
    minors: list[int]
    arches: list[str] = field(default_factory=list)
    deb_cache: Path | None = None

    def path(self, minor: int) -> Path:
        return self.root / f"core:/stable:/v1.{minor}/deb"

    def add_arch(self, arch: str) -> None:
        """Add the packages of another architecture (e.g. arm64) and re-sign the indexes."""
        if arch in self.arches or self.deb_cache is None:
            return
        build_repo(
            self.root, self.deb_cache, minors=self.minors, arches=[*self.arches, arch], key=self.key
        )
        self.arches.append(arch)


def scan_packages(directory: Path) -> bytes:
    """The Packages index `dpkg-scanpackages --multiversion . /dev/null` prints for directory."""
    return subprocess.run(
        ["dpkg-scanpackages", "--multiversion", ".", "/dev/null"],
        cwd=directory,
        check=True,
        capture_output=True,
    ).stdout


def _deb_sort_key(path: Path) -> tuple:
    """dpkg-scanpackages' order: package name, then the version compared as a string."""
    name, version, arch = path.name.split("_")
    return (name, version, arch)


def packages_index(directory: Path) -> bytes:
    """The same Packages index, made here: dpkg-scanpackages takes ~0.8 s per repository,
    this ~0.1 s (tests/test_simulator_packaging.py checks both give identical bytes)."""
    stanzas = []
    for deb in sorted(directory.glob("*.deb"), key=_deb_sort_key):
        control = subprocess.run(
            ["dpkg-deb", "--field", str(deb)], check=True, capture_output=True, text=True
        ).stdout
        data = deb.read_bytes()
        files = (
            f"Filename: ./{deb.name}\nSize: {len(data)}\n"
            f"MD5sum: {hashlib.md5(data).hexdigest()}\n"
            f"SHA1: {hashlib.sha1(data).hexdigest()}\n"
            f"SHA256: {hashlib.sha256(data).hexdigest()}\n"
        )
        head, sep, tail = control.partition("Section:")
        stanzas.append(head + files + sep + tail)
    return "\n".join(stanzas).encode() + (b"\n" if stanzas else b"")


def write_index(directory: Path, minor: int, arches: list[str]) -> None:
    """Packages(.gz) and a Release file with their hashes."""
    packages = packages_index(directory)
    (directory / "Packages").write_bytes(packages)
    (directory / "Packages.gz").write_bytes(gzip.compress(packages, mtime=0))
    files = ["Packages", "Packages.gz"]
    lines = [
        f"Origin: obs://build.opensuse.org/isv:kubernetes:core:stable:v1.{minor}/deb",
        f"Label: isv:kubernetes:core:stable:v1.{minor}",
        f"Architectures: {' '.join(arches)}",
        f"Date: {RELEASE_DATE}",
    ]
    for title, algo in (("MD5Sum", hashlib.md5), ("SHA256", hashlib.sha256)):
        lines.append(f"{title}:")
        for f in files:
            data = (directory / f).read_bytes()
            lines.append(f" {algo(data).hexdigest()} {len(data):>8} {f}")
    (directory / "Release").write_text("\n".join(lines) + "\n")


def build_repo(
    root: Path,
    deb_cache: Path,
    *,
    minors: list[int] | None = None,
    arches: list[str] | None = None,
    key: SigningKey | None = None,
    omit: dict[int, tuple[str, ...]] | None = None,
) -> Repo:
    """Build the debs (cached in deb_cache) and the per-minor repositories under root
    (``omit``: packages left out of a minor's repository, see :func:`catalog`)."""
    arches = arches or [host_arch()]
    deb_cache.mkdir(parents=True, exist_ok=True)
    cat = catalog(minors, omit)
    jobs = {p.filename(a): (p, a) for pkgs in cat.values() for p in pkgs for a in arches}
    with ThreadPoolExecutor(max_workers=4) as pool:
        list(
            pool.map(
                lambda job: build_deb(job[0], job[1], deb_cache), [jobs[k] for k in sorted(jobs)]
            )
        )
    for minor, pkgs in cat.items():
        directory = root / f"core:/stable:/v1.{minor}/deb"
        directory.mkdir(parents=True, exist_ok=True)
        for pkg in pkgs:
            for arch in arches:
                dst = directory / pkg.filename(arch)
                if not dst.exists():
                    try:
                        os.link(deb_cache / pkg.filename(arch), dst)
                    except OSError:  # another file system (PROVISION_SIM_DEB_CACHE)
                        shutil.copy2(deb_cache / pkg.filename(arch), dst)
        write_index(directory, minor, arches)
        if key:
            (directory / "Release.key").write_text(key.armored)
            _sign(key, directory)
    return Repo(root, key, sorted(cat), list(arches), deb_cache)


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, fmt: str, *args: object) -> None:
        pass


class RepoServer:
    """Serve a repository root over HTTP on (host, port); `listen(host)` adds an address."""

    def __init__(self, root: Path, host: str = "127.0.0.1", port: int = 0) -> None:
        self.root = root
        self.listeners: list[ThreadingHTTPServer] = []
        self.httpd = self._bind(host, port)

    def _bind(self, host: str, port: int) -> ThreadingHTTPServer:
        httpd = ThreadingHTTPServer((host, port), partial(_QuietHandler, directory=str(self.root)))
        httpd.daemon_threads = True
        self.listeners.append(httpd)
        threading.Thread(target=httpd.serve_forever, daemon=True).start()
        return httpd

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> RepoServer:
        return self

    def listen(self, host: str, port: int = 0) -> str:
        host_, port_ = self._bind(host, port).server_address[:2]
        return f"http://{host_}:{port_}"

    def stop(self) -> None:
        for httpd in self.listeners:
            httpd.shutdown()
            httpd.server_close()
