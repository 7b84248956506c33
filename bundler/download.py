"""Fetch file artifacts over HTTP(S) into the cache: retries, resume with Range, timeouts, verification.

A download goes to a partial file; once its sha256 matches the pin it moves into the cache. Without a pin
(only with --allow-unpinned) the computed sum is kept and reported as unpinned.
"""

from __future__ import annotations

import errno
import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional
from urllib.parse import urlsplit

import requests

from bundler import interrupt
from bundler.cache import Cache
from bundler.errors import BundlerError
from bundler.http_session import ThreadSessions
from bundler.network_errors import connect_failure, proxy_for, short_reason
from bundler.retry import RETRYABLE_STATUS, Retryable, with_retries

CHUNK = 1 << 16  # small enough that a dropped connection loses little and a stop is seen at once


@dataclass(frozen=True)
class FetchOptions:
    mirror: Optional[str] = None
    timeout: float = 30.0
    retries: int = 4
    backoff: float = 0.5
    ca_bundle: Optional[str] = None  # a CA file for TLS; verification is never turned off
    offline: bool = False  # every byte must come from the cache; a miss is an error, never a request


@dataclass(frozen=True)
class Fetched:
    path: Path
    sha256: str
    size: int
    from_cache: bool


def mirrored_url(url: str, mirror: Optional[str]) -> str:
    """`https://HOST/PATH` becomes `MIRROR/HOST/PATH`; checksums still come from the upstream URL."""
    if not mirror:
        return url
    parts = urlsplit(url)
    tail = parts.path + (f"?{parts.query}" if parts.query else "")
    return f"{mirror.rstrip('/')}/{parts.netloc}{tail}"


class Downloader:
    """Thread-safe: each worker thread keeps its own `requests.Session` (connection reuse per host)."""

    def __init__(self, cache: Cache, options: FetchOptions) -> None:
        self.cache = cache
        self.options = options
        self._sessions = ThreadSessions(options.ca_bundle)

    def _session(self) -> requests.Session:
        return self._sessions.get()

    def fetch(
        self, label: str, url: str, expected: Optional[str], progress: Optional[Callable[[int, int], None]] = None,
        size: Optional[int] = None,
    ) -> Fetched:  # fmt: skip
        """Return a verified file in the cache. `progress(done, total)` is called as bytes arrive."""
        hit = self.cached(expected, size)
        if hit is not None:
            return hit
        source = mirrored_url(url, self.options.mirror)
        if self.options.offline:
            raise BundlerError(f"{label}: not in the cache, and --offline forbids fetching it from {source}")
        partial = self.cache.partial_path(url, expected)
        with self.cache.locked(partial):
            hit = self.cached(expected, size)  # another build may have fetched it meanwhile
            if hit is not None:
                return hit
            return self._fetch_locked(label, url, source, partial, expected, progress)

    def cached(self, expected: Optional[str], size: Optional[int] = None) -> Optional[Fetched]:
        """The cache entry for a pinned sum, without re-reading it (it was verified when it went in)."""
        if not expected:
            return None
        path = self.cache.holds(expected, size)
        if path is None:
            return None
        return Fetched(path, expected, path.stat().st_size, True)

    def probe_size(self, label: str, url: str) -> Optional[int]:
        """The size the server announces (HEAD), or None when it does not say. A missing file, a TLS
        failure or a host that does not resolve fails here, before any large download starts."""
        source = mirrored_url(url, self.options.mirror)

        def attempt() -> Optional[int]:
            try:
                response = self._session().head(source, allow_redirects=True, timeout=self.options.timeout)
            except requests.exceptions.SSLError as error:
                raise BundlerError(f"{label}: TLS verification failed for {source}: {short_reason(error)}; "
                                   "pass --ca-file") from None  # fmt: skip
            except (requests.ConnectionError, requests.Timeout) as error:
                failure = connect_failure(error, source)
                if isinstance(failure, BundlerError):
                    raise BundlerError(f"{label}: {failure}") from None
                raise failure from None
            with response:
                if response.status_code in RETRYABLE_STATUS:
                    raise Retryable(f"HTTP {response.status_code}")
                if response.status_code == 404:
                    raise BundlerError(f"{label}: HTTP 404 Not Found: {source}; check the URL or the --mirror contents")
                length = response.headers.get("Content-Length", "")
                if response.status_code != 200 or not length.isdigit():
                    return None  # a server without HEAD: the size becomes known when the download starts
                return int(length)

        return with_retries(attempt, self.options.retries, self.options.backoff, label, source)

    def _fetch_locked(
        self, label: str, url: str, source: str, partial: Path, expected: Optional[str],
        progress: Optional[Callable[[int, int], None]],
    ) -> Fetched:  # fmt: skip
        def attempt() -> str:
            try:
                return self._download(source, partial, progress)
            except BundlerError as error:  # final for this file (404, TLS, disk): name the artifact
                raise BundlerError(f"{label}: {error}") from None

        hint = "check the network, or fetch through --mirror"
        actual = with_retries(attempt, self.options.retries, self.options.backoff, label, source, hint)
        if expected and actual != expected:
            partial.unlink()
            raise BundlerError(
                f"{label}: checksum mismatch for {source}: expected sha256 {expected}, got {actual}; "
                "the download or the mirror is wrong (the pin in checksums/ is the authority)"
            )
        size = partial.stat().st_size
        return Fetched(self.cache.commit(partial, actual), actual, size, False)

    def _download(self, source: str, partial: Path, progress: Optional[Callable[[int, int], None]]) -> str:
        """Fetch (or resume) into `partial`; return the sha256 of the whole file, hashed as it arrives."""
        have = partial.stat().st_size if partial.exists() else 0
        headers = {"Range": f"bytes={have}-"} if have else {}
        try:
            response = self._session().get(
                source, headers=headers, stream=True, timeout=(self.options.timeout, self.options.timeout)
            )
        except requests.exceptions.SSLError as error:
            raise BundlerError(f"TLS verification failed for {source}: {short_reason(error)}; pass --ca-file") from None
        except (requests.ConnectionError, requests.Timeout) as error:
            raise connect_failure(error, source) from None
        with response:
            if response.status_code == 416 and have:
                partial.unlink()  # the partial file is longer than the resource: start over
                raise Retryable("server refused the resume range")
            if response.status_code in RETRYABLE_STATUS:
                raise Retryable(f"HTTP {response.status_code}")
            if response.status_code == 404:
                raise BundlerError(f"HTTP 404 Not Found: {source}; check the URL or the --mirror contents")
            if response.status_code not in (200, 206):
                proxy = proxy_for(source)
                via = f" (through the proxy {proxy}: it may be the proxy's answer)" if proxy else ""
                raise BundlerError(f"HTTP {response.status_code} {response.reason}: {source}{via}")
            return receive(response, partial, have, progress)


def receive(
    response: requests.Response, partial: Path, have: int, progress: Optional[Callable[[int, int], None]]
) -> str:
    """Write a 200/206 response body into `partial` (appended when the server resumed at `have`) and
    return the sha256 of the whole file, hashed as the bytes arrive. A dropped connection is Retryable
    (the bytes kept so far are resumed next time); a full disk is one clear error."""
    resumed = response.status_code == 206 and have > 0
    if not resumed:
        have = 0
    digest = _hash_prefix(partial, have)
    total = _total_size(response, have)
    done = have
    try:
        with open(partial, "ab" if resumed else "wb") as out:
            for chunk in response.iter_content(CHUNK):
                interrupt.check()
                out.write(chunk)
                digest.update(chunk)
                done += len(chunk)
                if progress:
                    progress(done, total)
    except (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError) as error:
        raise Retryable(f"connection lost: {short_reason(error)}") from None
    except OSError as error:
        if error.errno == errno.ENOSPC:
            raise BundlerError(f"disk full while writing {partial}: free space or use --cache") from None
        raise BundlerError(f"cannot write {partial}: {error.strerror}") from None
    if total and done < total:
        raise Retryable(f"connection closed after {done} of {total} bytes")
    return digest.hexdigest()


def _hash_prefix(path: Path, length: int) -> hashlib._Hash:
    """A sha256 already fed with the first `length` bytes of a partial download being resumed."""
    digest = hashlib.sha256()
    if length:
        with open(path, "rb") as stream:
            remaining = length
            while remaining:
                block = stream.read(min(1 << 20, remaining))
                if not block:
                    break
                digest.update(block)
                remaining -= len(block)
    return digest


def _total_size(response: requests.Response, have: int) -> int:
    length = response.headers.get("Content-Length")
    return have + int(length) if length and length.isdigit() else 0


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
