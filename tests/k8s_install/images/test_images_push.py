"""`bundler images push` and `k8s-install.pyz images push` into a real docker-registry with TLS (a test CA
made with openssl) and htpasswd users (bcrypt), read back with skopeo: every image arrives with its digest,
and a second push uploads no blob."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import subprocess
from pathlib import Path
from typing import Dict, Iterator

import pytest
import yaml

from tests.conftest import StandInRelease, run_bundler
from tests.support.image_fixtures import build_bundle
from tests.support.registry import Registry, make_certificate, make_htpasswd
from tests.support.session_cache import shiv_root

pytestmark = pytest.mark.daemons

TOP = "k8s-bundle-1.29.6-rocky9-amd64"
USER, PASSWORD = "pusher", "s3cret-for-tests"


@pytest.fixture
def bundle(release: StandInRelease, registry: Registry, tmp_path: Path) -> Path:
    release.set_images(
        [f"{registry.host}/test/busybox:1.0", f"{registry.host}/test/app:2.0", "registry.k8s.io/pause:3.9"]
    )
    result = build_bundle(
        release, tmp_path, "--insecure-registry", registry.host,
        "--registry-mirror", f"registry.k8s.io=http://{registry.host}/mirrored",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return tmp_path / "out" / f"{TOP}.tar"


@pytest.fixture
def private(tmp_path: Path) -> Iterator[Dict[str, object]]:
    """The air gap's registry: empty, https with a test CA, htpasswd login."""
    work = tmp_path / "private"
    tls = make_certificate(work / "tls")
    htpasswd = make_htpasswd(work / "htpasswd", USER, PASSWORD)
    with Registry(work / "storage", work, tls=tls, htpasswd=htpasswd) as server:
        auth = work / "auth.json"
        token = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
        auth.write_text(json.dumps({"auths": {server.host: {"auth": token}}}))
        auth.chmod(0o600)
        cert_dir = work / "certs.d"
        cert_dir.mkdir()
        (cert_dir / "ca.crt").write_bytes(tls["cert"].read_bytes())
        yield {"server": server, "auth": auth, "ca": tls["cert"], "cert_dir": cert_dir}


def bundled_images(tarball: Path, tmp_path: Path) -> Dict[str, str]:
    subprocess.run(["tar", "-xf", str(tarball), "-C", str(tmp_path)], check=True)
    manifest = yaml.safe_load((tmp_path / TOP / "bundle.yaml").read_text())
    return {image["name"]: image["digest"] for image in manifest["images"]}


def pulled_digest(private: Dict[str, object], reference: str, into: Path) -> str:
    """skopeo copies the image out of the registry (every blob checked); the digest of its manifest."""
    result = subprocess.run(
        ["skopeo", "copy", "--src-cert-dir", str(private["cert_dir"]), "--src-authfile", str(private["auth"]),
         f"docker://{reference}", f"dir:{into}"],
        capture_output=True, text=True,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return "sha256:" + hashlib.sha256((into / "manifest.json").read_bytes()).hexdigest()


def push_args(private: Dict[str, object], *extra: str) -> list:
    server = private["server"]
    return [server.host, "--ca-file", str(private["ca"]), "--auth-file", str(private["auth"]), *extra]  # type: ignore[attr-defined]


def test_bundler_push_keeps_names_and_digests_and_second_push_uploads_nothing(
    bundle: Path, registry: Registry, private: Dict[str, object], tmp_path: Path
) -> None:
    images = bundled_images(bundle, tmp_path)
    # a small chunk size: the busybox layer (about 1 MiB) goes up in PATCH chunks, the small blobs in one PUT
    first = run_bundler(
        "images", "push", str(bundle), *push_args(private, "--prefix", "mirror", "--chunk-size", "65536")
    )
    assert first.returncode == 0, first.stderr
    assert "pushed 3 image(s)" in first.stdout and " 0 blob(s) uploaded" not in first.stdout
    assert re.search(r"MiB, [1-9][0-9]* in chunks\)", first.stdout), first.stdout
    host = private["server"].host  # type: ignore[attr-defined]
    expected = {
        f"{registry.host}/test/busybox:1.0": f"{host}/mirror/test/busybox:1.0",
        f"{registry.host}/test/app:2.0": f"{host}/mirror/test/app:2.0",
        "registry.k8s.io/pause:3.9": f"{host}/mirror/pause:3.9",
    }
    for number, (name, target) in enumerate(sorted(expected.items())):
        assert f"{name} -> {target}" in first.stdout
        assert pulled_digest(private, target, tmp_path / f"pulled-{number}") == images[name]

    second = run_bundler("images", "push", str(bundle), *push_args(private, "--prefix", "mirror"))
    assert second.returncode == 0, second.stderr
    assert ": 0 blob(s) uploaded (0.0 MiB, 0 in chunks), 0 mounted," in second.stdout
    assert "0 manifest(s) written, 3 unchanged" in second.stdout


def test_installer_push_under_python39(bundle: Path, private: Dict[str, object], python39: str, tmp_path: Path) -> None:
    images = bundled_images(bundle, tmp_path)
    env = dict(os.environ, SHIV_ROOT=shiv_root(tmp_path / "shiv"))
    folder = tmp_path / TOP
    command = [python39, str(folder / "k8s-install.pyz"), "images", "push", *push_args(private)]
    result = subprocess.run(command, capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    host = private["server"].host  # type: ignore[attr-defined]
    # blobs shared by images (the base layer; pause is busybox again) are uploaded once, then mounted
    assert "blob(s) uploaded" in result.stdout and " 0 mounted" not in result.stdout
    assert pulled_digest(private, f"{host}/pause:3.9", tmp_path / "pause") == images["registry.k8s.io/pause:3.9"]


def test_bad_credentials_and_untrusted_certificate_are_one_line(
    bundle: Path, private: Dict[str, object], tmp_path: Path
) -> None:
    host = private["server"].host  # type: ignore[attr-defined]
    wrong = tmp_path / "wrong.json"
    wrong.write_text(json.dumps({"auths": {host: {"auth": base64.b64encode(b"pusher:nope").decode()}}}))
    refused = run_bundler(
        "images", "push", str(bundle), host, "--ca-file", str(private["ca"]), "--auth-file", str(wrong)
    )
    assert refused.returncode == 1 and "credentials in --auth-file were refused" in refused.stderr
    untrusted = run_bundler("images", "push", str(bundle), host, "--auth-file", str(private["auth"]))
    assert untrusted.returncode == 1 and "pass --ca-file" in untrusted.stderr
    anonymous = run_bundler("images", "push", str(bundle), host, "--ca-file", str(private["ca"]))
    assert anonymous.returncode == 1 and "pass --auth-file" in anonymous.stderr
    for result in (refused, untrusted, anonymous):
        assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr


def test_push_to_a_token_auth_registry(bundle: Path, registry_storage: Path, tmp_path: Path) -> None:
    """Bearer tokens: the credentials go to the token service the registry names, with a push scope."""
    from tests.support.token_server import TokenServer

    tokens = TokenServer(tmp_path / "token", users={USER: PASSWORD}, grant=("pull", "push")).start()
    try:
        empty = tmp_path / "token-registry"
        with Registry(empty, tmp_path / "token-work", token=tokens.registry_config()) as target:
            auth = tmp_path / "token-auth.json"
            auth.write_text(
                json.dumps({"auths": {target.host: {"auth": base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()}}})
            )
            result = run_bundler("images", "push", str(bundle), target.host, "--plain-http", "--auth-file", str(auth))
            assert result.returncode == 0, result.stderr
            assert "pushed 3 image(s)" in result.stdout
            assert " 0 mounted" not in result.stdout  # a mount asks for pull on the origin in the same token
    finally:
        tokens.stop()
    scopes = {scope for request in tokens.requests for scope in request["query"]["scope"]}  # type: ignore[index]
    assert "repository:pause:pull,push" in scopes
    assert {request["user"] for request in tokens.requests} == {USER}
