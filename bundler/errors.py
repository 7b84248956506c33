"""The one error type of the builder: a failure the user can act on, reported as one line."""

from __future__ import annotations


class BundlerError(Exception):
    """`str(error)` is the whole message: what failed, on which file/field/artifact, what to do."""
