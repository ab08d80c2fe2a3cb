"""Harness for hostile-input tests: run ``python -m provision`` as a real subprocess against a
throwaway directory and prove the promise "bad input gets exit 2 and touches nothing".

One case is one row (:class:`Case`): argv, the files to lay out (an inventory, victim
directories, FIFOs, keys with modes), extra environment, the expected exit code and the
substrings the message must contain. :func:`run_case` lays the files out in a fresh directory
(which is also the cwd, ``HOME`` and ``XDG_STATE_HOME``), starts a :class:`Listener` that
every inventory host points at, runs the CLI with a timeout, and :func:`check_case` asserts:

- the exit code (2 unless the row says otherwise), no traceback on stderr or stdout;
- each expected substring (the flag/key, file, host) appears in the output;
- with ``--json``: stdout is exactly one JSON object whose ``exit_code`` matches;
- the loopback listener accepted no connection (nothing contacted);
- the whole directory (tree, file contents, modes, symlink targets) is unchanged (nothing
  written: the state dir, the inventory and every victim/target dir live inside it);
- no canary file exists (a template or shell metacharacter in a value would create one);
- the process ended within the timeout (a hang fails).

Tokens in argv, file contents, env values and expected strings are replaced before use:
``@TMP@`` the case directory, ``@PORT@`` the listener's port, ``@CANARY@`` the canary path
prefix (``@TMP@/CANARY``; use it as ``@CANARY@-name`` to tell canaries apart), ``@PORT2@`` a
second listener port (a second host must differ in address:port), ``@INV@`` the
default inventory dir (``@TMP@/inv``).

Reusable by other tests: ``from hostile_support import Case, run_case, check_case, ...``.
"""

from __future__ import annotations

import hashlib
import json
import os
import select
import signal
import socket
import stat
import subprocess
import sys
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
BIG_FILE = 64 << 20  # larger regular files are compared by size and mtime, not hashed
DEFAULT_TIMEOUT = 20.0  # seconds: a hang guard, generous for a loaded 2-core box
HANG_TIMEOUT = 5.0  # rows whose input blocks a reader forever (FIFO, /dev/zero)


# --- file specs ----------------------------------------------------------------------------


@dataclass(frozen=True)
class File:
    """A regular file with contents (str: tokens replaced, UTF-8; bytes: written raw) and a
    mode."""

    content: str | bytes
    mode: int = 0o644


@dataclass(frozen=True)
class Fifo:
    """A named pipe (a reader that opens it blocks until a writer comes: a hang)."""

    mode: int = 0o644


@dataclass(frozen=True)
class Symlink:
    """A symbolic link to ``target`` (tokens replaced)."""

    target: str


@dataclass(frozen=True)
class Dir:
    """An (empty unless other entries are under it) directory with a mode."""

    mode: int = 0o755


FileSpec = str | bytes | File | Fifo | Symlink | Dir
Builder = Callable[[Path, int], None]  # (case dir, listener port) -> lays out more files


# --- the loopback listener -----------------------------------------------------------------


class Listener:
    """TCP listeners on 127.0.0.1 (free ports; ``port`` and ``port2``, for a second distinct
    host) standing in for every host. A thread accepts and records every connection (then
    closes it), so an SSH, HTTP or Ansible attempt is seen even if the client gives up
    quickly."""

    def __init__(self, count: int = 2) -> None:
        self.socks: list[socket.socket] = []
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind(("127.0.0.1", 0))
            sock.listen(64)
            sock.setblocking(False)
            self.socks.append(sock)
        self.port: int = self.socks[0].getsockname()[1]
        self.port2: int = self.socks[-1].getsockname()[1]
        self.accepted: list[tuple[str, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _accept_ready(self, timeout: float) -> None:
        try:
            ready, _, _ = select.select(self.socks, [], [], timeout)
        except (OSError, ValueError):
            return
        for sock in ready:
            try:
                conn, addr = sock.accept()
            except OSError:
                continue
            self.accepted.append(addr)
            conn.close()

    def _serve(self) -> None:
        while not self._stop.is_set():
            self._accept_ready(0.05)

    def connections(self) -> list[tuple[str, int]]:
        """Connections accepted so far, after draining any still in the backlog."""
        self._stop.set()
        self._thread.join(timeout=5)
        self._accept_ready(0)
        return list(self.accepted)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        for sock in self.socks:
            sock.close()

    def __enter__(self) -> Listener:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# --- inventories ---------------------------------------------------------------------------


def host_line(name: str, extra: str = "", port: str = "@PORT@") -> str:
    """A hosts.yml flow mapping for a host on the listener (``extra``: more ``k: v`` pairs)."""
    more = f", {extra}" if extra else ""
    return f"{name}: {{ansible_host: 127.0.0.1, ansible_port: {port}{more}}}"


def hosts_yml(control_planes: Iterable[str] = ("cp1",), workers: Iterable[str] = (),
              host_extra: Mapping[str, str] | None = None) -> str:
    """A hosts.yml with the first host at 127.0.0.1:@PORT@ and the others at @PORT2@ (only two
    ports: give at most two hosts)."""
    host_extra = dict(host_extra or {})
    lines = ["all:", "  children:", "    control_plane:", "      hosts:"]
    for i, name in enumerate(control_planes):
        lines.append("        " + host_line(name, host_extra.get(name, ""),
                                            "@PORT@" if i == 0 else "@PORT2@"))
    workers = list(workers)
    lines.append("    workers:")
    if workers:
        lines.append("      hosts:")
        for name in workers:
            lines.append("        " + host_line(name, host_extra.get(name, ""), "@PORT2@"))
    else:
        lines.append("      hosts: {}")
    return "\n".join(lines) + "\n"


def inventory(group_vars: str | bytes | FileSpec | None = None, *,
              hosts: str | bytes | FileSpec | None = None,
              host_vars: Mapping[str, FileSpec] | None = None,
              extra: Mapping[str, FileSpec] | None = None, mode: str = "kubeadm",
              workers: Iterable[str] = (), version: str = "1.31") -> dict[str, FileSpec]:
    """Files of a valid inventory at ``inv/`` (hosts on the listener), with ``group_vars``
    text appended to group_vars/all.yml (or replacing it when bytes/FileSpec), ``hosts``
    replacing hosts.yml, ``host_vars`` as inv/host_vars/<name>.yml and ``extra`` files added
    as they are (paths relative to the case directory)."""
    base = f"provision_mode: {mode}\nkubernetes_version: \"{version}\"\n"
    if mode == "kubeadm":  # one host, no MetalLB pool: the ingress cannot be a LoadBalancer
        base += "ingress_nginx_service_mode: NodePort\n"
    files: dict[str, FileSpec] = {
        "inv/hosts.yml": hosts if hosts is not None else hosts_yml(workers=workers),
    }
    if group_vars is None or isinstance(group_vars, str):
        files["inv/group_vars/all.yml"] = base + (group_vars or "")
    else:
        files["inv/group_vars/all.yml"] = group_vars
    for name, spec in (host_vars or {}).items():
        files[f"inv/host_vars/{name}.yml"] = spec
    files.update(extra or {})
    return files


VALID = inventory()


# --- cases ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    """One hostile input and what must happen.

    ``argv`` follows ``provision`` (tokens replaced); ``files`` are laid out relative to the
    case directory (see :func:`inventory`); ``builder`` may lay out more; ``expect`` are
    substrings the combined stderr+stdout must contain; ``exit`` the exit code; ``known_gap``
    names the branch that fixes a row still failing (the test xfails it, not strictly);
    ``may_write`` lists relative path prefixes allowed to change (empty: nothing may);
    ``stdin`` is fed to the process (default: /dev/null, so no prompt can wait); ``exit`` may
    be a tuple of acceptable codes."""

    id: str
    argv: tuple[str, ...]
    files: Mapping[str, FileSpec] = field(default_factory=dict)
    expect: tuple[str, ...] = ()
    exit: int | tuple[int, ...] = 2
    env: Mapping[str, str] = field(default_factory=dict)
    builder: Builder | None = None
    known_gap: str | None = None
    may_write: tuple[str, ...] = ()
    stdin: bytes | None = None
    timeout: float = DEFAULT_TIMEOUT
    forbid: tuple[str, ...] = ()  # substrings that must NOT appear (e.g. a secret value)
    # "honoured or refused" rows: a run that honours the option may contact the listener (it
    # is no SSH server, so exit 3) and write its run dir; when it refuses (exit 2) the
    # message must name each of ``expect_if_refused``.
    contacts_ok: bool = False
    expect_if_refused: tuple[str, ...] = ()
    # substrings that must not appear in any file the run created or changed (artifacts, logs,
    # run dirs; e.g. an environment secret), nor in the output
    forbid_in_files: tuple[str, ...] = ()


def case(id: str, argv: str | Iterable[str], files: Mapping[str, FileSpec] | None = None,
         *expect: str, **kw: Any) -> Case:
    """Shorthand: ``argv`` as a list, or a string split on spaces (no quoting)."""
    args = tuple(argv.split()) if isinstance(argv, str) else tuple(argv)
    return Case(id=id, argv=args, files=dict(files if files is not None else VALID),
                expect=tuple(expect), **kw)


@dataclass
class Result:
    case: Case
    root: Path
    code: int | None  # None: timed out (killed)
    stdout: str
    stderr: str
    connections: list[tuple[str, int]]
    before: dict[str, tuple[Any, ...]]
    after: dict[str, tuple[Any, ...]]
    elapsed: float = 0.0


def substitute(text: str, root: Path, port: int, port2: int = 0) -> str:
    return (text.replace("@INV@", str(root / "inv")).replace("@CANARY@", str(root / "CANARY"))
            .replace("@TMP@", str(root)).replace("@PORT2@", str(port2 or port))
            .replace("@PORT@", str(port)))


def lay_out(root: Path, files: Mapping[str, FileSpec], port: int, port2: int = 0) -> None:
    """Create ``files`` under ``root`` (parents as needed; parents first, so a Dir's mode is
    set after its children are written)."""
    dirs: list[tuple[Path, int]] = []
    for rel, spec in sorted(files.items()):
        path = root / substitute(rel, root, port, port2)
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(spec, Dir):
            path.mkdir(parents=True, exist_ok=True)
            dirs.append((path, spec.mode))
        elif isinstance(spec, Fifo):
            os.mkfifo(path, spec.mode)
        elif isinstance(spec, Symlink):
            path.symlink_to(substitute(spec.target, root, port, port2))
        else:
            content, mode = (spec.content, spec.mode) if isinstance(spec, File) else (spec, 0o644)
            data = (content if isinstance(content, bytes)
                    else substitute(content, root, port, port2).encode())
            path.write_bytes(data)
            path.chmod(mode)
    for path, mode in reversed(dirs):
        path.chmod(mode)


def snapshot(root: Path) -> dict[str, tuple[Any, ...]]:
    """Every entry under ``root`` (not following symlinks): type, mode, and the sha256 of a
    regular file's contents or a symlink's target. FIFOs and devices are never opened."""
    snap: dict[str, tuple[Any, ...]] = {}
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            st = path.lstat()
            rel = str(path.relative_to(root))
            mode = stat.S_IMODE(st.st_mode)
            if stat.S_ISLNK(st.st_mode):
                snap[rel] = ("link", os.readlink(path))
            elif stat.S_ISREG(st.st_mode) and st.st_size > BIG_FILE:
                snap[rel] = ("file", mode, f"size:{st.st_size}:{st.st_mtime_ns}")
            elif stat.S_ISREG(st.st_mode):
                try:
                    digest = hashlib.sha256(path.read_bytes()).hexdigest()
                except PermissionError:
                    digest = f"unreadable:{st.st_size}:{st.st_mtime_ns}"
                snap[rel] = ("file", mode, digest)
            elif stat.S_ISDIR(st.st_mode):
                snap[rel] = ("dir", mode)
            else:
                snap[rel] = ("other", stat.S_IFMT(st.st_mode), mode)
    return snap


def diff_snapshots(before: Mapping[str, tuple[Any, ...]], after: Mapping[str, tuple[Any, ...]],
                   allowed: Iterable[str] = ()) -> list[str]:
    """Human-readable differences, ignoring paths under an ``allowed`` prefix."""
    allowed = tuple(allowed)

    def ok(rel: str) -> bool:
        return any(rel == a or rel.startswith(a.rstrip("/") + "/") for a in allowed)

    out = []
    for rel in sorted(set(before) | set(after)):
        if ok(rel) or before.get(rel) == after.get(rel):
            continue
        if rel not in after:
            out.append(f"removed {rel} (was {before[rel]})")
        elif rel not in before:
            out.append(f"created {rel} {after[rel]}")
        else:
            out.append(f"changed {rel}: {before[rel]} -> {after[rel]}")
    return out


def base_env(root: Path) -> dict[str, str]:
    """A minimal, private environment: HOME, XDG_STATE_HOME and cwd are the case directory,
    no PROVISION_* variable from the caller leaks in."""
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "PYTHONPATH": str(REPO),
        "PYTHONDONTWRITEBYTECODE": "1",
        "HOME": str(root),
        "XDG_STATE_HOME": str(root / "state"),
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "TERM": "dumb",
        "NO_COLOR": "1",
    }


def run_case(c: Case, root: Path) -> Result:
    """Lay out ``c`` in the empty directory ``root`` and run it (see module docstring)."""
    import time

    root.mkdir(parents=True, exist_ok=True)
    (root / "state").mkdir(exist_ok=True)
    with Listener() as listener:
        lay_out(root, c.files, listener.port, listener.port2)
        if c.builder is not None:
            c.builder(root, listener.port)
        before = snapshot(root)
        env = base_env(root)
        env.update({k: substitute(v, root, listener.port, listener.port2)
                    for k, v in c.env.items()})
        argv = [substitute(a, root, listener.port, listener.port2) for a in c.argv]
        start = time.monotonic()
        proc = subprocess.Popen(
            [sys.executable, "-m", "provision", *argv], cwd=root, env=env,
            stdin=subprocess.PIPE if c.stdin is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
        try:
            out, err = proc.communicate(c.stdin, timeout=c.timeout)
            code: int | None = proc.returncode
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            out, err = proc.communicate()
            code = None
        elapsed = time.monotonic() - start
        connections = listener.connections()
    after = snapshot(root)
    return Result(case=c, root=root, code=code, stdout=out.decode(errors="replace"),
                  stderr=err.decode(errors="replace"), connections=connections,
                  before=before, after=after, elapsed=elapsed)


def written_files(r: Result) -> list[str]:
    """Regular files (up to BIG_FILE) the run created or changed, relative to its root."""
    return [rel for rel, entry in sorted(r.after.items())
            if entry[0] == "file" and r.before.get(rel) != entry
            and (r.root / rel).stat().st_size <= BIG_FILE]


def canaries(root: Path) -> list[str]:
    """Canary files in ``root`` (``@CANARY@...`` is an absolute path there; a template or shell
    metacharacter that ran created one). Other new files are reported by the snapshot diff."""
    return sorted(p.name for p in root.iterdir() if p.name.startswith("CANARY"))


def problems(r: Result) -> list[str]:
    """Every broken promise of ``r`` (empty: the case holds)."""
    c = r.case
    found: list[str] = []
    if r.code is None:
        found.append(f"hung: no exit within {c.timeout:.0f} s")
    elif r.code not in (c.exit if isinstance(c.exit, tuple) else (c.exit,)):
        found.append(f"exit {r.code}, expected {c.exit}")
    for stream, text in (("stderr", r.stderr), ("stdout", r.stdout)):
        if "Traceback (most recent call last)" in text:
            found.append(f"traceback on {stream}")
    combined = r.stderr + r.stdout
    for want in c.expect:
        want = substitute(want, r.root, 0)
        if want not in combined:
            found.append(f"message lacks {want!r}")
    if r.code == 2:
        for want in c.expect_if_refused:
            if substitute(want, r.root, 0) not in combined:
                found.append(f"refused without naming {want!r}")
    for bad in c.forbid:
        bad = substitute(bad, r.root, 0)
        if bad in combined:
            found.append(f"output contains {bad!r} (must not be echoed)")
    if "--json" in c.argv[: _command_index(c.argv)] and r.code is not None:
        found.extend(_json_problems(r.stdout, r.code))
    if r.connections and not c.contacts_ok:
        found.append(f"{len(r.connections)} connection(s) to the host listener")
    found.extend(diff_snapshots(r.before, r.after, c.may_write))
    for bad in c.forbid_in_files:
        bad = substitute(bad, r.root, 0)
        if bad in combined:
            found.append(f"output contains {bad!r} (must not be echoed)")
        for rel in written_files(r):
            if bad.encode() in (r.root / rel).read_bytes():
                found.append(f"{rel} contains {bad!r}")
    for name in canaries(r.root):
        found.append(f"canary {name} was created")
    return found


def _command_index(argv: tuple[str, ...]) -> int:
    """Index of the first non-option argument after the global options (or len(argv))."""
    takes_value = {"-i", "--inventory", "--limit"}
    i = 0
    while i < len(argv):
        if argv[i] in takes_value:
            i += 2
        elif argv[i].startswith("-"):
            i += 1
        else:
            return i
    return len(argv)


def _json_problems(stdout: str, code: int) -> list[str]:
    text = stdout.strip()
    try:
        obj = json.loads(text)
    except ValueError:
        return [f"--json: stdout is not exactly one JSON object: {stdout[:200]!r}"]
    if not isinstance(obj, dict):
        return [f"--json: stdout is JSON but not an object: {type(obj).__name__}"]
    if obj.get("exit_code") != code:
        return [f"--json: exit_code {obj.get('exit_code')!r} != process exit {code}"]
    return []


def describe(r: Result) -> str:
    """A failure report: what broke, and the command's output."""
    return (f"case {r.case.id}: provision {' '.join(r.case.argv)}\n"
            + "".join(f"  - {p}\n" for p in problems(r))
            + f"--- stderr ---\n{r.stderr[-3000:]}\n--- stdout ---\n{r.stdout[-2000:]}")


def check_case(c: Case, root: Path) -> Result:
    """Run ``c`` and fail (AssertionError with :func:`describe`) on any broken promise."""
    r = run_case(c, root)
    assert not problems(r), describe(r)
    return r
