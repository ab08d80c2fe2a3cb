"""Host addresses (pure): what ``ansible_host`` may hold, and ``ADDR[:PORT]`` as `provision
init` accepts it (``10.0.0.5``, ``vm1.example.org:2222``, ``[fd00::5]:2222``, ``fd00::5``)."""

from __future__ import annotations

import ipaddress
import re

# an inventory host name as init writes it (no ':' — Ansible reads NAME:PORT as a port)
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")


def is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def host_problem(value: object) -> str | None:
    """Why ``value`` is not what ansible_host may hold (None when it is): the declared
    ``address`` check of the inventory schema (provision.patterns), one definition."""
    from provision.patterns import address_problem

    return address_problem(value)


def split_endpoint(text: str) -> tuple[str, int | None]:
    """``ADDR``, ``ADDR:PORT``, ``[IPv6]`` or ``[IPv6]:PORT`` -> (address, port or None);
    ValueError saying what is wrong."""
    port_text: str | None = None
    if text.startswith("["):
        addr, sep, rest = text[1:].partition("]")
        if not sep or not is_ip(addr) or ":" not in addr:
            raise ValueError(f"'{text}': expected [IPv6 address] or [IPv6 address]:PORT")
        if rest:
            if not rest.startswith(":"):
                raise ValueError(f"'{text}': expected [IPv6 address]:PORT")
            port_text = rest[1:]
    elif text.count(":") > 1:  # a bare IPv6 address (its port needs the brackets)
        if not is_ip(text):
            raise ValueError(f"'{text}': not an IPv6 address (with a port: [ADDR]:PORT)")
        addr = text
    else:
        addr, sep, port_text_ = text.partition(":")
        port_text = port_text_ if sep else None
    problem = host_problem(addr)
    if problem:
        raise ValueError(problem)
    if port_text is None:
        return addr, None
    if not port_text.isascii() or not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
        raise ValueError(f"'{text}': port '{port_text}' is not a number 1-65535")
    return addr, int(port_text)
