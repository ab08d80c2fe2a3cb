"""Doctor's output: a rich table on a terminal, plain aligned lines otherwise."""

from __future__ import annotations

from typing import IO

from provision.doctor.model import FAIL, PASS, WARN, CheckResult

STYLES = {PASS: "green", WARN: "yellow", FAIL: "bold red"}


def plain_lines(results: list[CheckResult]) -> list[str]:
    """One line per result: ``host  check  STATUS  message`` (columns aligned)."""
    if not results:
        return []
    hw = max(len(r.host) for r in results)
    cw = max(len(r.check) for r in results)
    return [f"{r.host:<{hw}}  {r.check:<{cw}}  {r.status:<4}  {r.message}" for r in results]


def summary_line(results: list[CheckResult], seconds: float, unreachable: list[str]) -> str:
    counts = {s: sum(r.status == s for r in results) for s in (PASS, WARN, FAIL)}
    text = (f"doctor: {counts[PASS]} PASS, {counts[WARN]} WARN, {counts[FAIL]} FAIL "
            f"in {seconds:.1f} s")
    if unreachable:
        text += f"; unreachable: {', '.join(unreachable)}"
    return text


def render(results: list[CheckResult], stream: IO[str], *, rich: bool) -> None:
    if not rich:
        for line in plain_lines(results):
            stream.write(line + "\n")
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(show_lines=False, header_style="bold")
    table.add_column("host", no_wrap=True)
    table.add_column("check", no_wrap=True)
    table.add_column("status", no_wrap=True)
    table.add_column("details", overflow="fold")
    last = None
    for r in results:
        table.add_row(r.host if r.host != last else "", r.check,
                      f"[{STYLES[r.status]}]{r.status}[/]", r.message)
        last = r.host
    Console(file=stream).print(table)
