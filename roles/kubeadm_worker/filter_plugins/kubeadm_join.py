"""Pure parsing for the kubeadm_worker role (no I/O)."""

from __future__ import annotations

from typing import Any


def kubeadm_join_params(output: str) -> dict[str, str]:
    """The endpoint, token and CA certificate hash in the output of
    ``kubeadm token create --print-join-command``::

        kubeadm join 10.0.0.10:6443 --token abcdef.0123456789abcdef \\
            --discovery-token-ca-cert-hash sha256:<hex>

    Missing parts are empty strings (the role asserts they are all present).
    """
    words = str(output or "").replace("\\\n", " ").split()
    params = {"endpoint": "", "token": "", "ca_cert_hash": ""}
    for i, word in enumerate(words):
        nxt = words[i + 1] if i + 1 < len(words) else ""
        if word == "join" and i > 0 and words[i - 1] == "kubeadm" and not nxt.startswith("-"):
            params["endpoint"] = nxt
        elif word == "--token":
            params["token"] = nxt
        elif word == "--discovery-token-ca-cert-hash":
            params["ca_cert_hash"] = nxt
        elif word.startswith("--token="):
            params["token"] = word.split("=", 1)[1]
        elif word.startswith("--discovery-token-ca-cert-hash="):
            params["ca_cert_hash"] = word.split("=", 1)[1]
    return params


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {"kubeadm_join_params": kubeadm_join_params}
