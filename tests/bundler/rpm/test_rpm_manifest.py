"""The real release manifest's `rpm:` section and the section's validation."""

from __future__ import annotations

from pathlib import Path

import pytest

from bundler import paths
from bundler.errors import BundlerError
from bundler.manifest import load_release
from bundler.rpm.keys import load_fingerprint_pins
from bundler.rpm.spec import rpm_spec


def test_real_release_names_repositories_for_both_arches_and_a_mirror() -> None:
    release = load_release("1.29.6", None)
    spec = rpm_spec(release.raw, release.resolve_os("alma9").id, str(release.source))
    assert spec is not None
    urls = {repo.id: (repo.url_for("amd64"), repo.url_for("arm64", "aliyun")) for repo in spec.repositories}
    assert urls["kubernetes"] == (
        "https://pkgs.k8s.io/core:/stable:/v1.29/rpm/",
        "https://mirrors.aliyun.com/kubernetes-new/core/stable/v1.29/rpm/",
    )
    assert urls["baseos"] == (
        "https://dl.rockylinux.org/pub/rocky/9/BaseOS/x86_64/os/",
        "https://mirrors.aliyun.com/rockylinux/9/BaseOS/aarch64/os/",
    )
    assert set(urls) == {"kubernetes", "baseos", "appstream"} and spec.mirror_names == ("aliyun",)
    pins = {str(p) for p in spec.packages if p.flags}
    assert pins == {"kubeadm = 1.29.6", "kubelet = 1.29.6", "kubectl = 1.29.6"}
    names = {p.name for p in spec.packages}
    assert {"conntrack-tools", "socat", "ipvsadm", "ipset", "chrony", "keepalived", "haproxy", "tar"} <= names
    assert "glibc" in spec.assumed_installed and "kubelet" not in spec.assumed_installed
    assert [str(p) for p in spec.host_packages] == ["nginx"]  # for `serve`, not for the nodes


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ({"rocky9": {"packages": ["a"]}}, "rpm.rocky9: field 'repositories' must be a non-empty list"),
        ({"rocky9": {"repositories": [{"id": "a", "baseurl": "ftp://x/"}], "packages": ["a"]}},
         "must be an http(s)"),
        ({"rocky9": {"repositories": [{"id": "a", "baseurl": "https://x/"}], "packages": ["a =="]}},
         "packages[0]: 'a ==' is not 'name' or 'name OP version'"),
        ({"rocky9": {"repositories": [{"id": "a", "baseurl": "https://x/", "gpgkey_sha256": "00"}],
                     "packages": ["a"]}}, "is not a sha256 hex digest"),
        ({"rocky9": {"repositories": [{"id": "a", "baseurl": "https://x/", "gpgkey": "https://x/k",
                                       "gpgkey_fingerprint": "DE15 B144"}], "packages": ["a"]}},
         "gpgkey_fingerprint 'DE15 B144' is not an OpenPGP fingerprint (40 hex digits)"),
        ({"rocky9": {"repositories": [{"id": "a", "baseurl": "https://x/",
                                       "gpgkey_fingerprint": "DE15B14486CD377B9E876E1A234654DA9A296436"}],
                     "packages": ["a"]}}, "gpgkey_fingerprint is set but gpgkey (the key's URL) is not"),
        ({"rocky9": {"repositories": [{"id": "a", "baseurl": "https://x/"}, {"id": "a", "baseurl": "https://y/"}],
                     "packages": ["a"]}}, "two repositories share one id"),
        ({"rocky9": {"repositories": [{"id": "a", "baseurl": "https://x/"}], "packages": ["a"],
                     "host_packages": "nginx"}}, "rpm.rocky9.host_packages: must be a list of strings"),
        ({"rocky9": {"repositories": [{"id": "a", "baseurl": "https://x/"}], "packages": ["a", "nginx"],
                     "host_packages": ["nginx"]}}, "rpm.rocky9.host_packages: nginx is in packages already"),
        ({"rocky9": {"repositories": [{"id": "x", "baseurl": "https://x/"}, {"id": "baseos", "baseurl": "https://y/",
                                       "gpgkey": "https://y/k", "metadata_signed": "nope"}], "packages": ["a"]}},
         "release.yaml: rpm.rocky9.repositories[1] (repository baseos): metadata_signed must be true or false "
         "(false: the repository publishes no repomd.xml.asc), got 'nope'"),
        ({"rocky9": {"repositories": [{"id": "baseos", "baseurl": "https://y/", "metadata_signed": False}],
                     "packages": ["a"]}},
         "release.yaml: rpm.rocky9.repositories[0] (repository baseos): metadata_signed is set but gpgkey (the key's "
         "URL) is not"),
    ],
)  # fmt: skip
def test_bad_rpm_section_is_one_clear_error(section: dict, message: str) -> None:
    with pytest.raises(BundlerError) as error:
        rpm_spec({"rpm": section}, "rocky9", str(Path("release.yaml")))
    assert message in str(error.value) and "\n" not in str(error.value)


@pytest.mark.parametrize("version", paths.supported_versions())
def test_every_release_pins_each_repository_key_and_marks_rocky_metadata_unsigned(version: str) -> None:
    """pkgs.k8s.io (OBS) signs repomd.xml; Rocky Linux 9 BaseOS/AppStream sign their packages but publish no
    repomd.xml.asc, so a pinned key there must not demand one."""
    release = load_release(version, None)
    spec = rpm_spec(release.raw, "rocky9", str(release.source))
    assert spec is not None
    pins = load_fingerprint_pins(paths.key_pins_path(version))
    signed = {repo.id: repo.metadata_signed for repo in spec.repositories}
    assert signed == {"kubernetes": None, "baseos": False, "appstream": False}
    fingerprints = {repo.id: pins.get(repo.gpgkey or "") for repo in spec.repositories}
    assert fingerprints == {
        "kubernetes": "DE15B14486CD377B9E876E1A234654DA9A296436",  # one OBS key for every core:/stable: minor
        "baseos": "21CB256AE16FC54C6E652949702D426D350D275D",
        "appstream": "21CB256AE16FC54C6E652949702D426D350D275D",
    }
