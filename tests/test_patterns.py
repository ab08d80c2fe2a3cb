"""Injection (issue 13): declared patterns refuse hostile values before any host is contacted,
and the roles quote what they render, so a value that slips past the checks stays inert.

- pure tables: every declared pattern, the ASCII-only number and version parsers;
- the command line: `certs` flags with hostile values exit 2 naming the flag, and no playbook
  runs (``provision.runner.run_playbook`` and ``ansible_runner.run`` fail the test if called);
- the last layer: the roles' scripts and unit files rendered by a real Ansible run (connection
  local, tmp dir) with hostile values, then the scripts executed with stub ``lego``,
  ``install`` and ``systemctl``: no canary file appears and the stubs receive each value as
  one literal argument; the unit files keep exactly the template's directives.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from provision.cli import main
from provision.patterns import (
    PATTERNS,
    address_problem,
    is_template,
    parse_ascii_int,
    parse_port,
    parse_size,
)
from provision.versions import parse_release, parse_version

REPO = Path(__file__).resolve().parent.parent
ROLES = REPO / "roles"

# pattern -> (values it accepts, values it refuses)
PATTERN_CASES: dict[str, tuple[list[str], list[str]]] = {
    "cluster_name": (["provision", "prod", "lab-1", "a" * 63],
                     ["../../etc/x y", "Prod", "-x", "x-", "a" * 64, "", "x\n", "x;id", "ｘ",
                      "{{ x }}"]),
    "user": (["ubuntu", "deploy_1", "_svc", "first.last", "machine$", "a" * 32],
             ["root; touch x", "-oops", "ubuntu\n", "Ubuntu", "1user", "a" * 33, "", "a b",
              "ｕser", ".x", "{{ ansible_user }}"]),
    "domain": (["registry.example.org", "*.example.org", "a.b.c.example.co.uk", "xn--bcher-kva.de"],
               ["x\n", "registry.example.org\n", "example", "a..b", "-a.example.org",
                "a.example.org;id", "a.example.org/x", "*.*.example.org", "a.123",
                "ａ.example.org", ""]),
    "email": (["ops@example.org", "a.b+tag@sub.example.org"],
              ["ops@example.org\n", "ops@example", "o ps@example.org", "a@b@example.org",
               "$(id)@example.org", "ops@example.org;id", "-x@example.org", ""]),
    "unit": (["nginx", "docker-registry.service", "getty@tty1.service", "", "a:b"],
             ["x$(cmd)", "nginx\n", "-nginx", "a b", "x;id", "x/y", "ｎginx"]),
    "abs_path": (["/etc/kubernetes", "/", "/var/lib/etcd-2", "/opt/x+y@z"],
                 ["/etc/kubernetes;id", "etc/kubernetes", "/etc/kubernetes/", "//etc",
                  "/etc/../x", "/etc/./x", "/etc/x\n", "/etc/x y", "/etc/$x", "/etc/`id`",
                  "", "/etc/ｋ"]),
    "controller_path": (["~/.ssh/id_ed25519", "/home/u/keys/id", "keys/id rsa"],
                        ["~/.ssh/id\n", "-i", "$(id)", "a;b", "a`b`", "a|b", ""]),
    "https_url": (["https://acme-v02.api.letsencrypt.org/directory",
                   "https://10.0.0.1:14000/dir"],
                  ["http://ca/dir", "https://", "https://ca/dir\n", "https://ca/$(id)",
                   "https://ca/ d"]),
    "dns_provider": (["cloudflare", "route53", "exec"],
                     ["Cloudflare", "cf$(id)", "cf\n", "-cf", ""]),
    "calendar": (["daily", "Mon *-*-* 03:00:00", "*-*-01 03:00:00", "Mon..Fri 02:00 UTC",
                  "Sat 04:00 Europe/Berlin"],
                 ["daily\nUnit=ssh.service", "daily;x", "$(id)", "-daily", "", "daily%n"]),
    "timespan": (["1h", "5min", "0", "1h 30min", "2.5s"],
                 ["1h\nUser=root", "x", "", "1h;x", "-1h", "１h"]),
    "interpreter": (["auto", "auto_silent", "/usr/bin/python3", "/usr/bin/env python3"],
                    ["python3", "/usr/bin/python3;id", "/usr/bin/python3\n", ""]),
    "plugin": (["ssh", "local", "community.docker.docker"],
               ["ssh;id", "SSH", "ssh\n", ""]),
    "endpoint": (["k8s.example.org:6443", "10.0.0.10", "[fd00::10]:6443", "fd00::10",
                  "lb.example.org"],
                 ["a;b", "k8s:99999", "k8s:0", "a:b:c", "x\n:1", '"x', "-x:1", "k8s.example.org:"]),
    "san": (["k8s.example.org", "198.51.100.7", "fd00::1", "*.example.org"],
            ["a b", 'x"', "x\ny", "-x", ""]),
    "single_line": (["-o ProxyJump=bastion -o ServerAliveInterval=5", ""],
                    ["-o X=1\n-o Y=2", "a\rb"]),
}


@pytest.mark.parametrize(("name", "value", "accepted"), [
    (name, v, ok) for name, (good, bad) in PATTERN_CASES.items()
    for ok, values in ((True, good), (False, bad)) for v in values])
def test_declared_pattern(name: str, value: str, accepted: bool) -> None:
    problem = PATTERNS[name].problem(value)
    assert (problem is None) == accepted, f"{name} {value!r}: {problem}"


@pytest.mark.parametrize(("value", "fragment"), [
    ("127.0.0.1", None), ("::1", None), ("fd00::10", None), ("cp1", None), ("node_1", None),
    ("cp1.example.org", None),
    ("[::1]", "without brackets"), ("10.0.0.1:22", "a port goes in ansible_port"),
    ("host:2222", "a port goes in ansible_port"), ("", "empty"), ("a\nb", "newline"),
    ("-oProxyCommand=id", "starts with '-'"), ("a;id", "is not a DNS name"),
    ("fe80::1%eth0", "zone index"), ("{{ lookup('pipe','id') }}", "templates"),
    ("１.2.3.4", "non-ASCII"), (" 10.0.0.1", "is not a DNS name"),
])
def test_ssh_address(value: str, fragment: str | None) -> None:
    problem = address_problem(value)
    if fragment is None:
        assert problem is None, problem
    else:
        assert problem is not None and fragment in problem, problem


@pytest.mark.parametrize("value", ["{{ x }}", "a{% if 1 %}b{% endif %}", "{# c #}",
                                   ["ok", "{{ x }}"], {"k": "{{ x }}"}])
def test_templates_are_recognised_in_any_form(value: Any) -> None:
    assert is_template(value)


@pytest.mark.parametrize(("text", "parsed"), [
    ("1.31", (1, 31, None)), ("1.31.2", (1, 31, 2)),
    ("1.31\n", None), (" 1.31", None), ("1.31 ", None), ("1.３１", None), ("１.31", None),
    ("1.31.٢", None), ("v1.31", None), ("1." + "9" * 5000, None), ("1.31.", None),
])
def test_parse_version_is_ascii_and_exact(text: str, parsed: Any) -> None:
    assert parse_version(text) == parsed


def test_parse_release_is_ascii() -> None:
    assert parse_release("v1.31.2\n") == (1, 31, 2)  # tool output: white space ignored
    assert parse_release("1.31.２") is None
    assert parse_release("1.31.2-1.1") == (1, 31, 2)


@pytest.mark.parametrize("text", ["２", "1\n", " 1", "+1", "-1", "1_000", "1" * 19, "", "1.0",
                                  "٣"])
def test_parse_ascii_int_refuses(text: str) -> None:
    with pytest.raises(ValueError, match="--batch"):
        parse_ascii_int(text, "--batch", minimum=1)


def test_ascii_parsers_accept_plain_numbers() -> None:
    assert parse_ascii_int("12", "--batch", minimum=1) == 12
    assert parse_port("22", "--port") == 22
    with pytest.raises(ValueError, match="at most 65535"):
        parse_port("65536", "--port")
    assert parse_size("20G") == 20 << 30
    assert parse_size("4096M") == 4 << 30
    for bad in ("２０G", "20G\n", " 20G", "0G", "9" * 13 + "G", "-1G"):
        with pytest.raises(ValueError, match="--disk"):
            parse_size(bad)


def test_cli_number_flags_use_ascii_parsers() -> None:
    """upgrade --batch and lab --disk (pure parsers of those commands) refuse other digits."""
    from provision.lab.manager import _valid_size
    from provision.upgrade.steps import parse_batch

    for bad in ("２", " 2", "2\n", "２%"):
        with pytest.raises(ValueError, match="--batch"):
            parse_batch(bad)
    assert not _valid_size("２０G") and _valid_size("20G")


# --- the command line -----------------------------------------------------------------------

@pytest.fixture()
def nothing_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    import ansible_runner

    import provision.runner

    def boom(*a: Any, **k: Any) -> None:
        raise AssertionError("a playbook ran despite invalid input")

    monkeypatch.setattr(provision.runner, "run_playbook", boom)
    monkeypatch.setattr(ansible_runner, "run", boom)


@pytest.fixture()
def inventory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    inv = tmp_path / "hosts.yml"
    inv.write_text("all:\n  children:\n    control_plane:\n      hosts:\n"
                   "        cp1: {ansible_host: 127.0.0.1, ansible_connection: local}\n")
    return inv


CERTS_FLAG_CASES = [
    (["certs", "issue", "--domain", "x\n"], "--domain"),
    (["certs", "issue", "--domain", "a.example.org\n"], "--domain"),
    (["certs", "issue", "--domain", "a.example.org;id"], "--domain"),
    (["certs", "issue", "--domain", "ａ.example.org"], "--domain"),
    (["certs", "issue", "--email", "ops@example.org\n"], "--email"),
    (["certs", "issue", "--email", "$(id)@example.org"], "--email"),
    (["certs", "issue", "--service", "x$(cmd)"], "--service"),
    (["certs", "issue", "--service", "nginx\nExecStartPre=/bin/id"], "--service"),
    (["certs", "issue", "--server", "https://ca/dir\n"], "--server"),
    (["certs", "issue", "--server", "http://ca/dir"], "--server"),
    (["certs", "issue", "--dns-provider", "cf;id"], "--dns-provider"),
    (["certs", "renew", "--yes", "--kubernetes-dir", "/etc/kubernetes;id"], "--kubernetes-dir"),
    (["certs", "renew", "--yes", "--kubernetes-dir", "/etc/kubernetes\n"], "--kubernetes-dir"),
    (["certs", "renew", "--yes", "--kubernetes-dir", "/etc/../kubernetes"], "--kubernetes-dir"),
    (["certs", "renew", "--yes", "--kubernetes-dir", "etc/kubernetes"], "--kubernetes-dir"),
    (["certs", "renew", "--yes", "--before-days", "３０"], "--before-days"),
    (["certs", "check", "--kubernetes-dir", "/etc/$(id)"], "--kubernetes-dir"),
    (["certs", "check", "--warn-days", "３０"], "--warn-days"),
    (["certs", "check", "--warn-days", " 30"], "--warn-days"),
    (["upgrade", "--to", "1.31\n", "--plan"], "--to"),
    (["upgrade", "--to", " 1.31", "--plan"], "--to"),
    (["upgrade", "--to", "1.３１", "--plan"], "--to"),
    (["upgrade", "--to", "1.31", "--batch", "２", "--plan"], "--batch"),
]


@pytest.mark.parametrize(("args", "flag"), CERTS_FLAG_CASES,
                         ids=[f"{a[0]}-{a[-1]!r}" for a, _ in CERTS_FLAG_CASES])
def test_hostile_flag_exits_2_naming_the_flag_and_runs_nothing(
        args: list[str], flag: str, inventory: Path, nothing_runs: None,
        capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as exc:
        # upgrade refuses --limit (it moves the whole cluster): only the bad flag is under test
        limit = [] if args[0] == "upgrade" else ["--limit", "cp1"]
        main(["-i", str(inventory), *limit, *args])
    _, err = capsys.readouterr()
    assert exc.value.code == 2, err
    assert flag in err and "Traceback" not in err, err
    assert not (tmp_path / "state" / "provision" / "runs").exists()


# --- the last layer: the roles' quoting -------------------------------------------------------

def _run_render(tmp_path: Path, values: dict[str, Any]) -> Path:
    from provision.runner import run_playbook

    out = tmp_path / "rendered"
    out.mkdir()
    inv = tmp_path / "render-hosts.yml"
    inv.write_text("all:\n  hosts:\n    h1: {ansible_connection: local}\n")
    plugins = os.pathsep.join(str(ROLES / r / "filter_plugins")
                              for r in ("acme_cert", "kubeadm_certs", "docker"))
    result = run_playbook(command="test-render", inventory=inv,
                          playbook=str(REPO / "tests" / "playbooks" / "render-hostile.yml"),
                          extravars={**values, "render_dir": str(out),
                                     "ansible_python_interpreter": sys.executable},
                          envvars={"ANSIBLE_FILTER_PLUGINS": plugins}, quiet=True)
    assert result.ok, f"{result.errors}\n{result.log_path.read_text()[-3000:]}"
    return out


END = "@@END-OF-CALL@@"


def _stub(bindir: Path, name: str) -> None:
    """A stub command that appends its argv (NUL-separated, one record per call) to
    $STUB_LOG/<name> and exits 0."""
    path = bindir / name
    path.write_text(f'#!/bin/sh\nprintf "%s\\0" "$@" {END} >> "$STUB_LOG/{name}"\n'
                    f'[ "{name}" = lego ] && printf "%s" "$TOKEN" > "$STUB_LOG/token"\n'
                    "exit 0\n")
    path.chmod(0o755)


def _calls(log: Path) -> list[list[str]]:
    calls: list[list[str]] = [[]]
    for token in log.read_text().split("\0")[:-1]:
        if token == END:
            calls.append([])
        else:
            calls[-1].append(token)
    return calls[:-1]


def _unit_keys(text: str) -> list[str]:
    keys = []
    for line in text.splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        m = re.fullmatch(r"(\[[A-Za-z]+\])|([A-Za-z]+)=.*", line)
        assert m, f"not a unit file line: {line!r}"
        keys.append(m.group(1) or m.group(2))
    return keys


def _template_keys(template: Path) -> list[str]:
    return [k for k in _unit_keys(re.sub(r"\{%.*?%\}", "", template.read_text())) if k]


def _systemd_words(line: str) -> list[str]:
    """The words of an ExecStart= value the way systemd splits them (quotes, C escapes, %% and
    $$); enough of systemd's rules for the words our templates write."""
    words: list[str] = []
    for m in re.finditer(r'"((?:[^"\\]|\\.)*)"|(\S+)', line):
        word = m.group(1) if m.group(1) is not None else m.group(2)
        if m.group(1) is not None:
            word = re.sub(r"\\x([0-9a-f]{2})|\\(.)",
                          lambda e: chr(int(e.group(1), 16)) if e.group(1) else e.group(2), word)
        words.append(word.replace("%%", "%").replace("$$", "$"))
    return words


HOSTILE_DOMAIN = "a.example.org\ntouch canary-d1 `touch canary-d2` $(touch canary-d3)"
HOSTILE_SERVICE = "x$(touch canary-s1);touch canary-s2\nExecStartPre=/bin/touch canary-s3"
HOSTILE_K8S_DIR = '/etc/kubernetes;id\nExecStartPre=/bin/touch canary-k %n $HOME "q" \\'


@pytest.fixture(scope="module")
def hostile_render(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    tmp = tmp_path_factory.mktemp("hostile")
    values = {
        "acme_domain": HOSTILE_DOMAIN,
        "acme_email": "o@x.org$(touch canary-e1)\ntouch canary-e2",
        "acme_server": "https://ca/dir$(touch canary-srv)",
        "acme_challenge": "dns-01",
        "acme_dns_provider": "cf$(touch canary-p)",
        "acme_dns_env": {"TOKEN": "$(touch canary-env) `touch canary-env2`",
                         "X;touch canary-k1;Y": "v"},
        "acme_service": HOSTILE_SERVICE,
        "acme_cert_owner": "root$(touch canary-o)",
        "acme_cert_group": "root\ntouch canary-g",
        "acme_lego_dir": str(tmp / "lego"),
        "acme_config_dir": str(tmp / "conf"),
        "acme_cert_path": str(tmp / "out" / "c$(touch canary-c).crt"),
        "acme_key_path": str(tmp / "out" / "k\ntouch canary-kp"),
        "acme_renew_schedule": "daily\nExecStartPre=/bin/touch canary-t",
        "acme_renew_random_delay": "1h\nUser=root",
        "kubeadm_certs_kubernetes_dir": HOSTILE_K8S_DIR,
        "kubeadm_certs_timer_schedule": "*-*-01 03:00:00\nOnBootSec=1",
        "kubeadm_certs_timer_randomized_delay": "1h %n",
        "_kubeadm_certs_user_kubeconfig": "/home/u/.kube/config\nUser=root",
        "docker_prune_schedule": "weekly\nUnit=ssh.service",
        "docker_prune_until": '168h" --filter "x\nExecStartPre=/bin/touch canary-dp',
    }
    return {"tmp": tmp, "values": values, "out": _run_render(tmp, values)}


def test_acme_scripts_keep_hostile_values_inert(hostile_render: dict[str, Any]) -> None:
    """Simulated host (this machine, stub lego/install/systemctl): the rendered acme scripts
    run with hostile values; no canary appears, each value arrives as one literal argument."""
    tmp, values, out = hostile_render["tmp"], hostile_render["values"], hostile_render["out"]
    work = tmp / "work"
    bindir, logs = work / "bin", work / "logs"
    bindir.mkdir(parents=True)
    logs.mkdir()
    for name in ("lego", "install", "systemctl"):
        _stub(bindir, name)
    conf_dir = Path(values["acme_config_dir"]) / values["acme_domain"].replace("*", "_")
    conf_dir.mkdir(parents=True)
    shutil.copy(out / "lego.env", conf_dir / "env")
    env = {"PATH": f"{bindir}:/usr/bin:/bin", "STUB_LOG": str(logs)}
    for script, args in (("acme-cert.sh", ["run"]), ("acme-cert.sh", ["renew"]),
                         ("acme-deploy.sh", [])):
        proc = subprocess.run(["/bin/sh", str(out / script), *args], cwd=work, env=env,
                              capture_output=True, text=True, timeout=30)
        assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in tmp.rglob("canary*")) == []  # what `touch canary-..` makes
    run, renew = _calls(logs / "lego")
    for flag, key in (("--domains", "acme_domain"), ("--email", "acme_email"),
                      ("--server", "acme_server"), ("--dns", "acme_dns_provider")):
        assert run[run.index(flag) + 1] == values[key]
    assert (logs / "token").read_text() == values["acme_dns_env"]["TOKEN"]
    assert renew[-1] == str(Path("/usr/local/sbin") / ("acme-deploy-" + values["acme_domain"]))
    assert _calls(logs / "systemctl") == [["reload-or-restart", values["acme_service"]]]
    installs = _calls(logs / "install")
    assert [c[-1] for c in installs] == [values["acme_cert_path"], values["acme_key_path"]]
    assert installs[0][2] == values["acme_cert_owner"]


@pytest.mark.parametrize("unit", [
    "acme_cert/templates/acme-renew.service", "acme_cert/templates/acme-renew.timer",
    "kubeadm_certs/templates/provision-kubeadm-certs-renew.service",
    "kubeadm_certs/templates/provision-kubeadm-certs-renew.timer",
    "docker/templates/docker-prune.service", "docker/templates/docker-prune.timer"])
def test_unit_files_keep_exactly_their_directives(hostile_render: dict[str, Any],
                                                  unit: str) -> None:
    """A newline in a value never adds a directive: the rendered unit has the template's keys,
    in order, and nothing else."""
    text = (hostile_render["out"] / Path(unit).name).read_text()
    assert _unit_keys(text) == _template_keys(ROLES / f"{unit}.j2"), text


def test_exec_start_words_are_the_literal_values(hostile_render: dict[str, Any]) -> None:
    out, values = hostile_render["out"], hostile_render["values"]
    service = (out / "provision-kubeadm-certs-renew.service").read_text()
    exec_line = next(line for line in service.splitlines() if line.startswith("ExecStart="))
    words = _systemd_words(exec_line.removeprefix("ExecStart="))
    assert words[1:3] == ["--dir", values["kubeadm_certs_kubernetes_dir"]]
    assert words[words.index("--kubeconfig-copy") + 1] == \
        values["_kubeadm_certs_user_kubeconfig"]
    prune = (out / "docker-prune.service").read_text()
    exec_line = next(line for line in prune.splitlines() if line.startswith("ExecStart="))
    words = _systemd_words(exec_line.removeprefix("ExecStart="))
    assert words[-2:] == ["--filter", "until=" + values["docker_prune_until"]]


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="needs systemd-analyze")
def test_systemd_reads_the_escaped_values(tmp_path: Path) -> None:
    """systemd-analyze verify accepts a unit written with the role filter (ExecStart on a real
    binary) and reports no unknown or invalid line."""
    sys.path.insert(0, str(ROLES / "acme_cert" / "filter_plugins"))
    try:
        import systemd_quote
    finally:
        sys.path.pop(0)
    unit = tmp_path / "x.service"
    unit.write_text("[Unit]\nDescription=" + systemd_quote.systemd_value("a\nUser=root %n \\")
                    + "\n[Service]\nType=oneshot\nExecStart=/bin/echo "
                    + systemd_quote.systemd_exec_arg('a\nb $HOME %n "q" \\') + "\n")
    proc = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0 and "nknown" not in proc.stderr \
        and "nvalid" not in proc.stderr, proc.stderr


def test_systemd_quote_is_one_file_shared_by_every_role_that_writes_units() -> None:
    """One filter (roles/acme_cert's); the other roles that write unit files link to it, as
    roles/etcd_snapshot links to provision/etcd (role plugins are looked up per role)."""
    copies = sorted(ROLES.glob("*/filter_plugins/systemd_quote.py"))
    assert len(copies) == 4  # acme_cert, docker, kubeadm_certs, proxy
    source = ROLES / "acme_cert" / "filter_plugins" / "systemd_quote.py"
    assert not source.is_symlink()
    assert all(p == source or (p.is_symlink() and p.resolve() == source.resolve())
               for p in copies)
    assert len({p.read_bytes() for p in copies}) == 1


def test_kubeadm_config_cluster_name_is_quoted() -> None:
    template = (ROLES / "kubeadm_control_plane/templates/kubeadm-config.yaml.j2").read_text()
    assert "clusterName: {{ cluster_name | string | to_json }}" in template


@pytest.mark.parametrize(("role_re", "pattern", "cases"), [
    (("acme_cert", "_acme_re", "domain"), "domain", "domain"),
    (("acme_cert", "_acme_re", "email"), "email", "email"),
    (("acme_cert", "_acme_re", "unit"), "unit", "unit"),
    (("acme_cert", "_acme_re", "user"), "user", "user"),
    (("acme_cert", "_acme_re", "calendar"), "calendar", "calendar"),
    (("acme_cert", "_acme_re", "timespan"), "timespan", "timespan"),
    (("acme_cert", "_acme_re", "provider"), "dns_provider_or_empty", "dns_provider"),
    (("acme_cert", "_acme_re", "path_or_empty"), "abs_path_or_empty", "abs_path"),
    (("docker", "_docker_user_re", None), "user", "user"),
    (("kubeadm_certs", "_kubeadm_certs_user_re", None), "user_or_empty", "user"),
    (("kubeadm_certs", "_kubeadm_certs_path_re", None), "abs_path", "abs_path"),
])
def test_role_checks_agree_with_the_declared_patterns(role_re: tuple[str, str, str | None],
                                                      pattern: str, cases: str) -> None:
    """The roles check again what Python checked; on every table value the role's regex (as
    Ansible's match test applies it) says what the declared pattern says (except templates,
    which never reach a role unevaluated)."""
    import yaml

    role, var, key = role_re
    data = yaml.safe_load((ROLES / role / "vars" / "main.yml").read_text())[var]
    regex = data[key] if key else data
    good, bad = PATTERN_CASES[cases]
    for value in good + bad:
        if is_template(value):
            continue
        expected = PATTERNS[pattern].ok(value)
        if pattern.startswith("abs_path"):  # the role checks normalisation with normpath
            expected = expected or (PATTERNS[pattern].problem(value) or "").find(
                "normalised") >= 0
        assert bool(re.match(regex, value)) == expected, (role, value)


def test_declared_role_option_patterns_fit_the_roles() -> None:
    """Every pattern declared for a role option names a real option and pattern, and the
    role's own default satisfies it (a template default only where the option is templatable)."""
    from provision.schema import CONNECTION_PASSTHROUGH, ROLE_OPTION_PATTERNS, VARIABLES
    from provision.validate import ANSIBLE_PASSTHROUGH, role_options

    options = role_options()
    declared = {v.name: v.pattern for v in VARIABLES}

    def alias(default: object) -> str | None:
        """The variable a default is exactly ``{{ name }}`` of (the value is then checked as
        that variable), when it has a declared pattern."""
        m = re.fullmatch(r"\{\{\s*([a-z_][a-z0-9_]*)\s*\}\}", default or "") \
            if isinstance(default, str) else None
        return m.group(1) if m and declared.get(m.group(1)) else None

    for name, (pattern, templatable) in ROLE_OPTION_PATTERNS.items():
        assert name in options, f"{name}: not an option of any role"
        assert pattern in PATTERNS, f"{name}: unknown pattern {pattern}"
        default = options[name].get("default")
        if alias(default):
            assert declared[alias(default)] == pattern, (name, default)
        elif is_template(default):
            assert templatable, f"{name}: the role default is a template: mark it templatable"
        elif default is not None:
            values = default if isinstance(default, list) else [default]
            for value in values:
                assert PATTERNS[pattern].ok(value), (name, value, PATTERNS[pattern].problem(value))
    for var in VARIABLES:
        if var.pattern is not None:
            assert var.pattern in PATTERNS, var.name
            defaults = var.default if isinstance(var.default, list) else [var.default]
            if alias(var.default):
                assert declared[alias(var.default)] == var.pattern, var.name
                continue
            for value in (d for d in defaults if d is not None):
                assert PATTERNS[var.pattern].ok(value), var.name
    assert set(CONNECTION_PASSTHROUGH) <= ANSIBLE_PASSTHROUGH
