"""Which directories the etcd tools may create, write into and chmod (pure).

A path the tools act on must be absolute, normalised (``posixpath.normpath`` gives it back
unchanged: no ``//``, no trailing ``/``, no ``.`` or ``..`` component) and written in a
conservative character set, so that two spellings of one directory compare equal and no
value can smuggle a newline or a shell/systemd metacharacter. A directory the tools chmod
must also be *dedicated*: never a system directory such as ``/``, ``/etc`` or ``/var/lib``,
never a home directory, never on a virtual file system, and at least two levels deep.

Standard library only: the node-side backup tool ships this very file (a symlink in
``roles/etcd_snapshot/files/etcd-backup/``) and checks again before it creates or chmods.
"""

from __future__ import annotations

import posixpath
import re

PATH_RE = re.compile(r"(/[A-Za-z0-9._@+-]+)+", re.ASCII)
MAX_PATH = 255

# Directories of the operating system (and of Kubernetes/etcd) that are never dedicated.
SYSTEM_DIRS = frozenset({
    "/", "/bin", "/boot", "/dev", "/etc", "/home", "/lib", "/lib32", "/lib64", "/libx32",
    "/lost+found", "/media", "/mnt", "/opt", "/proc", "/root", "/run", "/sbin", "/snap",
    "/srv", "/sys", "/tmp", "/usr", "/var",
    "/etc/default", "/etc/kubernetes", "/etc/kubernetes/manifests", "/etc/kubernetes/pki",
    "/etc/kubernetes/pki/etcd", "/etc/ssh", "/etc/ssl", "/etc/sudoers.d", "/etc/systemd",
    "/etc/systemd/system", "/usr/bin", "/usr/include", "/usr/lib", "/usr/lib64",
    "/usr/libexec", "/usr/local", "/usr/local/bin", "/usr/local/etc", "/usr/local/lib",
    "/usr/local/sbin", "/usr/local/share", "/usr/sbin", "/usr/share", "/usr/src",
    "/var/backups", "/var/cache", "/var/lib", "/var/lib/containerd", "/var/lib/docker",
    "/var/lib/etcd", "/var/lib/kubelet", "/var/local", "/var/lock", "/var/log", "/var/mail",
    "/var/opt", "/var/run", "/var/spool", "/var/tmp",
})
# Never inside these (virtual or volatile file systems) and never a direct child of /home.
NOT_UNDER = ("/proc", "/sys", "/dev", "/run")
EXAMPLE = "e.g. /var/backups/etcd"


def path_problem(value: object) -> str | None:
    """What is wrong with ``value`` as an absolute, normalised path, or None."""
    if not isinstance(value, str) or not value:
        return "expected an absolute path"
    if len(value) > MAX_PATH:
        return f"a path of at most {MAX_PATH} characters"
    if not value.startswith("/"):
        return f"{value!r} is relative: give an absolute path ({EXAMPLE})"
    parts = value.split("/")[1:]
    if ".." in parts or "." in parts:
        return f"{value!r} contains '.' or '..': give the normalised path"
    if value != "/" and (posixpath.normpath(value) != value or value.startswith("//")):
        norm = "/" + posixpath.normpath(value).lstrip("/")
        return f"{value!r} is not normalised (did you mean {norm}?)"
    if value != "/" and not PATH_RE.fullmatch(value):
        return (f"{value!r}: use only ASCII letters, digits and . _ @ + - between the "
                "slashes (no spaces, newlines or other characters)")
    return None


def dedicated_dir_problem(value: object) -> str | None:
    """What is wrong with ``value`` as a directory of its own (created and chmod-ed), or None."""
    problem = path_problem(value)
    if problem:
        return problem
    assert isinstance(value, str)
    if value in SYSTEM_DIRS:
        return (f"{value} is a system directory: give a directory of its own "
                f"({EXAMPLE}); it is created 0700")
    if value.count("/") < 2 or posixpath.dirname(value) == "/home":
        return (f"{value} is a top-level or home directory: give a directory of its own "
                f"below it ({EXAMPLE})")
    if any(value.startswith(root + "/") for root in NOT_UNDER):
        return f"{value} is on a virtual or volatile file system: choose a directory on disk"
    return None


def overlaps(a: str, b: str) -> bool:
    """True when absolute paths ``a`` and ``b``, normalised, are the same or one contains the
    other (``//var/lib/etcd`` and ``/var/lib/etcd/../etcd`` are ``/var/lib/etcd``)."""
    a, b = ("/" + posixpath.normpath(p).lstrip("/") for p in (a, b))
    return a == b or a.startswith(b.rstrip("/") + "/") or b.startswith(a.rstrip("/") + "/")


def main(argv: list[str]) -> int:
    """``python3 paths.py DIR...``: the role's check on the node, before it creates a directory
    (prints one line per problem; exit 1 when there is one)."""
    problems = [f"{arg!r}: {dedicated_dir_problem(arg)}" for arg in argv
                if dedicated_dir_problem(arg)]
    print("; ".join(problems))
    return 1 if problems else 0


if __name__ == "__main__":
    import sys

    sys.exit(main(sys.argv[1:]))
