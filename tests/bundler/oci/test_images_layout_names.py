"""Every image of a bundle's images/ is found by name by the containers/image tools (skopeo) and umoci,
including one that the registry serves as a Docker schema2 manifest (the layout holds its OCI form)."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.conftest import StandInRelease
from tests.support.image_fixtures import build_bundle
from tests.support.registry import Registry

pytestmark = pytest.mark.daemons

TOP = "k8s-bundle-1.29.6-rocky9-amd64"


def test_skopeo_and_umoci_find_every_image_by_name(release: StandInRelease, registry: Registry, tmp_path: Path) -> None:
    if not shutil.which("umoci"):
        pytest.skip("umoci is not installed (installed by .ci/run)")
    names = [f"{registry.host}/test/busybox:1.0", f"{registry.host}/test/app:2.0", "registry.k8s.io/pause:3.9"]
    release.set_images(names)
    result = build_bundle(
        release, tmp_path, "--insecure-registry", registry.host,
        "--registry-mirror", f"registry.k8s.io=http://{registry.host}/mirrored",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    subprocess.run(["tar", "-xf", str(tmp_path / "out" / f"{TOP}.tar"), "-C", str(tmp_path)], check=True)
    bundle = tmp_path / TOP
    digests = {
        image["name"]: image["digest"] for image in yaml.safe_load((bundle / "bundle.yaml").read_text())["images"]
    }
    assert set(digests) == set(names)
    layout = bundle / "images"
    listed = subprocess.run(["umoci", "ls", "--layout", str(layout)], capture_output=True, text=True, check=True)
    assert sorted(listed.stdout.split()) == sorted(names)
    for number, name in enumerate(names):
        copy = subprocess.run(
            ["skopeo", "copy", f"oci:{layout}:{name}", f"dir:{tmp_path / f'copy-{number}'}"],
            capture_output=True, text=True,
        )  # fmt: skip
        assert copy.returncode == 0, copy.stderr  # every blob read and checked against its digest
        manifest = (tmp_path / f"copy-{number}" / "manifest.json").read_bytes()
        assert "sha256:" + hashlib.sha256(manifest).hexdigest() == digests[name]
        stat = subprocess.run(["umoci", "stat", "--image", f"{layout}:{name}"], capture_output=True, text=True)
        assert stat.returncode == 0 and "LAYER" in stat.stdout, stat.stderr


def test_lock_of_a_converted_image_fetches_the_registry_digest(
    release: StandInRelease, registry: Registry, tmp_path: Path
) -> None:
    release.set_images([f"{registry.host}/test/app:2.0"])
    assert build_bundle(release, tmp_path, "--insecure-registry", registry.host).returncode == 0
    subprocess.run(["tar", "-xf", str(tmp_path / "out" / f"{TOP}.tar"), "-C", str(tmp_path)], check=True)
    lock = tmp_path / TOP / "bundle.yaml"
    first = yaml.safe_load(lock.read_text())["images"]
    again = build_bundle(release, tmp_path, "--insecure-registry", registry.host, "--lock", str(lock), out="again")
    assert again.returncode == 0, again.stderr
    subprocess.run(["tar", "-xf", str(tmp_path / "again" / f"{TOP}.tar"), "-C", str(tmp_path / "again")], check=True)
    second = yaml.safe_load((tmp_path / "again" / TOP / "bundle.yaml").read_text())["images"]
    assert [(i["digest"], i["source_digest"]) for i in second] == [(i["digest"], i["source_digest"]) for i in first]
