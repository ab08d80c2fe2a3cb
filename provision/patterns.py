"""Declared value patterns: what a value that reaches a host may look like (pure, no I/O).

Every value that ends up in a unit file, a shell script, a file name or a command line on a
host is checked against one of these patterns before any host is contacted (the inventory by
``provision.validate``, flags by the Click types below); the roles also quote what they render,
so a value that slips one layer is still inert.

Rules shared by every pattern: ASCII only (Python's ``int()``, ``str.isdigit()`` and ``\\d``
accept other scripts' digits: ``"1.３１"`` is not a version here), the whole value must match
(``fullmatch``; ``$`` alone would accept a trailing newline), bounded length, and never a Jinja
template (``{{``, ``{%``, ``{#``), which Ansible would evaluate on the controller.
"""

from __future__ import annotations

import ipaddress
import posixpath
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import click

TEMPLATE_MARKERS = ("{{", "{%", "{#")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def is_template(value: Any) -> bool:
    """A string Ansible would template (``{{ }}``, ``{% %}``, ``{# #}``), also inside lists and
    mappings."""
    if isinstance(value, str):
        return any(m in value for m in TEMPLATE_MARKERS)
    if isinstance(value, list | tuple):
        return any(is_template(v) for v in value)
    if isinstance(value, dict):
        return any(is_template(k) or is_template(v) for k, v in value.items())
    return False


def has_control(text: str) -> bool:
    """A newline, tab, NUL or another control character."""
    return bool(_CONTROL.search(text))


def shown(value: str) -> str:
    """A value for a message: repr-like, so a newline shows as ``\\n``."""
    return repr(value)


@dataclass(frozen=True)
class Pattern:
    """A declared pattern: a regex (ASCII, whole value), a length limit and extra checks."""

    name: str
    regex: str
    expected: str  # "a DNS name like registry.example.org"
    max_len: int = 255
    allow_empty: bool = False
    allow_dash: bool = False  # may start with '-' (a list of options, e.g. SSH arguments)
    extra: Callable[[str], str | None] | None = None

    def problem(self, value: Any) -> str | None:
        """Why ``value`` does not match (a sentence without the key), or None."""
        if not isinstance(value, str):
            return f"expected {self.expected}, got {type(value).__name__}"
        if value == "" and self.allow_empty:
            return None
        if is_template(value):
            return "templates are not allowed here (Ansible would evaluate them on your machine)"
        if value == "":
            return f"empty: expected {self.expected}"
        if len(value) > self.max_len:
            return f"longer than {self.max_len} characters: expected {self.expected}"
        if not value.isascii():
            return f"{shown(value)} has non-ASCII characters: expected {self.expected}"
        if has_control(value):
            return (f"{shown(value)} contains a newline or control character: "
                    f"expected {self.expected}")
        if value.startswith("-") and not self.allow_dash:
            return f"{shown(value)} starts with '-' (it would read as an option): " \
                   f"expected {self.expected}"
        if not re.fullmatch(self.regex, value, flags=re.ASCII):
            return f"{shown(value)} is not {self.expected}"
        return self.extra(value) if self.extra else None

    def ok(self, value: Any) -> bool:
        return self.problem(value) is None


def _normalised_abs_path(value: str) -> str | None:
    if posixpath.normpath(value) != value or value.startswith("//"):
        return (f"{shown(value)} is not a normalised path (no '//', '/./', '/../' or "
                f"trailing '/'): write {posixpath.normpath(value)!r}")
    return None


def _https_url(value: str) -> str | None:
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(value)
    except ValueError:
        return f"{shown(value)} is not an https:// ACME directory URL"
    if parts.scheme != "https" or not parts.hostname:
        return f"{shown(value)} is not an https:// ACME directory URL"
    return None


def _endpoint_host(value: str) -> str | None:
    host, port = value, ""
    if value.startswith("["):
        host, port = value[1:value.index("]")], value[value.index("]") + 2:]
    elif value.count(":") == 1:
        host, port = value.split(":")
    if port and not 1 <= int(port) <= 65535:
        return f"{shown(value)}: the port must be 1-65535"
    try:
        ipaddress.ip_address(host)
        return None
    except ValueError:
        pass
    if ":" in host or not re.fullmatch(rf"(?:{_LABEL}\.)*{_LABEL}", host, re.ASCII):
        return f"{shown(value)} is not HOST[:PORT] (an IPv6 address goes in brackets)"
    return None


_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"

# --- URLs of proxies and mirrors --------------------------------------------------------------

# userinfo of a proxy URL: RFC 3986 unreserved characters, percent-encoding and the sub-delims
# that are inert in a shell word, a systemd Environment= word, apt.conf and TOML strings.
_USERINFO = r"[A-Za-z0-9._~%!*+,;=-]+(?::[A-Za-z0-9._~%!*+,;=-]*)?@"
_URL_HOST = r"(?:[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?|\[[0-9A-Fa-f:.]+\])"
_URL_PORT = r"(?::[0-9]{1,5})?"
_USERINFO_PART = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*://)([^/?#]*)@", re.ASCII)


def hide_userinfo(value: str) -> str:
    """``http://user:pass@proxy:3128`` -> ``http://(hidden)@proxy:3128`` (for messages)."""
    return _USERINFO_PART.sub(lambda m: f"{m.group(1)}(hidden)@", value, count=1)


def _url_port(value: str) -> str | None:
    from urllib.parse import urlsplit

    try:
        port = urlsplit(value).port
    except ValueError:
        return f"{shown(hide_userinfo(value))}: the port must be 1-65535"
    if port == 0:
        return f"{shown(hide_userinfo(value))}: the port must be 1-65535"
    return None


def _no_proxy_entry(value: str) -> str | None:
    if "/" in value:
        try:
            ipaddress.ip_network(value, strict=False)
        except ValueError:
            return f"{shown(value)} is not a CIDR like 10.0.0.0/8"
    return None


@dataclass(frozen=True)
class SecretUrlPattern(Pattern):
    """A URL that may carry a password (``http://user:PASS@proxy:3128``): its messages show the
    value with the user information replaced by ``(hidden)``."""

    def problem(self, value: Any) -> str | None:
        message = super().problem(value)
        if message is None or not isinstance(value, str):
            return message
        hidden = hide_userinfo(value)
        if hidden != value:
            message = message.replace(shown(value), shown(hidden)).replace(value, hidden)
            secret = _USERINFO_PART.match(value)
            if secret and secret.group(2) and secret.group(2) in message:
                return f"expected {self.expected} (the value is hidden: it has credentials)"
        return message

# An SSH address may also be an alias of ~/.ssh/config or /etc/hosts: '_' is allowed there.
_HOST_LABEL = r"[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?"
_DNS_NAME = rf"(?:{_HOST_LABEL}\.)*{_HOST_LABEL}"
_FQDN = rf"(?:{_LABEL}\.)+[A-Za-z0-9-]*[A-Za-z][A-Za-z0-9-]*"
_PATH_CHARS = r"[A-Za-z0-9._/+@,=:~-]"
_UNIT_SUFFIXES = ("service", "socket", "target", "timer", "path", "mount", "automount",
                  "swap", "slice", "scope", "device")

PATTERNS: dict[str, Pattern] = {p.name: p for p in (
    Pattern("cluster_name", r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?",
            "a DNS label: lower-case letters, digits and '-', at most 63, e.g. prod", 63),
    Pattern("user", r"[a-z_][a-z0-9_.-]*\$?",
            "a POSIX user name like ubuntu or deploy_1 (a-z, 0-9, '_', '.', '-'; at most 32)",
            32),
    Pattern("domain", rf"(?:\*\.)?{_FQDN}",
            "a DNS name like registry.example.org (*.example.org for dns-01)", 253),
    Pattern("node_name", r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}"
            r"[a-z0-9])?)*", "a Kubernetes node name like cp1 or cp1.example.org (lower case)",
            253),
    Pattern("hostname", _DNS_NAME, "a DNS name like cp1.example.org (or an SSH alias)", 253),
    Pattern("email", rf"[A-Za-z0-9._+-]+@{_FQDN}",
            "an e-mail address like ops@example.org", 254),
    Pattern("unit", rf"[A-Za-z0-9_.:@-]+?(?:\.(?:{'|'.join(_UNIT_SUFFIXES)}))?",
            "a systemd unit name like nginx or docker-registry.service "
            "(letters, digits, ':', '_', '.', '@', '-')", 255, allow_empty=True),
    Pattern("abs_path", rf"/{_PATH_CHARS}*",
            "an absolute path like /etc/kubernetes (letters, digits and ._/+@,=:~- only)",
            4096, extra=_normalised_abs_path),
    Pattern("abs_path_or_empty", rf"/{_PATH_CHARS}*",
            "an absolute path like /var/www (or empty)", 4096, allow_empty=True,
            extra=_normalised_abs_path),
    Pattern("controller_path", r"[^\"'`$;\\|&<>]+",
            "a file path without quotes, '$', ';', '|', '&', '<', '>' or backslashes", 4096),
    Pattern("https_url", r"https://[A-Za-z0-9._~:/?#\[\]@!&()*+,;=%-]+",
            "an https:// ACME directory URL", 2048,
            extra=_https_url),
    Pattern("mirror_url", r"https?://[A-Za-z0-9._~:/\[\]@%-]+",
            "a registry mirror URL like https://mirror.example.org", 2048),
    SecretUrlPattern("proxy_url", rf"https?://(?:{_USERINFO})?{_URL_HOST}{_URL_PORT}/?",
                     "a proxy URL like http://proxy.example.org:3128 or "
                     "http://user:password@10.0.0.1:3128 (percent-encode other characters; "
                     "or empty)", 2048, allow_empty=True, extra=_url_port),
    Pattern("base_url", rf"https?://{_URL_HOST}{_URL_PORT}(?:/[A-Za-z0-9._~%+,=:@-]+)*",
            "a base URL without a trailing '/' like https://mirror.example.org/k8s", 2048,
            extra=_url_port),
    Pattern("no_proxy_entry", r"\*|\.?[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?"
            r"(?:/[0-9]{1,3})?|[0-9A-Fa-f:.]+(?:/[0-9]{1,3})?",
            "a host, a domain (.example.org), an IP address or a CIDR like 10.0.0.0/8", 255,
            extra=_no_proxy_entry),
    Pattern("dns_provider", r"[a-z0-9][a-z0-9._-]*",
            "a lego DNS provider code like cloudflare or route53", 64),
    Pattern("dns_provider_or_empty", r"[a-z0-9][a-z0-9._-]*",
            "a lego DNS provider code like cloudflare or route53 (or empty)", 64,
            allow_empty=True),
    Pattern("user_or_empty", r"[a-z_][a-z0-9_.-]*\$?",
            "a POSIX user name like ubuntu (or empty)", 32, allow_empty=True),
    Pattern("address", r".+", "an IPv4/IPv6 address or a DNS name", 253,
            extra=lambda v: address_problem(v)),
    Pattern("calendar", r"[A-Za-z0-9_*.,:/~+][A-Za-z0-9_*.,:/~+ -]*",
            "a systemd OnCalendar expression like daily or 'Mon *-*-* 03:00'", 256),
    Pattern("timespan", r"[0-9]+(?:\.[0-9]+)? ?[a-z]*(?: [0-9]+(?:\.[0-9]+)? ?[a-z]*)*",
            "a systemd time span like 1h, 30min or 0", 64),
    Pattern("go_duration", r"[0-9]+[a-z]*(?:[0-9]+[a-z]*)*",
            "a duration like 168h or 24h30m", 64),
    Pattern("listen", r"(?:[A-Za-z0-9.-]*|\[[0-9A-Fa-f:.]+\]):[0-9]{1,5}",
            "[ADDRESS]:PORT like :80 or 127.0.0.1:8080", 64),
    Pattern("endpoint", r"(?:[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?|[0-9A-Fa-f:.]+",
            "HOST[:PORT] like k8s.example.org:6443, 10.0.0.10 or [fd00::10]:6443", 300,
            extra=lambda v: _endpoint_host(v)),
    Pattern("san", r"[A-Za-z0-9.:*-]+",
            "a DNS name or an IP address like k8s.example.org or 198.51.100.7", 253),
    Pattern("host_port", r"(?:[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\]):[0-9]{1,5}",
            "HOST:PORT like 1.1.1.1:53", 300),
    Pattern("image", r"[A-Za-z0-9][A-Za-z0-9._/:@-]*",
            "an image reference like provision-verify:1 or hello-world", 512, allow_empty=True),
    Pattern("plugin", r"[a-z][a-z0-9_]*(?:\.[a-z][a-z0-9_]*)*",
            "a plugin name like ssh, local, docker or sudo", 128),
    Pattern("interpreter", r"(?:auto|auto_silent|auto_legacy|auto_legacy_silent|"
            rf"/{_PATH_CHARS}+(?: [A-Za-z0-9._+-]+)?)",
            "auto, auto_silent or an absolute path like /usr/bin/python3", 4096),
    Pattern("single_line", r"[^\x00-\x1f\x7f]*",
            "one line of text", 4096, allow_empty=True, allow_dash=True),
)}


def pattern(name: str) -> Pattern:
    return PATTERNS[name]


# --- addresses ---------------------------------------------------------------------------

def address_problem(value: Any) -> str | None:
    """An SSH address: an IPv4/IPv6 literal (bare, no brackets, no port) or a DNS name."""
    if not isinstance(value, str):
        return f"expected an address or DNS name, got {type(value).__name__}"
    if value == "":
        return "empty: expected an address or DNS name"
    if is_template(value):
        return "templates are not allowed here (Ansible would evaluate them on your machine)"
    if not value.isascii() or has_control(value):
        return (f"{shown(value)} contains a newline, control or non-ASCII character: expected "
                "an address or DNS name")
    if value.startswith("["):
        return (f"{shown(value)}: write an IPv6 address without brackets (e.g. ::1); the port "
                "goes in ansible_port")
    if ":" in value:
        try:
            addr = ipaddress.ip_address(value)
        except ValueError:
            return (f"{shown(value)} is not an address: a port goes in ansible_port, not "
                    "after ':'")
        if "%" in value:
            return f"{shown(value)}: an IPv6 zone index (%) is not supported"
        return None if addr.version == 6 else f"{shown(value)} is not an address"
    try:
        ipaddress.ip_address(value)
        return None
    except ValueError:
        pass
    return PATTERNS["hostname"].problem(value)


# --- ASCII number parsing (CLI flags) -------------------------------------------------------

_ASCII_INT = re.compile(r"[0-9]{1,18}", re.ASCII)


def parse_ascii_int(text: str, flag: str, *, minimum: int | None = None,
                    maximum: int | None = None) -> int:
    """``"12"`` -> 12; non-ASCII digits, signs, spaces, newlines, more than 18 digits or a value
    out of range raise ValueError naming ``flag``."""
    if not isinstance(text, str) or not _ASCII_INT.fullmatch(text):
        raise ValueError(f"{flag} {shown(str(text))}: expected a whole number written with "
                         "the digits 0-9")
    number = int(text)
    if minimum is not None and number < minimum:
        raise ValueError(f"{flag} {text}: must be at least {minimum}")
    if maximum is not None and number > maximum:
        raise ValueError(f"{flag} {text}: must be at most {maximum}")
    return number


def parse_port(text: str, flag: str) -> int:
    return parse_ascii_int(text, flag, minimum=1, maximum=65535)


def is_ascii_digits(text: str) -> bool:
    """What ``str.isdigit()`` should have meant: 1-18 ASCII digits."""
    return isinstance(text, str) and bool(_ASCII_INT.fullmatch(text))


_SIZE = re.compile(r"([0-9]{1,12})([KMGT]?)(?:i?B)?", re.ASCII | re.IGNORECASE)


def parse_size(text: str, flag: str = "--disk") -> int:
    """``"20G"`` -> bytes (K, M, G, T, powers of 1024; ASCII digits only); ValueError."""
    m = _SIZE.fullmatch(text) if isinstance(text, str) else None
    if not m or int(m.group(1)) <= 0:
        raise ValueError(f"{flag} {shown(str(text))}: expected a size like 20G or 4096M")
    units = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
    return int(m.group(1)) * units[m.group(2).upper()]


# --- Click --------------------------------------------------------------------------------

class PatternType(click.ParamType):
    """A Click parameter checked against a declared pattern (exit 2 naming the flag)."""

    def __init__(self, pattern_name: str) -> None:
        self.pattern = PATTERNS[pattern_name]
        self.name = pattern_name

    def convert(self, value: Any, param: click.Parameter | None,
                ctx: click.Context | None) -> Any:
        problem = self.pattern.problem(value)
        if problem:
            self.fail(problem, param, ctx)
        return value


class AsciiIntType(click.ParamType):
    """An integer flag written with ASCII digits only, optionally bounded."""

    name = "integer"

    def __init__(self, minimum: int | None = None, maximum: int | None = None) -> None:
        self.minimum, self.maximum = minimum, maximum

    def convert(self, value: Any, param: click.Parameter | None,
                ctx: click.Context | None) -> Any:
        if isinstance(value, int) and not isinstance(value, bool):
            value = str(value)
        flag = param.opts[0] if param is not None and param.opts else "value"
        try:
            return parse_ascii_int(value, flag, minimum=self.minimum, maximum=self.maximum)
        except ValueError as exc:
            self.fail(str(exc).removeprefix(f"{flag} "), param, ctx)


def click_type(pattern_name: str) -> PatternType:
    """The Click ParamType of a declared pattern: ``type=click_type("domain")``."""
    return PatternType(pattern_name)
