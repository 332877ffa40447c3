"""The one error type gkd raises for bad input.

Every check in gkd raises :class:`GKDError` (a ``ValueError``) with a message that names the offending value and what
was expected. The CLI turns it into one line on stderr and exit code 2.
"""
from __future__ import annotations


class GKDError(ValueError):
    """Bad input: the message names the value and what was expected."""


class DatasetError(GKDError):
    """A dataset is missing, corrupt or malformed."""


class ConfigError(GKDError):
    """A configuration value (flag or YAML key) is invalid."""


def check(condition: bool, message: str, error: type[GKDError] = GKDError) -> None:
    if not condition:
        raise error(message)
