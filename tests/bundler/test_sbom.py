"""sbom.spdx.json: one bundle with files, RPMs (real repositories) and images (a real registry), built once;
its SBOM is validated by spdx-tools and must name every package, image, layer and file with its sha256."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import tarfile
from typing import Any, Dict, Iterator, List

import pytest
import yaml

from bundler.sbom import summarise_sbom
from tests.conftest import StandInRelease, run_bundler
from tests.support.http_server import MirrorServer
from tests.support.registry import Registry
from tests.support.rpm_graph import RpmGraph
from tests.support.rpm_release import add_rpm_section
from tests.support.signing import SigningKey, missing_tools
from tests.support.test_images import PushedImages

pytestmark = pytest.mark.daemons

TOP = "k8s-bundle-1.29.6-rocky9-amd64"


@pytest.fixture(scope="module")
def spdx_tools() -> Any:
    try:
        from spdx_tools.spdx.parser.parse_anything import parse_file
        from spdx_tools.spdx.validation.document_validator import validate_full_spdx_document
    except ImportError:
        if os.environ.get("CI") == "true":
            pytest.fail("spdx-tools is needed: pip install -e '.[test]'")
        pytest.skip("spdx-tools not installed (pip install -e '.[test]')")
    return parse_file, validate_full_spdx_document


@pytest.fixture(scope="module")
def built(
    signed_graph: RpmGraph,
    signing_key: SigningKey,
    pushed_images: PushedImages,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Dict[str, Any]]:
    """Build one bundle with all three source kinds (signed repository metadata, so the repository keys are
    in it too), twice: the second proves the SBOM reproducible."""
    missing = missing_tools()
    if missing:
        pytest.skip(f"{', '.join(missing)} not installed (.ci/run installs them)")
    root = tmp_path_factory.mktemp("sbom")
    mirror = MirrorServer().start()
    storage = root / "registry-storage"
    subprocess.run(["cp", "-a", str(pushed_images.storage), str(storage)], check=True)
    try:
        with Registry(storage, root / "registry") as registry:
            release = StandInRelease(mirror, root)
            add_rpm_section(release, signed_graph, signer=signing_key)  # the builder checks each RPM's signature
            images = [f"{registry.host}/test/busybox:1.0", f"{registry.host}/test/app:2.0"]
            release.set_images(images)
            outputs = []
            for run in ("one", "two"):
                result = run_bundler(
                    "build", "--manifest", str(release.path), "--mirror", mirror.url,
                    "--cache", str(root / "cache"), "--output", str(root / run),
                    "--insecure-registry", registry.host, "--retries", "1", "--timeout", "5", "--allow-incomplete",
                )  # fmt: skip
                assert result.returncode == 0, result.stderr
                outputs.append(root / run / f"{TOP}.tar")
    finally:
        mirror.stop()
    subprocess.run(["tar", "-xf", str(outputs[0]), "-C", str(root)], check=True)
    folder = root / TOP
    yield {
        "tarball": outputs[0],
        "again": outputs[1],
        "folder": folder,
        "sbom_path": folder / "sbom.spdx.json",
        "sbom": json.loads((folder / "sbom.spdx.json").read_text()),
        "record": yaml.safe_load((folder / "bundle.yaml").read_text()),
    }


def packages_by_file(sbom: Dict[str, Any]) -> Dict[str, Dict[str, Any]]:
    return {p["packageFileName"]: p for p in sbom["packages"] if "packageFileName" in p}


def sha256_of(package: Dict[str, Any]) -> str:
    (checksum,) = [c["checksumValue"] for c in package["checksums"] if c["algorithm"] == "SHA256"]
    return str(checksum)


def purl_of(package: Dict[str, Any]) -> str:
    (locator,) = [r["referenceLocator"] for r in package.get("externalRefs", []) if r["referenceType"] == "purl"]
    return str(locator)


def contained(sbom: Dict[str, Any], parent: str) -> List[str]:
    return [
        r["relatedSpdxElement"]
        for r in sbom["relationships"]
        if r["spdxElementId"] == parent and r["relationshipType"] == "CONTAINS"
    ]


def test_spdx_tools_validates_the_sbom(built: Dict[str, Any], spdx_tools: Any) -> None:
    parse_file, validate = spdx_tools
    document = parse_file(str(built["sbom_path"]))
    messages = [m.validation_message for m in validate(document, "SPDX-2.3")]
    assert messages == []
    assert document.creation_info.spdx_version == "SPDX-2.3"
    assert document.creation_info.created.isoformat() == "2023-11-14T22:13:20"  # SOURCE_DATE_EPOCH=1700000000


def test_the_sbom_is_in_sha256sums_and_reproducible(built: Dict[str, Any]) -> None:
    assert "  sbom.spdx.json\n" in (built["folder"] / "SHA256SUMS").read_text()
    assert built["again"].read_bytes() == built["tarball"].read_bytes()
    assert run_bundler("verify", str(built["tarball"])).returncode == 0


def test_every_file_artifact_with_version_url_and_sum(built: Dict[str, Any]) -> None:
    by_file = packages_by_file(built["sbom"])
    bundle_contents = set(contained(built["sbom"], "SPDXRef-Bundle"))
    artifacts = built["record"]["artifacts"] + [built["record"]["installer"]] + built["record"]["extras"]
    assert len(built["record"]["extras"]) == 2  # the two repositories' keys
    assert len(artifacts) >= 7
    for artifact in artifacts:
        package = by_file[artifact["path"]]
        actual = hashlib.sha256((built["folder"] / artifact["path"]).read_bytes()).hexdigest()
        assert sha256_of(package) == artifact["sha256"] == actual
        assert package["SPDXID"] in bundle_contents
    for artifact in built["record"]["artifacts"]:
        package = by_file[artifact["path"]]
        assert package["name"] == artifact["name"] and package["versionInfo"] == artifact["version"]
        assert package["downloadLocation"] == artifact["source"]
        assert purl_of(package).startswith(f"pkg:generic/{artifact['name']}@{artifact['version']}?checksum=sha256")


def test_every_rpm_with_its_purl_license_and_sum(built: Dict[str, Any]) -> None:
    by_file = packages_by_file(built["sbom"])
    bundle_contents = set(contained(built["sbom"], "SPDXRef-Bundle"))
    licenses = {info["licenseId"]: info["extractedText"] for info in built["sbom"]["hasExtractedLicensingInfos"]}
    rpms = built["record"]["rpms"]
    assert len(rpms) >= 5
    for entry in rpms:
        package = by_file[entry["path"]]
        actual = hashlib.sha256((built["folder"] / entry["path"]).read_bytes()).hexdigest()
        assert sha256_of(package) == entry["sha256"] == actual
        assert package["SPDXID"] in bundle_contents
        assert licenses[package["licenseDeclared"]] == "MIT"  # the License tag of the test RPMs
    kubeadm = by_file[next(e["path"] for e in rpms if e["name"] == "kubeadm")]
    assert purl_of(kubeadm).startswith("pkg:rpm/kubernetes/kubeadm@1.29.6-150500.1.1?arch=x86_64&epoch=0&")
    assert kubeadm["versionInfo"] == "0:1.29.6-150500.1.1"
    ethtool = by_file[next(e["path"] for e in rpms if e["name"] == "ethtool")]
    assert purl_of(ethtool).startswith("pkg:rpm/base/ethtool@6.2-1?arch=noarch&epoch=2&")


def test_every_image_with_its_oci_purl_and_layers(built: Dict[str, Any], pushed_images: PushedImages) -> None:
    sbom = built["sbom"]
    by_id = {p["SPDXID"]: p for p in sbom["packages"]}
    images = {p["name"]: p for p in sbom["packages"] if p.get("primaryPackagePurpose") == "CONTAINER"}
    assert set(images) == {image["name"] for image in built["record"]["images"]}
    bundle_contents = set(contained(sbom, "SPDXRef-Bundle"))
    with tarfile.open(built["tarball"]) as archive:
        blobs = {n.rsplit("/", 1)[1] for n in archive.getnames() if "/images/blobs/sha256/" in n}
    for image in built["record"]["images"]:
        package = images[image["name"]]
        hex_digest = image["digest"].split(":", 1)[1]
        assert sha256_of(package) == hex_digest and hex_digest in blobs
        repository, tag = image["name"].rsplit(":", 1)
        name = repository.rsplit("/", 1)[1]
        assert purl_of(package) == (
            f"pkg:oci/{name}@sha256%3A{hex_digest}?arch=amd64&repository_url={repository}&tag={tag}"
        )
        assert package["SPDXID"] in bundle_contents
        short = name.split("/")[-1]
        layers = {by_id[i]["name"] for i in contained(sbom, package["SPDXID"])}
        assert layers == set(pushed_images.layers[f"{short}-amd64"])
        for layer_id in contained(sbom, package["SPDXID"]):
            assert sha256_of(by_id[layer_id]) in blobs
    shared = set(pushed_images.layers["busybox-amd64"]) & set(pushed_images.layers["app-amd64"])
    layer_packages = [p for p in sbom["packages"] if p["name"] in shared]
    assert len(layer_packages) == 1  # a shared layer appears once, contained by both images


def test_summary_for_inspect(built: Dict[str, Any]) -> None:
    record = built["record"]
    line = summarise_sbom(built["sbom"])
    files = len(record["artifacts"]) + 1 + len(record["extras"])
    assert line.startswith(f"SPDX-2.3 SBOM: {files} files, {len(record['rpms'])} RPMs, 2 images, 3 layers")
