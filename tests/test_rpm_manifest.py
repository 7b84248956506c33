"""The real release manifest's `rpm:` section and the section's validation."""

from __future__ import annotations

from pathlib import Path

import pytest

from bundler.errors import BundlerError
from bundler.manifest import load_release
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
    ],
)  # fmt: skip
def test_bad_rpm_section_is_one_clear_error(section: dict, message: str) -> None:
    with pytest.raises(BundlerError) as error:
        rpm_spec({"rpm": section}, "rocky9", str(Path("release.yaml")))
    assert message in str(error.value)
