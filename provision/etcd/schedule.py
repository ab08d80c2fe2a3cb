"""``--every 15m`` -> a systemd ``OnCalendar`` expression (pure).

Intervals must divide their unit evenly (minutes: 1..60 dividing 60; hours: dividing 24) so
runs are evenly spaced; anything else is a calendar expression and is passed through (the role
checks it on the node with ``systemd-analyze calendar``).
"""

from __future__ import annotations

import re

_EVERY = re.compile(r"^([0-9]{1,9})\s*(s|sec|m|min|h|d)$")  # bounded, ASCII digits only
NAMED = ("minutely", "hourly", "daily", "weekly", "monthly", "yearly", "quarterly",
         "semiannually")


class ScheduleError(ValueError):
    pass


def every_to_calendar(every: str) -> str:
    text = every.strip().lower()
    if text in NAMED:
        return text
    m = _EVERY.match(text)
    if not m:
        raise ScheduleError(f"--every {every!r}: expected e.g. 30s, 15m, 1h, 6h, 1d or "
                            f"one of {', '.join(NAMED)}")
    n, unit = int(m[1]), m[2]
    if n <= 0:
        raise ScheduleError(f"--every {every!r}: must be positive")
    if unit in ("s", "sec"):
        if 60 % n:
            raise ScheduleError(f"--every {every!r}: seconds must divide 60")
        return f"*:*:0/{n}"
    if unit in ("m", "min"):
        if n == 60:
            return "hourly"
        if 60 % n:
            raise ScheduleError(f"--every {every!r}: minutes must divide 60 (1, 2, 5, 10, 15, "
                                "20, 30, 60)")
        return f"*:0/{n}"
    if unit == "h":
        if n == 24:
            return "daily"
        if 24 % n:
            raise ScheduleError(f"--every {every!r}: hours must divide 24 (1, 2, 3, 4, 6, 8, 12)")
        return f"*-*-* 0/{n}:00:00"
    if n == 1:
        return "daily"
    raise ScheduleError(f"--every {every!r}: for several days use a calendar expression, "
                        "e.g. --calendar 'Mon,Thu 03:00'")
