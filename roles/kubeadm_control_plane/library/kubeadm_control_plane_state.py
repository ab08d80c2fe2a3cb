#!/usr/bin/python
"""kubeadm_control_plane_state: what the kubeadm_control_plane role would do, read in one
round trip.

The role's steps (init or join, the user's kubeconfig, the control-plane taint) each read the
node first and do nothing on a set-up control plane. This module reads all of it at once and
answers ``current``: true when every step would find nothing to do, so the role skips them
with one skipped include. Anything else (no admin.conf, an API server that does not answer on
the first control plane, a node that has not joined, a user's kubeconfig that is missing or
differs from admin.conf in content, owner or mode, a ~/.kube of another owner or mode, the
control-plane taint still on a node that should be schedulable, a taint that cannot be read)
makes ``current`` false and the steps run as before: they repair it, or stop with their own
message. Nothing is written; the result never reports a change.
"""

from __future__ import annotations

import hashlib
import os
import pwd
import re
import stat

from ansible.module_utils.basic import AnsibleModule

DOCUMENTATION = r"""
module: kubeadm_control_plane_state
short_description: Read whether a kubeadm control plane is set up as the role leaves it
options:
  first: {type: bool, required: true, description: this host ran (or runs) kubeadm init}
  admin_conf: {type: path, required: true, description: the admin kubeconfig}
  kubelet_conf: {type: path, required: true, description: the kubelet kubeconfig (joined)}
  user: {type: str, default: '', description: user who gets ~/.kube/config; empty, nobody}
  node_name: {type: str, required: true, description: Kubernetes node name of this host}
  untaint: {type: bool, default: false, description: the node must not carry the taint}
"""

TAINT = "node-role.kubernetes.io/control-plane"
# provision/patterns.py "node_name" (at most 253 characters)
NODE_NAME = re.compile(r"\A(?=.{1,253}\Z)[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
                       r"(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*\Z")


def digest(path: str) -> str | None:
    try:
        with open(path, "rb") as f:
            return hashlib.sha256(f.read()).hexdigest()
    except OSError:
        return None


def owned(st: os.stat_result, uid: int, gid: int, mode: int, kind: int) -> bool:
    return (stat.S_IFMT(st.st_mode) == kind and st.st_uid == uid and st.st_gid == gid
            and stat.S_IMODE(st.st_mode) == mode)


def user_kubeconfig_reason(user: str, admin_conf: str) -> str | None:
    """Why the user's ~/.kube/config is not what the role's copy leaves (None: it is)."""
    try:
        entry = pwd.getpwnam(user)
    except KeyError:
        return f"user {user} does not exist"
    kube = os.path.join(entry.pw_dir, ".kube")
    config = os.path.join(kube, "config")
    try:
        kube_st, config_st = os.lstat(kube), os.lstat(config)
    except OSError:
        return f"{config} is missing"
    if not owned(kube_st, entry.pw_uid, entry.pw_gid, 0o700, stat.S_IFDIR):
        return f"{kube}: owner or mode differs"
    if not owned(config_st, entry.pw_uid, entry.pw_gid, 0o600, stat.S_IFREG):
        return f"{config}: owner or mode differs"
    wanted = digest(admin_conf)
    if wanted is None or digest(config) != wanted:
        return f"{config} differs from {admin_conf}"
    return None


def kubectl(module: AnsibleModule, admin_conf: str, *args: str) -> tuple[int, str]:
    rc, out, _ = module.run_command(["kubectl", "--kubeconfig", admin_conf,
                                     "--request-timeout=10s", *args])
    return rc, out


def reasons(module: AnsibleModule) -> list[str]:
    """Every step that would act (empty: the control plane is set up as the role leaves it)."""
    p = module.params
    admin = p["admin_conf"]
    if not os.path.isfile(admin):
        return [f"{admin} is missing"]
    if p["first"]:
        if kubectl(module, admin, "get", "--raw", "/readyz")[0] != 0:
            return ["the API server does not answer /readyz"]
    elif not os.path.isfile(p["kubelet_conf"]):
        return [f"{p['kubelet_conf']} is missing (not joined)"]
    found = []
    if p["user"]:
        reason = user_kubeconfig_reason(p["user"], admin)
        if reason:
            found.append(reason)
    if p["untaint"]:
        rc, out = kubectl(module, admin, "get", "node", p["node_name"],
                          "-o", "jsonpath={.spec.taints[*].key}")
        if rc != 0:
            found.append(f"the taints of node {p['node_name']} could not be read")
        elif TAINT in out.split():
            found.append(f"node {p['node_name']} carries the {TAINT} taint")
    return found


def main() -> None:
    module = AnsibleModule(argument_spec={
        "first": {"type": "bool", "required": True},
        "admin_conf": {"type": "path", "required": True},
        "kubelet_conf": {"type": "path", "required": True},
        "user": {"type": "str", "default": ""},
        "node_name": {"type": "str", "required": True},
        "untaint": {"type": "bool", "default": False},
    }, supports_check_mode=True)
    p = module.params
    # the role's options are validated before (meta/argument_specs.yml); the node name goes
    # into kubectl's argv, so it is checked here too (never an option such as --all)
    if not NODE_NAME.match(p["node_name"]):
        module.fail_json(msg=f"kubeadm_control_plane_state: bad node_name {p['node_name']!r}")
    found = reasons(module)
    module.exit_json(changed=False, current=not found, reasons=found)


if __name__ == "__main__":
    main()
