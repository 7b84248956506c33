"""Where the bundle host serves each image: its path without the registry's name (the mirror contract), and a
bundle whose images would collide there refused with both names."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import IO, Dict, List

import pytest

from k8s_install.errors import InstallError
from k8s_install.serve.loader import ServedImage, bundle_images, is_stored

DIGEST_A = "sha256:" + "a" * 64
DIGEST_B = "sha256:" + "b" * 64


class LayoutOnly:
    """What bundle_images reads of an opened bundle: images/index.json."""

    def __init__(self, names: Dict[str, str]) -> None:
        manifests = [{"digest": digest, "mediaType": "application/vnd.oci.image.index.v1+json",
                      "annotations": {"io.containerd.image.name": name}} for name, digest in names.items()]  # fmt: skip
        self.index = json.dumps({"schemaVersion": 2, "manifests": manifests}).encode()
        self.path = Path("bundle")

    def has(self, relative: str) -> bool:
        return relative == "images/index.json"

    def open(self, relative: str) -> IO[bytes]:
        return io.BytesIO(self.index)


def served(names: Dict[str, str]) -> List[ServedImage]:
    return bundle_images(LayoutOnly(names))  # type: ignore[arg-type]


def test_images_are_served_under_their_path_without_the_registry() -> None:
    images = served({
        "registry.k8s.io/kube-apiserver:v1.29.6": DIGEST_A, "registry.k8s.io/coredns/coredns:v1.11.1": DIGEST_B,
        "docker.io/calico/node:v3.28.0": DIGEST_A, f"quay.io/app/tool@{DIGEST_B}": DIGEST_B,
    })  # fmt: skip
    assert [(image.repository, image.reference) for image in images] == [
        ("kube-apiserver", "v1.29.6"), ("coredns/coredns", "v1.11.1"), ("calico/node", "v3.28.0"),
        ("app/tool", DIGEST_B),
    ]  # fmt: skip


def test_a_docker_hub_name_in_any_spelling_is_served_where_containerd_asks_for_it() -> None:
    """`nginx:1.25` is pulled as docker.io/library/nginx:1.25: through the mirror containerd asks for library/nginx."""
    images = served({"nginx:1.25": DIGEST_A, "docker.io/nginx:1.24": DIGEST_B, f"library/nginx@{DIGEST_B}": DIGEST_B})
    assert [(image.repository, image.reference) for image in images] == [
        ("library/nginx", "1.25"), ("library/nginx", "1.24"), ("library/nginx", DIGEST_B),
    ]  # fmt: skip


def test_two_images_that_would_collide_are_refused_naming_both() -> None:
    with pytest.raises(InstallError, match=r"docker.io/library/pause:3.9 and registry.k8s.io/library/pause:3.9 "
                       r"would both be library/pause:3.9 on the bundle host"):  # fmt: skip
        served({"docker.io/library/pause:3.9": DIGEST_A, "registry.k8s.io/library/pause:3.9": DIGEST_B})
    assert len(served({"docker.io/x/y:1": DIGEST_A, "quay.io/x/y:1": DIGEST_A})) == 2  # the same image: fine


def test_an_image_is_stored_when_its_tag_names_its_digest_and_the_blob_is_there(tmp_path: Path) -> None:
    image = ServedImage("registry.k8s.io/pause:3.9", "pause", "3.9", DIGEST_A)
    assert not is_stored(tmp_path, image)
    blob = tmp_path / "docker/registry/v2/blobs/sha256/aa" / ("a" * 64) / "data"
    blob.parent.mkdir(parents=True)
    blob.write_bytes(b"{}")
    link = tmp_path / "docker/registry/v2/repositories/pause/_manifests/tags/3.9/current/link"
    link.parent.mkdir(parents=True)
    link.write_text(DIGEST_B)
    assert not is_stored(tmp_path, image)  # the tag names another manifest
    link.write_text(DIGEST_A)
    assert is_stored(tmp_path, image)
