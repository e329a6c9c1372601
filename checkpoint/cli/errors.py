"""Errors a verb raises to end with one line on stderr and an exit code of docs/cli.md."""


class CliError(Exception):
    exit_code = 1


class UsageError(CliError):
    """Bad input: usage, config, payload. Exit 2."""

    exit_code = 2


class NotAvailable(CliError):
    """A verb whose capability has not been built yet. Exit 1, never a fake success."""

    exit_code = 1

    def __init__(self, what: str, issue: int) -> None:
        super().__init__(f"not available yet: {what} is built under issue #{issue}")
