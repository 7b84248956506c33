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
