"""Exit codes and the exceptions that map to them (documented in README, 'Exit codes')."""

from __future__ import annotations

EXIT_OK = 0
EXIT_FAILED = 1  # a host failed a task, or doctor found a FAIL
EXIT_USAGE = 2  # bad flags or inventory; nothing was contacted
EXIT_UNREACHABLE = 3  # valid input, but hosts could not be reached
EXIT_INTERRUPTED = 130  # Ctrl-C (SIGINT) or SIGTERM during a run, as shells report it


class ProvisionError(Exception):
    """An error that ends the command with a clear message and an exit code."""

    exit_code = EXIT_FAILED

    def __init__(self, message: str, *, exit_code: int | None = None) -> None:
        super().__init__(message)
        if exit_code is not None:
            self.exit_code = exit_code


class UsageError(ProvisionError):
    """Bad input (flags, inventory): reported before any host is contacted, exit 2."""

    exit_code = EXIT_USAGE


class ValidationError(UsageError):
    """One or more inventory problems; ``problems`` holds one message per problem."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))
