"""Signed repositories: repomd.xml's detached signature checked against the pinned key at build time, the
keys carried in the bundle, and dnf's gpgcheck on (the default) installing signed RPMs offline."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Iterator

import pytest
import yaml

from installer.errors import InstallError
from installer.packages import install_packages, plan_packages
from tests.conftest import StandInRelease, run_bundler
from tests.support.rpm_graph import RpmGraph
from tests.support.rpm_node import OfflineRunner, build_and_unpack, installed, minimal_node
from tests.support.rpm_release import add_rpm_section
from tests.support.signing import SigningKey, missing_tools

pytestmark = pytest.mark.skipif(
    bool(missing_tools()) or not shutil.which("dnf"), reason=f"needs dnf and {', '.join(missing_tools())}"
)


@pytest.fixture(scope="session")
def signing_key() -> Iterator[SigningKey]:
    key = SigningKey("k8s-test-repo")
    yield key
    key.close()


@pytest.fixture(scope="session")
def signed_graph(rpm_graph: RpmGraph, signing_key: SigningKey, tmp_path_factory: pytest.TempPathFactory) -> RpmGraph:
    graph = rpm_graph.copy(tmp_path_factory.mktemp("signed-graph"))
    signing_key.sign_rpms(list(graph.rpms.values()))
    return graph


def test_signed_repository_installs_with_gpgcheck_on(
    release: StandInRelease, signed_graph: RpmGraph, signing_key: SigningKey, tmp_path: Path
) -> None:
    add_rpm_section(release, signed_graph, name="signed", signer=signing_key)
    bundle = build_and_unpack(release, tmp_path)
    manifest = yaml.safe_load((bundle / "bundle.yaml").read_text())
    repository = manifest["rpm_repository"]
    assert repository["gpgcheck"] is True
    assert all(r["signature"].startswith("verified (") for r in repository["repositories"])
    assert repository["keys"] == ["rpms/keys/kubernetes.asc", "rpms/keys/base.asc"]
    assert (bundle / "rpms/keys/base.asc").read_bytes() == signing_key.public

    root = minimal_node(tmp_path / "root", signed_graph)
    runner = OfflineRunner()
    assert len(install_packages(bundle, root, releasever="9", run=runner)) == 4  # gpgcheck on by default
    assert "--setopt=k8s-bundle.gpgcheck=1" in runner.commands[1]
    assert "kubelet-0:1.29.6-150500.1.1.x86_64" in installed(root)
    assert plan_packages(bundle, root) == []


def test_unsigned_packages_are_refused_when_gpgcheck_is_on(
    release: StandInRelease, rpm_graph: RpmGraph, signing_key: SigningKey, tmp_path: Path
) -> None:
    add_rpm_section(release, rpm_graph, name="unsigned-rpms", signer=signing_key)  # repomd signed, RPMs not
    bundle = build_and_unpack(release, tmp_path)
    root = minimal_node(tmp_path / "root", rpm_graph)
    with pytest.raises(InstallError, match="is not signed"):
        install_packages(bundle, root, releasever="9", run=OfflineRunner())


def test_repomd_signed_by_another_key_fails_the_build(
    release: StandInRelease, rpm_graph: RpmGraph, signing_key: SigningKey, tmp_path: Path
) -> None:
    prefixes = add_rpm_section(release, rpm_graph, name="forged", signer=signing_key)
    impostor = SigningKey("impostor")
    try:
        repomd = rpm_graph.root / "repos" / "forged-kubernetes" / "repodata" / "repomd.xml"
        release.mirror.add(
            f"{prefixes['kubernetes']}/repodata/repomd.xml.asc", impostor.sign_detached(repomd).read_bytes()
        )
    finally:
        impostor.close()
    result = run_bundler(
        "build", "--allow-incomplete", "--manifest", str(release.path), "--mirror", release.mirror.url,
        "--cache", str(tmp_path / "cache"), "--output", str(tmp_path / "out"),
    )  # fmt: skip
    assert result.returncode == 1
    assert "repository kubernetes: repomd.xml's signature does not verify with the pinned key" in result.stderr
    assert not list((tmp_path / "out").glob("*.tar"))
