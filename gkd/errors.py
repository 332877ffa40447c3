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


class PeerRankError(GKDError):
    """A distributed run lost a peer rank (it exited, or stalled past the timeout) mid-training."""


def check(condition: bool, message: str, error: type[GKDError] = GKDError) -> None:
    if not condition:
        raise error(message)


def check_int(name: str, value, minimum: int = 1, error: type[GKDError] = GKDError, meaning: str = "") -> None:
    """``value`` is an integer (not a bool, which Python counts as one) and ``>= minimum``; ``meaning`` (what the
    number counts) is added to the message in brackets."""
    check(isinstance(value, int) and not isinstance(value, bool) and value >= minimum,
          f"{name}={value!r}; expected an integer >= {minimum}{f' ({meaning})' if meaning else ''}", error)
