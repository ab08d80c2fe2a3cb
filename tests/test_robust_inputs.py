"""Never a traceback, never a hang (issue 13): every hostile input is exit 2 with a message
naming the file or the flag, and with --json exactly one JSON object on stdout.

Table-driven: each case builds its input under tmp_path (real files: FIFOs, sparse files,
binary and UTF-16 files, /dev/zero) and runs ``provision.cli.main`` in-process. A per-test
timeout turns a hang (a FIFO opened for reading, /dev/zero read to the end) into a failure
instead of a blocked CI job. Inventory hosts point at closed loopback ports, so a case that
slipped through validation would fail fast as unreachable (exit 3) instead of passing.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from provision.cli import main
from provision.inventory import load_inventory
from provision.safeload import MAX_BYTES, InputError, load_yaml, loads_json

BIG = "9" * 5000  # Python 3.11 refuses int <-> str conversions over 4,300 digits

HOSTS = """\
all:
  children:
    control_plane:
      hosts:
        cp1: {ansible_host: 127.0.0.2, ansible_port: 1}
    workers:
      hosts:
        w1: {ansible_host: 127.0.0.3, ansible_port: 1}
"""
ALL_VARS = 'kubernetes_version: "1.31.2"\npod_cidr: 10.244.0.0/16\n'


def inventory(root: Path, hosts: str = HOSTS, all_vars: str = ALL_VARS) -> Path:
    inv = root / "inv"
    (inv / "group_vars").mkdir(parents=True, exist_ok=True)
    (inv / "hosts.yml").write_text(hosts)
    (inv / "group_vars" / "all.yml").write_text(all_vars)
    return inv


def fifo(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    os.mkfifo(path)
    return path


def sparse(path: Path, size: int = MAX_BYTES + 1) -> Path:
    with open(path, "wb") as fh:
        fh.truncate(size)
    return path


def state_doc() -> dict:
    return {"api_server": "1.30.6", "repository": {"31": ["1.31.1"]},
            "nodes": [{"name": "cp-1", "role": "control-plane", "kubelet": "1.30.6"}]}


# Each case: (id, build(tmp) -> (argv, names that must appear in the message)).
Case = Callable[[Path], tuple[list[str], list[str]]]


def _validate(mutate: Callable[[Path], str], *also: str) -> Case:
    """`-i INV validate` after ``mutate(inv)``, which returns the path the message must name
    (``also``: further words it must contain, to tell the fix from an unrelated exit 2)."""
    def build(tmp: Path) -> tuple[list[str], list[str]]:
        inv = inventory(tmp)
        return ["-i", str(inv), "validate"], [mutate(inv), *also]
    return build


def _write(rel: str, data: bytes | str) -> Callable[[Path], str]:
    def mutate(inv: Path) -> str:
        p = inv / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        if p.exists():
            p.unlink()
        p.write_bytes(data if isinstance(data, bytes) else data.encode())
        return str(p)
    return mutate


def _append_vars(text: str) -> Callable[[Path], str]:
    def mutate(inv: Path) -> str:
        p = inv / "group_vars" / "all.yml"
        p.write_text(p.read_text() + text)
        return str(p)
    return mutate


def _hosts_extra(text: str, *names: str) -> Callable[[Path], str]:
    def mutate(inv: Path) -> str:
        p = inv / "hosts.yml"
        p.write_text(HOSTS + text)
        return str(p)
    return mutate


def _fifo_at(rel: str) -> Callable[[Path], str]:
    def mutate(inv: Path) -> str:
        p = inv / rel
        if p.exists():
            p.unlink()
        return str(fifo(p))
    return mutate


def _inventory_is(make: Callable[[Path], Path], *also: str) -> Case:
    def build(tmp: Path) -> tuple[list[str], list[str]]:
        target = make(tmp)
        return ["-i", str(target), "validate"], [str(target), *also]
    return build


def _state(make: Callable[[Path], Path], *also: str) -> Case:
    def build(tmp: Path) -> tuple[list[str], list[str]]:
        path = make(tmp)
        return ["-i", str(inventory(tmp)), "upgrade", "--to", "1.31", "--plan", "--state",
                str(path)], [str(path), *also]
    return build


def _state_text(text: str | bytes, *also: str) -> Case:
    def make(tmp: Path) -> Path:
        p = tmp / "state.json"
        p.write_bytes(text if isinstance(text, bytes) else text.encode())
        return p
    return _state(make, *also)


def _flags(*argv: str, name: str) -> Case:
    def build(tmp: Path) -> tuple[list[str], list[str]]:
        return ["-i", str(inventory(tmp)), *argv], [name]
    return build


def _lab_state(data: bytes | None) -> Case:
    def build(tmp: Path) -> tuple[list[str], list[str]]:
        p = tmp / "state" / "provision" / "lab" / "lab.json"
        p.parent.mkdir(parents=True)
        if data is None:
            fifo(p)
        else:
            p.write_bytes(data)
        return ["lab", "status"], [str(p)]
    return build


BOMB = """all:
  vars:
    a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]
    b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]
    c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]
    d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]
    e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]
    f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]
    g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f]
    h: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g]
    i: &i [*h, *h, *h, *h, *h, *h, *h, *h, *h]
"""
NODE = '{"name": "cp-1", "role": "control-plane", "kubelet": "1.30.6"}'
LAB_NODE = {"name": "lab-1", "kind": "container", "arch": "amd64", "ssh_port": "x"}
LAB_STATE = {"kind": "container", "arch": "amd64", "mode": "kubeadm", "user": "provision",
             "nodes": [LAB_NODE]}

CASES: list[tuple[str, Case]] = [
    # --- files that are not UTF-8 text
    ("hosts-latin1", _validate(_write("hosts.yml", HOSTS.encode() + b"# caf\xe9\n"))),
    ("hosts-utf16-bom", _validate(_write("hosts.yml", HOSTS.encode("utf-16")))),
    ("hosts-utf16le-no-bom", _validate(_write("hosts.yml", HOSTS.encode("utf-16-le")),
                                       "UTF-16")),
    ("hosts-binary", _validate(_write("hosts.yml", bytes(range(256)) * 8), "binary")),
    ("group-vars-binary", _validate(_write("group_vars/all.yml", b"\x7fELF\x02\x01\x00" * 50),
                                    "binary")),
    ("group-vars-latin1", _validate(_write("group_vars/workers.yml", b"x: caf\xe9\n"))),
    ("group-vars-utf16", _validate(_write("group_vars/workers.yml", "x: 1\n".encode("utf-16")))),
    ("host-vars-binary", _validate(_write("host_vars/w1.yml", b"\x00\x01\x02"), "binary")),
    # --- group graphs that would recurse forever
    ("group-own-child", _validate(_hosts_extra("    loop:\n      children:\n        loop:\n"))),
    ("group-loop-two", _validate(_hosts_extra(
        "    a:\n      children:\n        b:\n    b:\n      children:\n        a:\n"))),
    ("group-loop-through-workers", _validate(_hosts_extra(
        "    x:\n      children:\n        workers:\n"
        "    workers2:\n      children:\n        x:\n"
        "    y:\n      children:\n        workers2:\n        x:\n          children:\n"
        "            y:\n"))),
    ("all-as-child", _validate(_hosts_extra("    g2:\n      children:\n        all:\n"))),
    ("all-as-child-of-workers", _validate(_hosts_extra(
        "    workers:\n      children:\n        all:\n          hosts:\n            w9:\n"))),
    # --- YAML that is too deep, explodes through aliases, or holds huge numbers
    ("yaml-deep-flow", _validate(_append_vars("x: " + "[" * 10000 + "]" * 10000 + "\n"))),
    ("yaml-deep-block", _validate(_append_vars(
        "x:\n" + "".join("  " * (i + 1) + "- \n" for i in range(200))), "nested more than 64")),
    ("yaml-deep-hosts", _validate(_write("hosts.yml", "all:\n  vars:\n    x: " + "{a: " * 5000
                                         + "1" + "}" * 5000 + "\n"))),
    ("yaml-alias-bomb", _validate(_write("hosts.yml", BOMB + HOSTS.split("\n", 1)[1]),
                                  "aliases expand")),
    ("yaml-alias-bomb-group-vars", _validate(_write("group_vars/all.yml",
                                                    BOMB.replace("all:\n  vars:\n", "")
                                                    .replace("\n    ", "\n")
                                                    .lstrip()), "aliases expand")),
    ("yaml-alias-self", _validate(_append_vars("x: &a [*a]\n"), "alias refers to")),
    ("yaml-merge-self", _validate(_append_vars("x: &m {<<: *m}\n"), "alias refers to")),
    ("port-5000-digits", _validate(_append_vars(f"ansible_port: {BIG}\n"))),
    ("port-5000-digits-host", _validate(_write("hosts.yml", HOSTS.replace(
        "ansible_port: 1}", f"ansible_port: {BIG}}}", 1)))),
    ("keep-5000-digits-negative", _validate(_append_vars(f"etcd_backup_keep: -{BIG}\n"))),
    ("hex-5000-digits", _validate(_append_vars(f"etcd_backup_keep: 0x{'f' * 5000}\n"))),
    ("underscored-5000-digits", _validate(_append_vars(f"etcd_backup_keep: 1_{BIG}\n"))),
    ("version-5000-digits", _validate(_append_vars(f'kubernetes_version: "1.{BIG}"\n'))),
    ("patch-5000-digits", _validate(_append_vars(f'kubernetes_version: "1.31.{BIG}"\n'))),
    # --- inputs that are not regular files, or too big
    ("inventory-dev-zero", _inventory_is(lambda tmp: Path("/dev/zero"))),
    ("inventory-fifo", _inventory_is(lambda tmp: fifo(tmp / "hosts.yml"))),
    ("inventory-sparse-9mib", _inventory_is(lambda tmp: sparse(tmp / "hosts.yml"), "8 MiB")),
    ("inventory-dir-hosts-fifo", _validate(_fifo_at("hosts.yml"))),
    ("inventory-dir-hosts-is-dir", _validate(lambda inv: (
        (inv / "hosts.yml").unlink(), (inv / "hosts.yml").mkdir(), str(inv / "hosts.yml"))[2])),
    ("group-vars-fifo", _validate(_fifo_at("group_vars/all.yml"))),
    ("group-vars-dir-fifo", _validate(_fifo_at("group_vars/workers/main"))),
    ("group-vars-dev-zero-link", _validate(lambda inv: (
        os.symlink("/dev/zero", inv / "group_vars" / "workers.yml"),
        str(inv / "group_vars" / "workers.yml"))[1])),
    ("host-vars-fifo", _validate(_fifo_at("host_vars/w1.yml"))),
    ("group-vars-sparse", _validate(lambda inv: str(sparse(inv / "group_vars" / "w.yml")),
                                    "8 MiB")),
    # --- upgrade --plan --state FILE
    ("state-deep-json", _state_text("[" * 100000 + "]" * 100000)),
    ("state-deep-inside", _state_text('{"nodes": [' + NODE + ", " + "[" * 5000 + "]" * 5000
                                      + '], "api_server": "1.30.6"}')),
    ("state-5000-digits", _state_text(f'{{"api_server": {BIG}}}')),
    ("state-5000-digit-version", _state_text(json.dumps({**state_doc(),
                                                         "api_server": f"1.30.{BIG}"}))),
    ("state-5000-digit-minor", _state_text(json.dumps({**state_doc(),
                                                       "repository": {BIG: ["1.31.1"]}}))),
    ("state-binary", _state_text(b"\x00\x01\x02{}", "NUL byte")),
    ("state-latin1", _state_text(b'{"api_server": "caf\xe9"}', "not UTF-8")),
    ("state-utf16", _state_text(json.dumps(state_doc()).encode("utf-16"), "UTF-16")),
    ("state-fifo", _state(lambda tmp: fifo(tmp / "state.json"))),
    ("state-dev-zero", _state(lambda tmp: Path("/dev/zero"))),
    ("state-sparse", _state(lambda tmp: sparse(tmp / "state.json"), "8 MiB")),
    ("state-directory", _state(lambda tmp: tmp, "regular file")),
    # --- 5000-digit and non-ASCII numbers in flags
    ("to-5000-digits", _flags("upgrade", "--to", f"1.{BIG}", "--plan", name="--to")),
    ("to-patch-5000-digits", _flags("upgrade", "--to", f"1.31.{BIG}", "--plan", name="--to")),
    ("to-fullwidth", _flags("upgrade", "--to", "1.３１", "--plan", name="--to")),
    ("batch-5000-digits", _flags("upgrade", "--to", "1.31", "--plan", "--batch", BIG,
                                 name="--batch")),
    ("batch-5000-percent", _flags("upgrade", "--to", "1.31", "--plan", "--batch", BIG + "%",
                                  name="--batch")),
    ("batch-superscript", _flags("upgrade", "--to", "1.31", "--plan", "--batch", "²",
                                 name="--batch")),
    ("every-5000-digits", _flags("etcd", "schedule", "--every", BIG + "s", name="--every")),
    ("every-superscript", _flags("etcd", "schedule", "--every", "²h", name="--every")),
    ("max-age-5000-digits", _flags("etcd", "schedule", "--max-age", BIG + "d",
                                   name="--max-age")),
    ("max-age-overflow", _flags("etcd", "schedule", "--max-age", "999999999w",
                                name="--max-age")),
    ("keep-5000-digits", _flags("etcd", "schedule", "--keep", BIG, name="--keep")),
    ("disk-5000-digits", lambda tmp: (["lab", "up", "--kind", "vm", "--disk", BIG + "G"],
                                      ["--disk"])),
    ("disk-superscript", lambda tmp: (["lab", "up", "--kind", "vm", "--disk", "²G"],
                                      ["--disk"])),
    # --- a corrupt lab state file
    ("lab-state-not-json", _lab_state(b'{"kind": ')),
    ("lab-state-list", _lab_state(b"[]")),
    ("lab-state-binary", _lab_state(b"\x00\xff")),
    ("lab-state-deep", _lab_state(b"[" * 50000 + b"]" * 50000)),
    ("lab-state-missing-key", _lab_state(b'{"kind": "container"}')),
    ("lab-state-bad-port", _lab_state(json.dumps(LAB_STATE).encode())),
    ("lab-state-fifo", _lab_state(None)),
    # --- doctor's own flags
    ("doctor-timeout-nan", _flags("doctor", "--timeout", "nan", name="--timeout")),
    ("doctor-timeout-minus-nan", _flags("doctor", "--timeout", "-nan", name="--timeout")),
    ("doctor-timeout-inf", _flags("doctor", "--timeout", "inf", name="--timeout")),
    ("doctor-url-file", _flags("doctor", "--url", "file:///etc/shadow", name="--url")),
    ("doctor-url-option", _flags("doctor", "--url", "-o/tmp/pwned", name="--url")),
    ("doctor-url-gopher", _flags("doctor", "--url", "gopher://127.0.0.1:70/", name="--url")),
    ("doctor-url-newline", _flags("doctor", "--url", "https://x/\n-o/tmp/y", name="--url")),
    ("doctor-url-credentials", _flags("doctor", "--url", "https://u:secret@x/", name="--url")),
    ("doctor-url-no-host", _flags("doctor", "--url", "https:///path", name="--url")),
    ("doctor-url-bad-ipv6", _flags("doctor", "--url", "http://[::1/", name="--url")),
    ("doctor-url-one-bad-of-two", _flags("doctor", "--url", "https://pkgs.k8s.io/",
                                         "--url", "FILE:/etc/passwd", name="--url")),
]


def _snapshot(root: Path) -> dict[str, int]:
    return {str(p.relative_to(root)): p.lstat().st_size for p in root.rglob("*")}


@pytest.fixture
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    state = tmp_path / "state"
    state.mkdir()
    monkeypatch.setenv("XDG_STATE_HOME", str(state))
    for var in ("PROVISION_INVENTORY", "PROVISION_LIMIT", "PROVISION_CHECK", "PROVISION_JSON"):
        monkeypatch.delenv(var, raising=False)
    return tmp_path


@pytest.mark.timeout(60)
@pytest.mark.parametrize("as_json", [False, True], ids=["text", "json"])
@pytest.mark.parametrize(("build"), [c[1] for c in CASES], ids=[c[0] for c in CASES])
def test_hostile_input_is_exit_2_naming_it(isolated: Path, capsys: pytest.CaptureFixture[str],
                                           build: Case, as_json: bool) -> None:
    argv, names = build(isolated)
    state = isolated / "state"
    before = _snapshot(state)
    with pytest.raises(SystemExit) as exc:
        main((["--json"] if as_json else []) + argv)
    out, err = capsys.readouterr()
    assert exc.value.code == 2, (out, err)
    assert "Traceback" not in err and "Traceback" not in out
    if as_json:
        obj = json.loads(out)  # exactly one JSON object: json.loads refuses trailing data
        assert isinstance(obj, dict) and obj["exit_code"] == 2 and obj["ok"] is False
        message = "\n".join(e["message"] for e in obj["errors"])
    else:
        message = err
    for name in names:
        assert name in message, message[:2000]
    assert _snapshot(state) == before  # nothing written (no run dir, no lab file touched)


# ------------------------------------------------------------------ what must still load

def test_legitimate_yaml_features_still_load(tmp_path: Path) -> None:
    """The bounds refuse bombs, not ordinary inventories: anchors and merge keys shared by
    many hosts, a UTF-8 BOM, non-ASCII comments, long (but sane) numbers, 60 levels."""
    hosts = ["all:", "  vars:", "    defaults: &d {ansible_user: ubuntu, ansible_port: 22}",
             "  children:", "    control_plane:", "      hosts:",
             "        cp1: {<<: *d, ansible_host: 10.0.0.1}", "    workers:", "      hosts:"]
    hosts += [f"        w{i}: {{<<: *d, ansible_host: 10.0.{i // 250}.{i % 250 + 2}}}"
              for i in range(3000)]
    inv = tmp_path / "inv"
    (inv / "group_vars").mkdir(parents=True)
    (inv / "hosts.yml").write_bytes(b"\xef\xbb\xbf# h\xc3\xb4tes\n" + "\n".join(hosts).encode())
    deep = "x: " + "[" * 60 + "]" * 60 + f"\nn: {'9' * 60}\n"
    (inv / "group_vars" / "all.yml").write_text(deep)
    loaded = load_inventory(inv)
    assert len(loaded.hosts) == 3001
    assert loaded.hosts["w2999"].vars["ansible_user"] == "ubuntu"
    assert loaded.hosts["w2999"].port == 22
    assert loaded.hosts["cp1"].vars["n"] == int("9" * 60)


def test_bounded_loaders_match_the_plain_ones_on_ordinary_documents(tmp_path: Path) -> None:
    doc = {"a": [1, 2.5, "x", None, True, {"b": [[-3], {"c": "ü"}]}], "d": 10 ** 30}
    p = tmp_path / "d.yml"
    p.write_text(yaml.safe_dump(doc, allow_unicode=True))
    assert load_yaml(p, "test file") == yaml.safe_load(p.read_text()) == doc
    text = json.dumps(doc)
    assert loads_json(text, "x") == json.loads(text) == doc
    assert loads_json('"[[[[[[" ', "x") == "[[[[[["  # brackets inside strings are text
    with pytest.raises(InputError, match="x: JSON nested more than 64 levels"):
        loads_json("[" * 65 + "]" * 65, "x")


# ------------------------------------------------------------------ group graphs, linear

def test_nested_group_precedence_matches_ansible_inventory(tmp_path: Path) -> None:
    """The rewritten (memoised, loop-safe) group walk merges variables as Ansible does:
    checked against `ansible-inventory --host` on a chain all > region > zone > workers
    and --limit by an ancestor group selects the hosts of its descendants."""
    inv = tmp_path / "hosts.yml"
    inv.write_text("""\
all:
  vars: {level: all, a: all, b: all, c: all}
  children:
    region:
      vars: {level: region, b: region, c: region}
      children:
        zone:
          vars: {level: zone, c: zone}
          children:
            workers:
              vars: {level: workers}
              hosts:
                w1: {ansible_host: 10.0.0.21}
                w2: {ansible_host: 10.0.0.22, level: host}
    control_plane:
      hosts:
        cp1: {ansible_host: 10.0.0.11}
""")
    ours = load_inventory(inv)
    keys = ("level", "a", "b", "c", "ansible_host")
    for host in ("w1", "w2", "cp1"):
        proc = subprocess.run(
            [str(Path(sys.executable).with_name("ansible-inventory")), "-i", str(inv),
             "--host", host], capture_output=True, text=True, timeout=120, check=True)
        theirs = json.loads(proc.stdout)
        assert {k: ours.hosts[host].vars.get(k) for k in keys} == \
            {k: theirs.get(k) for k in keys}, host
    assert sorted(h.name for h in ours.limited("region")) == ["w1", "w2"]
    assert sorted(ours.groups["all"]) == ["cp1", "w1", "w2"]


def test_a_long_chain_of_groups_is_no_recursion(tmp_path: Path) -> None:
    """2,000 groups, each the child of the previous one, defined side by side (so YAML depth
    does not bound them): loading walks them iteratively; the host gets every group's vars."""
    lines = ["all:", "  children:"]
    for i in range(2000):
        lines += [f"    g{i}:", f"      vars: {{v{i}: {i}}}", "      children:",
                  f"        g{i + 1}:"]
    lines += ["    g2000:", "      hosts:", "        h1: {ansible_host: 10.0.0.1}"]
    inv = tmp_path / "hosts.yml"
    inv.write_text("\n".join(lines) + "\n")
    loaded = load_inventory(inv)
    assert loaded.hosts["h1"].vars["v0"] == 0 and loaded.hosts["h1"].vars["v1999"] == 1999
    assert [h.name for h in loaded.limited("g0")] == ["h1"]
    assert not loaded.structure_problems


@pytest.mark.timeout(120)
def test_lab_down_removes_a_lab_whose_state_file_is_corrupt(isolated: Path,
                                                            capsys: pytest.CaptureFixture[str]
                                                            ) -> None:
    """`lab down` cannot read the nodes from a corrupt state file, so it warns (naming the
    file) and removes what carries this lab's label instead (docker objects, qemu processes of
    this lab directory: none here), then the file itself; exit 0."""
    lab = isolated / "state" / "provision" / "lab"
    lab.mkdir(parents=True)
    (lab / "lab.json").write_bytes(b"\x00not json")
    with pytest.raises(SystemExit) as exc:
        main(["lab", "down"])
    out, err = capsys.readouterr()
    assert exc.value.code in (0, None), err
    assert f"{lab / 'lab.json'}:1: lab state file contains a NUL byte" in out + err
    assert "Traceback" not in err
    assert not (lab / "lab.json").exists()
