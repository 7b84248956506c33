"""HTTP sessions of the builder: one per worker thread (connection reuse), TLS always verified.

`--ca-file` adds trust: the sessions verify against the default store (REQUESTS_CA_BUNDLE, else certifi's)
plus the given CA, so a private registry and public hosts work in one build. Proxies from the environment
(HTTPS_PROXY, NO_PROXY) are honoured: connected machines at such sites often reach out only through one.
"""

from __future__ import annotations

import atexit
import os
import tempfile
import threading
from pathlib import Path
from typing import Any, Optional, Union

import requests
from requests.adapters import HTTPAdapter

from bundler.errors import BundlerError

USER_AGENT = "k8s-bundler"


class _Session(requests.Session):
    def request(self, method: Union[str, bytes], url: Union[str, bytes], *args: Any, **kwargs: Any) -> Any:
        # requests lets REQUESTS_CA_BUNDLE override a session's `verify` unless the request names it.
        kwargs.setdefault("verify", self.verify)
        return super().request(method, url, *args, **kwargs)


def default_trust_store() -> str:
    import certifi

    return os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or certifi.where()


def combined_trust_store(extra_ca: str) -> str:
    """The default store plus `extra_ca`, in a private temporary file removed at exit."""
    try:
        extra = Path(extra_ca).read_text(encoding="ascii")
    except (OSError, UnicodeDecodeError) as error:
        raise BundlerError(f"--ca-file {extra_ca}: cannot read it ({error}); give a PEM file") from None
    if "-----BEGIN CERTIFICATE-----" not in extra:
        raise BundlerError(f"--ca-file {extra_ca}: no PEM certificate in it")
    base = Path(default_trust_store()).read_text(encoding="ascii", errors="replace")
    handle, path = tempfile.mkstemp(prefix="bundler-ca-", suffix=".pem")
    with os.fdopen(handle, "w", encoding="ascii") as out:
        out.write(base.rstrip("\n") + "\n" + extra)
    atexit.register(_remove, path)
    return path


def _remove(path: str) -> None:
    if os.path.exists(path):
        os.unlink(path)


class ThreadSessions:
    def __init__(self, ca_bundle: Optional[str], pool_size: int = 8) -> None:
        self.verify: Union[bool, str] = combined_trust_store(ca_bundle) if ca_bundle else True
        self.pool_size = pool_size
        self._local = threading.local()

    def get(self) -> requests.Session:
        session = getattr(self._local, "session", None)
        if session is None:
            session = _Session()
            adapter = HTTPAdapter(pool_connections=4, pool_maxsize=self.pool_size)
            session.mount("https://", adapter)
            session.mount("http://", adapter)
            session.verify = self.verify  # nothing in this tool turns verification off
            session.headers["User-Agent"] = USER_AGENT
            self._local.session = session
        return session
