"""``--every 15m`` -> a systemd ``OnCalendar`` expression, and the declared patterns of every
value that ends up in the timer unit (pure).

Intervals must divide their unit evenly (minutes: 1..60 dividing 60; hours: dividing 24) so
runs are evenly spaced; anything else is a calendar expression: checked here against a
conservative character set (no newline, control character, ``%``, ``\\`` or quote: nothing
that could add a directive to the unit file) and on the node with ``systemd-analyze calendar``.
Numbers are ASCII digits of bounded length (``１`` or 5000 digits are refused, not parsed).
"""

from __future__ import annotations

import re

from provision.etcd.naming import shown as _show

_EVERY = re.compile(r"([0-9]{1,4}) ?(s|sec|m|min|h|d)", re.ASCII)
# OnCalendar: weekdays, dates, times, ranges (..), repetitions (/), lists (,), "~", time zones
CALENDAR_RE = re.compile(r"[A-Za-z0-9*][A-Za-z0-9 ,:*/~._+-]{0,127}", re.ASCII)
# a systemd time span (RandomizedDelaySec=, AccuracySec=): "0", "5min", "1h 30min", "90"
_SPAN_UNITS = ("usec|us|msec|ms|seconds|second|sec|s|minutes|minute|min|m|hours|hour|hr|h|"
               "days|day|d|weeks|week|w")
TIMESPAN_RE = re.compile(rf"[0-9]{{1,6}} ?(?:{_SPAN_UNITS})?(?: ?[0-9]{{1,6}} ?(?:{_SPAN_UNITS}))"
                         r"{0,3}", re.ASCII)
NAMED = ("minutely", "hourly", "daily", "weekly", "monthly", "yearly", "quarterly",
         "semiannually")


class ScheduleError(ValueError):
    pass


def check_calendar(value: object, name: str) -> str:
    """``value`` when it is an OnCalendar expression of the declared pattern, else
    ScheduleError naming ``name`` (the flag or inventory key)."""
    if not isinstance(value, str) or not CALENDAR_RE.fullmatch(value):
        raise ScheduleError(f"{name} {_show(value)}: expected a systemd calendar expression "
                            "of at most 128 ASCII characters: letters, digits, space and "
                            ", : * / ~ . _ + - (e.g. 'daily', 'Mon,Thu 03:00', '*:0/15')")
    return value


def check_timespan(value: object, name: str) -> str:
    """``value`` when it is a systemd time span ("0", "5min", "1h 30min"), else
    ScheduleError naming ``name``."""
    text = str(value) if isinstance(value, int) and not isinstance(value, bool) else value
    if not isinstance(text, str) or not TIMESPAN_RE.fullmatch(text):
        raise ScheduleError(f"{name} {_show(value)}: expected a systemd time span: ASCII "
                            "digits with a unit, e.g. 0, 30s, 5min, 1h 30min")
    return text


def check_count(value: object, name: str, lo: int = 1, hi: int = 100_000) -> int:
    """A whole number ``lo``..``hi`` written in ASCII digits (6 at most), else ScheduleError."""
    text = str(value) if isinstance(value, int) and not isinstance(value, bool) else value
    if not isinstance(text, str) or not re.fullmatch(r"[0-9]{1,6}", text, re.ASCII):
        raise ScheduleError(f"{name} {_show(value)}: expected a whole number {lo}..{hi} "
                            "in ASCII digits")
    number = int(text)
    if not lo <= number <= hi:
        raise ScheduleError(f"{name} {number}: must be {lo}..{hi}")
    return number


def every_to_calendar(every: str) -> str:
    text = every.lower()
    if text in NAMED:
        return text
    m = _EVERY.fullmatch(text)
    if not m:
        raise ScheduleError(f"--every {_show(every)}: expected e.g. 30s, 15m, 1h, 6h, 1d or "
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


def schedule_vars(every: str | None, calendar: str | None, keep: str | None,
                  max_age: str | None, randomized_delay: str | None,
                  disable: bool) -> dict[str, object]:
    """The extra vars of `provision etcd schedule` from its flags, each checked against its
    pattern (ScheduleError naming the flag)."""
    from provision.etcd import naming

    if every and calendar:
        raise ScheduleError("--every and --calendar: give one of them")
    extravars: dict[str, object] = {"etcd_backup_schedule_enabled": not disable}
    if every is not None:
        extravars["etcd_backup_schedule"] = cal = every_to_calendar(every)
        if cal.startswith("*:*:"):  # sub-minute interval
            extravars["etcd_backup_schedule_accuracy"] = "1s"
    if calendar is not None:
        extravars["etcd_backup_schedule"] = check_calendar(calendar, "--calendar")
    if keep is not None:
        extravars["etcd_backup_keep"] = check_count(keep, "--keep")
    if max_age is not None:
        try:
            naming.parse_duration(max_age)
        except ValueError as exc:
            raise ScheduleError(f"--max-age: {exc}") from exc
        extravars["etcd_backup_max_age"] = max_age
    if randomized_delay is not None:
        extravars["etcd_backup_schedule_randomized_delay"] = check_timespan(
            randomized_delay, "--randomized-delay")
    return extravars
