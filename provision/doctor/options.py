"""Checks of doctor's own flags: ``--url`` (http/https only) and ``--timeout`` (finite).

A URL is handed to curl on every host: anything but a plain http(s) URL (``file:///etc/shadow``,
``-o/tmp/x``, ``gopher://``, a newline, credentials that would end up in the report) is refused
before any host is contacted. ``click.FloatRange`` lets ``nan`` through (every comparison with
nan is false); ``FiniteFloatRange`` does not.
"""

from __future__ import annotations

import math
from typing import Any
from urllib.parse import urlsplit

import click

MAX_URL = 2048


def url_problem(url: str) -> str | None:
    """Why ``url`` cannot be probed with curl from the hosts, or None."""
    if len(url) > MAX_URL:
        return f"longer than {MAX_URL} characters"
    if any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in url) or not url.isascii():
        return "contains whitespace, control or non-ASCII characters (percent-encode them)"
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        return f"not a valid URL ({exc})"
    if parts.scheme.lower() not in ("http", "https"):
        return "only http:// and https:// URLs are allowed"
    if not parts.hostname:
        return "no host name"
    if parts.username is not None or parts.password is not None:
        return "credentials in the URL would be shown in the report: leave them out"
    if port == 0:
        return "port 0"
    return None


def url_problems(urls: tuple[str, ...] | list[str]) -> list[str]:
    """One '--url URL: reason' per refused URL."""
    return [f"--url {u[:100]!r}: {p}" for u in urls if (p := url_problem(u))]


class FiniteFloatRange(click.FloatRange):
    """A FloatRange that also refuses nan (and inf when a bound is set)."""

    def convert(self, value: Any, param: click.Parameter | None,
                ctx: click.Context | None) -> Any:
        rv = super().convert(value, param, ctx)
        if isinstance(rv, float) and not math.isfinite(rv):
            self.fail(f"{value!r} is not a finite number", param, ctx)
        return rv
