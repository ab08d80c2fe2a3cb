"""`provision kubeconfig`: the cluster's admin kubeconfig on the controller.

The fetch is ``playbooks/kubeconfig.yml`` (role ``kubeconfig_fetch``, read-only, no_log); the
rewrite and merge are pure (``provision/kubeconfig.py``); this module writes the file.
"""

from __future__ import annotations

import base64
import json
import os
import shlex
import tempfile
from pathlib import Path
from typing import Any

import click

from provision import output
from provision.commands._common import global_options
from provision.errors import ProvisionError, UsageError


def default_path(name: str, merge: bool) -> Path:
    return Path.home() / ".kube" / ("config" if merge else f"config-{name}")


def read_existing(path: Path) -> dict[str, Any]:
    """The kubeconfig to merge into ({} when absent); exit 2 when it is not one."""
    from provision import kubeconfig as kc

    if not path.exists():
        return {}
    if not path.is_file():
        raise UsageError(f"{path}: not a regular file; nothing was written")
    try:
        return kc.load(path.read_text(encoding="utf-8"), str(path))
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"{path}: cannot read it ({exc}); nothing was written") from None
    except kc.KubeconfigError as exc:
        raise UsageError(f"{exc}; not merging into it (nothing was written)") from None


def make_parents(path: Path) -> None:
    """Create the missing parent directories, 0700 each; existing ones are left alone."""
    missing = []
    parent = path.parent
    while not parent.exists():
        missing.append(parent)
        parent = parent.parent
    for d in reversed(missing):
        d.mkdir(mode=0o700)
        os.chmod(d, 0o700)  # ours: mkdir's mode is masked by the umask


def write_private(path: Path, text: str) -> bool:
    """Write ``text`` to ``path`` (a symlink: its target) atomically with mode 0600; False
    when the file already holds exactly that with mode 0600 (nothing written)."""
    target = Path(os.path.realpath(path))
    if target.is_file() and (target.stat().st_mode & 0o777) == 0o600:
        try:
            if target.read_text(encoding="utf-8") == text:
                return False
        except (OSError, UnicodeDecodeError):
            pass
    make_parents(target)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o600)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return True


def fetch(inv: Any, host: str, verbosity: int) -> tuple[dict[str, Any] | None, Any]:
    """Run the read-only fetch playbook; the report (None when the run failed) and the run."""
    from provision.runner import run_playbook

    report_dir = Path(tempfile.mkdtemp(prefix="provision-kubeconfig-"))  # 0700
    try:
        run = run_playbook(command="kubeconfig", playbook="kubeconfig.yml", inventory=inv,
                           limit=host, verbosity=verbosity, quiet=verbosity == 0,
                           extravars={"kubeconfig_fetch_report_dir": str(report_dir),
                                      "kubeconfig_fetch_host": host})
        report = report_dir / "kubeconfig.json"
        if not run.ok or not report.exists():
            return None, run
        return json.loads(report.read_text()), run
    finally:
        for p in report_dir.iterdir():
            p.unlink()
        report_dir.rmdir()


@global_options("inventory", "verbosity", "json", refuses={
    "limit": "it reads the first control-plane node only",
    "check": "it changes nothing on the hosts; it only writes the kubeconfig on this machine",
    "extra_vars": "it takes no variables; use --server and --output"})
@click.command(name="kubeconfig")
@click.option("--merge", is_flag=True,
              help="Merge into ~/.kube/config (or --output): our cluster, user and context "
                   "replaced, every other entry and the current context kept.")
@click.option("--server", metavar="https://HOST:PORT",
              help="API server address to write (e.g. https://127.0.0.1:6443 through an SSH "
                   "tunnel). Default: the node's ansible_host on the API server's port "
                   "(kubeadm; the control_plane_endpoint when set), https://127.0.0.1:8443 "
                   "(minikube, through an SSH tunnel).")
@click.option("--output", "-o", "output_path", metavar="FILE", type=click.Path(dir_okay=False),
              help="The file to write (or merge into). Default: ~/.kube/config-<cluster_name>, "
                   "~/.kube/config with --merge.")
def cli(merge: bool, server: str | None, output_path: str | None) -> int:
    """Write the cluster's admin kubeconfig on this machine, to use kubectl from here.

    Reads /etc/kubernetes/admin.conf on the first control-plane node (kubeadm) or the minikube
    user's kubeconfig with its certificate files embedded (minikube); changes nothing on the
    host. The cluster, context and user are named after cluster_name (user
    <cluster_name>-admin); the file is written with mode 0600 (a missing ~/.kube is created
    0700). Running it again rewrites the same file (unchanged: nothing written).

    \b
    Examples:
      provision -i prod kubeconfig && kubectl --kubeconfig ~/.kube/config-prod get nodes
      provision -i prod kubeconfig --merge && kubectl --context prod get nodes
      ssh -N -L 6443:127.0.0.1:6443 ubuntu@203.0.113.10 &
      provision -i prod kubeconfig --server https://127.0.0.1:6443
    """
    from provision import kubeconfig as kc
    from provision.commands._common import load_inventory, options

    opts = options()
    try:
        wanted = kc.parse_server(server) if server is not None else None
    except kc.KubeconfigError as exc:
        raise UsageError(str(exc)) from None
    inv = load_inventory(opts)  # -i: exit 2 before any contact
    hosts = inv.control_plane or list(inv.hosts.values())
    if not hosts:
        raise UsageError(f"{inv.path}: no host to read the kubeconfig from")
    first = hosts[0]
    name = first.vars.get("cluster_name", "provision")
    try:
        kc.check_name(name, f"{inv.path}: cluster_name")
    except kc.KubeconfigError as exc:
        raise UsageError(str(exc)) from None
    if wanted is None and inv.mode != "minikube" and not first.vars.get(
            "control_plane_endpoint"):
        try:
            kc.check_host(first.address)
        except kc.KubeconfigError as exc:
            raise UsageError(f"{inv.path}: host {first.name}: ansible_host: {exc}; give the "
                             "API server address with --server https://HOST:PORT") from None
    path = Path(os.path.expanduser(output_path)) if output_path else default_path(name, merge)
    if path.exists() and not path.is_file():
        raise UsageError(f"--output {path}: not a regular file")
    existing = read_existing(path) if merge else {}

    output.echo(f"Reading the admin kubeconfig from {first.name} (read-only) ...", err=True)
    report, run = fetch(inv, first.name, opts.verbosity)
    if report is None:  # summary, the reason in errors, the run's exit code (3 unreachable)
        from provision.commands._common import finish_failed_read

        return finish_failed_read(run, "no kubeconfig written")
    cfg, result, notes = build(report, inv, first, name, wanted)
    text = kc.dump(kc.merge(existing, cfg) if merge else cfg)
    try:
        changed = write_private(path, text)
    except OSError as exc:
        raise ProvisionError(f"{path}: {exc.strerror or exc}") from None
    server_url = cfg["clusters"][0]["cluster"]["server"]
    verb = "merged into" if merge else "wrote"
    output.echo(f"{verb if changed else 'unchanged:'} {path} (0600): context {name}, "
                f"server {server_url}")
    for note in notes:
        output.echo(f"note: {note}")
    use = (f"kubectl --context {name} get nodes" if merge and path == default_path(name, True)
           else f"kubectl --kubeconfig {shlex.quote(str(path))} --context {name} get nodes"
           if merge else f"kubectl --kubeconfig {shlex.quote(str(path))} get nodes")
    output.echo(f"try: {use}")
    return output.finish(output.result_object(
        exit_code=0, run_dir=str(run.run_dir), hosts=run.hosts, errors=[],
        kubeconfig={"path": str(path), "context": name, "server": server_url,
                    "merged": merge, "changed": changed, **result}))


def build(report: dict[str, Any], inv: Any, first: Any, name: str, wanted: Any
          ) -> tuple[dict[str, Any], dict[str, Any], list[str]]:
    """The workstation kubeconfig from the fetch report, the JSON extras and notes."""
    from provision import kubeconfig as kc

    minikube = report.get("mode") == "minikube"
    where = (f"{first.name}: the minikube user's kubeconfig" if minikube
             else f"{first.name}: /etc/kubernetes/admin.conf")
    try:
        admin = kc.load(base64.b64decode(report["kubeconfig"]).decode("utf-8"), where)
        files = {p: base64.b64decode(c) for p, c in (report.get("files") or {}).items()}
        context = (report.get("context") or "minikube") if minikube else None
        cluster, _ = kc.admin_parts(admin, where, context)
        original = kc.server_of(cluster, where)
        endpoint = first.vars.get("control_plane_endpoint")
        server = wanted or kc.default_server(original, first.address, endpoint, minikube)
        tls_name = kc.tls_server_name(server, original,
                                      first.vars.get("apiserver_cert_extra_sans") or [],
                                      minikube)
        cfg = kc.workstation(admin, name, server.url, where, files, context, tls_name)
    except (kc.KubeconfigError, ValueError, KeyError) as exc:
        raise ProvisionError(f"{exc}; no kubeconfig written") from None
    notes = []
    if server.host in kc.LOCAL_HOSTS:
        target = (f"{original.host}:{original.port}" if minikube
                  else f"127.0.0.1:{original.port}")
        notes.append(f"{server.url} is this machine: keep an SSH tunnel open, e.g. "
                     f"ssh -N -L {server.port}:{target} "
                     f"{shlex.quote(first.user)}@{shlex.quote(first.address)}")
    if tls_name:
        notes.append(f"the API server's certificate does not name {server.host}; kubectl "
                     f"checks it against the name {tls_name} (tls-server-name). Other clients "
                     f"need {server.host} in apiserver_cert_extra_sans (a public IP must be "
                     "there) and the certificate re-issued")
    return cfg, {"tls_server_name": tls_name}, notes
