"""Which values are secret, and keeping them out of run artifacts and messages.

A variable is secret when a role declares it ``no_log: true`` in ``meta/argument_specs.yml`` or
its name says so (``*password*``, ``*token*``, ``*secret*``, ``*_key``, ``*credential*``; not
``*_file``/``*_path``/``*_dir``/``*_name``/``*_tls_secret``, which hold where a secret is, not
the secret). An environment variable is secret by the same name rule. A password inside a URL
(``http://user:PASS@proxy:3128``) is secret in any variable or environment value.
``minimal_env`` is the only environment a playbook run gets: nothing outside a short
allow-list of ordinary variables reaches Ansible.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

MASK = "********"
MIN_SECRET_LEN = 4  # shorter values ("1", "yes") would mask ordinary log text
# flag-like values of secret-named settings (API_KEY_ENABLED=true): masking them would garble
# every log line with "true" in it, and they hide nothing
_TRIVIAL = frozenset({"true", "false", "yes", "no", "none", "null", "on", "off", "disabled",
                      "enabled"})
_SECRET_NAME = re.compile(
    r"(password|passwd|passphrase|secret|token|credential|api_?key|private_?key|access_?key"
    r"|(^|_)keys?($|_)|(^|_)auth($|_))", re.IGNORECASE)
# where a secret is, not the secret; *_tls_secret names a Kubernetes Secret object
# (gateway_api_tls_secret, ingress_nginx_default_tls_secret), which a failure must be able to
# name
_NOT_SECRET_SUFFIX = re.compile(r"_(file|path|dir|name|sock|socket|tls_secret)$", re.IGNORECASE)

# Environment variables a playbook run may inherit from the caller (plus what provision and
# ansible-runner set themselves). SSH_AUTH_SOCK: keys in ssh-agent; the vault variables name
# where the vault password is (a file or a client script), not the password.
ENV_ALLOW = frozenset({
    "PATH", "HOME", "USER", "LOGNAME", "SHELL", "LANG", "LANGUAGE", "TZ", "TERM", "TMPDIR",
    "SSH_AUTH_SOCK", "XDG_RUNTIME_DIR", "XDG_STATE_HOME", "XDG_CONFIG_HOME", "XDG_CACHE_HOME",
    "XDG_DATA_HOME", "ANSIBLE_VAULT_PASSWORD_FILE", "ANSIBLE_VAULT_IDENTITY_LIST",
    "DOCKER_HOST", "DOCKER_CONTEXT", "DOCKER_CONFIG", "DOCKER_CERT_PATH", "DOCKER_TLS_VERIFY",
    # local-connection hosts run their tasks in this environment (a password in a proxy URL
    # is masked like any secret: env_secret_values)
    "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "no_proxy",
})
_URL_PASSWORD = re.compile(r"://[^:/@\s]+:([^@/\s]+)@")
ENV_ALLOW_PREFIXES = ("LC_",)


def is_secret_name(name: str) -> bool:
    return bool(_SECRET_NAME.search(name)) and not _NOT_SECRET_SUFFIX.search(name)


def no_log_options() -> frozenset[str]:
    """Role options declared ``no_log: true`` in any roles/*/meta/argument_specs.yml
    (generated into provision/schema_roles.py)."""
    from provision.schema_roles import NO_LOG_OPTIONS

    return NO_LOG_OPTIONS


def is_secret_var(name: str) -> bool:
    """An inventory or extra variable whose value is never shown or kept."""
    return name in no_log_options() or is_secret_name(name)


def _leaves(value: Any) -> Iterable[str]:
    if isinstance(value, Mapping):
        for v in value.values():
            yield from _leaves(v)
    elif isinstance(value, list | tuple):
        for v in value:
            yield from _leaves(v)
    elif value is not None and not isinstance(value, bool):
        yield str(value)


def url_passwords(value: Any) -> set[str]:
    """Passwords inside URLs (``http://user:PASS@proxy:3128``) in any string of ``value``, at
    any depth: the credentials of a proxy or mirror URL (``http_proxy``, ``https_proxy``, ...)
    are secret whatever the variable is called."""
    return {p for leaf in _leaves(value) for p in _URL_PASSWORD.findall(leaf)}


def secret_values(variables: Mapping[str, Any]) -> set[str]:
    """Every value under a secret name, at any depth (a secret mapping: all its leaves), and
    every password inside a URL."""
    found: set[str] = url_passwords(variables)
    for key, value in variables.items():
        if is_secret_var(str(key)):
            found.update(_leaves(value))
        elif isinstance(value, Mapping):
            found |= secret_values(value)
        elif isinstance(value, list):
            for item in value:
                if isinstance(item, Mapping):
                    found |= secret_values(item)
    return {v for v in found if _maskable(v)}


def _maskable(value: str) -> bool:
    return len(value) >= MIN_SECRET_LEN and value.strip().lower() not in _TRIVIAL


def env_secret_values(env: Mapping[str, str]) -> set[str]:
    """Values of secret-named variables, and passwords inside URLs (``http://u:PASS@proxy``)."""
    found = {v for k, v in env.items() if is_secret_name(k)}
    for value in env.values():
        found.update(_URL_PASSWORD.findall(value))
    return {v for v in found if _maskable(v)}


def minimal_env(env: Mapping[str, str]) -> dict[str, str]:
    """The allow-listed part of ``env``."""
    return {k: v for k, v in env.items()
            if k in ENV_ALLOW or k.startswith(ENV_ALLOW_PREFIXES)}


def _forms(secret: str) -> list[str]:
    """The secret as written in plain text and inside JSON strings."""
    forms = {secret, json.dumps(secret)[1:-1], json.dumps(secret, ensure_ascii=False)[1:-1]}
    return sorted(forms, key=len, reverse=True)


def redact_text(text: str, secrets: Iterable[str]) -> str:
    for secret in sorted(set(secrets), key=len, reverse=True):
        for form in _forms(secret):
            if form and form in text:
                text = text.replace(form, MASK)
    return text


def redact_obj(obj: Any, secrets: set[str]) -> Any:
    """``obj`` (event data: dicts, lists, strings) with every secret masked; dicts and lists
    are changed in place so ansible-runner writes the masked event."""
    if not secrets:
        return obj
    if isinstance(obj, dict):
        for key in list(obj):
            obj[key] = redact_obj(obj[key], secrets)
        return obj
    if isinstance(obj, list):
        for i, item in enumerate(obj):
            obj[i] = redact_obj(item, secrets)
        return obj
    if isinstance(obj, str):
        return redact_text(obj, secrets)
    if isinstance(obj, int | float) and not isinstance(obj, bool) and str(obj) in secrets:
        return MASK
    return obj


def scrub_tree(root: Path, secrets: set[str]) -> list[Path]:
    """Mask every secret in every regular file under ``root`` (symlinks are not followed).
    Returns the files that were changed."""
    changed: list[Path] = []
    if not secrets:
        return changed
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            path = Path(dirpath) / name
            if path.is_symlink() or not path.is_file():
                continue
            try:
                raw = path.read_bytes()
            except OSError:
                continue
            text = raw.decode("utf-8", errors="surrogateescape")
            new = redact_text(text, secrets)
            if new != text:
                path.write_bytes(new.encode("utf-8", errors="surrogateescape"))
                changed.append(path)
    return changed
