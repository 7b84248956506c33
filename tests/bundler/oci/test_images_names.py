"""Image names, image lists, platform choice and auth parsing: facts in, results out (no daemons)."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from bundler.errors import BundlerError
from bundler.oci.auth import parse_challenge, parse_registry_auth, read_docker_config
from bundler.oci.platform import select_manifest
from bundler.oci.reference import parse_reference
from bundler.oci.transport import RegistryOptions, endpoint_for, parse_mirrors
from bundler.sources.image_list import images_in_yaml, read_image_file
from tests.conftest import SHARED

DIGEST = "sha256:" + "ab" * 32


@pytest.mark.parametrize(
    "given, name, api_repository",
    [
        ("busybox", "docker.io/library/busybox:latest", "library/busybox"),
        ("calico/node:v3.28.0", "docker.io/calico/node:v3.28.0", "calico/node"),
        ("docker.io/calico/cni:v3.28.0", "docker.io/calico/cni:v3.28.0", "calico/cni"),
        ("index.docker.io/library/nginx:1.25", "docker.io/library/nginx:1.25", "library/nginx"),
        ("registry.k8s.io/pause:3.9", "registry.k8s.io/pause:3.9", "pause"),
        (
            "registry.k8s.io/coredns/coredns:v1.11.1",
            "registry.k8s.io/coredns/coredns:v1.11.1",
            "coredns/coredns",
        ),
        ("127.0.0.1:5000/test/app:2.0", "127.0.0.1:5000/test/app:2.0", "test/app"),
        ("localhost/app", "localhost/app:latest", "app"),
        (f"quay.io/x/y@{DIGEST}", f"quay.io/x/y@{DIGEST}", "x/y"),
        (f"quay.io/x/y:1@{DIGEST}", "quay.io/x/y:1", "x/y"),
    ],
)
def test_reference_normalisation(given: str, name: str, api_repository: str) -> None:
    ref = parse_reference(given)
    assert ref.name == name
    assert ref.repository == api_repository


def test_docker_hub_is_reached_at_registry_1() -> None:
    endpoint = endpoint_for(parse_reference("calico/node:v3.28.0"), RegistryOptions())
    assert endpoint.base == "https://registry-1.docker.io"
    assert endpoint.url("manifests", "v3.28.0") == "https://registry-1.docker.io/v2/calico/node/manifests/v3.28.0"


def test_digest_reference_asks_for_the_digest() -> None:
    assert parse_reference(f"quay.io/x/y:1@{DIGEST}").reference == DIGEST


@pytest.mark.parametrize("bad", ["Busybox:1", "busybox:-x", "busybox@sha256:123", "a/b c", "busybox@md5:" + "a" * 32])
def test_bad_references_are_refused(bad: str) -> None:
    with pytest.raises(BundlerError, match="--image"):
        parse_reference(bad, "--image")


def test_mirror_maps_host_to_url_with_repository_prefix() -> None:
    mirrors = parse_mirrors(["registry.k8s.io=https://registry.aliyuncs.com/google_containers"], frozenset())
    ref = parse_reference("registry.k8s.io/coredns/coredns:v1.11.1")
    endpoint = endpoint_for(ref, RegistryOptions(mirrors=mirrors))
    assert endpoint.url("manifests", "v1.11.1") == (
        "https://registry.aliyuncs.com/v2/google_containers/coredns/coredns/manifests/v1.11.1"
    )
    assert ref.name == "registry.k8s.io/coredns/coredns:v1.11.1"  # the name stays the original one


@pytest.mark.parametrize("bad", ["registry.k8s.io", "registry.k8s.io=ftp://x", "registry.k8s.io=http://m.example"])
def test_bad_mirrors_are_refused(bad: str) -> None:
    with pytest.raises(BundlerError, match="--registry-mirror"):
        parse_mirrors([bad], frozenset())


def test_images_in_the_real_calico_manifest() -> None:
    fixture = SHARED / "fixtures" / "calico-typha-v3.28.0.yaml"
    if not fixture.is_file():
        pytest.skip("../shared/fixtures/calico-typha-v3.28.0.yaml is absent")
    names = {parse_reference(image).name for image in images_in_yaml(fixture.read_text(), "calico")}
    assert names == {f"docker.io/calico/{n}:v3.28.0" for n in ("cni", "node", "kube-controllers", "typha")}


def test_images_in_yaml_reads_pod_specs_only() -> None:
    text = """
kind: CronJob
spec: {jobTemplate: {spec: {template: {spec: {containers: [{name: a, image: "busybox:1.36"}]}}}}}
---
kind: ConfigMap
data: {image: "not/an:image"}
---
"""
    assert images_in_yaml(text, "x") == ["busybox:1.36"]
    with pytest.raises(BundlerError, match="not valid YAML"):
        images_in_yaml("a: [", "artifact calico-manifest")


def test_image_file_skips_comments(tmp_path: Path) -> None:
    path = tmp_path / "list"
    path.write_text("# header\nbusybox:1.36\n\n  calico/node:v3.28.0   # inline\n")
    assert read_image_file(path) == ["busybox:1.36", "calico/node:v3.28.0"]


def _entry(arch: str, variant: str = "", os: str = "linux", **annotations: str) -> dict:
    platform = {"os": os, "architecture": arch, **({"variant": variant} if variant else {})}
    return {"digest": f"sha256:{arch}{variant}", "platform": platform, "annotations": annotations}


def test_platform_selection_skips_attestations_and_checks_variants() -> None:
    index = {
        "manifests": [
            _entry("unknown", os="unknown", **{"vnd.docker.reference.type": "attestation-manifest"}),
            _entry("arm", "v7"),
            _entry("arm64", "v8"),
            _entry("amd64"),
        ]
    }
    assert select_manifest(index, "amd64", "x")["digest"] == "sha256:amd64"
    assert select_manifest(index, "arm64", "x")["digest"] == "sha256:arm64v8"
    only_arm = {"manifests": [_entry("arm", "v7"), _entry("arm64", "v9")]}
    with pytest.raises(BundlerError, match=r"no linux/arm64 image .*linux/arm/v7, linux/arm64/v9"):
        select_manifest(only_arm, "arm64", "x")


def test_challenge_parsing() -> None:
    challenge = parse_challenge('Bearer realm="https://auth.example/token",service="registry.example",scope="a:b:pull"')
    assert challenge is not None and challenge.scheme == "bearer"
    assert challenge.get("realm") == "https://auth.example/token" and challenge.get("scope") == "a:b:pull"
    assert parse_challenge('Basic realm="x"').scheme == "basic"  # type: ignore[union-attr]


def test_credentials_from_flag_file_and_docker_config(tmp_path: Path) -> None:
    secret = tmp_path / "pw"
    secret.write_text("p@ss:word\n")
    assert parse_registry_auth([f"quay.io=robot:{secret}"])["quay.io"].password == "p@ss:word"
    with pytest.raises(BundlerError, match="HOST=USER:PASSWORD_FILE"):
        parse_registry_auth(["quay.io=robot"])
    config = tmp_path / "config.json"
    auth = base64.b64encode(b"me:pw").decode()
    config.write_text(json.dumps({"auths": {"https://index.docker.io/v1/": {"auth": auth}, "other": {}}}))
    found = read_docker_config(config)
    assert found["docker.io"].username == "me" and found["docker.io"].password == "pw"
    assert "other" not in found
