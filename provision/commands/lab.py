"""`provision lab`: throwaway lab hosts (systemd containers or qemu VMs) to try on."""

from __future__ import annotations

import click

from provision import output
from provision.commands._common import NO_INVENTORY, global_options

EXAMPLES_UP = """
\b
Examples:
  provision lab up                                  # one container host, kubeadm mode
  provision lab up --nodes 3 --control-planes 1     # lab-1 control plane, lab-2/3 workers
  provision lab up --arch arm64                     # arm64 container (qemu-user-static)
  provision lab up --kind vm                        # a qemu VM (reboots, modules, disks)
  provision lab up --kind vm --cpus 4 --memory 8G --disk 40G
  provision lab up --kind vm --image ubuntu-24.04.img
  provision -i lab doctor
"""


@click.group("lab")
def cli() -> None:
    """Throwaway lab hosts (systemd containers or qemu VMs) to try provision on.

    `lab up` starts hosts lab-1..N, waits until SSH answers with their pre-recorded host
    keys and writes an inventory that every command accepts as `-i lab`. State lives under
    $XDG_STATE_HOME/provision/lab/; `lab down` removes all of it.

    \b
    Examples:
      provision lab up --nodes 3 && provision -i lab doctor
      provision lab status
      provision lab ssh lab-1 -- uname -m
      provision lab down
    """


@global_options("json", refuses=NO_INVENTORY)
@cli.command("up", epilog=EXAMPLES_UP)
@click.option("--nodes", default=1, show_default=True, type=int,
              help="Number of hosts (named lab-1, lab-2, ...).")
@click.option("--control-planes", default=1, show_default=True, type=int,
              help="The first N hosts form the control_plane group; the rest are workers.")
@click.option("--mode", default="kubeadm", show_default=True,
              type=click.Choice(["kubeadm", "minikube"]),
              help="Written as provision_mode into the lab inventory.")
@click.option("--arch", default="amd64", show_default=True,
              type=click.Choice(["amd64", "arm64"]),
              help="CPU architecture (arm64 containers run under qemu-user-static).")
@click.option("--kind", default="container", show_default=True,
              type=click.Choice(["container", "vm"]),
              help="container: systemd in docker (fast); vm: qemu (real kernel).")
@click.option("--image", metavar="FILE",
              help="vm: a cloud image file (.img/.qcow2); container: a local docker image "
                   "derived from the lab image.")
@click.option("--disk", metavar="SIZE",
              help="vm only: root disk size, e.g. 20G. Default 30G (a sparse overlay; "
                   "bootstrap grows the root partition into it).")
@click.option("--cpus", type=int, metavar="N",
              help="vm only: vCPUs per VM. Default: what doctor requires for --mode and the "
                   "node's role (2 for a control plane or minikube, 1 for a worker).")
@click.option("--memory", metavar="SIZE",
              help="vm only: RAM per VM, e.g. 4G or 3072M. Default: doctor's minimum for "
                   "--mode and the role plus 512M (2.5G control plane/minikube, 1.5G worker).")
@click.option("--ssh-timeout", type=int, metavar="SECONDS",
              help="How long to wait for SSH on all hosts. Default: 180 s per container "
                   "(600 s per VM, more under arm64 emulation) times hosts per CPU.")
def up_cmd(nodes: int, control_planes: int, mode: str, arch: str, kind: str,
           image: str | None, disk: str | None, cpus: int | None, memory: str | None,
           ssh_timeout: int | None) -> int:
    """Start lab hosts and write the `-i lab` inventory."""
    from provision import paths
    from provision.lab import manager
    from provision.stepdisplay import StepDisplay

    plan = manager.make_plan(nodes=nodes, control_planes=control_planes, mode=mode,
                             arch=arch, kind=kind, image=image, disk=disk, cpus=cpus,
                             memory=memory, ssh_timeout=ssh_timeout)
    with StepDisplay(list(manager.UP_STEPS)) as display:
        st, timings = manager.up(plan, progress=display.say, display=display)
    output.echo(f"lab up: {', '.join(n.name for n in st.nodes)} ready in "
                f"{timings['ready_s']:.1f}s (inventory: {paths.lab_inventory_dir()})")
    output.echo("next: provision -i lab doctor | provision lab ssh lab-1 | provision lab down")
    hosts = {n.name: {"ssh_port": n.ssh_port, "address": n.address} for n in st.nodes}
    return output.finish(output.result_object(
        exit_code=0, hosts=hosts, inventory=str(paths.lab_inventory_dir()), timings=timings,
        kind=st.kind, arch=st.arch, mode=st.mode))


@global_options("json", refuses=NO_INVENTORY)
@cli.command("down", epilog="\b\nExample:\n  provision lab down")
def down_cmd() -> int:
    """Remove every lab host, network, key and file that `lab up` created."""
    from provision.lab import manager

    removed = manager.down(progress=lambda m: output.echo(m, err=True))
    output.echo(f"lab down: removed {', '.join(removed)}" if removed else "no lab was up")
    return output.finish(output.result_object(exit_code=0, removed=removed))


@global_options("json", refuses=NO_INVENTORY)
@cli.command("status", epilog="\b\nExample:\n  provision --json lab status")
def status_cmd() -> int:
    """Show the lab's hosts, SSH ports and uptime."""
    from provision.lab import manager

    rows = manager.status()
    output.echo(f"{'HOST':8} {'GROUP':14} {'KIND':10} {'ARCH':6} {'SSH':16} {'STATE':8} UPTIME")
    for r in rows:
        up = "-" if r["uptime_s"] is None else f"{r['uptime_s']:.0f}s"
        output.echo(f"{r['name']:8} {r['group']:14} {r['kind']:10} {r['arch']:6} "
                    f"{r['address'] + ':' + str(r['ssh_port']):16} "
                    f"{'running' if r['running'] else 'stopped':8} {up}")
    exit_code = 0 if all(r["running"] for r in rows) else 1
    from provision.lab import state

    lab = state.load()  # None: no lab is up (no rows, exit 0)
    about = {"mode": lab.mode, "kind": lab.kind, "arch": lab.arch} if lab else {}
    return output.finish(output.result_object(
        exit_code=exit_code, hosts={r["name"]: r for r in rows}, **about))


@global_options("json", refuses=NO_INVENTORY)
@cli.command("reboot", epilog="\b\nExample:\n  provision lab reboot lab-1")
@click.argument("name")
def reboot_cmd(name: str) -> int:
    """Reboot one lab host and wait until SSH answers again (containers restart)."""
    from provision.lab import manager

    seconds = manager.reboot(name, progress=lambda m: output.echo(m, err=True))
    output.echo(f"{name}: back after {seconds:.1f}s")
    return output.finish(output.result_object(exit_code=0, host=name,
                                              elapsed_s=round(seconds, 2)))


@global_options(refuses={**NO_INVENTORY, "json": "its output is the shell's or the command's"})
@cli.command("ssh", context_settings={"ignore_unknown_options": True,
                                      "allow_interspersed_args": False},
             epilog="\b\nExamples:\n  provision lab ssh lab-1\n"
                    "  provision lab ssh lab-2 -- sudo systemctl is-system-running\n"
                    "  provision lab ssh lab-1 -- 'ps aux | grep apt'")
@click.argument("name")
@click.argument("command", nargs=-1, type=click.UNPROCESSED)
def ssh_cmd(name: str, command: tuple[str, ...]) -> int:
    """Open a shell on a lab host, or run COMMAND there and return its exit code.

    As with ssh, one quoted argument is a remote shell command line
    ('ps aux | grep apt'); several arguments are passed as separate words. The host key is
    checked against the lab's known_hosts (StrictHostKeyChecking=yes).
    """
    from provision.lab import manager

    words = list(command)[1:] if command[:1] == ("--",) else list(command)  # after NAME all
    return manager.ssh(name, words)  # is the remote command (global options come before it)
