"""No secret in any run artifact or message.

A real playbook (local connection) deliberately prints secret inventory and extra vars and
reads the environment; canaries planted in the environment, the inventory (a no_log variable
and a secret-named one) and the extra vars must not appear in ANY file of the run dir, in the
progress output, in the failure summary or in summary.json. Validation messages never echo a
secret value.
"""

from __future__ import annotations

import io
import json
import secrets
import sys
from pathlib import Path

import pytest
import yaml

from provision.cli import main
from provision.commands._common import print_summary
from provision.progress import Progress
from provision.redact import (
    MASK,
    env_secret_values,
    is_secret_var,
    minimal_env,
    no_log_options,
    scrub_tree,
)
from provision.runner import run_playbook

PLAYS = Path(__file__).parent / "playbooks"


def canary(label: str) -> str:
    return f"canary-{label}-{secrets.token_hex(8)}"


def test_a_real_run_keeps_no_secret_in_any_artifact(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    env_aws, env_vault, env_plain = canary("aws"), canary("vault"), canary("plain")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", env_aws)
    monkeypatch.setenv("VAULT_TOKEN", env_vault)
    monkeypatch.setenv("SOME_UNRELATED_SETTING", env_plain)  # not secret-named: not passed on
    inv_nolog, inv_s3 = canary("dns-nolog"), canary("s3")
    xv_password, xv_token = canary("xv-password"), canary("xv-token")
    assert "acme_dns_env" in no_log_options()  # declared no_log in roles/acme_cert
    inv = tmp_path / "hosts.yml"
    inv.write_text(yaml.safe_dump({"all": {"children": {"control_plane": {"hosts": {"local1": {
        "ansible_connection": "local", "ansible_python_interpreter": sys.executable,
        "acme_dns_env": {"CF_DNS_API_TOKEN": inv_nolog},
        "etcd_backup_s3_secret_key": inv_s3}}}}}}))
    marker = str(tmp_path / "not-a-secret-path")
    stream = io.StringIO()
    result = run_playbook(
        command="secrets", playbook=str(PLAYS / "secrets-canary.yml"), inventory=inv,
        progress=Progress(stream=stream, verbosity=1),
        extravars={"registry_password": xv_password, "canary_token": xv_token,
                   "marker_path": marker})
    assert result.exit_code == 1 and result.failures[0].task == "Fail with a secret on stderr"
    print_summary(result)
    printed = capsys.readouterr()
    canaries = [env_aws, env_vault, env_plain, inv_nolog, inv_s3, xv_password, xv_token]

    files = [p for p in result.run_dir.rglob("*") if p.is_file()]
    names = {p.relative_to(result.run_dir).as_posix() for p in files}
    assert {"artifacts/run/command", "artifacts/run/stdout", "summary.json"} <= names
    assert any(n.startswith("artifacts/run/job_events/") for n in names)
    assert any(n.startswith("artifacts/run/fact_cache/") for n in names)
    everything = b"".join(p.read_bytes() for p in files)
    outputs = (stream.getvalue() + printed.out + printed.err
               + json.dumps(result.to_json()) + json.dumps(result.errors))
    for value in canaries:
        assert value.encode() not in everything, value
        assert value not in outputs, value
    # the play did print them, masked: the test would see a leak
    log = result.log_path.read_text()
    assert f"pw={MASK} tok={MASK}" in log and f"s3={MASK}" in log and MASK in log
    assert f"path={marker}" in log  # ordinary values are left alone
    assert "env_vault=[]" in log  # the caller's environment did not reach Ansible
    assert f"cannot log in with {MASK}" in result.failures[0].message
    command = json.loads((result.run_dir / "artifacts/run/command").read_text())
    assert "AWS_SECRET_ACCESS_KEY" not in command["env"]
    assert "SOME_UNRELATED_SETTING" not in command["env"]
    assert command["env"]["ANSIBLE_HOST_KEY_CHECKING"] == "True"
    args = command["command"]  # extra vars as -e @file, never as inline JSON (ps shows that)
    assert f"@{result.run_dir / 'env' / 'extravars'}" in args
    assert not any("registry_password" in arg for arg in args)
    assert not (result.run_dir / "env" / "extravars").exists()


def test_scrub_tree_masks_plain_and_json_escaped_forms(tmp_path):
    secret = 'p"a\\ss-wörd'
    (tmp_path / "a.txt").write_text(f"x {secret} y")
    (tmp_path / "b.json").write_text(json.dumps({"v": secret}))
    (tmp_path / "c.json").write_text(json.dumps({"v": secret}, ensure_ascii=False))
    (tmp_path / "clean").write_text("nothing here")
    changed = scrub_tree(tmp_path, {secret})
    assert sorted(p.name for p in changed) == ["a.txt", "b.json", "c.json"]
    for p in tmp_path.iterdir():
        assert "ss-w" not in p.read_text()


@pytest.mark.parametrize(("name", "secret"), [
    ("etcd_backup_s3_secret_key", True), ("etcd_backup_s3_access_key", True),
    ("acme_dns_env", True), ("cert_manager_cloudflare_api_token", True),
    ("registry_password", True), ("AWS_SECRET_ACCESS_KEY", True), ("VAULT_TOKEN", True),
    ("GITHUB_TOKEN", True), ("ansible_become_password", True),
    ("ansible_ssh_private_key_file", False), ("ssh_known_hosts_file", False),
    ("cert_manager_cloudflare_secret_name", False), ("etcd_backup_keep", False),
    ("gateway_api_tls_secret", False), ("ingress_nginx_default_tls_secret", False),
    ("SSH_AUTH_SOCK", False), ("kubernetes_version", False), ("PATH", False),
])
def test_which_names_are_secret(name, secret):
    assert is_secret_var(name) is secret


def test_minimal_env_keeps_only_ordinary_variables():
    env = {"PATH": "/bin", "HOME": "/h", "LC_ALL": "C", "SSH_AUTH_SOCK": "/s",
           "AWS_SECRET_ACCESS_KEY": "x", "DATABASE_URL": "postgres://u:p@h/db",
           "ANSIBLE_SSH_CONTROL_PATH": "/shared/%%h"}
    assert minimal_env(env) == {"PATH": "/bin", "HOME": "/h", "LC_ALL": "C",
                                "SSH_AUTH_SOCK": "/s"}


def test_flag_like_values_of_secret_names_are_not_masked():
    """API_KEY_ENABLED=true must not turn every "true" in the log into ********."""
    assert env_secret_values({"API_KEY_ENABLED": "true", "TOKEN_MODE": "None",
                              "GITHUB_TOKEN": "ghp_abcdef"}) == {"ghp_abcdef"}


def test_a_password_in_a_proxy_url_is_a_secret():
    assert env_secret_values({"https_proxy": "http://me:hunter22@proxy:3128",
                              "PATH": "/usr/bin"}) == {"hunter22"}


@pytest.mark.parametrize(("key", "value", "shown"), [
    ("acme_dns_env", "CF_DNS_API_TOKEN=canary-dns-1234", "expected a mapping, got a string"),
    ("etcd_backup_s3_secret_key", 918273645, "expected a string, got the number"),
    ("etcd_backup_s3_access_key", ["canary-list-5678"], "expected a string, got a list"),
])
def test_validation_never_echoes_a_secret(tmp_path, capsys, key, value, shown):
    inv = tmp_path / "hosts.yml"
    inv.write_text(yaml.safe_dump({"all": {"vars": {key: value}, "children": {
        "control_plane": {"hosts": {"cp1": {"ansible_host": "192.0.2.1"}}}}}}))
    with pytest.raises(SystemExit) as exc:
        main(["-i", str(inv), "validate"])
    err = capsys.readouterr().err
    assert exc.value.code == 2
    assert f"{inv}:" in err and f"{key}: {shown}" in err
    assert f"(the value is hidden: {key} is a secret)" in err
    for leaf in ("canary-dns-1234", "918273645", "canary-list-5678"):
        assert leaf not in err


@pytest.mark.parametrize(("argv", "envvar"), [
    (["upgrade", "--help"], "PROVISION_UPGRADE_YES"),
    (["certs", "renew", "--help"], "PROVISION_CERTS_RENEW_YES"),
    (["certs", "renew", "--help"], "PROVISION_CERTS_RENEW_FORCE"),
])
def test_environment_variables_that_skip_a_question_are_in_the_help(capsys, argv, envvar):
    with pytest.raises(SystemExit):
        main(argv)
    assert envvar in capsys.readouterr().out.replace("\n", " ")
