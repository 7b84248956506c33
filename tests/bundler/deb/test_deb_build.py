"""`bundler build --os debian12` against the scenario's apt repositories behind the loopback mirror: the bundle's
flat repository, bundle.yaml's deb_repository and debs, and apt installing from the unpacked bundle alone."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Dict, Iterator

import jsonschema
import pytest
import yaml

from bundler.deb.control import parse_stanzas
from bundler.deb.resolve import status_stanza
from tests.bundler.deb.scenario import ARCHIVE, KUBERNETES, REQUESTS, UPDATES
from tests.conftest import REPO, StandInRelease, run_bundler
from tests.support.deb_repo import FakeDeb, ThrowawayRoot, make_repository
from tests.support.signing import SigningKey
from tests.support.unpack import unpack_tarball

pytestmark = pytest.mark.root  # dpkg --root writes a dpkg database with root-owned files
HOST = "debs.example.invalid"
TOP = "k8s-bundle-1.29.6-debian12-amd64"


@pytest.fixture
def deb_release(release: StandInRelease, deb_key: SigningKey) -> Iterator[StandInRelease]:
    repositories = []
    for name, debs, suite, minimal in (("kubernetes", KUBERNETES, "/", False), ("archive", ARCHIVE, "stable", True),
                                       ("updates", UPDATES, "stable-updates", False)):  # fmt: skip
        repo = make_repository(debs, deb_key, suite)
        for path, data in repo.files.items():
            release.mirror.add(f"/{HOST}/{name}/{path}", data)
        entry = {"id": name, "url": f"https://{HOST}/{name}/", "suite": suite, "key": f"https://{HOST}/key.asc",
                 "key_fingerprint": deb_key.fingerprint, "minimal_system": minimal}  # fmt: skip
        if repo.components:
            entry["components"] = list(repo.components)
        repositories.append(entry)
    release.mirror.add(f"/{HOST}/key.asc", deb_key.public)
    release.manifest["os"] = {"debian12": {"debs": True}}
    release.manifest["deb"] = {"debian12": {"repositories": repositories, "packages": list(REQUESTS),
                                            "installed": ["apt"]}}  # fmt: skip
    release.write()
    yield release


def build(release: StandInRelease, tmp_path: Path, *extra: str, env: Dict[str, str] | None = None):  # type: ignore[no-untyped-def]
    return run_bundler(
        "build", "--allow-incomplete", "--manifest", str(release.path), "--os", "debian12", "--mirror",
        release.mirror.url, "--cache", str(tmp_path / "cache"), "--output", str(tmp_path / "out"),
        "--retries", "1", "--timeout", "5", *extra, env=env,
    )  # fmt: skip


def test_build_writes_a_flat_apt_repository_that_installs_alone(deb_release: StandInRelease, tmp_path: Path) -> None:
    result = build(deb_release, tmp_path)
    assert result.returncode == 0, result.stderr
    assert "proving the 15 .deb(s) install with apt from the bundle alone" in result.stderr
    unpack_tarball(tmp_path / "out" / f"{TOP}.tar", tmp_path / "unpacked")
    bundle = tmp_path / "unpacked" / TOP
    manifest = yaml.safe_load((bundle / "bundle.yaml").read_text())
    repository = manifest["deb_repository"]
    assert repository["path"] == "debs" and repository["key"] == "debs/bundle-key.gpg"
    assert repository["install"] == [r.replace(" = ", "=") for r in REQUESTS]
    assert "libc6 2.36-9" in repository["minimal_system"] and "apt 2.6.1" in repository["minimal_system"]
    assert [r["id"] for r in repository["repositories"]] == ["kubernetes", "archive", "updates"]
    names = {deb["name"]: deb for deb in manifest["debs"]}
    assert names["kubeadm"]["version"] == "1.29.6-1.1" and names["kubeadm"]["requested"] is True
    assert names["libc6"]["version"] == "2.36-10" and names["libc6"]["repository"] == "updates"
    sums = (bundle / "SHA256SUMS").read_text()
    for path in ("debs/Packages", "debs/InRelease", "debs/bundle-key.gpg", names["kubeadm"]["path"]):
        assert f"  {path}\n" in sums
    sbom = json.loads((bundle / "sbom.spdx.json").read_text())
    purls = {ref["referenceLocator"] for package in sbom["packages"] for ref in package.get("externalRefs", ())}
    assert any(purl.startswith("pkg:deb/kubernetes/kubeadm@1.29.6-1.1?arch=all") for purl in purls), purls

    inspected = run_bundler("inspect", "--json", str(tmp_path / "out" / f"{TOP}.tar"))
    assert inspected.returncode == 0, inspected.stderr
    document = json.loads(inspected.stdout)
    jsonschema.validate(document, json.loads((REPO / "schemas" / "inspect.schema.json").read_text()))
    listed = {p["name"]: p for p in document["packages"]}
    assert listed["kubeadm"]["version"] == "1.29.6-1.1" and listed["kubeadm"]["nevra"] == "kubeadm_1.29.6-1.1_all"
    verified = subprocess.run([sys.executable, str(bundle / "k8s-install.pyz"), "verify"], cwd=bundle,
                              capture_output=True, text=True)  # fmt: skip
    assert verified.returncode == 0, verified.stdout + verified.stderr

    base = {line.split()[0]: line.split()[1] for line in repository["minimal_system"]}
    served = deb_release.mirror.files[f"/{HOST}/archive/dists/stable/main/binary-amd64/Packages"].data.decode()
    status = [
        status_stanza(s) for s in parse_stanzas(served, "Packages") if base.get(s.text("Package")) == s.text("Version")
    ]
    assert len(status) == len(base)
    node = ThrowawayRoot(tmp_path / "node", "amd64", "\n".join(status))
    debs = bundle / "debs"
    node.add_source(f"deb [signed-by={debs / 'bundle-key.gpg'}] file:{debs}/ ./")
    assert node.apt_get("update").returncode == 0
    result = node.apt_get("install", "--yes", *repository["install"])
    assert result.returncode == 0, result.stdout + result.stderr
    installed = node.installed()
    assert all(installed[name] == deb["version"] for name, deb in names.items())


def test_a_builder_without_apt_is_told_which_machines_build_debian_targets(
    deb_release: StandInRelease, tmp_path: Path
) -> None:
    tools = tmp_path / "bin"
    tools.mkdir()
    for tool in ("gpg", "gpgv", "apt-ftparchive"):
        found = shutil.which(tool)
        assert found
        (tools / tool).symlink_to(found)
    path = f"{Path(shutil.which('python') or 'python').parent}{os.pathsep}{tools}"
    result = build(deb_release, tmp_path, env={"PATH": path})
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == (
        "bundler: error: this build needs apt-get to resolve debian12's packages as apt does, and it is not "
        "installed: install apt: Debian and Ubuntu targets are built on a Debian or Ubuntu machine (apt resolves "
        "their packages)"
    )


def test_dry_run_plans_the_debs_and_writes_nothing(deb_release: StandInRelease, tmp_path: Path) -> None:
    result = build(deb_release, tmp_path, "--dry-run", "--json")
    assert result.returncode == 0, result.stderr
    plan = json.loads(result.stdout)
    jsonschema.validate(plan, json.loads((REPO / "schemas" / "build.schema.json").read_text()))
    debs = next(source for source in plan["sources"] if source["kind"] == "debs")
    assert debs["count"] == 15 and debs["repositories"] == ["kubernetes", "archive", "updates"]
    assert {blob["places"][0] for blob in debs["blobs"]} >= {"debs/kubeadm_1.29.6-1.1_all.deb"}
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_lock_rebuilds_the_same_debs_after_the_repository_moved_on(
    deb_release: StandInRelease, deb_key: SigningKey, tmp_path: Path
) -> None:
    first = build(deb_release, tmp_path)
    assert first.returncode == 0, first.stderr
    with tarfile.open(tmp_path / "out" / f"{TOP}.tar") as archive:
        member = archive.extractfile(f"{TOP}/bundle.yaml")
        assert member is not None
        lock = tmp_path / "lock.yaml"
        lock.write_bytes(member.read())
    newer = make_repository(KUBERNETES + (FakeDeb("cri-tools", "1.29.1-1.1"),), deb_key, "/")
    for path, data in newer.files.items():  # the repository moves on: a new InRelease, a newer cri-tools
        deb_release.mirror.add(f"/{HOST}/kubernetes/{path}", data)
    shutil.rmtree(tmp_path / "out")
    locked = build(deb_release, tmp_path, "--lock", str(lock))
    assert locked.returncode == 0, locked.stderr
    with tarfile.open(tmp_path / "out" / f"{TOP}.tar") as archive:
        member = archive.extractfile(f"{TOP}/bundle.yaml")
        assert member is not None
        again = yaml.safe_load(member.read())
    before = yaml.safe_load(lock.read_text())
    assert again["debs"] == before["debs"]  # cri-tools 1.29.0-1.1 still, from the InRelease the lock names
    shutil.rmtree(tmp_path / "out")
    unlocked = build(deb_release, tmp_path)
    assert unlocked.returncode == 0, unlocked.stderr
    with tarfile.open(tmp_path / "out" / f"{TOP}.tar") as archive:
        member = archive.extractfile(f"{TOP}/bundle.yaml")
        assert member is not None
        latest = {deb["name"]: deb["version"] for deb in yaml.safe_load(member.read())["debs"]}
    assert latest["cri-tools"] == "1.29.1-1.1"


def test_lock_stops_at_a_republished_version(deb_release: StandInRelease, deb_key: SigningKey, tmp_path: Path) -> None:
    assert build(deb_release, tmp_path).returncode == 0
    with tarfile.open(tmp_path / "out" / f"{TOP}.tar") as archive:
        member = archive.extractfile(f"{TOP}/bundle.yaml")
        assert member is not None
        lock = tmp_path / "lock.yaml"
        lock.write_bytes(member.read())
    for path, data in make_repository(KUBERNETES, deb_key, "/").files.items():  # rebuilt: other bytes, same versions
        deb_release.mirror.add(f"/{HOST}/kubernetes/{path}", data)
    shutil.rmtree(tmp_path / "out")
    shutil.rmtree(tmp_path / "cache")  # the locked InRelease is gone: the current one is read
    result = build(deb_release, tmp_path, "--lock", str(lock))
    assert result.returncode == 1
    line = result.stderr.strip().splitlines()[-1]
    assert re.fullmatch(
        r"bundler: error: \S+_1\.\S+\.deb: sha256 [0-9a-f]{64} in apt repository kubernetes differs from the --lock "
        r"file's [0-9a-f]{64}: the repository republished this version; investigate before rebuilding without --lock",
        line,
    ), line
