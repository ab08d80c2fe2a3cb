"""Global options (-i, --limit, --check, -v, --json, -e): every command honours each one or
refuses it with exit 2 naming it, before or after the subcommand (issues 13 and 19).

The command tree is walked (new commands are covered without editing this file). Nothing
real runs: ``provision.runner.run_playbook``, the doctor's probes and the lab manager are
replaced by recorders (simulated), so "honoured" means the option arrived at the run they
record, and "refused" means exit 2, the option named, and no run recorded.
"""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import click
import pytest

from provision import output
from provision.cli import COMMANDS, group, main
from provision.commands._common import walk
from provision.runner import RunResult

HOSTS = """all:
  vars:
    provision_mode: kubeadm
    kubernetes_version: "1.31"
    ansible_user: ubuntu
    ingress_nginx_service_mode: NodePort
  children:
    control_plane:
      hosts:
        cp1: {ansible_host: 10.0.0.10}
    workers:
      hosts:
        w1: {ansible_host: 10.0.0.11}
        w2: {ansible_host: 10.0.0.12}
"""

#: arguments a command needs to get past its own flag checks (not global options)
ARGS: dict[str, list[str]] = {
    "upgrade": ["--to", "1.31", "--yes"],
    "certs issue": ["--domain", "reg.example.org", "--email", "ops@example.org",
                    "--server", "https://acme.example.org/directory", "--limit", "cp1"],
    "certs renew": ["--yes"],
    "registry": ["--domain", "reg.example.org", "--email", "ops@example.org", "--user", "ci"],
    "etcd restore": ["--yes"],
    "node remove": ["w1", "--yes"],
    "reset": ["--yes"],
    "etcd fetch": ["--dest", "{tmp}/fetched"],
    "lab reboot": ["lab-1"],
    "lab ssh": ["lab-1"],
    "init": ["--dir", "{tmp}/new", "--name", "x", "--control-plane", "cp1=10.0.0.10",
             "--user", "ubuntu", "--mode", "kubeadm"],
}
#: the value each option is given with, and the words a refusal must name
OPTIONS: dict[str, tuple[list[str], str]] = {
    "check": (["--check"], "--check"),
    "limit": (["--limit", "cp1,w1"], "--limit"),  # certs works on control planes only
    "verbosity": (["-v"], "-v"),
    "json": (["--json"], "--json"),
    "inventory": (["-i", "{inv}"], "-i"),
    "extra_vars": (["-e", "etcd_backup_keep=5"], "-e"),
}


def leaves() -> list[str]:
    ctx = click.Context(group)
    out = []
    for name in sorted(COMMANDS):
        cmd = group.get_command(ctx, name)
        assert cmd is not None
        out += [" ".join((name, *path)) for path, _ in walk(cmd)]
    return out


LEAVES = leaves()


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> SimpleNamespace:
    """A valid 3-host inventory and recorders in place of every way to reach a host."""
    inv = tmp_path / "inv"
    inv.mkdir()
    (inv / "hosts.yml").write_text(HOSTS)
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    monkeypatch.setenv("PROVISION_REGISTRY_PASSWORD", "a-registry-password")  # registry --user
    for var in ("PROVISION_INVENTORY", "PROVISION_LIMIT", "PROVISION_CHECK", "PROVISION_JSON"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(output, "JSON_MODE", False)
    calls: list[dict[str, Any]] = []

    def run_playbook(**kw: Any) -> RunResult:
        run_dir = tmp_path / f"run{len(calls)}"
        run_dir.mkdir()
        calls.append({"kind": "playbook", **kw})
        return RunResult(command=kw["command"], run_dir=run_dir, status="successful", rc=0)

    def run_doctor(hosts: Any, **kw: Any) -> Any:
        from provision.doctor.engine import DoctorReport

        calls.append({"kind": "doctor", "hosts": sorted(h.name for h in hosts), **kw,
                      "keep": {h.vars.get("etcd_backup_keep") for h in hosts}})
        return DoctorReport()

    def lab(name: str) -> Any:
        def record(*a: Any, **kw: Any) -> Any:
            calls.append({"kind": f"lab {name}"})
            if name == "up":
                node = SimpleNamespace(name="lab-1", ssh_port=2222, address="127.0.0.1")
                return (SimpleNamespace(nodes=[node], kind="container", arch="amd64",
                                        mode="kubeadm"), {"ready_s": 1.0})
            return {"status": [], "down": [], "reboot": 1.0, "ssh": 0}.get(name)
        return record

    import provision.doctor.engine
    import provision.lab.manager
    import provision.runner

    monkeypatch.setattr(provision.runner, "run_playbook", run_playbook)
    monkeypatch.setattr(provision.doctor.engine, "run_doctor", run_doctor)
    for name in ("up", "down", "status", "reboot", "ssh"):
        monkeypatch.setattr(provision.lab.manager, name, lab(name))
    monkeypatch.setattr(provision.lab.manager, "make_plan", lambda **kw: kw)
    return SimpleNamespace(inv=str(inv), tmp=tmp_path, calls=calls)


def invoke(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exc:
        main(args)
    out, err = capsys.readouterr()
    return int(exc.value.code or 0), out, err


def command_line(world: SimpleNamespace, leaf: str, option: str, after: bool) -> list[str]:
    def fill(words: list[str]) -> list[str]:
        return [w.format(tmp=world.tmp, inv=world.inv) for w in words]

    opt = fill(OPTIONS[option][0])
    base = [] if option == "inventory" or leaf == "init" or leaf.startswith("lab") else [
        "-i", world.inv]
    words = leaf.split()
    own = fill(ARGS.get(leaf, []))
    if option == "limit" and "--limit" in own:  # a command that needs one (certs issue)
        del own[own.index("--limit"):own.index("--limit") + 2]
    # after: right after the command's name (lab ssh's words after NAME are the remote command)
    return [*base, *words, *opt, *own] if after else [*base, *opt, *words, *own]


def honoured(world: SimpleNamespace, leaf: str, option: str, out: str, err: str) -> bool:
    """The option's effect is visible in what the command ran or printed."""
    runs = [c for c in world.calls if c["kind"] == "playbook"]
    doctor = [c for c in world.calls if c["kind"] == "doctor"]
    if option == "json":
        return True  # checked for every case: stdout is then one JSON object
    if option == "check":
        if leaf == "upgrade":  # --check means --plan: only the read-only discovery runs
            return bool(runs) and all(r["check"] and "discover" in r["playbook"]
                                      for r in runs)
        return bool(runs) and all(r["check"] for r in runs)
    if option == "limit":
        if leaf == "validate":
            return "selects cp1, w1" in out
        if doctor:
            return doctor[0]["hosts"] == ["cp1", "w1"]
        return bool(runs) and all((r["limit"] or "").startswith("cp1,w1") for r in runs)
    if option == "verbosity":
        if doctor:
            return doctor[0]["on_host_done"] is not None
        return bool(runs) and all(r["verbosity"] >= 1 for r in runs)
    if option == "inventory":
        if leaf == "validate":
            return world.inv in out
        if doctor:
            return doctor[0]["hosts"] == ["cp1", "w1", "w2"]
        return bool(runs) and all(str(r["inventory"].path) == world.inv for r in runs)
    if option == "extra_vars":
        if leaf == "validate":
            return "valid" in out
        if doctor:  # no playbook: the doctor's checks read the hosts' variables
            return doctor[0]["keep"] == {5}
        # certs renew's re-check after the renewal reads certificates: no variables
        return any((r["extravars"] or {}).get("etcd_backup_keep") == 5 for r in runs)
    raise AssertionError(option)


CASES = [pytest.param(leaf, option, after, id=f"{leaf}-{option}-{'after' if after else 'before'}")
         for leaf in LEAVES for option in OPTIONS for after in (False, True)]


@pytest.mark.parametrize(("leaf", "option", "after"), CASES)
def test_every_command_honours_or_refuses_every_global_option(
        world: SimpleNamespace, capsys: pytest.CaptureFixture[str], leaf: str, option: str,
        after: bool) -> None:
    """Simulated runs: each global option, before or after the command, either reaches the
    run (honoured) or is refused with exit 2 naming it and nothing run (refused)."""
    args = command_line(world, leaf, option, after)
    code, out, err = invoke(args, capsys)
    assert "Traceback" not in out + err
    label = OPTIONS[option][1]
    refused = code == 2 and label in err  # (commands word their refusal; "is not supported
    # by" from @global_options, or their own, e.g. etcd restore's "no --check mode")
    if option == "json":
        obj = json.loads(out)  # honoured or refused: exactly one JSON object on stdout
        assert isinstance(obj, dict) and obj["exit_code"] == code
    if refused:
        assert world.calls == [], f"refused but ran: {world.calls}"
        if leaf == "init":
            assert not (world.tmp / "new").exists()
        return
    assert code != 2, f"{args}: exit 2 without refusing {label}: {err}"
    assert honoured(world, leaf, option, out, err), (args, world.calls, out, err)


def test_every_command_declares_its_global_options() -> None:
    """A command without @global_options refuses every global option (safe), but it is a
    bug: each must say which it honours."""
    ctx = click.Context(group)
    for name in sorted(COMMANDS):
        for path, cmd in walk(group.get_command(ctx, name)):  # type: ignore[arg-type]
            assert not getattr(cmd, "__provision_undeclared__", False), (name, path)


def test_an_undeclared_command_refuses_every_global_option_but_json(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The safe default for a command someone forgets to declare: refuse, never ignore."""
    from provision.commands._common import install_tree
    from provision.errors import UsageError

    monkeypatch.setattr(output, "JSON_MODE", False)
    ran: list[int] = []

    @click.group()
    def grp() -> None: ...

    @grp.command()
    def leaf() -> None:
        ran.append(1)

    install_tree(grp)
    for args in (["--check", "leaf"], ["leaf", "--limit", "x"], ["leaf", "-v"]):
        with pytest.raises(UsageError, match="is not supported by `grp leaf`: it does not "
                                             "declare which global options it honours"):
            grp.main(args, prog_name="grp", standalone_mode=False)
    assert ran == []
    grp.main(["leaf", "--json"], prog_name="grp", standalone_mode=False)
    assert ran == [1] and output.JSON_MODE


LIMITED = [pytest.param(leaf, id=leaf)
           for leaf in LEAVES]


@pytest.mark.parametrize("leaf", LIMITED)
@pytest.mark.parametrize("pattern", ["nope", ",", "", "w1,,w2", "!"])
def test_a_limit_that_selects_nothing_or_is_empty_is_exit_2(
        world: SimpleNamespace, capsys: pytest.CaptureFixture[str], leaf: str,
        pattern: str) -> None:
    """--limit naming no host, or with an empty part: exit 2 naming --limit, nothing run
    (commands that refuse --limit refuse it the same way)."""
    args = command_line(world, leaf, "limit", after=True)
    args[args.index("cp1,w1")] = pattern
    code, out, err = invoke(args, capsys)
    assert code == 2 and "--limit" in err, (args, out, err)
    assert world.calls == []


@pytest.mark.parametrize("args", [
    ["--json", "frobnicate"],
    ["--json", "--frobnicate", "validate"],
    ["--json"],
    ["validate", "--json", "--nope"],
    ["--json", "doctor", "--timeout", "nan"],
    ["--json", "lab", "up", "--nodes", "x"],
    ["--json", "-i", "/nonexistent/inv", "status"],
])
def test_json_usage_errors_print_exactly_one_json_object(
        world: SimpleNamespace, capsys: pytest.CaptureFixture[str], args: list[str]) -> None:
    code, out, err = invoke(args, capsys)
    assert code == 2, err
    obj = json.loads(out)  # the whole stdout is one object
    assert obj["ok"] is False and obj["exit_code"] == 2 and obj["errors"], obj
    assert world.calls == []


def test_json_from_the_environment_covers_an_unknown_command(
        world: SimpleNamespace, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROVISION_JSON", "1")
    code, out, _ = invoke(["frobnicate"], capsys)
    assert code == 2 and "No such command" in json.loads(out)["errors"][0]["message"]


def test_issue_19_flags_where_users_put_them(world: SimpleNamespace,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    """`-i X bootstrap --check`, `bootstrap -i X`, `doctor --json`: all accepted."""
    code, _, err = invoke(["-i", world.inv, "bootstrap", "--components", "base", "--check"],
                          capsys)
    assert code == 0, err
    assert world.calls[-1]["check"] is True and world.calls[-1]["playbook"] == "bootstrap.yml"
    code, _, err = invoke(["bootstrap", "-i", world.inv, "--components", "base", "-vv"],
                          capsys)
    assert code == 0, err
    assert world.calls[-1]["check"] is False and world.calls[-1]["verbosity"] == 2
    code, out, err = invoke(["-i", world.inv, "doctor", "--json"], capsys)
    assert code == 0, err
    assert json.loads(out)["command"] == "doctor"


def test_lab_ssh_keeps_the_remote_commands_options(
        world: SimpleNamespace, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """After the host name everything is the remote command, global-looking options too."""
    import provision.lab.manager

    seen: list[list[str]] = []
    monkeypatch.setattr(provision.lab.manager, "ssh", lambda name, cmd: seen.append(cmd) or 0)
    for args in (["lab-1", "--", "uname", "-m"], ["lab-1", "ls", "-v", "--check", "-i", "x"]):
        code, _, err = invoke(["lab", "ssh", *args], capsys)
        assert code == 0, err
    assert seen == [["uname", "-m"], ["ls", "-v", "--check", "-i", "x"]]


def test_verbosity_adds_up_and_a_value_given_twice_must_agree(
        world: SimpleNamespace, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = invoke(["-v", "-i", world.inv, "bootstrap", "--components", "base", "-v"],
                          capsys)
    assert code == 0 and world.calls[-1]["verbosity"] == 2, err
    code, _, err = invoke(["-i", world.inv, "--limit", "w1", "bootstrap", "--limit", "w2"],
                          capsys)
    assert code == 2 and "--limit given twice ('w1' and 'w2')" in err
    code, _, err = invoke(["-i", world.inv, "--limit", "w1", "bootstrap", "--components",
                           "base", "--limit", "w1"], capsys)
    assert code == 0 and world.calls[-1]["limit"] == "w1", err


def test_environment_options_are_honoured_or_refused_too(
        world: SimpleNamespace, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """PROVISION_LIMIT with upgrade is refused (not silently dropped); PROVISION_CHECK makes
    upgrade plan only; PROVISION_INVENTORY is a default lab commands ignore; a -i on the
    command line beats PROVISION_INVENTORY."""
    monkeypatch.setenv("PROVISION_LIMIT", "w1")
    code, _, err = invoke(["-i", world.inv, "upgrade", "--to", "1.31", "--yes"], capsys)
    assert code == 2 and "--limit (from PROVISION_LIMIT) is not supported by `provision " \
                         "upgrade`" in err
    assert world.calls == []
    monkeypatch.delenv("PROVISION_LIMIT")
    monkeypatch.setenv("PROVISION_CHECK", "1")
    invoke(["-i", world.inv, "upgrade", "--to", "1.31", "--yes"], capsys)
    assert [(c["playbook"], c["check"]) for c in world.calls] == [
        ("upgrade-discover.yml", True)]
    monkeypatch.delenv("PROVISION_CHECK")
    monkeypatch.setenv("PROVISION_INVENTORY", "/nonexistent")
    monkeypatch.setenv("PROVISION_JSON", "1")
    code, _, err = invoke(["lab", "status"], capsys)
    assert code == 0, err
    code, out, err = invoke(["lab", "ssh", "lab-1"], capsys)  # ssh prints no JSON: ignored
    assert code == 0 and out == "", err
    monkeypatch.delenv("PROVISION_JSON")
    code, out, err = invoke(["validate", "-i", world.inv], capsys)
    assert code == 0 and world.inv in out, err


def test_upgrade_check_is_the_plan_and_never_runs_the_upgrade_playbook(
        world: SimpleNamespace, capsys: pytest.CaptureFixture[str]) -> None:
    """`provision --check upgrade` used to upgrade every node: now only the read-only
    discovery runs (in check mode) and the message says so."""
    code, out, err = invoke(["--check", "-i", world.inv, "upgrade", "--to", "1.31", "--yes"],
                            capsys)
    assert "--check: only the plan is printed" in err
    assert [c["playbook"] for c in world.calls] == ["upgrade-discover.yml"]


def test_minikube_mode_upgrade_check_and_status_limit(
        world: SimpleNamespace, capsys: pytest.CaptureFixture[str]) -> None:
    """minikube mode: --check makes the upgrade discovery-only (check mode), status passes
    --limit to its run."""
    inv = world.tmp / "mk.yml"
    inv.write_text("all:\n  vars:\n    provision_mode: minikube\n    ansible_user: ubuntu\n"
                   "  children:\n    control_plane:\n      hosts:\n"
                   "        vm1: {ansible_host: 10.0.0.7}\n")
    invoke(["-i", str(inv), "upgrade", "--to", "1.31", "--yes", "--check"], capsys)
    assert [(c["playbook"], c["check"]) for c in world.calls] == [
        ("upgrade-minikube-discover.yml", True)]
    invoke(["-i", str(inv), "status", "--limit", "vm1"], capsys)
    assert world.calls[-1]["limit"] == "vm1"
    code, _, err = invoke(["-i", str(inv), "status", "--limit", "vm2"], capsys)
    assert code == 2 and "--limit vm2" in err and len(world.calls) == 2


def test_status_limit_reads_the_selected_hosts_plus_the_first_control_plane(
        world: SimpleNamespace, capsys: pytest.CaptureFixture[str]) -> None:
    invoke(["-i", world.inv, "status", "--limit", "w1"], capsys)
    assert world.calls[-1]["limit"] == "w1,cp1"
    invoke(["-i", world.inv, "status", "--limit", "!cp1"], capsys)  # Ansible applies ! last
    assert world.calls[-1]["limit"] == "w1,w2,cp1"


def test_status_limit_report_keeps_only_the_selected_rows() -> None:
    """Pure: the report is cut to the selected hosts' facts and nodes."""
    from provision.commands.status import limit_report

    report = {"first_control_plane": "cp1", "cluster_configuration": "x",
              "hosts": {"cp1": {"node_name": "cp1"}, "w1": {"node_name": "worker-1"},
                        "w2": {}},
              "nodes_json": {"items": [{"metadata": {"name": n}}
                                       for n in ("cp1", "worker-1", "w2")]}}
    cut = limit_report(report, {"w1": ("worker", "w1"), "w2": ("worker", "w2")})
    assert set(cut["hosts"]) == {"w1", "w2"}
    assert [n["metadata"]["name"] for n in cut["nodes_json"]["items"]] == ["worker-1", "w2"]
    assert cut["cluster_configuration"] == "x" and report["hosts"]["cp1"]  # input untouched


# ------------------------------------------------------------------------ -e / --extra-vars
def test_extra_vars_forms_are_typed_by_the_schema_and_reach_the_run(
        world: SimpleNamespace, capsys: pytest.CaptureFixture[str]) -> None:
    varfile = world.tmp / "vars.yml"
    varfile.write_text("etcd_backup_verify_restore: true\n")
    code, _, err = invoke(["-i", world.inv, "bootstrap", "--components", "base",
                           "-e", "etcd_backup_keep=5 kubernetes_version=1.30",
                           "-e", '{"metallb_addresses": ["10.0.0.200/32"]}',
                           "-e", f"@{varfile}"], capsys)
    assert code == 0, err
    extra = world.calls[-1]["extravars"]
    assert extra == {"etcd_backup_keep": 5, "kubernetes_version": "1.30",
                     "metallb_addresses": ["10.0.0.200/32"],
                     "etcd_backup_verify_restore": True,
                     "provision_components": ["base"]}


@pytest.mark.parametrize(("value", "message"), [
    ("etcd_bakup_keep=5", "-e etcd_bakup_keep: unknown variable"),
    ("etcd_backup_keep=five", "-e etcd_backup_keep: expected an integer"),
    ("kubernetes_version=1.99", "-e kubernetes_version: '1.99' is not a Kubernetes release"),
    ("ansible_host=10.9.9.9", "-e ansible_host: connection variables are set per host"),
    ("acme_domain={{lookup('pipe','touch CANARY')}}", "-e acme_domain: templates"),
    ("noequals", "-e 'noequals': expected KEY=VALUE"),
    ("@/nonexistent.yml", "-e @/nonexistent.yml: not a regular file"),
    ("[1, 2]", "expected KEY=VALUE"),
    ('{"a": [', "not valid YAML or JSON"),
    ('{"etcd_backup_keep": ' + "9" * 5000 + "}", "cannot read it"),
    ("[" * 5000, "expected KEY=VALUE"),
    ("{a: " + "[" * 50 + "]" * 50 + "}", "nested deeper than 20 levels"),
    ("---\na: &a [1,1,1,1,1,1,1,1,1]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\n"
     "c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\n"
     "e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]\nf: [*e,*e,*e,*e,*e,*e,*e,*e,*e]\n",
     "more than 10000 values"),
    ("etcd_backup_keep=" + "9" * 5000, "-e etcd_backup_keep: expected an integer"),
], ids=["unknown", "type", "version", "connection", "template", "no-equals", "no-file", "list",
        "bad-json", "huge-number", "brackets", "deep", "alias-bomb", "huge-number-kv"])
def test_bad_extra_vars_are_exit_2_naming_the_key_and_nothing_runs(
        world: SimpleNamespace, capsys: pytest.CaptureFixture[str], value: str,
        message: str) -> None:
    code, out, err = invoke(["-i", world.inv, "bootstrap", "--components", "base", "-e", value],
                            capsys)
    assert code == 2 and message in err, err
    assert world.calls == [] and not (world.tmp / "CANARY").exists()


def test_an_extra_var_the_command_sets_from_a_flag_is_refused(
        world: SimpleNamespace, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = invoke(["-i", world.inv, "certs", "renew", "--yes", "-e",
                           "kubeadm_certs_kubernetes_dir=/srv/k8s"], capsys)
    assert code == 2 and "-e kubeadm_certs_kubernetes_dir: set by `provision certs renew` " \
                         "itself" in err
    assert world.calls == []


def test_extra_vars_take_part_in_the_whole_inventory_checks(
        world: SimpleNamespace, capsys: pytest.CaptureFixture[str]) -> None:
    """An -e pod_cidr that contains a node's address is refused like one in the inventory,
    and the message says it came from -e."""
    code, _, err = invoke(["-i", world.inv, "validate", "-e", "pod_cidr=10.0.0.0/16"], capsys)
    assert code == 2 and "-e/--extra-vars: group all: pod_cidr 10.0.0.0/16 contains the " \
                         "address 10.0.0.10 of host cp1" in err, err


def test_a_secret_extra_var_is_never_echoed(world: SimpleNamespace,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    """acme_dns_env is declared no_log: a bad value is named by key, never shown."""
    code, out, err = invoke(["--json", "-i", world.inv, "bootstrap", "-e",
                             "acme_dns_env=CF_DNS_API_TOKEN=s3cr3t-CANARY"], capsys)
    assert code == 2 and "-e acme_dns_env: invalid value" in err
    assert "s3cr3t-CANARY" not in out + err


def test_extra_vars_are_laid_over_the_hosts_for_the_python_checks(
        world: SimpleNamespace, capsys: pytest.CaptureFixture[str]) -> None:
    """bootstrap's add-on check sees -e (extra vars win, as in Ansible): without a MetalLB
    pool, -e ingress_nginx_service_mode=LoadBalancer is refused before anything runs."""
    code, _, err = invoke(["-i", world.inv, "bootstrap", "-e",
                           "ingress_nginx_service_mode=LoadBalancer"], capsys)
    assert code == 2 and "needs a MetalLB address pool" in err
    assert world.calls == []
