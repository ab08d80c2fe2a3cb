"""Nothing is deleted, chmod-ed, written through a link or injected that the tool did not create.

Table-driven cases against real directories with content that must survive (the whole tree
is diffed before and after), a recording loopback listener as every host's SSH port (no
command may connect to it), and the second layers on the nodes: the etcd-backup tool run as
a real process, the timer template rendered with the role's own filter.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from provision.cli import main

sys.path.insert(0, str(Path(__file__).parent))
from test_inventory_validation import assert_no_connection  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
TOOL = REPO / "roles/etcd_snapshot/files/etcd-backup/etcd_backup.py"
HOSTILE_TIMER = "daily\nUnit=ssh.service"


def run(args: list[str], capsys) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exc:
        main(args)
    out, err = capsys.readouterr()
    return int(exc.value.code or 0), out, err


def tree(root: Path) -> dict[str, Any]:
    """Every entry below ``root``: type, mode and content hash (or link target)."""
    out: dict[str, Any] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            st = p.lstat()
            if p.is_symlink():
                out[str(p.relative_to(root))] = ("link", os.readlink(p))
            elif p.is_dir():
                out[str(p.relative_to(root))] = ("dir", st.st_mode & 0o7777)
            else:
                out[str(p.relative_to(root))] = ("file", st.st_mode & 0o7777,
                                                 hashlib.sha256(p.read_bytes()).hexdigest())
    return out


def precious(root: Path) -> Path:
    """A directory with content that must survive: files, a subdirectory, odd modes."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "keep.txt").write_text("precious\n")
    (root / "sub").mkdir(exist_ok=True)
    (root / "sub" / "deep.bin").write_bytes(os.urandom(64))
    (root / "sub" / "deep.bin").chmod(0o640)
    (root / "secret").write_text("s")
    (root / "secret").chmod(0o604)
    return root


# --- provision init: a name is a name --------------------------------------------------------

INIT = ["--control-plane", "cp1=10.0.0.10", "--user", "ubuntu", "--mode", "minikube"]


@pytest.mark.parametrize("name", ["../outside", "ABS", ".", "..", "", "a/b", "UPPER", "-x",
                                  "x\n", "x y", "１", "a" * 64])
def test_init_refuses_a_name_that_is_not_one_word_and_touches_nothing(tmp_path, capsys, name):
    base = precious(tmp_path / "inventory")
    precious(tmp_path / "outside")
    absolute = precious(tmp_path / "abs")
    if name == "ABS":
        name = str(absolute)
    before = tree(tmp_path)
    code, _, err = run(["init", "--dir", str(base), "--name", name, "--force", *INIT], capsys)
    assert code == 2, err
    assert "--name" in err and "Traceback" not in err
    assert tree(tmp_path) == before


def test_init_force_on_an_existing_file_is_exit_2(tmp_path, capsys):
    base = precious(tmp_path / "inventory")
    (base / "prod").write_text("a regular file\n")
    before = tree(tmp_path)
    code, _, err = run(["init", "--dir", str(base), "--name", "prod", "--force", *INIT], capsys)
    assert code == 2 and "--name prod" in err and "not a directory" in err
    assert tree(tmp_path) == before


@pytest.mark.parametrize("link", ["prod", "prod/hosts.yml", "prod/group_vars",
                                  "prod/group_vars/all.yml"])
def test_init_force_never_writes_through_a_symbolic_link(tmp_path, capsys, link):
    base = tmp_path / "inventory"
    (base / "prod" / "group_vars").mkdir(parents=True)
    outside = precious(tmp_path / "outside")
    (outside / "hosts.yml").write_text("not yours\n")
    (outside / "all.yml").write_text("not yours\n")
    target = base / link
    if target.is_dir():
        os.rename(target, tmp_path / "moved")
    target.unlink(missing_ok=True)
    target.symlink_to(outside if link in ("prod", "prod/group_vars") else outside / "all.yml")
    before = tree(tmp_path)
    code, _, err = run(["init", "--dir", str(base), "--name", "prod", "--force", *INIT], capsys)
    assert code == 2 and "symbolic link" in err, err
    assert tree(tmp_path) == before


def test_init_dir_that_is_a_file_is_exit_2(tmp_path, capsys):
    (tmp_path / "inv").write_text("x")
    code, _, err = run(["init", "--dir", str(tmp_path / "inv"), "--name", "p", *INIT], capsys)
    assert code == 2 and "--dir" in err


def test_init_force_replaces_only_the_two_files_it_writes(tmp_path, capsys):
    base = tmp_path / "inventory"
    inv = precious(base / "prod")
    (inv / "group_vars").mkdir()
    (inv / "group_vars" / "all.yml").write_text("old: true\n")
    (inv / "group_vars" / "all.yml").chmod(0o600)
    (inv / "hosts.yml").write_text("old\n")
    (inv / "group_vars" / "control_plane.yml").write_text("# mine\n")
    before = tree(tmp_path)
    code, _, err = run(["init", "--dir", str(base), "--name", "prod", "--force", *INIT], capsys)
    assert code == 0, err
    after = tree(tmp_path)
    changed = {k for k in before.keys() | after.keys() if before.get(k) != after.get(k)}
    assert changed == {"inventory/prod/hosts.yml", "inventory/prod/group_vars/all.yml"}
    assert after["inventory/prod/group_vars/all.yml"][1] == 0o600  # its mode is kept
    assert yaml.safe_load((inv / "hosts.yml").read_text())["all"]["children"]
    code, _, err = run(["init", "--dir", str(base), "--name", "prod", *INIT], capsys)
    assert code == 2 and "pass --force" in err


# --- inventory: etcd paths and timer values ------------------------------------------------

BAD_DIRS = ["/", "/tmp", "/etc", "/var", "/usr", "/home", "/root", "/boot", "/proc", "/sys",
            "/dev", "/run", "/var/lib", "/var/backups", "/etc/kubernetes", "var/backups/etcd",
            "/var/backups/../etcd", "/var/backups/etcd/..", "//var/backups/etcd",
            "/var/backups/etcd/", "/var/./backups/etcd", "/home/ubuntu", "/proc/etcd",
            "/var/back ups", "/var/backups/etcd\n", "/var/backups/ｅtcd", "/data",
            "{{ lookup('env', 'HOME') }}/etcd", 7]


def _inventory(tmp_path: Path, host_vars: dict | None = None,
               group_vars: dict | None = None, port: int = 22) -> Path:
    inv = tmp_path / "inv"
    (inv / "group_vars").mkdir(parents=True)
    cp1 = {"ansible_host": "127.0.0.1", "ansible_port": port, **(host_vars or {})}
    (inv / "hosts.yml").write_text(yaml.safe_dump({"all": {"children": {
        "control_plane": {"hosts": {"cp1": cp1}},
        "workers": {"hosts": {"w1": {"ansible_host": "127.0.0.2", "ansible_port": port}}}}}}))
    (inv / "group_vars" / "all.yml").write_text(yaml.safe_dump(
        {"ansible_user": "ubuntu", "provision_mode": "kubeadm",
         "ingress_nginx_service_mode": "NodePort", **(group_vars or {})}))
    return inv


@pytest.mark.parametrize("value", BAD_DIRS)
def test_system_relative_and_unnormalised_backup_dirs_are_refused(tmp_path, capsys, value):
    inv = _inventory(tmp_path, host_vars={"etcd_backup_dir": value})
    code, _, err = run(["-i", str(inv), "validate"], capsys)
    assert code == 2, err
    assert f"{inv / 'hosts.yml'}" in err and "host cp1" in err and "etcd_backup_dir" in err


@pytest.mark.parametrize(("key", "value"), [
    ("etcd_backup_schedule", HOSTILE_TIMER),
    ("etcd_backup_schedule", "daily%h"),
    ("etcd_backup_schedule", "daily\\"),
    ("etcd_backup_schedule_randomized_delay", "5min\nUnit=ssh.service"),
    ("etcd_backup_schedule_accuracy", "１min"),
    ("etcd_backup_max_age", "30d\n"),
    ("etcd_backup_max_age", "9" * 5000 + "d"),
    ("etcd_backup_keep", 10**60),  # longer numbers: the bounded YAML loader (robust tests)
    ("etcd_backup_schedule_timeout", 0),
    ("etcd_snapshot_tag", "daily\n"),
    ("etcd_restore_data_dir", "//var/lib/etcd"),
    ("etcd_restore_data_dir", "/var/lib/etcd/../etcd"),
    ("etcd_backup_config_dir", "/etc"),
    ("etcd_backup_command", "/usr/local/sbin/etcd-backup\nExecStartPre=/bin/true"),
])
def test_timer_values_and_etcd_paths_are_checked_at_validation(tmp_path, capsys, key, value):
    inv = _inventory(tmp_path, group_vars={key: value})
    code, _, err = run(["-i", str(inv), "validate"], capsys)
    assert code == 2, err
    assert f"{inv / 'group_vars' / 'all.yml'}" in err and "group all" in err and key in err
    assert len(err) < 2000  # a 5000-digit value is not echoed whole


def test_good_etcd_values_pass(tmp_path, capsys):
    inv = _inventory(tmp_path, group_vars={
        "etcd_backup_dir": "/srv/etcd-backups", "etcd_backup_schedule": "Mon,Thu 03:00",
        "etcd_backup_schedule_randomized_delay": "1h 30min", "etcd_backup_max_age": "12h",
        "etcd_restore_data_dir": "/var/lib/etcd-restored"})
    code, _, err = run(["-i", str(inv), "validate"], capsys)
    assert code == 0, err


# --- etcd commands: bad flags are exit 2, nothing contacted, nothing written -----------------
# A loopback listener is every host's SSH port: no command may connect to it.

FLAG_CASES = [
    (["schedule", "--calendar", HOSTILE_TIMER], "--calendar"),
    (["schedule", "--calendar", "daily%h"], "--calendar"),
    (["schedule", "--randomized-delay", "5min\nUnit=ssh.service"], "--randomized-delay"),
    (["schedule", "--randomized-delay", "１min"], "--randomized-delay"),
    (["schedule", "--every", "9" * 5000 + "m"], "--every"),
    (["schedule", "--every", "１h"], "--every"),
    (["schedule", "--every", "15m\nUnit=ssh.service"], "--every"),
    (["schedule", "--keep", "9" * 5000], "--keep"),
    (["schedule", "--keep", "１"], "--keep"),
    (["schedule", "--keep", "0"], "--keep"),
    (["schedule", "--max-age", "30d\nUnit=ssh.service"], "--max-age"),
    (["schedule", "--max-age", "9" * 5000 + "d"], "--max-age"),
    (["snapshot", "--tag", "daily\n"], "--tag"),
    (["snapshot", "--tag", "a/b"], "--tag"),
    (["verify", "--snapshot", "etcd-c-n-20260101T000000Z.db\n"], "--snapshot"),
    (["restore", "--yes", "--snapshot", "x.db"], "--snapshot"),
    (["restore", "--yes", "--data-dir", "//var/lib/etcd"], "--data-dir"),
    (["restore", "--yes", "--data-dir", "/var/lib/etcd/../etcd"], "--data-dir"),
    (["restore", "--yes", "--data-dir", "/var/lib/etcd/"], "--data-dir"),
    (["restore", "--yes", "--data-dir", "/var/lib/etcd"], "--data-dir"),
    (["restore", "--yes", "--data-dir", "/var/lib/etcd/member/new"], "--data-dir"),
    (["restore", "--yes", "--data-dir", "/var/lib"], "--data-dir"),
    (["restore", "--yes", "--data-dir", "/"], "--data-dir"),
    (["restore", "--yes", "--data-dir", "var/lib/etcd-new"], "--data-dir"),
    (["fetch", "--dest", "/dev/null"], "--dest"),
    (["fetch", "--dest", "/etc"], "--dest"),
    (["fetch", "--dest", "/proc/etcd-snapshots"], "--dest"),
    (["fetch", "--dest", "/etc/passwd/x"], "--dest"),
]
SUBCOMMANDS = [["snapshot"], ["schedule"], ["list"], ["fetch", "--dest", "@DEST@"], ["verify"],
               ["restore", "--yes"]]


def _etcd(tmp_path: Path, capsys, monkeypatch, pre: list[str], args: list[str]
          ) -> tuple[int, str]:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    monkeypatch.chdir(tmp_path)
    with socket.create_server(("127.0.0.1", 0)) as port:
        port.setblocking(False)
        inv = _inventory(tmp_path, port=port.getsockname()[1])
        args = [a.replace("@DEST@", str(tmp_path / "dest")) for a in args]
        code, _, err = run(["-i", str(inv), *pre, "etcd", *args], capsys)
        assert_no_connection(port)
    assert "Traceback" not in err
    assert not (tmp_path / "state" / "provision").exists(), "a run directory was created"
    assert not (tmp_path / "etcd-snapshots").exists() and not (tmp_path / "dest").exists()
    return code, err


@pytest.mark.parametrize(("args", "flag"), FLAG_CASES)
def test_bad_etcd_flags_are_exit_2_before_contact(tmp_path, capsys, monkeypatch,
                                                   args, flag):
    code, err = _etcd(tmp_path, capsys, monkeypatch, [], args)
    assert code == 2 and flag in err, err
    assert len(err) < 2000


@pytest.mark.parametrize("args", SUBCOMMANDS)
@pytest.mark.parametrize("limit", ["nope", "w1", ",", "!cp1"])
def test_every_etcd_subcommand_honours_or_refuses_limit(tmp_path, capsys, monkeypatch, args, limit):
    """A --limit selecting no control-plane host (or restore's --limit at all) is exit 2
    naming --limit; nothing is contacted."""
    code, err = _etcd(tmp_path, capsys, monkeypatch, ["--limit", limit], args)
    assert code == 2 and "--limit" in err, err


@pytest.mark.parametrize("args", SUBCOMMANDS)
def test_every_etcd_subcommand_refuses_check(tmp_path, capsys, monkeypatch, args):
    code, err = _etcd(tmp_path, capsys, monkeypatch, ["--check"], args)
    assert code == 2 and f"--check is not supported by `provision etcd {args[0]}`" in err, err


def test_restore_refuses_limit_even_when_it_selects_every_member(tmp_path, capsys, monkeypatch):
    code, err = _etcd(tmp_path, capsys, monkeypatch, ["--limit", "cp1"],
                      ["restore", "--yes"])
    assert code == 2 and "--limit is not supported by `provision etcd restore`" in err


def test_restore_yes_environment_variable_does_not_skip_the_question(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("PROVISION_ETCD_RESTORE_YES", "1")
    code, err = _etcd(tmp_path, capsys, monkeypatch, [], ["restore"])
    assert code == 2 and "confirm with --yes" in err


def test_restore_help_says_no_environment_variable_skips_the_question(capsys):
    code, out, _ = run(["etcd", "restore", "--help"], capsys)
    assert code == 0 and "PROVISION_ETCD_RESTORE_YES is ignored" in " ".join(out.split())


@pytest.mark.parametrize("case", ["dest-link", "host-link", "file-link", "dest-file"])
def test_fetch_never_writes_through_a_symbolic_link(tmp_path, capsys, monkeypatch,
                                                    case):
    world = tmp_path / "world"
    outside = precious(world / "outside")
    dest = world / "fetched"
    if case == "dest-link":
        dest.symlink_to(outside)
    elif case == "dest-file":
        dest.write_text("a file\n")
    elif case == "host-link":
        dest.mkdir()
        (dest / "cp1").symlink_to(outside)
    else:
        (dest / "cp1").mkdir(parents=True)
        (dest / "cp1" / "mine.txt").write_text("mine")
        (dest / "cp1" / "etcd-c-cp1-20260101T000000Z.db").symlink_to(outside / "keep.txt")
    before = tree(world)
    code, err = _etcd(tmp_path, capsys, monkeypatch, [],
                      ["fetch", "--dest", str(dest)])
    assert code == 2 and "--dest" in err, err
    assert tree(world) == before


# --- the second layers: the node tool and the unit templates --------------------------------

def _tool(tmp_path: Path, *args: str) -> tuple[int, dict]:
    cfg = tmp_path / "config.json"
    cfg.write_text(json.dumps({"cluster": "c", "node": "cp1"}))
    cp = subprocess.run([sys.executable, str(TOOL), "--config", str(cfg), *args],
                        capture_output=True, text=True, timeout=60)
    return cp.returncode, json.loads(cp.stdout)


@pytest.mark.parametrize("value", ["/", "/tmp", "/etc", "/var/lib", "//var/backups/etcd",
                                   "/var/backups/etcd/../x", "relative/dir"])
def test_node_tool_refuses_a_system_or_unnormalised_backup_dir(tmp_path, value):
    code, obj = _tool(tmp_path, "--backup-dir", value, "prepare")
    assert code == 1 and "backup_dir" in obj["error"], obj


def test_node_tool_chmods_only_a_directory_it_created_or_that_is_dedicated(tmp_path):
    new = tmp_path / "new" / "etcd"
    code, obj = _tool(tmp_path, "--backup-dir", str(new), "prepare")
    assert code == 0 and obj["created"] and new.stat().st_mode & 0o777 == 0o700
    code, obj = _tool(tmp_path, "--backup-dir", str(new), "prepare")
    assert code == 0 and not obj["changed"]

    shared = precious(tmp_path / "shared")
    shared.chmod(0o755)
    before = tree(tmp_path / "shared")
    code, obj = _tool(tmp_path, "--backup-dir", str(shared), "prepare")
    assert code == 1 and "not dedicated" in obj["error"] and "keep.txt" in obj["error"]
    assert shared.stat().st_mode & 0o777 == 0o755 and tree(shared) == before

    ours = tmp_path / "ours"
    ours.mkdir(mode=0o755)
    (ours / "etcd-c-cp1-20260101T000000Z.db").write_bytes(b"x")
    (ours / "etcd-c-cp1-20260101T000000Z.json").write_text("{}")
    (ours / ".etcd-backup.lock").write_text("")
    ours.chmod(0o755)
    code, obj = _tool(tmp_path, "--backup-dir", str(ours), "prepare")
    assert code == 0 and obj["changed"] and ours.stat().st_mode & 0o777 == 0o700

    link = tmp_path / "link"
    link.symlink_to(shared)
    code, obj = _tool(tmp_path, "--backup-dir", str(link), "prepare")
    assert code == 1 and "symbolic link" in obj["error"]
    assert shared.stat().st_mode & 0o777 == 0o755


@pytest.mark.parametrize("data_dir", ["//var/lib/etcd", "/var/lib/etcd/../etcd",
                                      "/var/lib/etcd/", "/var/lib/etcd/member/x", "/var/lib"])
def test_node_tool_refuses_the_current_data_dir_however_it_is_spelled(tmp_path, data_dir):
    code, obj = _tool(tmp_path, "restore", "latest", "--data-dir", data_dir,
                      "--current-data-dir", "/var/lib/etcd", "--check")
    assert code == 1 and "--data-dir" in obj["error"], obj


def test_role_patterns_are_the_declared_python_patterns():
    from provision.etcd import schedule

    role_vars = yaml.safe_load((REPO / "roles/etcd_backup_schedule/vars/main.yml").read_text())
    assert role_vars["_etcd_backup_schedule_calendar_re"] == (
        "^" + schedule.CALENDAR_RE.pattern + r"\Z")
    assert role_vars["_etcd_backup_schedule_timespan_re"] == (
        "^" + schedule.TIMESPAN_RE.pattern + r"\Z")


def _render_timer(**values: str) -> str:
    import importlib.util

    import jinja2

    spec = importlib.util.spec_from_file_location(
        "systemd_unit", REPO / "roles/etcd_backup_schedule/filter_plugins/systemd_unit.py")
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    from ansible.plugins.filter.core import FilterModule as AnsibleCore

    env = jinja2.Environment(undefined=jinja2.StrictUndefined)
    env.filters.update(AnsibleCore().filters())
    env.filters.update(mod.FilterModule().filters())
    text = (REPO / "roles/etcd_backup_schedule/templates/etcd-backup.timer.j2").read_text()
    defaults = {**yaml.safe_load((REPO / "roles/provision_defaults/defaults/main.yml")
                                 .read_text()),  # shared: the role's dependency
                **yaml.safe_load(
                    (REPO / "roles/etcd_backup_schedule/defaults/main.yml").read_text())}
    return env.from_string(text).render(**{**defaults, "ansible_managed": "managed",
                                           **values})


def _directives(unit: str) -> list[str]:
    return [line.split("=", 1)[0] for line in unit.splitlines()
            if line and not line.startswith(("#", "["))]


def test_timer_template_keeps_a_hostile_value_on_one_inert_line():
    """The second layer: a value that slipped past both checks is still one value."""
    good = _directives(_render_timer())
    assert good == ["Description", "OnCalendar", "Persistent", "RandomizedDelaySec",
                    "AccuracySec", "WantedBy"]
    unit = _render_timer(etcd_backup_schedule=HOSTILE_TIMER + "\\",
                         etcd_backup_schedule_randomized_delay="5min\n[Service]\nExecStart=/x %h")
    assert _directives(unit) == good
    [cal] = [line for line in unit.splitlines() if line.startswith("OnCalendar=")]
    assert cal == "OnCalendar=daily\\x0aUnit=ssh.service\\\\"
    assert "%%h" in unit and not any(line.endswith("\\") and not line.endswith("\\\\")
                                     for line in unit.splitlines())


def test_role_directory_check_is_the_same_code_run_on_the_node():
    """roles/etcd_snapshot runs files/etcd-backup/paths.py (this very module) on the node
    before it creates a directory: a system directory is refused there too."""
    script = REPO / "roles/etcd_snapshot/files/etcd-backup/paths.py"
    assert script.resolve() == (REPO / "provision/etcd/paths.py").resolve()
    ok = subprocess.run([sys.executable, str(script), "/var/backups/etcd", "/etc/etcd-backup"],
                        capture_output=True, text=True)
    assert ok.returncode == 0 and ok.stdout.strip() == ""
    bad = subprocess.run([sys.executable, str(script), "/var/backups/etcd", "/etc/kubernetes",
                          "//var/x"], capture_output=True, text=True)
    assert bad.returncode == 1
    assert "'/etc/kubernetes'" in bad.stdout and "'//var/x'" in bad.stdout
