"""`bundler inspect` (text and --json) and `bundler verify --json` on a real bundle with images, each JSON
document validated against its published schema (schemas/)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import jsonschema
import pytest

from k8s_install.bundle_format.contents import describe
from k8s_install.bundle_format.model import BundleManifest
from tests.conftest import REPO, StandInRelease, run_bundler
from tests.support.image_fixtures import build_bundle
from tests.support.registry import Registry

TOP = "k8s-bundle-1.29.6-rocky9-amd64"


def schema(name: str) -> dict:
    return json.loads((REPO / "schemas" / f"{name}.schema.json").read_text())


@pytest.fixture
def tarball(release: StandInRelease, registry: Registry, tmp_path: Path) -> Path:
    release.set_images([f"{registry.host}/test/busybox:1.0", f"{registry.host}/test/app:2.0"])
    result = build_bundle(release, tmp_path, "--insecure-registry", registry.host)
    assert result.returncode == 0, result.stderr
    return tmp_path / "out" / f"{TOP}.tar"


def test_inspect_json_of_tarball_and_folder(tarball: Path, registry: Registry, tmp_path: Path) -> None:
    result = run_bundler("inspect", "--json", str(tarball))
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    jsonschema.validate(doc, schema("inspect"))
    assert doc["schema"] == 1 and doc["command"] == "inspect"
    assert doc["kubernetes"] == "1.29.6" and doc["target"]["arch"] == "amd64" and doc["target"]["os"] == "rocky9"
    assert doc["signer"] is None
    names = [image["name"] for image in doc["images"]]
    assert names == [f"{registry.host}/test/app:2.0", f"{registry.host}/test/busybox:1.0"]
    files = {entry["path"]: entry for entry in doc["files"]}
    assert files["k8s-install.pyz"]["kind"] == "installer"
    assert files["files/containerd-1.0.0-linux-amd64.bin"]["pinned"] is True
    assert doc["totals"]["images"] == 2 and doc["totals"]["unpinned_files"] == 0
    assert doc["totals"]["bytes"] > sum(entry["size"] for entry in doc["files"])  # image blobs count too

    subprocess.run(["tar", "-xf", str(tarball), "-C", str(tmp_path)], check=True)
    folder = run_bundler("inspect", "--json", str(tmp_path / TOP))
    assert folder.returncode == 0, folder.stderr
    assert json.loads(folder.stdout) == doc  # the same bundle, the same document


def test_inspect_text_names_everything(tarball: Path, registry: Registry) -> None:
    result = run_bundler("inspect", str(tarball))
    assert result.returncode == 0, result.stderr
    text = result.stdout
    assert "kubernetes: 1.29.6" in text and "target: rocky9 (also alma9) amd64" in text
    assert "signer: none (unsigned)" in text
    assert f"{registry.host}/test/busybox:1.0  sha256:" in text
    assert "files/runc-1.0.0-linux-amd64.bin" in text and "pinned  sha256 " in text
    assert text.rstrip().splitlines()[-1].startswith("total: ")


def test_inspect_verifies_first(tarball: Path, tmp_path: Path) -> None:
    subprocess.run(["tar", "-xf", str(tarball), "-C", str(tmp_path)], check=True)
    victim = tmp_path / TOP / "files" / "runc-1.0.0-linux-amd64.bin"
    victim.write_bytes(victim.read_bytes()[:-1] + b"X")
    result = run_bundler("inspect", "--json", str(tmp_path / TOP))
    assert result.returncode == 1 and result.stdout == ""
    assert "runc-1.0.0-linux-amd64.bin is corrupted" in result.stderr and "Traceback" not in result.stderr


def test_verify_json(tarball: Path) -> None:
    result = run_bundler("verify", "--json", str(tarball))
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    jsonschema.validate(doc, schema("verify"))
    assert doc["ok"] is True and doc["files"] > 5


def test_packages_are_listed_with_their_versions() -> None:
    manifest = {
        "kubernetes": "1.29.6", "os": "rocky9", "arch": "amd64", "format": 1,
        "rpms": [{"name": "kubeadm", "nevra": "kubeadm-0:1.29.6-150500.1.1.x86_64", "evr": "1.29.6-150500.1.1",
                  "arch": "x86_64", "path": "rpms/Packages/kubeadm.rpm", "sha256": "a" * 64, "size": 10,
                  "repository": "kubernetes", "requested": True}],
        "extras": [{"repository": "kubernetes", "path": "rpms/keys/kubernetes.asc", "sha256": "b" * 64,
                    "size": 3, "pinned": False}],
    }  # fmt: skip
    doc = describe(BundleManifest.from_mapping(manifest, "test"), 3, 100, "c" * 64)
    jsonschema.validate({"schema": 1, "command": "inspect", **doc}, schema("inspect"))
    assert doc["packages"][0]["version"] == "1.29.6-150500.1.1" and doc["totals"]["package_bytes"] == 10
    assert doc["files"][0]["kind"] == "extra" and doc["totals"]["unpinned_files"] == 1
