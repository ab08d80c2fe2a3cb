"""``systemd_unit_value``: a value made inert for one line of a systemd unit file.

The role checks every timer value against its declared pattern first (tasks/timer.yml); this
is the second layer: whatever slips through stays one value on one line. A newline or other
control character becomes a visible ``\\xNN`` (systemd does not unescape it in these settings,
so the unit refuses the value instead of reading a second directive), ``%`` becomes ``%%``
(no specifier expansion) and ``\\`` becomes ``\\\\`` (no line continuation).
"""

from __future__ import annotations

from typing import Any


def systemd_unit_value(value: Any) -> str:
    out = []
    for ch in str(value):
        if ch == "%":
            out.append("%%")
        elif ch == "\\":
            out.append("\\\\")
        elif ord(ch) < 0x20 or ord(ch) == 0x7F or not ch.isprintable():
            out.append(f"\\x{ord(ch):02x}" if ord(ch) < 0x100 else f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    return "".join(out)


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {"systemd_unit_value": systemd_unit_value}
