"""The one error type of the installer: a user-facing failure with a one-line message."""

from __future__ import annotations


class InstallError(Exception):
    """Something the operator can fix. `str(error)` is the whole message, one line."""
