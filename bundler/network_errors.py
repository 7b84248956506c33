"""Say in a few words why a network request failed, without urllib3's nested reprs and URLs."""

from __future__ import annotations

REASONS = (
    ("certificate verify failed", "certificate verify failed"),
    ("wrong version number", "wrong version number (plain HTTP on a TLS port?)"),
    ("Failed to resolve", "cannot resolve the host name"),
    ("NameResolutionError", "cannot resolve the host name"),
    ("Name or service not known", "cannot resolve the host name"),
    ("Connection refused", "connection refused"),
    ("Network is unreachable", "network unreachable"),
    ("No route to host", "no route to host"),
    ("timed out", "timed out"),
    ("IncompleteRead", "the server closed the connection early"),
    ("Connection reset", "connection reset"),
)


def short_reason(error: BaseException) -> str:
    text = str(error.args[0] if error.args else error)
    for marker, reason in REASONS:
        if marker in text:
            return reason
    return text[:200]


def connect_failure(error: BaseException, url: str) -> Exception:
    """What a failed connection means: worth a retry, except a host name that does not resolve (no
    network, no DNS, a typo), which fails at once instead of backing off for many seconds."""
    from urllib.parse import urlsplit

    from bundler.errors import BundlerError
    from bundler.retry import Retryable

    reason = short_reason(error)
    if reason == "cannot resolve the host name":
        host = urlsplit(url).hostname or url
        return BundlerError(f"cannot resolve the host name {host}; check the network and DNS (or build --offline)")
    return Retryable(f"cannot connect: {reason}")
