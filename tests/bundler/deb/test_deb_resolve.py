"""Resolution with apt's own solver against the scenario repositories, compared with what apt itself installs
from the same repositories (over http, signed-by the key) into a throw-away root of the minimal system."""

from __future__ import annotations

from pathlib import Path
from typing import Dict

import pytest

from bundler.deb.resolve import DebResolution, resolve
from bundler.deb.spec import parse_request
from bundler.download import Downloader
from bundler.errors import BundlerError
from tests.bundler.deb.conftest import load_all
from tests.bundler.deb.scenario import EXPECTED_WITHOUT_MTA, MTA, REQUESTS
from tests.support.deb_repo import AptRepo, ThrowawayRoot

pytestmark = pytest.mark.root  # dpkg --root writes a dpkg database with root-owned files


def _resolve(repos: Dict[str, AptRepo], downloader: Downloader, tmp_path: Path, arch: str = "amd64",
             requests: tuple = REQUESTS) -> DebResolution:  # fmt: skip
    loaded = load_all(repos, downloader, arch)
    return resolve(loaded, [parse_request(r) for r in requests], ["apt"], arch, tmp_path / "work", "test")


def test_resolution_is_what_apt_installs(
    apt_server: Dict[str, AptRepo], downloader: Downloader, tmp_path: Path
) -> None:
    resolution = _resolve(apt_server, downloader, tmp_path)
    chosen = {p.name: p.version for p in resolution.packages}
    mta = [name for name in MTA if name in chosen]
    assert len(mta) == 1, chosen  # one provider of the virtual package, never both (they conflict)
    assert {k: v for k, v in chosen.items() if k not in MTA} == EXPECTED_WITHOUT_MTA
    assert {p.name for p in resolution.base} == {"base-files", "dpkg", "libc6", "systemd-sysv", "apt"}
    assert {p.version for p in resolution.base if p.name == "libc6"} == {"2.36-9"}  # the release's, not its update

    node = ThrowawayRoot(tmp_path / "node", "amd64", "\n".join(resolution.status_stanzas()))
    for name in ("kubernetes", "archive", "updates"):
        repo = apt_server[name]
        key = tmp_path / f"{name}.asc"
        key.write_bytes(repo.key.public)
        node.add_source(f"deb [signed-by={key}] {repo.url} {repo.suite} {' '.join(repo.components)}".rstrip())
    assert node.apt_get("update").returncode == 0
    before = node.installed()
    result = node.apt_get("install", "--yes", *(r.replace(" = ", "=") for r in REQUESTS))
    assert result.returncode == 0, result.stdout + result.stderr
    after = node.installed()
    assert {k: v for k, v in after.items() if before.get(k) != v} == chosen


def test_resolution_for_arm64_takes_arm64_packages(
    apt_server: Dict[str, AptRepo], downloader: Downloader, tmp_path: Path
) -> None:
    resolution = _resolve(apt_server, downloader, tmp_path, "arm64")
    assert {p.arch for p in resolution.packages} == {"arm64", "all"}
    assert next(p for p in resolution.packages if p.name == "iptables").filename.endswith("_arm64.deb")


def test_a_conflict_with_the_minimal_system_is_refused(
    apt_server: Dict[str, AptRepo], downloader: Downloader, tmp_path: Path
) -> None:
    with pytest.raises(BundlerError, match=r"would remove systemd-sysv .* from a minimal system"):
        _resolve(apt_server, downloader, tmp_path, requests=("sysvinit-core",))


def test_an_unsatisfiable_request_names_apt_s_reason(
    apt_server: Dict[str, AptRepo], downloader: Downloader, tmp_path: Path
) -> None:
    with pytest.raises(BundlerError) as caught:
        _resolve(apt_server, downloader, tmp_path, requests=("kubeadm = 1.28.0-*", "old-ipset"))
    message = str(caught.value)
    assert "\n" not in message
    assert "the requested packages" in message and "kubeadm" in message
