"""Registry authentication and TLS against a real docker-registry: htpasswd basic auth, token auth with a
test token service, and TLS with a CA made by the test."""

from __future__ import annotations

import base64
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Iterator, Optional

import pytest

from tests.conftest import StandInRelease
from tests.support.blob_redirect import BlobRedirectFront, RedirectEverything
from tests.support.image_fixtures import build_bundle
from tests.support.registry import Registry, make_certificate, make_htpasswd
from tests.support.token_server import TokenServer

pytestmark = pytest.mark.daemons

TOP = "k8s-bundle-1.29.6-rocky9-amd64"
USER, PASSWORD = "puller", "s3cret-for-tests"


@pytest.fixture
def basic_registry(registry_storage: Path, tmp_path: Path) -> Iterator[Registry]:
    htpasswd = make_htpasswd(tmp_path / "htpasswd", USER, PASSWORD)
    with Registry(registry_storage, tmp_path / "registry", htpasswd=htpasswd) as server:
        yield server


@pytest.fixture
def password_file(tmp_path: Path) -> Path:
    path = tmp_path / "password"
    path.write_text(PASSWORD + "\n")
    path.chmod(0o600)
    return path


def test_registry_needing_credentials_gives_a_clear_error(
    release: StandInRelease, basic_registry: Registry, tmp_path: Path
) -> None:
    release.set_images([f"{basic_registry.host}/test/app:2.0"])
    result = build_bundle(release, tmp_path, "--insecure-registry", basic_registry.host)
    assert result.returncode == 1
    assert f"{basic_registry.host} requires credentials (HTTP 401)" in result.stderr
    assert "--registry-auth" in result.stderr and "Traceback" not in result.stderr


def test_basic_auth_with_a_password_file(
    release: StandInRelease, basic_registry: Registry, password_file: Path, tmp_path: Path
) -> None:
    release.set_images([f"{basic_registry.host}/test/app:2.0"])
    auth = f"{basic_registry.host}={USER}:{password_file}"
    result = build_bundle(release, tmp_path, "--insecure-registry", basic_registry.host, "--registry-auth", auth)
    assert result.returncode == 0, result.stderr
    assert PASSWORD not in result.stderr + result.stdout


def test_wrong_password_is_refused(release: StandInRelease, basic_registry: Registry, tmp_path: Path) -> None:
    wrong = tmp_path / "wrong"
    wrong.write_text("not-the-password\n")
    release.set_images([f"{basic_registry.host}/test/app:2.0"])
    auth = f"{basic_registry.host}={USER}:{wrong}"
    result = build_bundle(release, tmp_path, "--insecure-registry", basic_registry.host, "--registry-auth", auth)
    assert result.returncode == 1
    assert "refused the credentials" in result.stderr


def test_basic_auth_from_docker_config(release: StandInRelease, basic_registry: Registry, tmp_path: Path) -> None:
    config_dir = tmp_path / "docker-config"
    config_dir.mkdir()
    encoded = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    (config_dir / "config.json").write_text(json.dumps({"auths": {basic_registry.host: {"auth": encoded}}}))
    release.set_images([f"{basic_registry.host}/test/app:2.0"])
    from tests.conftest import run_bundler

    result = run_bundler(
        "build", "--allow-incomplete", "--manifest", str(release.path), "--mirror", release.mirror.url,
        "--cache", str(tmp_path / "c"), "--output", str(tmp_path / "out"),
        "--insecure-registry", basic_registry.host,
        env={"DOCKER_CONFIG": str(config_dir)},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("anonymous", [True, False])
def test_token_auth(
    release: StandInRelease, registry_storage: Path, password_file: Path, tmp_path: Path, anonymous: bool
) -> None:
    tokens = TokenServer(tmp_path / "token", users={USER: PASSWORD}, anonymous=anonymous).start()
    try:
        with Registry(registry_storage, tmp_path / "registry", token=tokens.registry_config()) as registry:
            release.set_images([f"{registry.host}/test/busybox:1.0"])
            flags = ["--insecure-registry", registry.host]
            if not anonymous:
                denied = build_bundle(release, tmp_path, *flags, out="denied")
                assert denied.returncode == 1 and "requires credentials" in denied.stderr
                flags += ["--registry-auth", f"{registry.host}={USER}:{password_file}"]
            result = build_bundle(release, tmp_path, *flags)
            assert result.returncode == 0, result.stderr
    finally:
        tokens.stop()
    scopes = {scope for request in tokens.requests for scope in request["query"]["scope"]}  # type: ignore[index]
    assert scopes == {"repository:test/busybox:pull"}
    users = {request["user"] for request in tokens.requests}
    assert users == ({None} if anonymous else {None, USER})


def test_tls_with_the_registry_ca(release: StandInRelease, registry_storage: Path, tmp_path: Path) -> None:
    tls = make_certificate(tmp_path / "tls")
    with Registry(registry_storage, tmp_path / "registry", tls=tls) as registry:
        release.set_images([f"{registry.host}/test/busybox:1.0"])
        without = build_bundle(release, tmp_path, out="without")
        assert without.returncode == 1
        assert f"TLS verification failed for {registry.host}" in without.stderr
        assert "--ca-file" in without.stderr and "Traceback" not in without.stderr
        insecure = build_bundle(release, tmp_path, "--insecure-registry", registry.host, out="insecure")
        assert insecure.returncode == 1 and "Traceback" not in insecure.stderr
        last = insecure.stderr.strip().splitlines()[-1]
        assert last.endswith(
            f"HTTP 400 Bad Request from http://{registry.host}/v2/test/busybox/manifests/1.0: if {registry.host} "
            "speaks HTTPS, drop --insecure-registry for it (and pass --ca-file if its certificate is private)"
        )
        result = build_bundle(release, tmp_path, "--ca-file", str(tls["cert"]))
        assert result.returncode == 0, result.stderr


def test_redirect_to_blob_storage_does_not_carry_credentials(
    release: StandInRelease, basic_registry: Registry, password_file: Path, tmp_path: Path
) -> None:
    front = BlobRedirectFront(basic_registry.url, USER, PASSWORD)
    try:
        release.set_images([f"{front.host}/test/app:2.0"])
        result = build_bundle(
            release, tmp_path, "--insecure-registry", front.host,
            "--registry-auth", f"{front.host}={USER}:{password_file}",
        )  # fmt: skip
    finally:
        front.stop()
    assert result.returncode == 0, result.stderr
    assert len(front.storage_headers) == 3  # config and two layers, each fetched from the storage host
    assert all("authorization" not in headers for headers in front.storage_headers)


def test_dropped_blob_download_resumes_with_range(
    release: StandInRelease, basic_registry: Registry, password_file: Path, tmp_path: Path
) -> None:
    front = BlobRedirectFront(basic_registry.url, USER, PASSWORD, drop_after=300_000)
    try:
        release.set_images([f"{front.host}/test/app:2.0"])
        result = build_bundle(
            release, tmp_path, "--insecure-registry", front.host,
            "--registry-auth", f"{front.host}={USER}:{password_file}",
        )  # fmt: skip
    finally:
        front.stop()
    assert result.returncode == 0, result.stderr
    ranges = [headers["range"] for headers in front.storage_headers if headers.get("range")]
    assert len(ranges) == 1 and ranges[0].startswith("bytes=") and ranges[0] != "bytes=0-"


def test_redirect_to_a_registry_with_its_own_token_challenge(
    release: StandInRelease, registry_storage: Path, tmp_path: Path
) -> None:
    tokens = TokenServer(tmp_path / "token", anonymous=True).start()
    try:
        with Registry(registry_storage, tmp_path / "registry", token=tokens.registry_config()) as regional:
            front = RedirectEverything(regional.url)
            try:
                release.set_images([f"{front.host}/test/busybox:1.0"])
                result = build_bundle(release, tmp_path, "--insecure-registry", front.host)
            finally:
                front.stop()
    finally:
        tokens.stop()
    assert result.returncode == 0, result.stderr
    scopes = {scope for request in tokens.requests for scope in request["query"]["scope"]}  # type: ignore[index]
    assert scopes == {"repository:test/busybox:pull"}


@pytest.mark.parametrize(
    "challenge,message",
    [
        (None, "answered HTTP 401 without a WWW-Authenticate challenge, as no registry does: check the registry"),
        ("Negotiate", "asks for negotiate authentication (HTTP 401); only registry tokens (Bearer) and Basic are"),
    ],
)
def test_a_401_the_builder_cannot_answer_is_one_line(
    release: StandInRelease, tmp_path: Path, challenge: Optional[str], message: str
) -> None:
    class Refuse(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            self.send_response(401)
            if challenge:
                self.send_header("WWW-Authenticate", challenge)
            self.send_header("Content-Length", "0")
            self.end_headers()

    server = ThreadingHTTPServer(("127.0.0.1", 0), Refuse)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        host = f"127.0.0.1:{server.server_address[1]}"
        release.set_images([f"{host}/test/app:2.0"])
        result = build_bundle(release, tmp_path, "--insecure-registry", host)
        assert result.returncode == 1 and "Traceback" not in result.stderr
        line = result.stderr.strip().splitlines()[-1]  # after the progress lines
        assert f"{host}/test/app:2.0: {host} " in line and message in line
        assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())
    finally:
        server.shutdown()
        server.server_close()
