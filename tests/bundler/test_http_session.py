"""--ca-file adds trust to the default store instead of replacing it, whatever REQUESTS_CA_BUNDLE says."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from bundler.errors import BundlerError
from bundler.http_session import ThreadSessions, default_trust_store


def make_ca(tmp_path: Path) -> Path:
    cert = tmp_path / "ca.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(tmp_path / "ca.key"),
         "-out", str(cert), "-days", "1", "-subj", "/CN=test-ca"],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert


def test_extra_ca_is_added_to_the_default_store(tmp_path: Path) -> None:
    cert = make_ca(tmp_path)
    sessions = ThreadSessions(str(cert))
    store = Path(str(sessions.verify)).read_text()
    assert cert.read_text() in store
    assert Path(default_trust_store()).read_text().strip() in store
    assert sessions.get().verify == sessions.verify


def test_without_ca_file_verification_stays_on() -> None:
    assert ThreadSessions(None).get().verify is True


def test_unreadable_ca_file_is_one_clear_error(tmp_path: Path) -> None:
    (tmp_path / "not.pem").write_text("hello")
    with pytest.raises(BundlerError, match=r"--ca-file .*not\.pem: no PEM certificate in it"):
        ThreadSessions(str(tmp_path / "not.pem"))


def _closed_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_a_failure_through_a_proxy_names_the_proxy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """HTTPS_PROXY is honoured (requests reads it); when the proxy cannot be reached, the error says which
    proxy, not only which file: the user's network is not the build's. Credentials in its URL stay hidden."""
    from bundler.cache import Cache
    from bundler.download import Downloader, FetchOptions

    port = _closed_port()
    monkeypatch.setenv("HTTPS_PROXY", f"http://user:secret@127.0.0.1:{port}")
    cache = Cache(tmp_path / "cache")
    cache.ensure()
    downloader = Downloader(cache, FetchOptions(retries=1, backoff=0.01, timeout=5))
    with pytest.raises(BundlerError) as raised:
        downloader.fetch("runc", "https://downloads.example.invalid/runc.amd64", "0" * 64)
    message = str(raised.value)
    assert f"runc: cannot connect through the proxy http://127.0.0.1:{port}: connection refused after 2" in message
    assert "secret" not in message


def test_no_proxy_hosts_are_reached_directly(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import hashlib

    from bundler.cache import Cache
    from bundler.download import Downloader, FetchOptions
    from tests.support.http_server import MirrorServer

    mirror = MirrorServer().start()
    try:
        mirror.add("/file", b"direct")
        monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{_closed_port()}")
        monkeypatch.setenv("NO_PROXY", "127.0.0.1")
        cache = Cache(tmp_path / "cache")
        cache.ensure()
        fetched = Downloader(cache, FetchOptions(retries=0)).fetch(
            "file", f"{mirror.url}/file", hashlib.sha256(b"direct").hexdigest()
        )
        assert fetched.path.read_bytes() == b"direct"
    finally:
        mirror.stop()


def test_a_proxy_that_answers_with_an_error_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A real loopback HTTP server as the proxy (it receives the absolute URL, as a proxy does) answering 503:
    the request went through it (HTTP_PROXY honoured, example.invalid never resolved here), and the final
    error names it beside the URL."""
    from bundler.cache import Cache
    from bundler.download import Downloader, FetchOptions
    from tests.support.http_server import MirrorServer

    url = "http://downloads.example.invalid/runc.amd64"
    proxy = MirrorServer().start()
    try:
        proxy.add(url, b"never sent", fail_status=[503, 503, 503, 503])
        monkeypatch.setenv("HTTP_PROXY", proxy.url)
        cache = Cache(tmp_path / "cache")
        cache.ensure()
        downloader = Downloader(cache, FetchOptions(retries=1, backoff=0.01))
        with pytest.raises(BundlerError) as raised:
            downloader.fetch("runc", url, "0" * 64)
        assert str(raised.value).startswith(f"runc: HTTP 503 after 2 attempts ({url}, through the proxy {proxy.url})")
        assert [path for path, _ in proxy.requests] == [url, url]
    finally:
        proxy.stop()
