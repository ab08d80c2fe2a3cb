"""The CLI surface: help, version, lazy imports, init, completion."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import yaml

from provision import __version__
from provision.cli import COMMANDS, main


def run(args: list[str], capsys) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exc:
        main(args)
    out, err = capsys.readouterr()
    return int(exc.value.code or 0), out, err


def test_help_lists_every_command(capsys):
    code, out, _ = run(["--help"], capsys)
    assert code == 0
    for name in ("init", "doctor", "bootstrap", "upgrade", "etcd", "certs", "status", "lab"):
        assert f"  {name} " in out
    assert "Exit codes: 0 ok, 1 a host failed, 2 usage or validation error" in out


def test_help_says_global_options_go_before_or_after_the_command(capsys):
    code, out, _ = run(["--help"], capsys)
    assert code == 0 and "go before or after the command" in out
    for flag in ("-i, --inventory", "--limit", "--check", "-v, --verbose", "--json",
                 "-e, --extra-vars"):
        assert flag in out
    code, out, _ = run(["bootstrap", "--help"], capsys)  # the same options on the command
    assert code == 0 and "--check" in out and "-e, --extra-vars" in out
    code, out, _ = run(["upgrade", "--help"], capsys)  # refused ones are not offered
    assert code == 0 and "--limit" not in out.split("Options:")[1]


def test_version(capsys):
    code, out, _ = run(["--version"], capsys)
    assert code == 0 and out.strip() == f"provision, version {__version__}"


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_command_has_help_with_an_example(name, capsys):
    code, out, _ = run([name, "--help"], capsys)
    assert code == 0
    assert "Example" in out, f"provision {name} --help has no example"


def test_help_imports_nothing_heavy():
    """`provision --help` must stay fast: no ansible, paramiko or rich at start-up."""
    code = ("import sys; from provision.cli import main\n"
            "try:\n    main(['--help'])\nexcept SystemExit: pass\n"
            "heavy = [m for m in ('ansible_runner', 'ansible', 'paramiko', 'rich', 'yaml', "
            "'jinja2') if m in sys.modules]\nprint('HEAVY', heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert "HEAVY []" in out


def test_env_var_sets_global_option(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("PROVISION_INVENTORY", str(tmp_path / "nope"))
    code, _, err = run(["validate"], capsys)
    assert code == 2 and f"{tmp_path / 'nope'}: inventory not found" in err


def test_init_writes_a_valid_inventory(tmp_path, capsys):
    key = tmp_path / "id"
    key.write_text("dummy key file")
    key.chmod(0o600)  # ssh (and validation) refuse a key readable by others
    code, out, err = run(["init", "--dir", str(tmp_path), "--name", "prod", "--control-plane",
                          "cp1=10.0.0.10", "--worker", "w1=10.0.0.11", "--user", "ubuntu",
                          "--key", str(key), "--kubernetes-version", "1.30",
                          "--metallb-addresses", "10.0.0.200-10.0.0.210"], capsys)
    assert code == 0, err
    hosts = yaml.safe_load((tmp_path / "prod" / "hosts.yml").read_text())
    assert hosts["all"]["children"]["control_plane"]["hosts"] == {
        "cp1": {"ansible_host": "10.0.0.10"}}
    gvars = yaml.safe_load((tmp_path / "prod" / "group_vars" / "all.yml").read_text())
    assert gvars["kubernetes_version"] == "1.30"  # a string, not the float 1.3
    assert gvars["provision_mode"] == "kubeadm"
    assert gvars["metallb_addresses"] == ["10.0.0.200-10.0.0.210"]
    code, _, err = run(["-i", str(tmp_path / "prod"), "validate"], capsys)
    assert code == 0, err
    code, _, err = run(["init", "--dir", str(tmp_path), "--name", "prod",
                        "--control-plane", "cp1=10.0.0.10"], capsys)
    assert code == 2 and "exists; pass --force to overwrite it" in err
    assert "ingress_nginx_service_mode" not in gvars  # the pool gives LoadBalancer an address


def test_init_without_pool_picks_an_ingress_mode_that_works(tmp_path, capsys):
    """No MetalLB pool: init writes NodePort (several hosts) so that the inventory passes
    bootstrap's add-on check instead of failing it on first use."""
    key = tmp_path / "id"
    key.write_text("dummy key file")
    key.chmod(0o600)  # ssh (and validation) refuse a key readable by others
    code, _, err = run(["init", "--dir", str(tmp_path), "--name", "p", "--control-plane",
                        "cp1=10.0.0.10", "--worker", "w1=10.0.0.11", "--user", "ubuntu",
                        "--key", str(key), "--mode", "kubeadm"], capsys)
    assert code == 0, err
    gvars = yaml.safe_load((tmp_path / "p" / "group_vars" / "all.yml").read_text())
    assert gvars["ingress_nginx_service_mode"] == "NodePort"
    from provision.commands.bootstrap import addon_problems
    from provision.inventory import load_inventory

    inv = load_inventory(tmp_path / "p")
    assert addon_problems(inv, ["base", "containerd", "cluster", "addons"]) == []
    del gvars["ingress_nginx_service_mode"]
    (tmp_path / "p" / "group_vars" / "all.yml").write_text(yaml.safe_dump(gvars))
    problems = addon_problems(load_inventory(tmp_path / "p"), ["addons"])
    assert len(problems) == 1 and "needs a MetalLB address pool" in problems[0]
    assert addon_problems(load_inventory(tmp_path / "p"), ["cluster"]) == []


@pytest.mark.parametrize(("args", "message"), [
    (["--control-plane", "cp1="], "--control-plane 'cp1=': expected NAME=ADDRESS"),
    (["--control-plane", "a=10.0.0.1", "--worker", "b=10.0.0.2", "--mode", "minikube"],
     "provision_mode: minikube runs on exactly one host, the inventory has 2 (a, b)"),
    (["--control-plane", "a=10.0.0.1", "--kubernetes-version", "v1.31"],
     "malformed version 'v1.31'"),
    (["--control-plane", "a=10.0.0.1", "--metallb-addresses", "10.0.0.9-10.0.0.1"],
     "invalid address range '10.0.0.9-10.0.0.1'"),
    (["--control-plane", "a=10.0.0.1", "--mode", "k3s"], "Invalid value for '--mode'"),
    ([], "--control-plane NAME=ADDR is required"),
])
def test_init_rejects_bad_flags_and_writes_nothing(tmp_path, capsys, args, message):
    code, _, err = run(["init", "--dir", str(tmp_path), "--name", "x", *args], capsys)
    assert code == 2
    assert message in err
    assert not (tmp_path / "x").exists()


def test_unknown_command_is_a_usage_error(capsys):
    code, _, err = run(["frobnicate"], capsys)
    assert code == 2 and "No such command 'frobnicate'" in err


def test_shell_completion_script():
    env = {**os.environ, "_PROVISION_COMPLETE": "bash_source"}
    out = subprocess.run([sys.executable, "-m", "provision"], env=env, capture_output=True,
                         text=True).stdout
    assert "_provision_completion" in out


# ids without "ha": `-k "kubeadm and (single or worker or ha)"` selects the cluster scenarios only
@pytest.mark.parametrize("name", ["oci-minikube", "kubeadm-ha"], ids=["minikube", "kubeadm-3cp"])
def test_example_inventories_are_valid(name, capsys):
    from provision.paths import REPO_ROOT

    code, out, err = run(["-i", str(REPO_ROOT / "inventory" / name), "validate"], capsys)
    assert code == 0, err


def test_a_non_numeric_ssh_port_is_a_validation_error_not_a_crash(tmp_path, capsys):
    """`ansible_port: seventy` once crashed the duplicate-endpoint check with a ValueError;
    it must be one clear error naming the file, host and key (exit 2)."""
    inv = tmp_path / "hosts.yml"
    inv.write_text("all:\n  vars:\n    provision_mode: minikube\n  children:\n"
                   "    control_plane:\n      hosts:\n        cp1:\n"
                   "          ansible_host: 10.0.0.10\n          ansible_user: ubuntu\n"
                   "          ansible_port: seventy\n")
    code, out, err = run(["-i", str(inv), "validate"], capsys)
    assert code == 2, (out, err)
    lines = [line for line in (out + err).splitlines() if "ansible_port" in line]
    assert lines and str(inv) in lines[0] and "cp1" in lines[0], out + err
    assert "Traceback" not in out + err
