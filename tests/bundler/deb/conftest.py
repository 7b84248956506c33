"""Session fixtures for the Debian tests: the scenario's repositories, signed and served on loopback."""

from __future__ import annotations

from pathlib import Path
from typing import Dict, Iterator, List, Sequence

import pytest

from bundler.cache import Cache
from bundler.deb.remote import LoadedRepository, load_repository
from bundler.deb.spec import AptRepositorySpec
from bundler.download import Downloader, FetchOptions
from tests.bundler.deb.scenario import ARCHIVE, KUBERNETES, UPDATES
from tests.support.deb_repo import AptRepo, make_repository, missing_tools, serve
from tests.support.http_server import MirrorServer
from tests.support.prerequisites import require
from tests.support.signing import SigningKey


@pytest.fixture(scope="session")
def deb_key() -> Iterator[SigningKey]:
    missing = missing_tools()  # no root needed: the tests that write a dpkg database are marked root themselves
    if missing:
        require(*missing)
    key = SigningKey("debian-archive")
    yield key
    key.close()


@pytest.fixture(scope="session")
def apt_server(deb_key: SigningKey) -> Iterator[Dict[str, AptRepo]]:
    server = MirrorServer().start()
    repos = {
        "archive": serve(server, make_repository(ARCHIVE, deb_key, "stable"), "debian"),
        "updates": serve(server, make_repository(UPDATES, deb_key, "stable-updates"), "updates"),
        "kubernetes": serve(server, make_repository(KUBERNETES, deb_key, "/"), "k8s"),
    }
    yield repos
    server.stop()


def spec_of(name: str, repo: AptRepo) -> AptRepositorySpec:
    return AptRepositorySpec(name, repo.url, repo.suite, repo.components, repo.url + "key.asc",
                             repo.key.fingerprint, minimal_system=name == "archive")  # fmt: skip


@pytest.fixture
def downloader(tmp_path: Path) -> Downloader:
    cache = Cache(tmp_path / "cache")
    cache.ensure()
    return Downloader(cache, FetchOptions(retries=0))


def load_all(repos: Dict[str, AptRepo], downloader: Downloader, arch: str = "amd64",
             names: Sequence[str] = ("kubernetes", "archive", "updates")) -> List[LoadedRepository]:  # fmt: skip
    return [load_repository(spec_of(n, repos[n]), repos[n].url, downloader, None, arch, "test") for n in names]
