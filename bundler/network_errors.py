"""Say in a few words why a network request failed, without urllib3's nested reprs and URLs; name the proxy
when the request went through one (HTTPS_PROXY/HTTP_PROXY/ALL_PROXY, except the hosts NO_PROXY lists)."""

from __future__ import annotations

from typing import Optional
from urllib.parse import urlsplit, urlunsplit

REASONS = (
    ("certificate verify failed", "certificate verify failed"),
    ("wrong version number", "wrong version number (plain HTTP on a TLS port?)"),
    (
        "407 Proxy Authentication Required",
        "the proxy requires authentication (HTTP 407): put user:password@ in its URL",
    ),
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


class Retryable(Exception):
    """A failure worth another attempt: a 5xx, a refused or dropped connection, a timeout."""


def proxy_for(url: str) -> Optional[str]:
    """The proxy requests sends `url` through (from the environment, honouring NO_PROXY), without any
    user:password it holds; None for a direct connection."""
    import requests.utils

    proxy = requests.utils.select_proxy(url, requests.utils.get_environ_proxies(url))
    if not proxy:
        return None
    parts = urlsplit(proxy if "://" in proxy else f"http://{proxy}")
    netloc = parts.netloc.rsplit("@", 1)[-1]
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def connect_failure(error: BaseException, url: str) -> Exception:
    """What a failed connection means: worth a retry, except a host name that does not resolve (no
    network, no DNS, a typo), which fails at once instead of backing off for many seconds. Through a proxy,
    the message names it: the failure may be the proxy's, not the server's."""
    import requests

    from bundler.errors import BundlerError

    reason = short_reason(error)
    proxy = proxy_for(url)
    if proxy is not None:
        if isinstance(error, requests.exceptions.ProxyError) and reason == "cannot resolve the host name":
            return BundlerError(
                f"cannot resolve the host name of the proxy {proxy}; check HTTPS_PROXY/HTTP_PROXY "
                "(and NO_PROXY for hosts to reach directly)"
            )
        if isinstance(error, requests.exceptions.ProxyError):
            return Retryable(f"cannot connect through the proxy {proxy}: {reason}")
        return Retryable(f"{reason} (through the proxy {proxy})")
    if reason == "cannot resolve the host name":
        host = urlsplit(url).hostname or url
        return BundlerError(f"cannot resolve the host name {host}; check the network and DNS (or build --offline)")
    return Retryable(f"cannot connect: {reason}")
