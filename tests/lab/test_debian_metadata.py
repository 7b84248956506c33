"""The debian12 target against real Debian 12 metadata, offline: the InRelease and Packages index the lab's
cached root got from deb.debian.org (signed by Debian), served on loopback under the release manifest's own URLs.
The pinned fingerprint of checksums/k8s-1.29.6.keys must verify Debian's real signature, and apt must resolve
the manifest's packages (all but Kubernetes' own, which pkgs.k8s.io serves) on Debian 12's minimal system."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Dict, Iterator

import pytest

from bundler import paths
from bundler.cache import Cache
from bundler.deb.remote import load_repository
from bundler.deb.resolve import resolve
from bundler.deb.spec import deb_spec
from bundler.download import Downloader, FetchOptions
from bundler.manifest import load_release
from bundler.rpm.keys import load_fingerprint_pins
from tests.conftest import LAB_TIMINGS
from tests.lab.root import built_base
from tests.support.http_server import MirrorServer

pytestmark = pytest.mark.xdist_group("lab-debian-metadata")  # no nodes, only the lab root: beside the shared lab

LISTS = "var/lib/apt/lists/deb.debian.org_debian_dists_bookworm_"
DEBIAN_KEYRING = Path("/usr/share/keyrings/debian-archive-bookworm-automatic.gpg")  # debian-archive-keyring
KUBERNETES_OWN = ("kubeadm", "kubelet", "kubectl")


@pytest.fixture(scope="module")
def debian_mirror(lab_root_dir: Path) -> Iterator[MirrorServer]:
    base = built_base(LAB_TIMINGS)
    server = MirrorServer().start()
    server.add("/deb.debian.org/debian/dists/bookworm/InRelease", (base / f"{LISTS}InRelease").read_bytes())
    server.add("/deb.debian.org/debian/dists/bookworm/main/binary-amd64/Packages",
               (base / f"{LISTS}main_binary-amd64_Packages").read_bytes())  # fmt: skip
    server.add("/ftp-master.debian.org/keys/archive-key-12.asc", DEBIAN_KEYRING.read_bytes())
    yield server
    server.stop()


def test_debian12_resolves_on_real_debian_metadata(debian_mirror: MirrorServer, tmp_path: Path) -> None:
    release = load_release("1.29.6", None)
    spec = deb_spec(release.raw, "debian12", str(release.source))
    assert spec is not None
    bookworm = next(repo for repo in spec.repositories if repo.id == "bookworm")
    pins: Dict[str, str] = load_fingerprint_pins(paths.key_pins_path("1.29.6"))
    cache = Cache(tmp_path / "cache")
    cache.ensure()
    downloader = Downloader(cache, FetchOptions(mirror=debian_mirror.url, retries=0))
    started = time.monotonic()
    repo = load_repository(bookworm, bookworm.url_for("amd64"), downloader, pins[bookworm.key], "amd64", "test")
    assert repo.key_info.fingerprint == "B8B80B5B623EAB6AD8775C45B7C5D7D6350947F8"
    assert len(repo.packages) > 50_000
    loaded = time.monotonic()
    requests = [r for r in spec.packages if r.name not in KUBERNETES_OWN]
    resolution = resolve([repo], requests, spec.installed, "amd64", tmp_path / "work", "debian12")
    LAB_TIMINGS["debian12 metadata: load"] = loaded - started
    LAB_TIMINGS["debian12 metadata: apt resolution"] = time.monotonic() - loaded
    base = {p.name for p in resolution.base}
    chosen = {p.name for p in resolution.packages}
    assert {"apt", "dpkg", "libc6", "bash", "coreutils"} <= base
    assert {"conntrack", "socat", "iptables", "ebtables", "ethtool", "chrony", "keepalived", "haproxy"} <= chosen
    assert not base & chosen  # a minimal Debian 12 has them: the bundle does not carry them again
    assert all(p.arch in ("amd64", "all") for p in resolution.packages)
