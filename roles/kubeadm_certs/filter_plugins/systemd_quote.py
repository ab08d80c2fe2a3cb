"""Quoting for systemd unit files (the same file in every role that writes units; a test keeps
the copies identical).

``systemd_exec_arg``: one argument of ExecStart= as a double-quoted word: backslash, quote and
control characters C-escaped, ``%`` (specifiers) doubled, ``$`` (variable expansion) doubled.
``systemd_value``: a one-line setting value (Description=, OnCalendar=, ...): ``%`` doubled, a
backslash or control character (a newline would start a new directive) written as ``\\xNN``
text, so the value can never add a line to the unit.
"""

from __future__ import annotations

from typing import Any


def _hex(ch: str) -> str:
    return f"\\x{ord(ch):02x}"


def systemd_exec_arg(value: Any) -> str:
    out = []
    for ch in str(value):
        if ch == "\\":
            out.append("\\\\")
        elif ch == '"':
            out.append('\\"')
        elif ch == "%":
            out.append("%%")
        elif ch == "$":
            out.append("$$")
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(_hex(ch))
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def systemd_value(value: Any) -> str:
    out = []
    for ch in str(value):
        if ch == "%":
            out.append("%%")
        elif ch == "\\" or ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(_hex(ch))
        else:
            out.append(ch)
    return "".join(out)


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {"systemd_exec_arg": systemd_exec_arg, "systemd_value": systemd_value}
