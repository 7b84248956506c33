"""Image blobs are checked by content, not by name: a layer changed together with its SHA256SUMS line
(the regression: it passed both verifiers and `plan`, and went to `ctr import`) is refused by `bundler
verify`, `k8s-install.pyz verify`, `plan`, and by the images step before containerd reads a byte."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Callable, Iterator

import pytest

from k8s_install.bundle_format.bundle import load_bundle
from k8s_install.errors import InstallError
from k8s_install.images.containerd_import import import_images, present_images
from tests.conftest import REPO, StandInRelease, run_bundler
from tests.support.containerd import Containerd
from tests.support.http_server import MirrorServer
from tests.support.image_fixtures import build_bundle
from tests.support.registry import Registry
from tests.support.user_errors import one_error_line

pytestmark = [pytest.mark.daemons, pytest.mark.root]

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
        import_images(load_bundle(unpacked), containerd.ctr, str(containerd.socket))
    assert present_images(containerd.ctr, str(containerd.socket)) == {}  # nothing reached containerd


@pytest.fixture(scope="module")
def image_bundle(pushed_images, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """One bundle with an image, built once for the index.json cases."""
    work = tmp_path_factory.mktemp("index-cases")
    storage = Path(shutil.copytree(pushed_images.storage, work / "storage"))
    mirror = MirrorServer().start()
    try:
        with Registry(storage, work / "registry") as registry:
            release = StandInRelease(mirror, work)
            release.set_images([f"{registry.host}/test/busybox:1.0"])
            result = build_bundle(release, work, "--insecure-registry", registry.host)
            assert result.returncode == 0, result.stderr
        subprocess.run(["tar", "-xf", str(work / "out" / f"{TOP}.tar"), "-C", str(work)], check=True)
        yield work / TOP
    finally:
        mirror.stop()


def rewrite_index(bundle: Path, change: Callable[[dict], object]) -> None:
    """index.json changed (or removed when `change` returns None) with its SHA256SUMS line."""
    index_path = bundle / "images" / "index.json"
    new = change(json.loads(index_path.read_text()))
    sums = bundle / "SHA256SUMS"
    lines = [line for line in sums.read_text().splitlines() if not line.endswith("  images/index.json")]
    if new is None:
        index_path.unlink()
    else:
        data = new.encode() if isinstance(new, str) else json.dumps(new).encode()
        index_path.write_bytes(data)
        lines.append(f"{hashlib.sha256(data).hexdigest()}  images/index.json")
    sums.write_text("\n".join(sorted(lines, key=lambda line: line[66:])) + "\n")


def _zero_digest(index: dict) -> dict:
    index["manifests"][0]["digest"] = "sha256:" + "0" * 64
    return index


INDEX_CASES = [
    ("not-json", lambda index: "{not json", "images/index.json is not JSON"),
    ("no-manifests", lambda index: {}, "images/index.json is not an OCI image index (no manifests list)"),
    ("entry-not-a-mapping", lambda index: {"manifests": [1]}, "manifests[0] lacks an image name or a sha256 digest"),
    ("image-dropped", lambda index: dict(index, manifests=[]), "disagree on image 127.0.0.1:"),
    ("other-digest", _zero_digest, "(images/index.json: sha256:0000000000000000000000000000000000000000000000000000"),
    ("index-removed", lambda index: None, "bundle.yaml lists 1 image(s) but there is no images/index.json"),
]


@pytest.mark.parametrize("change,message", [c[1:] for c in INDEX_CASES], ids=[c[0] for c in INDEX_CASES])
def test_an_index_json_not_matching_bundle_yaml_is_refused(
    image_bundle: Path, tmp_path: Path, change: Callable[[dict], object], message: str
) -> None:
    """Without a signature, index.json can be rewritten with its SHA256SUMS line; `images push` then pushed
    whatever it listed (nothing, for an empty index) and reported success."""
    unpacked = Path(shutil.copytree(image_bundle, tmp_path / TOP))
    rewrite_index(unpacked, change)
    assert message in one_error_line(run_bundler("verify", str(unpacked)))
    push = run_installer("--bundle", str(unpacked), "images", "push", "127.0.0.1:9", "--plain-http")
    assert message in one_error_line(push)


@pytest.mark.parametrize(
    "layers,message",
    [(["a string"], "names a blob without a sha256 digest"),
     ([{"digest": "sha256:" + "1" * 64}], f"images/blobs/sha256/{'1' * 64}, a blob of 127.0.0.1:")],
)  # fmt: skip
def test_a_manifest_naming_a_missing_or_malformed_blob_is_refused(
    image_bundle: Path, tmp_path: Path, layers: list, message: str
) -> None:
    """A new manifest blob, with index.json, bundle.yaml and SHA256SUMS rewritten to match: the images step
    crashed on a layer that is not a mapping, and a missing layer was found only by ctr."""
    unpacked = Path(shutil.copytree(image_bundle, tmp_path / TOP))
    index = json.loads((unpacked / "images" / "index.json").read_text())
    old = index["manifests"][0]["digest"]
    manifest = json.loads((unpacked / "images/blobs/sha256" / old.split(":")[1]).read_text())
    blob = json.dumps(dict(manifest, layers=layers)).encode()
    new = "sha256:" + hashlib.sha256(blob).hexdigest()
    (unpacked / "images/blobs/sha256" / new.split(":")[1]).write_bytes(blob)
    for relative in ("images/index.json", "bundle.yaml"):
        path = unpacked / relative
        path.write_text(path.read_text().replace(old, new))
    sums = []
    for path in sorted(p for p in unpacked.rglob("*") if p.is_file() and p.name != "SHA256SUMS"):
        sums.append(f"{hashlib.sha256(path.read_bytes()).hexdigest()}  {path.relative_to(unpacked).as_posix()}\n")
    (unpacked / "SHA256SUMS").write_text("".join(sums))
    assert message in one_error_line(run_bundler("verify", str(unpacked)))
