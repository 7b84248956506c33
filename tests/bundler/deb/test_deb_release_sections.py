"""Each release's own `deb:` section for debian12, as shipped, builds a bundle: scenario repositories are served
behind the loopback mirror at the section's real URLs, suites and components (the flat pkgs.k8s.io repository of
the release's minor, bookworm, bookworm-updates, bookworm-security), signed by a test key pinned inline in place
of the archive keys. The bundle takes the release's Kubernetes version, not a newer patch of the same minor."""

from __future__ import annotations

import copy
import tarfile
from pathlib import Path
from typing import Any, Dict, List

import pytest
import yaml

from bundler import paths
from bundler.deb.spec import parse_request
from tests.bundler.deb.scenario import ARCHIVE, UPDATES
from tests.conftest import StandInRelease, run_bundler
from tests.support.deb_repo import FakeDeb, make_repository
from tests.support.signing import SigningKey

pytestmark = pytest.mark.root  # dpkg --root writes a dpkg database with root-owned files

NEW = ("1.29.15", "1.30.14", "1.31.14")
SECURITY = (FakeDeb("conntrack", "1.4.7-1+deb12u1"),)  # the security suite's fix wins over bookworm's 1.4.7-1


def kubernetes_debs(version: str) -> List[FakeDeb]:
    """The minor's repository: the release and a newer patch of it (which the pin must leave out)."""
    newer = version.rsplit(".", 1)[0] + ".99"
    debs = [FakeDeb("cri-tools", "1.29.0-1.1"), FakeDeb("kubernetes-cni", "1.3.0-1.1")]
    for patch in (version, newer):
        debs += [
            FakeDeb("kubeadm", f"{patch}-1.1", depends="kubelet (>= 1.19.0), kubectl (>= 1.19.0), cri-tools"),
            FakeDeb("kubelet", f"{patch}-1.1", depends="iptables, kubernetes-cni, conntrack, socat, ethtool"),
            FakeDeb("kubectl", f"{patch}-1.1", depends="libc6 (>= 2.36-10)"),  # bookworm-updates has it
        ]
    return debs


def archive_debs(requests: List[str]) -> List[FakeDeb]:
    """The scenario's archive, with every other package the section asks for."""
    present = {deb.name for deb in ARCHIVE}
    names = [parse_request(text).name for text in requests]
    return list(ARCHIVE) + [FakeDeb(name, "1.0-1") for name in names if name not in present and name[:4] != "kube"]


def serve_section(release: StandInRelease, version: str, key: SigningKey) -> Dict[str, Any]:
    """The shipped section, its repositories served at their own URLs; returns the section as the build reads it."""
    shipped = yaml.safe_load(paths.manifest_path(version).read_text())["deb"]["debian12"]
    section = copy.deepcopy(shipped)
    contents = {"kubernetes": kubernetes_debs(version), "bookworm": archive_debs(section["packages"]),
                "bookworm-updates": list(UPDATES), "bookworm-security": list(SECURITY)}  # fmt: skip
    for entry in section["repositories"]:
        components = entry.get("components") or ["main"]
        repo = make_repository(contents[entry["id"]], key, entry["suite"], components[0])
        base = "/" + entry["url"].split("://", 1)[1]
        for path, data in repo.files.items():
            release.mirror.add(base + path, data)
        release.mirror.add("/" + entry["key"].split("://", 1)[1], key.public)
        entry["key_fingerprint"] = key.fingerprint  # the test key stands in for the archive's pinned one
        entry.pop("mirrors", None)
    return section


@pytest.mark.parametrize("version", NEW)
def test_the_releases_deb_section_builds_its_kubernetes_version(
    version: str, release: StandInRelease, deb_key: SigningKey, tmp_path: Path
) -> None:
    release.manifest["kubernetes"] = version
    release.manifest["os"] = {"debian12": {"debs": True}}
    release.manifest["deb"] = {"debian12": serve_section(release, version, deb_key)}
    release.write()
    result = run_bundler(
        "build", "--allow-incomplete", "--manifest", str(release.path), "--os", "debian12", "--mirror",
        release.mirror.url, "--cache", str(tmp_path / "cache"), "--output", str(tmp_path / "out"),
        "--retries", "1", "--timeout", "5",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    top = f"k8s-bundle-{version}-debian12-amd64"
    with tarfile.open(tmp_path / "out" / f"{top}.tar") as archive:
        record = yaml.safe_load(archive.extractfile(f"{top}/bundle.yaml").read())  # type: ignore[union-attr]
    debs = {deb["name"]: deb for deb in record["debs"]}
    for name in ("kubeadm", "kubelet", "kubectl"):
        assert (debs[name]["version"], debs[name]["repository"]) == (f"{version}-1.1", "kubernetes"), name
    assert (debs["conntrack"]["version"], debs["conntrack"]["repository"]) == ("1.4.7-1+deb12u1", "bookworm-security")
    assert (debs["libc6"]["version"], debs["libc6"]["repository"]) == ("2.36-10", "bookworm-updates")
    repository = record["deb_repository"]
    assert [r["id"] for r in repository["repositories"]] == ["kubernetes", "bookworm", "bookworm-updates",
                                                             "bookworm-security"]  # fmt: skip
    minor = version.rsplit(".", 1)[0]
    kubernetes = repository["repositories"][0]
    assert kubernetes["url"] == f"https://pkgs.k8s.io/core:/stable:/v{minor}/deb/", kubernetes
