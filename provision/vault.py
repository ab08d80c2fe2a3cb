"""Ansible Vault passwords, as Ansible users give them: ``--vault-password-file FILE``
(repeatable; an executable file is run and its output is the password, as in Ansible),
``--ask-vault-pass`` (asked once, kept in memory only), or ``ANSIBLE_VAULT_PASSWORD_FILE``.

``VaultOptions`` travels with the loaded inventory to the runner, which hands the same password
to ansible-playbook (``runner_args``): the file path on its command line, or the typed password
through ansible-runner's prompt answering (never on a command line, in the environment or on
disk). Only the default vault id is supported (no ``--vault-id label@source``).
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass, field
from typing import Any

from provision.errors import UsageError

ENV_FILE = "ANSIBLE_VAULT_PASSWORD_FILE"
PROMPT = r"^Vault password:\s*$"


@dataclass(frozen=True)
class VaultOptions:
    password_files: tuple[str, ...] = ()
    ask: bool = False
    password: bytes | None = field(default=None, repr=False, compare=False)

    @property
    def given(self) -> bool:
        return bool(self.password_files) or self.password is not None


def from_options(files: tuple[str, ...] | list[str] = (), ask: bool = False,
                 env: dict[str, str] | None = None) -> VaultOptions:
    """The vault options of a command: its flags, else ``ANSIBLE_VAULT_PASSWORD_FILE``.
    ``--ask-vault-pass`` asks now (once), on the terminal."""
    env = os.environ if env is None else env
    paths = [os.path.abspath(os.path.expanduser(f)) for f in files]
    if not paths and env.get(ENV_FILE) and not ask:
        paths = [os.path.abspath(os.path.expanduser(env[ENV_FILE]))]
    for path in paths:
        if not os.path.isfile(path):
            flag = "--vault-password-file" if files else ENV_FILE
            raise UsageError(f"{flag} {path}: no such file")
    password = None
    if ask:
        import click

        password = click.prompt("Vault password", hide_input=True,
                                err=True).encode()
    return VaultOptions(tuple(paths), ask, password)


def from_command(opts: Any) -> VaultOptions:
    """The vault options of the running command's global options (``provision.context``);
    the password asked for by --ask-vault-pass is kept on them, asked once per command."""
    if opts is None:
        return from_options()
    cached = getattr(opts, "vault", None)
    if cached is None:
        cached = from_options(tuple(getattr(opts, "vault_password_file", ()) or ()),
                              bool(getattr(opts, "ask_vault_pass", False)))
        with contextlib.suppress(AttributeError):
            opts.vault = cached
    return cached


def secrets(vault: VaultOptions | None, loader: Any) -> list[tuple[str, Any]]:
    """Ansible vault secrets ``[(vault_id, secret)]`` for ``loader`` (a DataLoader)."""
    if vault is None or not vault.given:
        return []
    from ansible.errors import AnsibleError
    from ansible.parsing.vault import VaultSecret, get_file_vault_secret

    found: list[tuple[str, Any]] = []
    if vault.password is not None:
        found.append(("default", VaultSecret(vault.password)))
    for path in vault.password_files:
        try:
            secret = get_file_vault_secret(filename=path, vault_id="default", loader=loader)
            secret.load()
        except AnsibleError as exc:
            raise UsageError(f"--vault-password-file {path}: {exc.message}") from None
        found.append(("default", secret))
    return found


def decrypt(value: Any, found: list[tuple[str, Any]]) -> str:
    """The plaintext of an Ansible ``EncryptedString``; ValueError (why) when it cannot be
    decrypted."""
    from ansible.errors import AnsibleError
    from ansible.parsing.vault import VaultHelper, VaultLib

    if not found:
        raise ValueError("a vault-encrypted value, but no vault password was given: pass "
                         "--vault-password-file FILE or --ask-vault-pass (or set "
                         f"{ENV_FILE})")
    ciphertext = VaultHelper.get_ciphertext(value, with_tags=False)
    try:
        return VaultLib(found).decrypt(ciphertext).decode("utf-8", errors="replace")
    except AnsibleError:
        raise ValueError("a vault-encrypted value that the vault password given does not "
                         "decrypt") from None


def runner_args(vault: VaultOptions | None) -> tuple[list[str], dict[str, str]]:
    """(ansible-playbook arguments, ansible-runner prompt answers) for ``vault``."""
    if vault is None or not vault.given:
        return [], {}
    args = [a for path in vault.password_files for a in ("--vault-password-file", path)]
    if vault.password is None:
        return args, {}
    return [*args, "--ask-vault-pass"], {PROMPT: vault.password.decode()}
