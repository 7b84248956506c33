"""HTTPS GETs from the bundle host, TLS always verified against the cluster CA (or --bundle-ca).

A thin adapter over urllib and ssl: `get` for a small file, `download` for a bundle file, streamed to a
temporary file beside the bundle folder, hashed on the way, and renamed into place only when its sha256 is
the one SHA256SUMS lists. Each way to fail is one line naming the host and what to do.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import socket
import ssl
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from http.client import HTTPException
from pathlib import Path
from typing import List, Optional

from k8s_install.errors import InstallError

TIMEOUT = 30  # seconds without a byte before the host counts as gone
CHUNK = 1 << 20
PART_PREFIX = "k8s-fetch"  # temporary downloads: .k8s-fetch-<pid>-XXXX beside the bundle folder


class NotServed(InstallError):
    """The host answered 404 for a file (an optional file such as SHA256SUMS.sig may be absent)."""


class ChangedOnHost(InstallError):
    """The host served other bytes than SHA256SUMS lists for a file; none of them was kept."""


def normalise_url(url: str) -> str:
    """https://HOST:PORT[/path] with one trailing slash; anything but https is refused (TLS is never off)."""
    parsed = urllib.parse.urlsplit(url)
    if parsed.scheme != "https" or not parsed.hostname:
        raise InstallError(
            f"--bundle-url {url}: not an https://HOST:PORT address; the bundle host serves over TLS only "
            "(k8s-install.pyz serve on the host prints its address)"
        )
    if parsed.query or parsed.fragment:
        raise InstallError(f"--bundle-url {url}: takes no ?query or #fragment; give https://HOST:PORT")
    return urllib.parse.urlunsplit(("https", parsed.netloc, parsed.path.rstrip("/") + "/", "", ""))


def tls_context(ca_pem: str, where: str) -> ssl.SSLContext:
    """Verify the host's certificate against this CA only, and its name against the URL's host."""
    context = ssl.create_default_context(purpose=ssl.Purpose.SERVER_AUTH)
    context.load_verify_locations(cadata=_only_certificates(ca_pem, where))
    context.check_hostname = True
    context.verify_mode = ssl.CERT_REQUIRED
    return context


def _only_certificates(pem: str, where: str) -> str:
    if "-----BEGIN CERTIFICATE-----" not in pem:
        raise InstallError(f"{where}: no PEM certificate in it (-----BEGIN CERTIFICATE-----): give the CA certificate")
    try:
        ssl.create_default_context(cadata=pem)
    except (ssl.SSLError, ValueError) as error:
        raise InstallError(f"{where}: not a CA certificate that TLS can use ({error})") from None
    return pem


class NoRedirects(urllib.request.HTTPRedirectHandler):
    """The host serves the bundle folder verbatim: a redirect (perhaps to plain HTTP) is refused, not followed."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):  # type: ignore[no-untyped-def]
        raise InstallError(
            f"{req.full_url}: the bundle host redirects (HTTP {code}) to {newurl}; a bundle host serves the "
            "bundle folder itself: give --bundle-url the address that serves it"
        )


class BundleHost:
    """The host serving the unpacked bundle at `url` (https://HOST:PORT/), files fetched by bundle path."""

    def __init__(self, url: str, ca_pem: str, ca_where: str) -> None:
        self.url = normalise_url(url)
        self.ca_where = ca_where
        self.context = tls_context(ca_pem, ca_where)
        self.name = urllib.parse.urlsplit(self.url).netloc
        self.opener = urllib.request.build_opener(urllib.request.HTTPSHandler(context=self.context), NoRedirects())

    def address(self, relative: str) -> str:
        return self.url + urllib.parse.quote(relative)

    def get(self, relative: str, limit: int = 64 << 20) -> bytes:
        """A small file whole (SHA256SUMS, its signature); NotServed on 404."""
        with self._open(relative) as response:
            data = self._read(response, relative, limit + 1)
        if len(data) > limit:
            raise InstallError(f"{self.address(relative)}: more than {limit} bytes: not a bundle's {relative}")
        return data

    def download(self, relative: str, target: Path, sha256: str, parts: Path) -> int:
        """Fetch `relative` to `target`: written to a temporary file in `parts` (the bundle folder's parent, so
        the bundle folder never holds a partial file), hashed, renamed only when its sha256 is `sha256`.
        Returns the bytes fetched. ChangedOnHost (nothing kept) when the bytes are other ones."""
        descriptor, temporary = tempfile.mkstemp(prefix=f".{PART_PREFIX}-{os.getpid()}-", dir=str(parts))
        digest, size = hashlib.sha256(), 0
        try:
            os.fchmod(descriptor, 0o644)
            with os.fdopen(descriptor, "wb") as stream, self._open(relative) as response:
                while True:
                    chunk = self._read(response, relative, CHUNK, whole=False)
                    if not chunk:
                        break
                    digest.update(chunk)
                    stream.write(chunk)
                    size += len(chunk)
                if getattr(response, "length", None):  # the connection closed before Content-Length bytes
                    raise self._failure(relative, f"the connection closed after {size} bytes")
                stream.flush()
                os.fsync(stream.fileno())
            if digest.hexdigest() != sha256:
                raise ChangedOnHost(
                    f"{self.address(relative)}: the host serves other bytes than the signed SHA256SUMS lists for "
                    f"{relative} (sha256 {digest.hexdigest()}, expected {sha256}); nothing of it was used: put the "
                    "bundle's own file back on the host (unpack the tarball again) and re-run"
                )
            target.parent.mkdir(parents=True, exist_ok=True, mode=0o755)
            os.replace(temporary, target)
        except BaseException:
            _remove_quietly(temporary)
            raise
        return size

    def _open(self, relative: str):  # type: ignore[no-untyped-def]
        request = urllib.request.Request(self.address(relative), headers={"User-Agent": "k8s-install"})
        try:
            return self.opener.open(request, timeout=TIMEOUT)
        except urllib.error.HTTPError as error:
            if error.code == 404:
                raise NotServed(
                    f"{self.address(relative)}: not served (HTTP 404): is the host serving this bundle's folder?"
                ) from None
            raise InstallError(
                f"{self.address(relative)}: the bundle host answered HTTP {error.code} {error.reason}; "
                "check `k8s-install.pyz serve status` on the host, then re-run"
            ) from None
        except urllib.error.URLError as error:
            raise self._failure(relative, error.reason) from None
        except (OSError, HTTPException) as error:
            raise self._failure(relative, error) from None

    def _read(self, response, relative: str, size: int, whole: bool = True) -> bytes:  # type: ignore[no-untyped-def]
        try:
            return response.read(size) if whole else response.read1(size)  # type: ignore[no-any-return]
        except (OSError, HTTPException) as error:
            raise self._failure(relative, error) from None

    def _failure(self, relative: str, reason: object) -> InstallError:
        if isinstance(reason, ssl.SSLCertVerificationError):
            detail = reason.verify_message or str(reason)
            return InstallError(
                f"{self.name}: the bundle host's TLS certificate is not trusted ({detail}); it must be signed by "
                f"the CA in {self.ca_where} and name the host of --bundle-url; pass --bundle-ca FILE for another CA"
            )
        return InstallError(
            f"the bundle host {self.name} stopped answering while fetching {relative} ({_reason(reason)}); "
            "files fetched so far are kept and checked: once the host serves again, re-run the same command"
        )


def _reason(reason: object) -> str:
    if isinstance(reason, socket.timeout):
        return f"no answer for {TIMEOUT} s"
    if isinstance(reason, OSError) and reason.strerror:
        return str(reason.strerror)
    return str(reason) or type(reason).__name__


def _remove_quietly(path: str) -> None:
    with contextlib.suppress(OSError):
        os.unlink(path)


def remove_stale_parts(parts: Path) -> List[str]:
    """Temporary downloads a killed run left in `parts` (their process is gone); another run's are kept."""
    removed = []
    try:
        names = os.listdir(parts)
    except OSError:
        return []
    for name in names:
        pid = _part_pid(name)
        if pid is not None and not _alive(pid):
            _remove_quietly(str(parts / name))
            removed.append(name)
    return removed


def _part_pid(name: str) -> Optional[int]:
    prefix = f".{PART_PREFIX}-"
    if not name.startswith(prefix):
        return None
    number = name[len(prefix) :].split("-", 1)[0]
    return int(number) if number.isdigit() else None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
