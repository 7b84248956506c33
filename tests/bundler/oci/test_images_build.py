"""`bundler build` with images from a real docker-registry on loopback (test images from buildah/skopeo)."""

from __future__ import annotations

import hashlib
import json
import shutil
import tarfile
from pathlib import Path
from typing import Any, Dict, Set

import pytest
import yaml

from tests.conftest import StandInRelease, run_bundler
from tests.support.image_fixtures import build_bundle
from tests.support.registry import Registry
from tests.support.test_images import PushedImages, skopeo

pytestmark = pytest.mark.daemons

TOP = "k8s-bundle-1.29.6-rocky9-amd64"


def read_bundle(tarball: Path) -> Dict[str, Any]:
    with tarfile.open(tarball) as archive:
        top = archive.getnames()[0].split("/")[0]
        read = lambda name: archive.extractfile(f"{top}/{name}").read()  # type: ignore[union-attr]  # noqa: E731
        blobs = {
            name.rsplit("/", 1)[1]: archive.getmember(name).size
            for name in archive.getnames()
            if name.startswith(f"{top}/images/blobs/sha256/") and archive.getmember(name).isfile()
        }
        return {
            "manifest": yaml.safe_load(read("bundle.yaml")),
            "index": json.loads(read("images/index.json")) if blobs else None,
            "blobs": blobs,
            "read": {hex_digest: read(f"images/blobs/sha256/{hex_digest}") for hex_digest in blobs},
        }


def hexes(digests) -> Set[str]:  # type: ignore[no-untyped-def]
    return {digest.split(":", 1)[1] for digest in digests}


def test_images_are_pulled_into_one_oci_layout(
    release: StandInRelease, registry: Registry, pushed_images: PushedImages, tmp_path: Path
) -> None:
    busybox, app = f"{registry.host}/test/busybox:1.0", f"{registry.host}/test/app:2.0"
    release.set_images([busybox, app])
    result = build_bundle(release, tmp_path, "--insecure-registry", registry.host)
    assert result.returncode == 0, result.stderr
    bundle = read_bundle(tmp_path / "out" / f"{TOP}.tar")
    images = {entry["name"]: entry for entry in bundle["manifest"]["images"]}
    assert set(images) == {busybox, app}
    # busybox comes from a two-platform OCI index: the amd64 manifest is kept, and the index is recorded
    assert images[busybox]["digest"] == pushed_images.digests["test/busybox:1.0/amd64"]
    assert images[busybox]["index_digest"] == pushed_images.digests["test/busybox:1.0"]
    assert images[busybox]["platform"] == "linux/amd64"
    # app is a Docker schema2 manifest: the layout holds its OCI form (same blobs), the registry's is recorded
    assert images[app]["source_digest"] == pushed_images.digests["test/app:2.0"]
    assert images[app]["digest"] != images[app]["source_digest"]
    assert images[app]["media_type"] == "application/vnd.oci.image.manifest.v1+json"
    assert "index_digest" not in images[app]
    names = {d["annotations"]["io.containerd.image.name"] for d in bundle["index"]["manifests"]}
    assert names == {busybox, app}
    # every blob is stored under its own sha256, and a layer shared by both images is stored once
    for hex_digest, data in bundle["read"].items():
        assert hashlib.sha256(data).hexdigest() == hex_digest
    shared = hexes(pushed_images.layers["busybox-amd64"]) & hexes(pushed_images.layers["app-amd64"])
    assert len(shared) == 1 and shared <= set(bundle["blobs"])
    layers = hexes(pushed_images.layers["busybox-amd64"]) | hexes(pushed_images.layers["app-amd64"])
    assert len(layers) == 3  # base (shared) + one layer each
    assert hexes(pushed_images.layers["busybox-arm64"]).isdisjoint(bundle["blobs"])
    verify = run_bundler("verify", str(tmp_path / "out" / f"{TOP}.tar"))
    assert verify.returncode == 0, verify.stderr


def test_arm64_bundle_holds_only_arm64_layers(
    release: StandInRelease, registry: Registry, pushed_images: PushedImages, tmp_path: Path
) -> None:
    release.set_images([f"{registry.host}/test/busybox:1.0"])
    result = build_bundle(release, tmp_path, "--insecure-registry", registry.host, "--arch", "arm64")
    assert result.returncode == 0, result.stderr
    bundle = read_bundle(tmp_path / "out" / "k8s-bundle-1.29.6-rocky9-arm64.tar")
    (entry,) = bundle["manifest"]["images"]
    assert entry["digest"] == pushed_images.digests["test/busybox:1.0/arm64"]
    assert entry["platform"] == "linux/arm64"
    assert hexes(pushed_images.layers["busybox-arm64"]) <= set(bundle["blobs"])
    assert hexes(pushed_images.layers["busybox-amd64"]).isdisjoint(bundle["blobs"])


def test_single_platform_image_of_another_arch_is_refused(
    release: StandInRelease, registry: Registry, tmp_path: Path
) -> None:
    release.set_images([f"{registry.host}/test/app:2.0"])
    result = build_bundle(release, tmp_path, "--insecure-registry", registry.host, "--arch", "arm64")
    assert result.returncode == 1
    assert "is for linux/amd64, not linux/arm64" in result.stderr
    assert "Traceback" not in result.stderr


def test_images_from_calico_yaml_image_flags_and_image_file(
    release: StandInRelease, registry: Registry, tmp_path: Path
) -> None:
    calico = f"""
apiVersion: apps/v1
kind: DaemonSet
metadata: {{name: calico-node}}
spec:
  template:
    spec:
      initContainers:
        - name: install-cni
          image: {registry.host}/test/busybox:1.0
      containers:
        - name: calico-node
          image: {registry.host}/test/app:2.0
---
apiVersion: v1
kind: ConfigMap
metadata: {{name: not-a-pod}}
data: {{image: not-an-image}}
"""
    release.set_images([], calico_yaml=calico)
    image_file = tmp_path / "images.txt"
    image_file.write_text(f"# extra images\n\n{registry.host}/mirrored/pause:3.9  # the same content\n")
    result = build_bundle(
        release, tmp_path, "--insecure-registry", registry.host, "--image-file", str(image_file),
        "--image", f"{registry.host}/test/app:2.0",  # already named by the YAML: bundled once
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    names = {entry["name"] for entry in read_bundle(tmp_path / "out" / f"{TOP}.tar")["manifest"]["images"]}
    assert names == {f"{registry.host}/test/busybox:1.0", f"{registry.host}/test/app:2.0",
                     f"{registry.host}/mirrored/pause:3.9"}  # fmt: skip


def test_corrupted_blob_in_the_registry_fails_the_build(
    release: StandInRelease, registry: Registry, pushed_images: PushedImages, tmp_path: Path
) -> None:
    layer = pushed_images.layers["app-amd64"][-1]
    stored = registry.blob_file(layer)
    stored.write_bytes(b"X" * stored.stat().st_size)
    release.set_images([f"{registry.host}/test/app:2.0"])
    result = build_bundle(release, tmp_path, "--insecure-registry", registry.host)
    assert result.returncode == 1
    assert "does not match its digest" in result.stderr and layer[:19] in result.stderr
    assert not (tmp_path / "out" / f"{TOP}.tar").exists()
    assert not (tmp_path / "cache" / "sha256" / layer.split(":")[1]).exists()


def test_manifest_not_matching_its_digest_fails_the_build(
    release: StandInRelease, registry: Registry, pushed_images: PushedImages, tmp_path: Path
) -> None:
    stored = registry.blob_file(pushed_images.digests["test/app:2.0"])
    stored.write_bytes(stored.read_bytes().replace(b'"schemaVersion":2', b'"schemaVersion": 2', 1))
    release.set_images([f"{registry.host}/test/app:2.0"])
    result = build_bundle(release, tmp_path, "--insecure-registry", registry.host)
    assert result.returncode == 1
    assert "manifest from" in result.stderr and "does not match its digest" in result.stderr
    assert not (tmp_path / "out" / f"{TOP}.tar").exists()


def test_lock_reproduces_the_digests_or_fails(
    release: StandInRelease, registry: Registry, pushed_images: PushedImages, tmp_path: Path
) -> None:
    busybox = f"{registry.host}/test/busybox:1.0"
    release.set_images([busybox])
    assert build_bundle(release, tmp_path, "--insecure-registry", registry.host).returncode == 0
    first = read_bundle(tmp_path / "out" / f"{TOP}.tar")["manifest"]
    lock = tmp_path / "bundle.lock.yaml"
    # the tag then moves to another image (served on a new port, so the names change with it)
    registry.stop()
    with Registry(registry.storage, tmp_path / "again") as moved:
        skopeo("copy", "--src-tls-verify=false", "--dest-tls-verify=false",
               f"docker://{moved.host}/test/app:2.0", f"docker://{moved.host}/test/busybox:1.0")  # fmt: skip
        renamed = [dict(e, name=e["name"].replace(registry.host, moved.host)) for e in first["images"]]
        lock.write_text(yaml.safe_dump(dict(first, images=renamed)))
        release.set_images([f"{moved.host}/test/busybox:1.0"])
        unlocked = build_bundle(release, tmp_path, "--insecure-registry", moved.host, out="unlocked")
        assert unlocked.returncode == 0, unlocked.stderr
        moved_entry = read_bundle(tmp_path / "unlocked" / f"{TOP}.tar")["manifest"]["images"][0]
        assert moved_entry["source_digest"] == pushed_images.digests["test/app:2.0"]  # now app, in OCI form
        locked = build_bundle(release, tmp_path, "--insecure-registry", moved.host, "--lock", str(lock), out="locked")
        assert locked.returncode == 0, locked.stderr
        again = read_bundle(tmp_path / "locked" / f"{TOP}.tar")["manifest"]["images"]
        assert [(e["digest"], e["index_digest"]) for e in again] == [
            (e["digest"], e["index_digest"]) for e in first["images"]
        ]
        # the locked digest is gone from the registry: a build with an empty cache fails instead of taking
        # another image (with the cache that holds it, a locked build asks the registry nothing)
        manifest_link = (
            moved.storage / "docker/registry/v2/repositories/test/busybox/_manifests/revisions/sha256"
            / first["images"][0]["digest"].split(":")[1]
        )  # fmt: skip
        shutil.rmtree(manifest_link)
        gone = build_bundle(
            release, tmp_path, "--insecure-registry", moved.host, "--lock", str(lock), out="gone", cache="empty"
        )
        assert gone.returncode == 1
        assert "not found" in gone.stderr and first["images"][0]["digest"] in gone.stderr
        # an image that the lock does not name is refused
        release.set_images([f"{moved.host}/test/busybox:1.0", f"{moved.host}/test/app:2.0"])
        extra = build_bundle(release, tmp_path, "--insecure-registry", moved.host, "--lock", str(lock), out="extra")
        assert extra.returncode == 1 and "is not in the lock" in extra.stderr


def test_registry_mirror_keeps_the_original_names(
    release: StandInRelease, registry: Registry, pushed_images: PushedImages, tmp_path: Path
) -> None:
    release.set_images(["registry.k8s.io/pause:3.9"])
    result = build_bundle(
        release, tmp_path, "--insecure-registry", registry.host,
        "--registry-mirror", f"registry.k8s.io=http://{registry.host}/mirrored",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    bundle = read_bundle(tmp_path / "out" / f"{TOP}.tar")
    (entry,) = bundle["manifest"]["images"]
    assert entry["name"] == "registry.k8s.io/pause:3.9"
    assert entry["digest"] == pushed_images.digests["test/busybox:1.0/amd64"]
    assert bundle["index"]["manifests"][0]["annotations"]["io.containerd.image.name"] == "registry.k8s.io/pause:3.9"


def test_plain_http_mirror_needs_insecure_registry(release: StandInRelease, registry: Registry, tmp_path: Path) -> None:
    release.set_images(["registry.k8s.io/pause:3.9"])
    result = build_bundle(release, tmp_path, "--registry-mirror", f"registry.k8s.io=http://{registry.host}/mirrored")
    assert result.returncode == 2  # a bad command line, caught before anything is fetched
    assert f"--insecure-registry {registry.host}" in result.stderr


def test_plain_http_registry_without_insecure_flag_fails_clearly(
    release: StandInRelease, registry: Registry, tmp_path: Path
) -> None:
    release.set_images([f"{registry.host}/test/app:2.0"])
    result = build_bundle(release, tmp_path)
    assert result.returncode == 1
    assert "TLS" in result.stderr and "--insecure-registry" in result.stderr
    assert "Traceback" not in result.stderr


def test_second_build_takes_blobs_from_the_cache(release: StandInRelease, registry: Registry, tmp_path: Path) -> None:
    release.set_images([f"{registry.host}/test/busybox:1.0"])
    assert build_bundle(release, tmp_path, "--insecure-registry", registry.host).returncode == 0
    first = (tmp_path / "out" / f"{TOP}.tar").read_bytes()
    again = build_bundle(release, tmp_path, "--insecure-registry", registry.host, out="again")
    assert again.returncode == 0, again.stderr
    assert (tmp_path / "again" / f"{TOP}.tar").read_bytes() == first
