"""The release manifest's `deb:` section: each mistake is one line naming the field; the shipped targets parse."""

from __future__ import annotations

from typing import Any, Dict

import pytest

from bundler import paths
from bundler.deb.spec import deb_spec, parse_request
from bundler.errors import BundlerError
from bundler.manifest import load_release
from bundler.rpm.keys import load_fingerprint_pins

GOOD: Dict[str, Any] = {"id": "k8s", "url": "https://pkgs.example/deb/", "suite": "/", "key": "https://pkgs.example/k"}


def section(repo: Dict[str, Any], packages: Any = ("kubeadm",)) -> Dict[str, Any]:
    return {"deb": {"debian12": {"repositories": [repo], "packages": list(packages) if packages else packages}}}


@pytest.mark.parametrize(
    "raw, message",
    [
        ({"deb": []}, "m: field 'deb' must map a target OS id"),
        ({"deb": {"debian12": {"repositories": []}}}, "m: deb.debian12: field 'repositories' must be a non-empty list"),
        (section({**GOOD, "url": "ftp://x/"}), "m: deb.debian12.repositories[0]: url: must be an http(s):// URL"),
        (section({**GOOD, "suite": "bookworm"}), "suite 'bookworm' needs 'components' (main), or end the suite with /"),
        (section({**GOOD, "components": ["main"]}), "a flat repository (suite '/') has no components"),
        (section({**GOOD, "key_fingerprint": "abc"}), "key_fingerprint 'abc' is not an OpenPGP fingerprint"),
        (section({**GOOD, "minimal_system": "yes"}), "field 'minimal_system' must be true or false, got 'yes'"),
        (section(GOOD, packages=[]), "m: deb.debian12: field 'packages' must list at least one package"),
        (section(GOOD, packages=["Kubeadm"]), "packages[0]: 'Kubeadm': 'Kubeadm' is not a Debian package"),
        (section(GOOD, packages=["kubeadm = 1.29 6"]), "'kubeadm = 1.29 6': '1.29 6' is not a Debian version"),
        ({"deb": {"debian12": {"repositories": [GOOD, GOOD], "packages": ["a1"]}}}, "two repositories share one id"),
    ],
)  # fmt: skip
def test_mistakes_are_one_line(raw: Dict[str, Any], message: str) -> None:
    with pytest.raises(BundlerError) as caught:
        deb_spec(raw, "debian12", "m")
    assert message in str(caught.value) and "\n" not in str(caught.value)


def test_requests_become_apt_arguments() -> None:
    assert parse_request("kubeadm = 1.29.6-*").apt_argument == "kubeadm=1.29.6-*"
    assert parse_request("socat").apt_argument == "socat"
    assert parse_request("libc6=2.36-9").version == "2.36-9"


def test_the_shipped_targets_parse() -> None:
    release = load_release("1.29.6", None)
    for target in ("debian12", "ubuntu2204", "ubuntu2404"):
        assert release.resolve_os(target).debs
        spec = deb_spec(release.raw, target, str(release.source))
        assert spec is not None and spec.repositories[0].id == "kubernetes" and spec.repositories[0].flat
        assert [r.minimal_system for r in spec.repositories].count(True) == 1
        assert {"kubeadm=1.29.6-*", "kubelet=1.29.6-*", "kubectl=1.29.6-*"} <= {r.apt_argument for r in spec.packages}
    ubuntu = deb_spec(release.raw, "ubuntu2404", str(release.source))
    assert ubuntu is not None
    assert ubuntu.repositories[1].url_for("arm64") == "http://ports.ubuntu.com/ubuntu-ports/"
    assert ubuntu.repositories[1].url_for("amd64") == "http://archive.ubuntu.com/ubuntu/"


DEB_TARGETS = ("debian12", "ubuntu2204", "ubuntu2404")
# the archive keys by repository id (checksums/k8s-1.29.6.keys says where each fingerprint was read)
ARCHIVE_KEYS = {
    "kubernetes": "DE15B14486CD377B9E876E1A234654DA9A296436",  # one OBS key for every core:/stable: minor, rpm and deb
    "bookworm": "B8B80B5B623EAB6AD8775C45B7C5D7D6350947F8",
    "bookworm-updates": "B8B80B5B623EAB6AD8775C45B7C5D7D6350947F8",
    "bookworm-security": "05AB90340C0C5E797F44A8C8254CF3B5AEC0A8F0",
    **dict.fromkeys(
        [f"{suite}{pocket}" for suite in ("jammy", "noble") for pocket in ("", "-updates", "-security")],
        "F6ECB3762474EDA9D21B7022871920D1991BC93C",
    ),
}


@pytest.mark.parametrize("version", paths.supported_versions())
def test_every_release_has_the_deb_targets_with_pinned_keys(version: str) -> None:
    """Each release takes Kubernetes from its own minor's pkgs.k8s.io deb repository, at the release's version,
    and every repository's key is pinned by fingerprint (the builder refuses an unpinned one at build time)."""
    release = load_release(version, None)
    pins = load_fingerprint_pins(paths.key_pins_path(version))
    minor = ".".join(version.split(".")[:2])
    for target in DEB_TARGETS:
        assert release.resolve_os(target).debs
        spec = deb_spec(release.raw, target, str(release.source))
        assert spec is not None
        kubernetes = spec.repositories[0]
        assert (kubernetes.id, kubernetes.url) == ("kubernetes", f"https://pkgs.k8s.io/core:/stable:/v{minor}/deb/")
        assert kubernetes.key == f"{kubernetes.url}Release.key" and kubernetes.flat
        assert [r.minimal_system for r in spec.repositories].count(True) == 1
        assert {r.id: r.key_fingerprint or pins.get(r.key) for r in spec.repositories} == {
            r.id: ARCHIVE_KEYS[r.id] for r in spec.repositories
        }
        versions = {r.name: r.version for r in spec.packages if r.name in ("kubeadm", "kubelet", "kubectl")}
        assert set(versions) == {"kubeadm", "kubelet", "kubectl"}
        assert all(v is not None and (v == f"{version}-1.1" or v == f"{version}-*") for v in versions.values())
        assert len(set(versions.values())) == 1


def test_a_deb_key_url_has_one_fingerprint_in_every_release() -> None:
    """A key URL pinned in several releases' files names the same key in each (a copy-paste slip shows here)."""
    seen: Dict[str, str] = {}
    for version in paths.supported_versions():
        for url, fingerprint in load_fingerprint_pins(paths.key_pins_path(version)).items():
            assert seen.setdefault(url, fingerprint) == fingerprint, (version, url)
