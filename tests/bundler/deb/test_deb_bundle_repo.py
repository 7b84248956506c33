"""The bundle's flat apt repository: written with apt-ftparchive and signed with a key made for the build, proven
with apt from it alone (signature checking on), then installed by apt from it alone into a throw-away root."""

from __future__ import annotations

from pathlib import Path
from typing import Dict, List, Tuple

import pytest

from bundler.deb.flat_repo import KEY_NAME, DebFile, write_flat_repository
from bundler.deb.proof import prove_installable
from bundler.deb.remote import fetch_listed
from bundler.deb.resolve import DebResolution, resolve
from bundler.deb.spec import PackageRequest, parse_request
from bundler.download import Downloader
from bundler.errors import BundlerError
from tests.bundler.deb.conftest import load_all
from tests.bundler.deb.scenario import REQUESTS
from tests.support.deb_repo import AptRepo, ThrowawayRoot
from tests.support.signing import SigningKey

pytestmark = pytest.mark.root  # dpkg --root writes a dpkg database with root-owned files


def _resolved(
    repos: Dict[str, AptRepo], downloader: Downloader, work: Path
) -> Tuple[List[PackageRequest], DebResolution, List[DebFile]]:
    loaded = load_all(repos, downloader)
    requests = [parse_request(r) for r in REQUESTS]
    resolution = resolve(loaded, requests, ["apt"], "amd64", work, "test")
    urls = {repo.spec.id: repo.url for repo in loaded}
    debs = []
    for package in resolution.packages:
        fetched = fetch_listed(downloader, package.deb_name, urls[package.repo] + package.filename, package.sha256, "x")
        debs.append(DebFile(package.deb_name, fetched.path))
    return requests, resolution, debs


def test_installs_from_the_bundle_repository_alone(
    apt_server: Dict[str, AptRepo], downloader: Downloader, tmp_path: Path
) -> None:
    requests, resolution, debs = _resolved(apt_server, downloader, tmp_path / "work")
    metadata = write_flat_repository(debs, "amd64", "k8s-bundle test", 0)
    assert sorted(metadata) == sorted(["InRelease", KEY_NAME, "Packages", "Packages.gz", "Release", "Release.gpg"])
    assert b"Date: Thu, 01 Jan 1970 00:00:00 UTC" in metadata["Release"]
    prove_installable(metadata, debs, requests, resolution, "amd64")

    repo = tmp_path / "bundle/debs"
    repo.mkdir(parents=True)
    for name, data in metadata.items():
        (repo / name).write_bytes(data)
    for deb in debs:
        (repo / deb.filename).write_bytes(deb.path.read_bytes())
    node = ThrowawayRoot(tmp_path / "node", "amd64", "\n".join(resolution.status_stanzas()))
    node.add_source(f"deb [signed-by={repo / KEY_NAME}] file:{repo}/ ./")  # no other source: offline
    update = node.apt_get("update")
    assert update.returncode == 0 and "W:" not in update.stdout + update.stderr, update.stdout + update.stderr
    before = node.installed()
    result = node.apt_get("install", "--yes", *(r.apt_argument for r in requests))
    assert result.returncode == 0, result.stdout + result.stderr
    changed = {k: v for k, v in node.installed().items() if before.get(k) != v}
    assert changed == {p.name: p.version for p in resolution.packages}
    assert (node.root / "usr/share/fake-debs/kubeadm").read_text() == "kubeadm 1.29.6-1.1\n"


def test_the_index_is_the_same_for_the_same_debs(apt_server: Dict[str, AptRepo], downloader: Downloader,
                                                 tmp_path: Path) -> None:  # fmt: skip
    _, _, debs = _resolved(apt_server, downloader, tmp_path / "work")
    first = write_flat_repository(debs, "amd64", "k8s-bundle test", 7)
    second = write_flat_repository(list(reversed(debs)), "amd64", "k8s-bundle test", 7)
    for name in ("Packages", "Packages.gz", "Release"):
        assert first[name] == second[name]
    assert first[KEY_NAME] != second[KEY_NAME]  # a key per build; its private half is gone


def test_the_proof_checks_the_signature(
    apt_server: Dict[str, AptRepo], downloader: Downloader, impostor: SigningKey, tmp_path: Path
) -> None:
    requests, resolution, debs = _resolved(apt_server, downloader, tmp_path / "work")
    metadata = write_flat_repository(debs, "amd64", "k8s-bundle test", 0)
    metadata["InRelease"] = impostor.clearsign(metadata["Release"])
    with pytest.raises(
        BundlerError, match=r"the bundle's apt repository: apt-get update failed: .*(NO_PUBKEY|not signed)"
    ) as caught:
        prove_installable(metadata, debs, requests, resolution, "amd64")
    assert "\n" not in str(caught.value)


def test_the_proof_needs_every_package(apt_server: Dict[str, AptRepo], downloader: Downloader, tmp_path: Path) -> None:
    requests, resolution, debs = _resolved(apt_server, downloader, tmp_path / "work")
    kept = [deb for deb in debs if not deb.filename.startswith("socat_")]
    metadata = write_flat_repository(kept, "amd64", "k8s-bundle test", 0)
    with pytest.raises(BundlerError, match=r"would not install on a minimal system: .*socat") as caught:
        prove_installable(metadata, kept, requests, resolution, "amd64")
    assert "\n" not in str(caught.value)
