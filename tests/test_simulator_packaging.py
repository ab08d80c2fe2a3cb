"""The simulator's real .deb packages and its signed apt repository laid out like pkgs.k8s.io,
checked with dpkg-deb, dpkg-scanpackages, gpgv and apt itself (against a private apt root)."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from pathlib import Path

import pytest
from simulator import packaging, rules
from simulator.packaging import RepoServer

pytestmark = pytest.mark.skipif(shutil.which("dpkg-deb") is None, reason="needs dpkg-deb")


def field(deb: Path, name: str) -> str:
    return subprocess.run(
        ["dpkg-deb", "--field", str(deb), name], capture_output=True, text=True, check=True
    ).stdout.strip()


def contents(deb: Path) -> str:
    return subprocess.run(
        ["dpkg-deb", "--contents", str(deb)], capture_output=True, text=True, check=True
    ).stdout


def test_simulator_debs_have_real_names_versions_and_files(k8s_sim_repo) -> None:
    repo, _ = k8s_sim_repo
    arch = packaging.host_arch()
    d = repo.path(31)
    kubeadm = d / f"kubeadm_1.31.2-1.1_{arch}.deb"
    info = subprocess.run(
        ["dpkg-deb", "-I", str(kubeadm)], capture_output=True, text=True, check=True
    ).stdout
    assert " Package: kubeadm" in info and " Version: 1.31.2-1.1" in info
    assert f" Architecture: {arch}" in info
    assert field(kubeadm, "Depends") == "cri-tools (>= 1.31.1), python3"
    assert "./usr/bin/kubeadm" in contents(kubeadm)
    assert "./usr/lib/systemd/system/kubelet.service.d/10-kubeadm.conf" in contents(kubeadm)
    kubelet = d / f"kubelet_1.31.2-1.1_{arch}.deb"
    assert field(kubelet, "Depends").startswith("kubernetes-cni")
    assert "./usr/lib/systemd/system/kubelet.service" in contents(kubelet)
    assert (
        "postinst"
        in subprocess.run(
            ["dpkg-deb", "-I", str(kubelet)], capture_output=True, text=True, check=True
        ).stdout
    )
    for minor, versions in rules.RELEASES.items():
        names = sorted(p.name for p in repo.path(minor).glob("*.deb"))
        for v in versions:
            for prog in ("kubeadm", "kubelet", "kubectl"):
                assert f"{prog}_{v}-1.1_{arch}.deb" in names, (minor, v, prog)
        assert f"cri-tools_{rules.CRI_TOOLS[minor]}-1.1_{arch}.deb" in names
        assert f"kubernetes-cni_{rules.KUBERNETES_CNI[minor]}-1.1_{arch}.deb" in names
        # a per-minor repository holds only its own minor, like pkgs.k8s.io
        assert not [n for n in names if n.startswith("kubeadm_") and f"_1.{minor}." not in n]


def test_simulator_packages_index_matches_dpkg_scanpackages(k8s_sim_repo) -> None:
    """Our Packages index has exactly dpkg-scanpackages' stanzas, in its package/version order
    (versions compare as strings: 1.29.10 before 1.29.9)."""
    repo, _ = k8s_sim_repo
    for minor in (28, 29, 31):
        d = repo.path(minor)
        ours = (d / "Packages").read_text().split("\n\n")
        theirs = packaging.scan_packages(d).decode().split("\n\n")
        assert sorted(ours) == sorted(theirs)

        def order(stanzas: list[str]) -> list[tuple[str, str]]:
            keys = [
                tuple(line.split(": ", 1)[1] for line in st.splitlines()[:2])
                for st in stanzas
                if st.strip()
            ]
            return list(dict.fromkeys(keys))  # (package, version), architectures folded

        assert order(ours) == order(theirs)


def test_simulator_release_is_signed_and_hashes_match(k8s_sim_repo, tmp_path: Path) -> None:
    repo, key_file = k8s_sim_repo
    d = repo.path(30)
    release = (d / "Release").read_text()
    for name in ("Packages", "Packages.gz"):
        digest = hashlib.sha256((d / name).read_bytes()).hexdigest()
        assert f" {digest} " in release, name
    keyring = tmp_path / "k.gpg"
    subprocess.run(
        ["gpg", "--batch", "--dearmor", "-o", str(keyring), str(key_file)],
        check=True,
        capture_output=True,
    )
    for args in (["InRelease"], ["Release.gpg", "Release"]):
        proc = subprocess.run(
            ["gpgv", "--keyring", str(keyring), *[str(d / a) for a in args]],
            capture_output=True,
            text=True,
        )
        assert proc.returncode == 0, proc.stderr
    assert (d / "Release.key").read_text() == key_file.read_text()


@pytest.mark.skipif(shutil.which("apt-get") is None, reason="needs apt")
def test_simulator_repo_works_with_apt_signed_by(k8s_sim_repo, tmp_path: Path) -> None:
    """apt (private state dirs) reads the per-minor repo over HTTP with a signed-by keyring,
    sees the exact versions and downloads one."""
    repo, key_file = k8s_sim_repo
    server = RepoServer(repo.root)
    try:
        root = tmp_path / "apt"
        for sub in (
            "etc/sources.list.d",
            "etc/preferences.d",
            "etc/apt.conf.d",
            "state/lists/partial",
            "cache/archives/partial",
            "keyrings",
        ):
            (root / sub).mkdir(parents=True)
        (root / "state/status").write_text("")
        keyring = root / "keyrings/kubernetes-apt-keyring.gpg"
        subprocess.run(
            ["gpg", "--batch", "--dearmor", "-o", str(keyring), str(key_file)],
            check=True,
            capture_output=True,
        )
        (root / "etc/sources.list").write_text(
            f"deb [signed-by={keyring}] {server.url}/core:/stable:/v1.31/deb/ /\n"
        )
        opts = [
            f"-oDir::Etc={root}/etc",
            f"-oDir::State={root}/state",
            f"-oDir::State::status={root}/state/status",
            f"-oDir::Cache={root}/cache",
            "-oAPT::Sandbox::User=root",
            "-oDebug::NoLocking=1",
        ]
        update = subprocess.run(["apt-get", *opts, "update"], capture_output=True, text=True)
        assert update.returncode == 0, update.stdout + update.stderr
        assert "NO_PUBKEY" not in update.stderr and "not signed" not in update.stderr
        policy = subprocess.run(
            ["apt-cache", *opts, "madison", "kubeadm"], capture_output=True, text=True, check=True
        ).stdout
        assert [line.split("|")[1].strip() for line in policy.splitlines()] == [
            "1.31.3-1.1",
            "1.31.2-1.1",
            "1.31.1-1.1",
        ]
        dl = subprocess.run(
            ["apt-get", *opts, "download", "kubeadm=1.31.2-1.1"],
            capture_output=True,
            text=True,
            cwd=tmp_path,
        )
        assert dl.returncode == 0, dl.stderr
        assert (tmp_path / f"kubeadm_1.31.2-1.1_{packaging.host_arch()}.deb").exists()
    finally:
        server.stop()


@pytest.mark.skipif(not Path("/usr/bin/python3").exists(), reason="needs the system python3")
def test_simulator_packaged_programs_run_on_plain_python(k8s_sim_repo, tmp_path: Path) -> None:
    """The packaged programs need only python3 (PyYAML is vendored into the package)."""
    repo, _ = k8s_sim_repo
    for prog, expected in (
        ("kubeadm", "v1.30.6"),
        ("kubelet", "Kubernetes v1.30.6"),
        ("kubectl", "Client Version: v1.30.6"),
    ):
        deb = repo.path(30) / f"{prog}_1.30.6-1.1_{packaging.host_arch()}.deb"
        dest = tmp_path / prog
        subprocess.run(["dpkg-deb", "-x", str(deb), str(dest)], check=True)
        lib = dest / "usr/lib/k8s-sim" / prog
        args = {
            "kubeadm": "['version', '-o', 'short']",
            "kubelet": "['--version']",
            "kubectl": "['version', '--client']",
        }[prog]
        code = (
            f"import sys; sys.path.insert(0, {str(lib)!r}); "
            f"from k8ssim.cli_{prog} import main; sys.exit(main({args}, '1.30.6'))"
        )
        proc = subprocess.run(
            ["/usr/bin/python3", "-I", "-c", code], capture_output=True, text=True
        )
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.startswith(expected), proc.stdout
        which = subprocess.run(
            [
                "/usr/bin/python3",
                "-I",
                "-c",
                f"import sys; sys.path.insert(0, {str(lib)!r}); import k8ssim.client, yaml; "
                "print(yaml.__file__)",
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        assert which.startswith(str(lib)), which  # the vendored PyYAML, not the system's
        wrapper = (dest / "usr/bin" / prog).read_text()
        assert wrapper.startswith("#!/usr/bin/python3") and '"1.30.6"' in wrapper


def test_simulator_repo_adds_arm64_packages(k8s_sim_repo, tmp_path: Path) -> None:
    """arm64 lab hosts get arm64 packages in the same signed repositories."""
    repo, key_file = k8s_sim_repo
    repo.add_arch("arm64")
    d = repo.path(31)
    deb = d / "kubelet_1.31.2-1.1_arm64.deb"
    assert field(deb, "Architecture") == "arm64"
    assert "Architectures: " in (d / "Release").read_text()
    assert "arm64" in (d / "Release").read_text().split("Architectures: ")[1].splitlines()[0]
    assert "Filename: ./kubelet_1.31.2-1.1_arm64.deb" in (d / "Packages").read_text()
    # dpkg-scanpackages orders the architectures of one version as it finds the files
    assert sorted((d / "Packages").read_text().split("\n\n")) == sorted(
        packaging.scan_packages(d).decode().split("\n\n")
    )
    keyring = tmp_path / "k.gpg"
    subprocess.run(
        ["gpg", "--batch", "--dearmor", "-o", str(keyring), str(key_file)],
        check=True,
        capture_output=True,
    )
    proc = subprocess.run(
        ["gpgv", "--keyring", str(keyring), str(d / "InRelease")], capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr
