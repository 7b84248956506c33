"""What the builder refuses before apt reads anything: an InRelease not signed by the pinned key, a bad
signature, another key at the key's URL, an expired Release, an index whose sum differs from the Release."""

from __future__ import annotations

from typing import Dict, Iterator

import pytest

from bundler.deb.remote import load_repository
from bundler.download import Downloader
from bundler.errors import BundlerError
from tests.bundler.deb.conftest import spec_of
from tests.bundler.deb.scenario import KUBERNETES
from tests.support.deb_repo import AptRepo, make_repository, serve
from tests.support.http_server import MirrorServer
from tests.support.signing import SigningKey


@pytest.fixture(scope="module")
def broken(deb_key: SigningKey, impostor: SigningKey) -> Iterator[Dict[str, AptRepo]]:
    server = MirrorServer().start()
    repos = {}
    repos["other-signer"] = serve(server, make_repository(KUBERNETES[:2], impostor, "/"), "other-signer")
    repos["other-signer"].key = deb_key  # the pin and the served key are the archive's; the signature is not
    server.add("/other-signer/key.asc", deb_key.public)
    tampered = make_repository(KUBERNETES[:2], deb_key, "/")
    tampered.files["InRelease"] = tampered.files["InRelease"].replace(b"Architectures:", b"Architectures: i386", 1)
    repos["tampered-release"] = serve(server, tampered, "tampered-release")
    index = make_repository(KUBERNETES[:2], deb_key, "/")
    index.files["Packages.gz"] = index.files["Packages.gz"][:-1] + bytes([index.files["Packages.gz"][-1] ^ 1])
    repos["tampered-index"] = serve(server, index, "tampered-index")
    repos["expired"] = serve(
        server, make_repository(KUBERNETES[:2], deb_key, "/", valid_until="Sat, 01 Jan 2000 00:00:00 UTC"), "expired"
    )
    repos["swapped-key"] = serve(server, make_repository(KUBERNETES[:2], deb_key, "/"), "swapped-key")
    server.add("/swapped-key/key.asc", impostor.public)
    yield repos
    server.stop()


CASES = {
    "other-signer": r"InRelease is not signed by the pinned key [0-9A-F]{40} \(good signatures from: no key it knows\)",
    "tampered-release": r"InRelease has a bad or expired signature \(BADSIG\)",
    "tampered-index": r"tampered-index Packages\.gz: checksum mismatch for .*: the signed Release gives sha256",
    "expired": r"Release expired on Sat, 01 Jan 2000 00:00:00 UTC \(Valid-Until\)",
    "swapped-key": r"the key at http://[\d.:]+/swapped-key/key\.asc has fingerprint \w{40}, but \w{40} is pinned",
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_refused_with_one_line(broken: Dict[str, AptRepo], downloader: Downloader, case: str) -> None:
    repo = broken[case]
    with pytest.raises(BundlerError, match=CASES[case]) as caught:
        load_repository(spec_of(case, repo), repo.url, downloader, None, "amd64", "the manifest")
    assert "\n" not in str(caught.value)
    assert f"apt repository {case}" in str(caught.value) or case == "tampered-index"


def test_an_unpinned_key_is_refused(apt_server: Dict[str, AptRepo], downloader: Downloader) -> None:
    repo = apt_server["kubernetes"]
    spec = spec_of("kubernetes", repo)
    unpinned = type(spec)(spec.id, spec.url, spec.suite, spec.components, spec.key)
    with pytest.raises(BundlerError, match=r"its key .*key\.asc is not pinned: add `key_fingerprint`"):
        load_repository(unpinned, repo.url, downloader, None, "amd64", "the manifest")
