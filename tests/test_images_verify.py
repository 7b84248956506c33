"""Image blobs are checked by content, not by name: a layer changed together with its SHA256SUMS line
(the regression: it passed both verifiers and `plan`, and went to `ctr import`) is refused by `bundler
verify`, `k8s-install.pyz verify`, `plan`, and by the images step before containerd reads a byte."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from k8s_install.errors import InstallError
from k8s_install.images import import_images, present_images
from tests.conftest import REPO, StandInRelease, run_bundler
from tests.support.containerd import Containerd
from tests.support.image_fixtures import build_bundle
from tests.support.registry import Registry

TOP = "k8s-bundle-1.29.6-rocky9-amd64"


@pytest.fixture
def unpacked(release: StandInRelease, registry: Registry, tmp_path: Path) -> Path:
    release.set_images([f"{registry.host}/test/busybox:1.0"])
    result = build_bundle(release, tmp_path, "--insecure-registry", registry.host)
    assert result.returncode == 0, result.stderr
    subprocess.run(["tar", "-xf", str(tmp_path / "out" / f"{TOP}.tar"), "-C", str(tmp_path)], check=True)
    return tmp_path / TOP


def first_layer(bundle: Path) -> str:
    layout = bundle / "images"
    index = json.loads((layout / "index.json").read_text())
    manifest_digest = index["manifests"][0]["digest"].split(":")[1]
    manifest = json.loads((layout / "blobs/sha256" / manifest_digest).read_text())
    return f"images/blobs/sha256/{manifest['layers'][0]['digest'].split(':')[1]}"


def alter_with_its_sums_line(bundle: Path, relative: str) -> None:
    """Change the blob and write its new sum into SHA256SUMS, as someone covering their tracks would."""
    blob = bundle / relative
    data = bytearray(blob.read_bytes())
    data[len(data) // 2] ^= 0x01
    blob.write_bytes(bytes(data))
    sums = bundle / "SHA256SUMS"
    new = hashlib.sha256(data).hexdigest()
    lines = [f"{new}  {relative}" if line.endswith(f"  {relative}") else line for line in sums.read_text().splitlines()]
    sums.write_text("\n".join(lines) + "\n")


def run_installer(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.run([sys.executable, "-m", "k8s_install", *args], capture_output=True, text=True, env=env)


def test_a_layer_changed_with_its_sums_line_is_refused_everywhere(unpacked: Path, tmp_path: Path) -> None:
    assert run_bundler("verify", str(unpacked)).returncode == 0
    layer = first_layer(unpacked)
    alter_with_its_sums_line(unpacked, layer)
    named = f"{layer} is not the blob its name says"
    bundler = run_bundler("verify", str(unpacked))
    assert bundler.returncode == 1 and named in bundler.stderr, bundler.stderr
    installer = run_installer("--bundle", str(unpacked), "verify")
    assert installer.returncode == 1 and named in installer.stderr, installer.stderr
    plan = run_installer("--bundle", str(unpacked), "plan", "--role", "worker")
    assert plan.returncode == 1 and named in plan.stderr, plan.stderr
    tarball = tmp_path / "altered.tar"  # and in a tarball, verified without unpacking
    subprocess.run(["tar", "-cf", str(tarball), "-C", str(unpacked.parent), TOP], check=True)
    in_tar = run_bundler("verify", str(tarball))
    assert in_tar.returncode == 1 and named in in_tar.stderr, in_tar.stderr


def test_the_images_step_checks_blobs_before_ctr_reads_them(unpacked: Path, containerd: Containerd) -> None:
    layer = first_layer(unpacked)
    alter_with_its_sums_line(unpacked, layer)
    with pytest.raises(InstallError, match=f"{layer.rsplit('/', 1)[1]}: is not the blob sha256:"):
        import_images(unpacked, containerd.ctr, str(containerd.socket))
    assert present_images(containerd.ctr, str(containerd.socket)) == {}  # nothing reached containerd
