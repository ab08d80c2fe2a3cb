"""Inventories are read by ansible-core itself (issue 14): host ranges, extra files in an
inventory directory, ``.json`` vars, nested ``group_vars/all/sub/``, ``!vault`` (a real
``ansible-vault encrypt_string``) and ``!unsafe`` values, and ``--limit`` patterns behave as in
Ansible, and every variable Ansible will use is validated with file:line messages.

Parity: for a set of inventories, the hosts, groups and variables provision validates equal
what ``ansible-inventory --list`` prints (a subprocess with the project's ansible.cfg).
The CLI runs in-process (``provision.cli.main``); nothing is contacted (hosts are unreachable
documentation addresses and no command here connects before validation).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from provision.cli import main
from provision.inventory import UnsafeText, VaultText, load_inventory
from provision.vault import VaultOptions

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
VAULT_PASSWORD = "correct horse battery staple"
SECRET = "s3-secret-Xy9"

HOSTS = """\
all:
  vars:
    kubernetes_version: "1.33"
    ansible_user: ubuntu
  children:
    control_plane:
      hosts:
        cp1: {ansible_host: 192.0.2.10}
    workers:
      hosts:
        w[1:3]:
          etcd_backup_keep: 3
"""


def run_cli(args: list[str], capsys) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exc:
        main(args)
    out, err = capsys.readouterr()
    return int(exc.value.code or 0), out, err


def errors(err: str) -> list[str]:
    return [line.removeprefix("error: ") for line in err.splitlines()
            if line.startswith("error: ")]


def write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


@pytest.fixture
def inv(tmp_path: Path) -> Path:
    return write(tmp_path / "inv", {"hosts.yml": HOSTS})


def vault_file(tmp_path: Path) -> Path:
    path = tmp_path / "vault-pass"
    path.write_text(VAULT_PASSWORD + "\n")
    path.chmod(0o600)
    return path


def encrypt_string(tmp_path: Path, value: str, name: str) -> str:
    """``ansible-vault encrypt_string`` output: ``name: !vault |`` and the ciphertext."""
    done = subprocess.run([str(BIN / "ansible-vault"), "encrypt_string", "--vault-password-file",
                           str(vault_file(tmp_path)), value, "--name", name],
                          capture_output=True, text=True, check=True,
                          env={**os.environ, "ANSIBLE_CONFIG": str(REPO / "ansible.cfg")})
    return done.stdout


# --- hosts and files Ansible reads ---------------------------------------------------------

def test_host_ranges_are_expanded_and_every_host_validated(inv: Path, capsys) -> None:
    code, out, err = run_cli(["-i", str(inv), "validate"], capsys)
    assert code == 0, err
    assert "valid: 4 hosts, mode kubeadm, 1 control plane, 3 workers" in out
    loaded = load_inventory(inv)
    assert list(loaded.hosts) == ["cp1", "w1", "w2", "w3"]
    assert loaded.hosts["w2"].vars["etcd_backup_keep"] == 3
    write(inv, {"hosts.yml": HOSTS.replace("etcd_backup_keep: 3", "etcd_backup_kep: 3")})
    code, _, err = run_cli(["-i", str(inv), "validate"], capsys)
    assert code == 2
    for name in ("w1", "w2", "w3"):
        assert (f"{inv}/hosts.yml:12: host {name}: etcd_backup_kep: unknown variable; did you "
                "mean etcd_backup_keep?") in errors(err)


@pytest.mark.parametrize(("files", "expected"), [
    ({"zz-extra.yml": "all:\n  hosts:\n    w9: {ansible_host: 192.0.2.19, ansible_prot: 22}\n"},
     "{inv}/zz-extra.yml:3: host w9: ansible_prot: unknown variable; did you mean "
     "ansible_port?"),
    ({"extra": "workers:\n  hosts:\n    w8:\n      ansible_host: 192.0.2.18\n"
               "      etcd_backup_kep: 2\n"},
     "{inv}/extra:5: host w8: etcd_backup_kep: unknown variable; did you mean "
     "etcd_backup_keep?"),
    ({"host_vars/cp1.json": '{"ansible_prot": 2222}'},
     "{inv}/host_vars/cp1.json: host cp1: ansible_prot: unknown variable; did you mean "
     "ansible_port?"),
    ({"group_vars/all.json": '{"kubernetes_version": 1.3}'},
     "{inv}/group_vars/all.json: group all: kubernetes_version: expected a version string, "
     "got the number 1.3: YAML reads an unquoted version as a number (1.30 becomes 1.3); "
     'quote it, e.g. kubernetes_version: "1.30"'),
    ({"group_vars/all/sub/deeper.yml": "pod_cidr: 10.244.0.0/16\npod_cdir: x\n"},
     "{inv}/group_vars/all/sub/deeper.yml:2: group all: pod_cdir: unknown variable; did you "
     "mean pod_cidr?"),
    ({"host_vars/w2.yml": "ansible_port: 70000\n"},
     "{inv}/host_vars/w2.yml:1: host w2: ansible_port: expected a port 1-65535, got 70000"),
    ({"host_vars/w7.json": "{}"},
     "{inv}/host_vars/w7.json: host_vars for 'w7', which is not a host of the inventory"),
])
def test_every_file_ansible_reads_is_validated(inv: Path, capsys, files: dict[str, str],
                                               expected: str) -> None:
    """Before, these files were read by Ansible but never validated: a host defined only in
    an extra file, with typo'd keys, was contacted by bootstrap."""
    write(inv, files)
    code, _, err = run_cli(["-i", str(inv), "bootstrap"], capsys)
    assert code == 2, err
    assert expected.format(inv=inv) in errors(err), err


def test_extra_file_hosts_are_hosts(inv: Path) -> None:
    write(inv, {"zz-extra.yml": "workers:\n  hosts:\n    w9: {ansible_host: 192.0.2.19}\n",
                "host_vars/w9.json": '{"ansible_port": 2200}'})
    loaded = load_inventory(inv)
    assert loaded.hosts["w9"].vars["ansible_port"] == 2200
    assert "w9" in loaded.groups["workers"]
    assert Path(inv / "zz-extra.yml") in loaded.files


# --- --limit: Ansible's pattern engine -------------------------------------------------------

@pytest.mark.parametrize(("pattern", "selected"), [
    ("w*", "w1, w2, w3"),
    ("~cp.*", "cp1"),
    ("all:&control_plane", "cp1"),
    ("workers:!w2", "w1, w3"),
    ("workers[0]", "w1"),
    ("cp1,w3", "cp1, w3"),
])
def test_limit_patterns_are_resolved_as_ansible_does(inv: Path, capsys, pattern: str,
                                                     selected: str) -> None:
    code, out, err = run_cli(["-i", str(inv), "--limit", pattern, "validate"], capsys)
    assert code == 0, err
    assert f"selects {selected}" in out, out


@pytest.mark.parametrize(("pattern", "expected"), [
    ("x*", "--limit x*: selects no host of {inv}"),
    ("all:&nope", "--limit all:&nope: 'nope' is not a host or group of {inv}"),
    ("w1,,w2", "--limit 'w1,,w2': an empty host or group name"),
])
def test_limit_naming_nothing_is_refused(inv: Path, capsys, pattern: str, expected: str) -> None:
    code, _, err = run_cli(["-i", str(inv), "--limit", pattern, "validate"], capsys)
    assert code == 2
    assert any(line.startswith(expected.format(inv=inv)) for line in errors(err)), err


# --- !unsafe and !vault ---------------------------------------------------------------------

def test_unsafe_values_are_literal_text(inv: Path, capsys) -> None:
    """!unsafe is never templated: '{{' in it is text, not a template to refuse."""
    write(inv, {"group_vars/workers.yml": "docker_users: [!unsafe 'ops{{x}}']\n"})
    loaded = load_inventory(inv)
    value = loaded.hosts["w1"].vars["docker_users"][0]
    assert isinstance(value, UnsafeText) and value == "ops{{x}}"
    code, _, err = run_cli(["-i", str(inv), "validate"], capsys)
    assert "YAML syntax error" not in err and "Jinja templates" not in err


@pytest.mark.skipif(not (BIN / "ansible-vault").exists(), reason="needs ansible-vault")
def test_a_real_vault_value_is_decrypted_and_validated_and_never_echoed(
        inv: Path, tmp_path: Path, capsys, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ANSIBLE_VAULT_PASSWORD_FILE", raising=False)
    password = vault_file(tmp_path)
    write(inv, {"group_vars/all/vault.yml":
                encrypt_string(tmp_path, SECRET, "etcd_backup_s3_secret_key")
                + encrypt_string(tmp_path, "14", "etcd_backup_keep")})
    code, out, err = run_cli(["-i", str(inv), "--vault-password-file", str(password),
                              "validate"], capsys)
    assert code == 2  # etcd_backup_keep decrypts to the string '14', not an integer
    assert (f"{inv}/group_vars/all/vault.yml:8: group all: etcd_backup_keep: expected an "
            "integer, got a string '(hidden)' (the value is hidden: etcd_backup_keep is a "
            "secret)") in errors(err), err
    assert SECRET not in out + err and "'14'" not in out + err
    write(inv, {"group_vars/all/vault.yml":
                encrypt_string(tmp_path, SECRET, "etcd_backup_s3_secret_key")})
    code, out, err = run_cli(["validate", "-i", str(inv), "--vault-password-file",
                              str(password)], capsys)
    assert code == 0, err
    loaded = load_inventory(inv, VaultOptions((str(password),)))
    value = loaded.hosts["cp1"].vars["etcd_backup_s3_secret_key"]
    assert isinstance(value, VaultText) and value == SECRET and SECRET in loaded.secrets
    # ANSIBLE_VAULT_PASSWORD_FILE, as Ansible users set it
    monkeypatch.setenv("ANSIBLE_VAULT_PASSWORD_FILE", str(password))
    code, _, err = run_cli(["-i", str(inv), "validate"], capsys)
    assert code == 0, err
    monkeypatch.delenv("ANSIBLE_VAULT_PASSWORD_FILE")
    code, _, err = run_cli(["-i", str(inv), "bootstrap"], capsys)
    assert code == 2
    assert (f"{inv}/group_vars/all/vault.yml:1: group all: etcd_backup_s3_secret_key: a "
            "vault-encrypted value, but no vault password was given: pass "
            "--vault-password-file FILE or --ask-vault-pass (or set "
            "ANSIBLE_VAULT_PASSWORD_FILE)") in errors(err), err
    wrong = tmp_path / "wrong-pass"
    wrong.write_text("not it\n")
    code, _, err = run_cli(["-i", str(inv), "--vault-password-file", str(wrong), "validate"],
                           capsys)
    assert code == 2 and "that the vault password given does not decrypt" in err
    code, _, err = run_cli(["-i", str(inv), "--vault-password-file", str(tmp_path / "nope"),
                            "validate"], capsys)
    assert code == 2 and f"--vault-password-file {tmp_path / 'nope'}: no such file" in err


@pytest.mark.skipif(not (BIN / "ansible-vault").exists(), reason="needs ansible-vault")
@pytest.mark.parametrize("how", ["file", "prompt"])
def test_the_run_gets_the_vault_password_and_no_artifact_keeps_the_secret(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, how: str) -> None:
    """A real playbook run (local connection) uses a !vault value: ansible-playbook gets the
    password (--vault-password-file, or --ask-vault-pass answered by ansible-runner from
    memory), the value arrives on the host, and no file of the run dir contains it."""
    from provision.runner import run_playbook

    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    monkeypatch.delenv("ANSIBLE_VAULT_PASSWORD_FILE", raising=False)
    inv = write(tmp_path / "inv", {"hosts.yml": (
        "all:\n  hosts:\n    h1:\n      ansible_connection: local\n"
        f"      ansible_python_interpreter: {sys.executable}\n      "
        + encrypt_string(tmp_path, SECRET, "marker_text").replace("\n", "\n      ") + "\n")})
    vault = (VaultOptions((str(vault_file(tmp_path)),)) if how == "file"
             else VaultOptions(ask=True, password=VAULT_PASSWORD.encode()))
    loaded = load_inventory(inv, vault)
    marker = tmp_path / "marker"
    result = run_playbook(command="vault", playbook=str(REPO / "tests/playbooks/runner-ok.yml"),
                          inventory=loaded, quiet=True, extravars={"marker_path": str(marker)})
    assert result.exit_code == 0, result.errors
    assert marker.read_text() == SECRET + "\n"
    for path in result.run_dir.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            assert SECRET.encode() not in data, path
            assert VAULT_PASSWORD.encode() not in data, path


# --- parity with ansible-inventory --list ----------------------------------------------------

def ansible_inventory(path: Path, password: Path) -> dict:
    done = subprocess.run([str(BIN / "ansible-inventory"), "-i", str(path), "--list",
                           "--vault-password-file", str(password),
                           "--playbook-dir", str(REPO / "playbooks")],
                          capture_output=True, text=True, check=True, cwd=path.parent,
                          env={**os.environ, "ANSIBLE_CONFIG": str(REPO / "ansible.cfg")})
    return json.loads(done.stdout)


def comparable(value):
    if isinstance(value, dict):
        if set(value) == {"__ansible_unsafe"}:
            return value["__ansible_unsafe"]
        if set(value) == {"__ansible_vault"}:
            return "<vault>"
        return {k: comparable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [comparable(v) for v in value]
    if isinstance(value, VaultText):
        return "<vault>"
    return value


def parity_inventories(tmp_path: Path) -> list[Path]:
    mixed = write(tmp_path / "mixed", {
        "hosts.yml": HOSTS + "    extra_group:\n      children:\n        workers:\n"
                             "      vars:\n        etcd_backup_keep: 9\n",
        "zz-extra.yml": "workers:\n  hosts:\n    w9: {ansible_host: 192.0.2.19}\n",
        "group_vars/all/main.yml": "pod_cidr: 10.244.0.0/16\netcd_backup_keep: 5\n",
        "group_vars/all/sub/more.json": '{"service_cidr": "10.96.0.0/12"}',
        "group_vars/workers.yml": "etcd_backup_keep: 7\ndocker_users: [!unsafe 'a{{b}}']\n",
        "host_vars/w2.json": '{"etcd_backup_keep": 11}',
        "host_vars/cp1/vault.yml": encrypt_string(tmp_path, SECRET,
                                                  "etcd_backup_s3_secret_key"),
    })
    single = tmp_path / "single.yml"
    single.write_text(HOSTS)
    return [REPO / "inventory" / "kubeadm-ha", REPO / "inventory" / "oci-minikube", mixed,
            single]


@pytest.mark.skipif(not shutil.which(str(BIN / "ansible-inventory")),
                    reason="needs ansible-inventory")
def test_hosts_groups_and_variables_equal_ansible_inventory_list(tmp_path: Path) -> None:
    password = vault_file(tmp_path)
    for path in parity_inventories(tmp_path):
        listed = ansible_inventory(path, password)
        ours = load_inventory(path, VaultOptions((str(password),)))
        hostvars = listed["_meta"]["hostvars"]
        assert sorted(ours.hosts) == sorted(hostvars), path
        for name, host in ours.hosts.items():
            assert comparable(host.vars) == comparable(hostvars[name]), (path, name)
        for group, body in listed.items():
            if group == "_meta":
                continue
            assert sorted(ours.children[group]) == sorted(body.get("children", [])), group
            direct = set(body.get("hosts", []))
            assert direct <= set(ours.groups[group]), (path, group)


def test_vault_options_are_honoured_where_an_inventory_is_read(inv: Path, tmp_path: Path,
                                                               capsys) -> None:
    """--vault-password-file/--ask-vault-pass are global options: honoured (before or after
    the command) by every command that honours -i, refused by those that read no inventory."""
    password = vault_file(tmp_path)
    for args in (["--vault-password-file", str(password), "-i", str(inv), "validate"],
                 ["-i", str(inv), "validate", "--vault-password-file", str(password)]):
        code, _, err = run_cli(args, capsys)
        assert code == 0, err
    code, _, err = run_cli(["init", "--vault-password-file", str(password)], capsys)
    assert code == 2 and "--vault-password-file is not supported by `provision init`" in err
    code, _, err = run_cli(["lab", "status", "--ask-vault-pass"], capsys)
    assert code == 2 and "--ask-vault-pass is not supported by `provision lab status`" in err
