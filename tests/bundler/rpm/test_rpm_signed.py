"""Signed repositories: repomd.xml's detached signature checked against the pinned key at build time, the
keys carried in the bundle, and dnf's gpgcheck on (the default) installing signed RPMs offline."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from bundler import paths
from bundler.errors import BundlerError
from bundler.rpm.keys import check_key, load_fingerprint_pins
from k8s_install.bundle_format.bundle import load_bundle
from k8s_install.errors import InstallError
from k8s_install.packages.dnf import install_packages, plan_packages
from tests.conftest import SHARED, StandInRelease, run_bundler
from tests.support.rpm_graph import RpmGraph
from tests.support.rpm_node import OfflineRunner, build_and_unpack, installed, minimal_node
from tests.support.rpm_release import HOST, add_rpm_section
from tests.support.signing import SigningKey, missing_tools

pytestmark = pytest.mark.skipif(
    bool(missing_tools()) or not shutil.which("dnf"), reason=f"needs dnf and {', '.join(missing_tools())}"
)


@pytest.mark.root
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
    assert len(install_packages(load_bundle(bundle), root, releasever="9", run=runner)) == 4  # gpgcheck on by default
    assert "--setopt=k8s-bundle.gpgcheck=1" in runner.commands[1]
    assert "kubelet-0:1.29.6-150500.1.1.x86_64" in installed(root)
    assert plan_packages(load_bundle(bundle), root) == []


@pytest.mark.root
def test_the_node_refuses_packages_not_signed_by_the_bundle_keys(
    release: StandInRelease, signed_graph: RpmGraph, signing_key: SigningKey, impostor: SigningKey, tmp_path: Path
) -> None:
    """The build proves each package against its repository's key (tests/bundler/rpm/test_rpm_package_signatures.py); on
    the node, dnf's gpgcheck proves them again against the keys the bundle carries: with other keys, none
    installs."""
    add_rpm_section(release, signed_graph, name="node-keys", signer=signing_key)
    bundle = build_and_unpack(release, tmp_path)
    for key in (bundle / "rpms" / "keys").glob("*.asc"):
        key.write_bytes(impostor.public)
    root = minimal_node(tmp_path / "root", signed_graph)
    with pytest.raises(InstallError, match="Public key for .* is not installed.*GPG check FAILED"):
        install_packages(load_bundle(bundle), root, releasever="9", run=OfflineRunner())
    assert "kubelet-0:1.29.6-150500.1.1.x86_64" not in installed(root)


def test_repomd_signed_by_another_key_fails_the_build(
    release: StandInRelease, rpm_graph: RpmGraph, signing_key: SigningKey, impostor: SigningKey, tmp_path: Path
) -> None:
    prefixes = add_rpm_section(release, rpm_graph, name="forged", signer=signing_key)
    repomd = rpm_graph.root / "repos" / "forged-kubernetes" / "repodata" / "repomd.xml"
    release.mirror.add(f"{prefixes['kubernetes']}/repodata/repomd.xml.asc", impostor.sign_detached(repomd).read_bytes())
    result = run_bundler(
        "build", "--allow-incomplete", "--manifest", str(release.path), "--mirror", release.mirror.url,
        "--cache", str(tmp_path / "cache"), "--output", str(tmp_path / "out"),
    )  # fmt: skip
    assert result.returncode == 1
    assert "repository kubernetes: repomd.xml's signature does not verify with the pinned key" in result.stderr
    assert not list((tmp_path / "out").glob("*.tar"))


def test_key_pinned_by_fingerprint_verifies_and_is_carried(
    release: StandInRelease, signed_graph: RpmGraph, signing_key: SigningKey, tmp_path: Path
) -> None:
    add_rpm_section(release, signed_graph, name="fingerprint", signer=signing_key, pin="fingerprint")
    bundle = build_and_unpack(release, tmp_path)
    manifest = yaml.safe_load((bundle / "bundle.yaml").read_text())
    repository = manifest["rpm_repository"]
    assert repository["gpgcheck"] is True
    assert {r["signature"] for r in repository["repositories"]} == {f"verified ({signing_key.fingerprint})"}
    keys = [e for e in manifest["extras"] if e["path"].startswith("rpms/keys/")]
    assert [(k["pinned"], k["fingerprint"]) for k in keys] == [(True, signing_key.fingerprint)] * 2


def test_another_key_under_the_pinned_url_fails_the_build(
    release: StandInRelease, rpm_graph: RpmGraph, signing_key: SigningKey, impostor: SigningKey, tmp_path: Path
) -> None:
    add_rpm_section(release, rpm_graph, name="swapped", signer=signing_key, pin="fingerprint")
    release.mirror.add(f"/{HOST}/swapped/key.asc", impostor.public)
    result = run_bundler(
        "build", "--manifest", str(release.path), "--mirror", release.mirror.url,
        "--cache", str(tmp_path / "cache"), "--output", str(tmp_path / "out"),
    )  # fmt: skip
    assert result.returncode == 1
    assert (
        f"repository kubernetes: the key at https://{HOST}/swapped/key.asc has fingerprint "
        f"{impostor.fingerprint}, but {signing_key.fingerprint} is pinned"
    ) in result.stderr
    assert not list((tmp_path / "out").glob("*.tar"))


SHARED_KEYS = SHARED / "pins" / "keys"


@pytest.mark.skipif(not SHARED_KEYS.is_dir(), reason="../shared/pins/keys is not beside the project")
def test_real_repository_keys_match_the_pins_and_the_expired_one_says_what_to_do() -> None:
    pins = load_fingerprint_pins(paths.key_pins_path("1.29.6"))
    rocky_url = "https://dl.rockylinux.org/pub/rocky/RPM-GPG-KEY-Rocky-9"
    k8s_url = "https://pkgs.k8s.io/core:/stable:/v1.29/rpm/repodata/repomd.xml.key"
    rocky = check_key(SHARED_KEYS / "RPM-GPG-KEY-Rocky-9", pins[rocky_url], rocky_url, "repository baseos")
    assert rocky.fingerprint == "21CB256AE16FC54C6E652949702D426D350D275D" and rocky.expires is None
    key = SHARED_KEYS / "pkgs.k8s.io-core-stable-repomd.xml.key"
    before_expiry = check_key(key, pins[k8s_url], k8s_url, "repository kubernetes", now=1_700_000_000)
    assert before_expiry.fingerprint == "DE15B14486CD377B9E876E1A234654DA9A296436"
    with pytest.raises(BundlerError) as raised:
        check_key(key, pins[k8s_url], k8s_url, "repository kubernetes")
    assert str(raised.value).startswith(
        f"repository kubernetes: the key at {k8s_url} (DE15B14486CD377B9E876E1A234654DA9A296436, isv:kubernetes "
        "OBS Project <isv:kubernetes@build.opensuse.org>) expired on 2024-11-02, and dnf refuses repositories"
    )
    with pytest.raises(BundlerError, match="but DE15B14486CD377B9E876E1A234654DA9A296436 is pinned"):
        check_key(SHARED_KEYS / "RPM-GPG-KEY-Rocky-9", pins[k8s_url], k8s_url, "repository kubernetes")


def test_pinned_key_without_a_published_signature_fails_the_build(
    release: StandInRelease, rpm_graph: RpmGraph, signing_key: SigningKey, tmp_path: Path
) -> None:
    prefixes = add_rpm_section(release, rpm_graph, name="unsigned-repomd", signer=signing_key, pin="fingerprint")
    del release.mirror.files[f"{prefixes['kubernetes']}/repodata/repomd.xml.asc"]
    result = run_bundler(
        "build", "--manifest", str(release.path), "--mirror", release.mirror.url,
        "--cache", str(tmp_path / "cache"), "--output", str(tmp_path / "out"), "--retries", "0",
    )  # fmt: skip
    assert result.returncode == 1
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith(
        f"bundler: error: repository kubernetes: its key is pinned, so repomd.xml must be signed, but "
        f"https://{HOST}/unsigned-repomd/kubernetes/repodata/repomd.xml.asc could not be fetched ("
    ), last
    assert not list((tmp_path / "out").glob("*.tar"))
