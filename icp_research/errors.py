"""One exception hierarchy. Every message says what is wrong, where, and what to do about it."""

from __future__ import annotations


class IcpError(Exception):
    """Base class of every error the kit raises on purpose."""

    exit_code = 1


class InputError(IcpError):
    """Bad input or usage: a config, an export or a command-line argument. Exit code 2.

    ``problems`` holds one line per problem when several were found at once.
    """

    exit_code = 2

    def __init__(self, message: str, problems: list[str] | None = None):
        super().__init__(message)
        self.problems = problems or [message]


class ConfigError(InputError):
    """The icp.toml file cannot be used as it is."""


class DataError(InputError):
    """An export cannot be loaded or violates the canonical data model."""


class RunExistsError(InputError):
    """The run folder exists and --force was not given."""


class AnalysisError(IcpError):
    """An analysis could not produce a result (exit code 1)."""


class NotEnoughData(AnalysisError):
    """The data is too small or too uniform to answer the question; say so, do not guess."""
