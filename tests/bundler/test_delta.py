"""Delta bundles: `bundler build --from OLD` leaves out what the old bundle holds (by content); on the node,
`k8s-install.pyz verify --base OLD_DIR` completes it, and the result is the full bundle byte for byte."""

from __future__ import annotations

import filecmp
import hashlib
import os
import shutil
import subprocess
import tarfile
from pathlib import Path
from typing import List

import pytest

from tests.conftest import StandInRelease, run_bundler
from tests.support.http_server import MirrorServer
from tests.support.session_cache import copy_into

OLD_TOP = "k8s-bundle-1.29.6-rocky9-amd64"
NEW_TOP = "k8s-bundle-1.29.15-rocky9-amd64"


def build(release: StandInRelease, tmp_path: Path, out: str, *extra: str) -> subprocess.CompletedProcess:
    return run_bundler(
        "build", "--manifest", str(release.path), "--mirror", release.mirror.url,
        "--cache", str(tmp_path / "cache"), "--output", str(tmp_path / out), "--allow-incomplete", *extra,
    )  # fmt: skip


def next_release(release: StandInRelease, data: bytes = b"containerd 1.7" * 70000) -> None:
    """1.29.15: a new containerd; runc and the Calico manifest unchanged."""
    release.manifest["kubernetes"] = "1.29.15"
    entry = next(e for e in release.manifest["files"] if e["name"] == "containerd")
    entry["version"] = "1.1.0"
    entry["url"] = "https://downloads.example.invalid/releases/containerd/containerd-1.1.0-linux-{arch}.bin"
    entry["sha256"] = {arch: hashlib.sha256(data).hexdigest() for arch in ("amd64", "arm64")}
    for arch in ("amd64", "arm64"):
        release.mirror.add(f"/downloads.example.invalid/releases/containerd/containerd-1.1.0-linux-{arch}.bin", data)
    release.write()


def names(tarball: Path) -> List[str]:
    with tarfile.open(tarball) as archive:
        return sorted(m.name for m in archive.getmembers() if m.isfile())


def unpack(tarball: Path, into: Path) -> None:
    into.mkdir(exist_ok=True)
    subprocess.run(["tar", "-xf", str(tarball), "-C", str(into)], check=True)


def node_verify(python39: str, bundle: Path, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, SHIV_ROOT=str(bundle.parent / "shiv"))
    return subprocess.run(
        [python39, str(bundle / "k8s-install.pyz"), "verify", *args], capture_output=True, text=True, env=env
    )


@pytest.fixture(scope="module")
def built_once(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """old full bundle in old/, new full bundle in full/, and the delta in delta/ (built --from the tarball),
    with the download cache, built once for the module from its own stand-in release."""
    work = tmp_path_factory.mktemp("delta-builds")
    mirror = MirrorServer().start()
    try:
        (work / "release").mkdir()
        release = StandInRelease(mirror, work / "release")
        assert build(release, work, "old").returncode == 0
        next_release(release)
        assert build(release, work, "full").returncode == 0
        result = build(release, work, "delta", "--from", str(work / "old" / f"{OLD_TOP}.tar"))
    finally:
        mirror.stop()
    assert result.returncode == 0, result.stderr
    assert f"delta over {OLD_TOP}: 2 file(s)" in result.stdout  # runc and the Calico manifest
    shutil.rmtree(work / "release")
    return work


@pytest.fixture
def built(built_once: Path, release: StandInRelease, tmp_path: Path) -> Path:
    """This test's copy of the module's builds, beside its own release moved on to 1.29.15 as they were built."""
    next_release(release)
    copy_into(built_once, tmp_path)
    return tmp_path


def test_delta_leaves_out_what_the_base_holds_and_carries_the_full_sums(built: Path) -> None:
    full, delta = built / "full" / f"{NEW_TOP}.tar", built / "delta" / f"{NEW_TOP}-delta.tar"
    carried = [n.split("/", 1)[1] for n in names(delta)]
    assert carried == [
        "DELTA.yaml",
        "SHA256SUMS",
        "bundle.yaml",
        "files/containerd-1.1.0-linux-amd64.bin",
        "k8s-install.pyz",
        "sbom.spdx.json",
    ]  # fmt: skip  (the SBOM names the new release)
    assert delta.stat().st_size < full.stat().st_size
    with tarfile.open(full) as a, tarfile.open(delta) as b:
        for name in ("SHA256SUMS", "bundle.yaml"):
            assert a.extractfile(f"{NEW_TOP}/{name}").read() == b.extractfile(f"{NEW_TOP}/{name}").read()  # type: ignore[union-attr]


def test_delta_beside_its_base_verifies_as_the_full_bundle(python39: str, built: Path) -> None:
    node = built / "node"
    unpack(built / "old" / f"{OLD_TOP}.tar", node)
    unpack(built / "delta" / f"{NEW_TOP}-delta.tar", node)
    plain = node_verify(python39, node / NEW_TOP)
    assert plain.returncode == 1
    assert f"is a delta bundle: complete it first with `verify --base DIR`, DIR the unpacked {OLD_TOP}" in plain.stderr
    result = node_verify(python39, node / NEW_TOP, "--base", str(node / OLD_TOP))
    assert result.returncode == 0, result.stderr
    assert "2 file(s) taken from the base" in result.stdout and "bundle OK" in result.stdout
    unpack(built / "full" / f"{NEW_TOP}.tar", built / "reference")
    compare = filecmp.dircmp(node / NEW_TOP, built / "reference" / NEW_TOP)
    assert _same_tree(compare)
    again = node_verify(python39, node / NEW_TOP, "--base", str(node / OLD_TOP))
    assert again.returncode == 0 and "0 file(s) taken" in again.stdout


def _same_tree(compare: filecmp.dircmp) -> bool:
    if compare.left_only or compare.right_only or compare.funny_files:
        return False
    _, mismatch, errors = filecmp.cmpfiles(compare.left, compare.right, compare.common_files, shallow=False)
    return not mismatch and not errors and all(_same_tree(sub) for sub in compare.subdirs.values())


def test_delta_over_the_wrong_base_names_the_base_it_needs(python39: str, release: StandInRelease, built: Path) -> None:
    next_release(release, data=b"another containerd" * 50000)  # a different 1.29.15 build: another base
    release.manifest["kubernetes"] = "1.29.15"
    assert build(release, built, "other").returncode == 0
    node = built / "node"
    unpack(built / "other" / f"{NEW_TOP}.tar", node)
    (node / NEW_TOP).rename(node / "other-base")
    unpack(built / "delta" / f"{NEW_TOP}-delta.tar", node)
    result = node_verify(python39, node / NEW_TOP, "--base", str(node / "other-base"))
    assert result.returncode == 1
    line = result.stderr.strip()
    assert f"is not the base of this delta: it needs {OLD_TOP} (SHA256SUMS sha256 " in line
    assert len(line.splitlines()) == 1 and (node / NEW_TOP / "DELTA.yaml").exists()


def test_from_a_folder_or_a_bare_bundle_yaml(release: StandInRelease, built: Path) -> None:
    unpack(built / "old" / f"{OLD_TOP}.tar", built / "unpacked")
    folder = build(release, built, "from-folder", "--from", str(built / "unpacked" / OLD_TOP))
    assert folder.returncode == 0 and "delta over k8s-bundle-1.29.6-rocky9-amd64: 2 file(s)" in folder.stdout
    bare = built / "bare"
    bare.mkdir()
    (bare / "bundle.yaml").write_bytes((built / "unpacked" / OLD_TOP / "bundle.yaml").read_bytes())
    manifest_only = build(release, built, "from-yaml", "--from", str(bare / "bundle.yaml"))
    assert manifest_only.returncode == 0, manifest_only.stderr
    assert "delta over k8s-bundle-1.29.6-rocky9-amd64: 2 file(s)" in manifest_only.stdout
    missing = build(release, built, "x", "--from", str(built / "nothing.tar"))
    assert missing.returncode == 1
    assert missing.stderr.strip().endswith("not found; give the old bundle's tarball, folder or bundle.yaml")


@pytest.mark.parametrize(
    "name,text,message",
    [
        ("old.yaml", "- a list\n", "old.yaml: not a bundle.yaml (no 'kubernetes' field)"),
        ("bundle.yaml", "format: 1\nkubernetes: 1.29.6\nos: rocky9\narch: amd64\nextras: 7\n", "extras: must be"),
        ("old.txt", "- a list\n", "old.txt: not a readable bundle tarball (truncated header)"),
    ],
)
def test_a_base_of_the_wrong_shape_is_one_line(
    release: StandInRelease, tmp_path: Path, name: str, text: str, message: str
) -> None:
    """A bundle.yaml kept under another name is read as one; a wrong shape used to crash (extras: 7) or to
    list every compression tarfile tried."""
    base = tmp_path / "base" / name
    base.parent.mkdir()
    base.write_text(text)
    result = build(release, tmp_path, "out", "--from", str(base))
    assert result.returncode == 1 and "Traceback" not in result.stderr and "internal error" not in result.stderr
    assert message in result.stderr.strip().splitlines()[-1]


def test_an_earlier_delta_tarball_serves_as_the_base_of_the_next(built: Path) -> None:
    """1.29.15's delta (not yet completed) is the base of the next release's delta, as the upgrade path
    1.29.6 -> 1.29.15 -> 1.30.14 carries only deltas: its SHA256SUMS lists every file of the full 1.29.15."""
    from bundler.delta import read_base

    from_delta = read_base(built / "delta" / f"{NEW_TOP}-delta.tar")
    from_full = read_base(built / "full" / f"{NEW_TOP}.tar")
    assert from_delta == from_full and from_delta.name == NEW_TOP
