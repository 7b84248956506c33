"""The runtime binaries step on a re-run (k8s_install/steps/runtime.py, in process, on a --root node): when the
bundle's artifact is the one the state recorded and every file written from it is still as written, no tarball is
read; anything else (a binary replaced or chmodded by hand, another artifact, another layout, no record) reads the
tarball and puts back what it holds. A plan never records, and a run cut before a set's last change records
nothing for that set."""

from __future__ import annotations

import hashlib
import time
from dataclasses import replace
from pathlib import Path
from typing import Dict, Iterator, List, Tuple

import pytest

from k8s_install.bundle_format.bundle import Bundle
from k8s_install.bundle_format.model import ArtifactFile, BundleManifest
from k8s_install.engine import Node, NodeOptions, converge
from k8s_install.node.host import Host
from k8s_install.node.state import State
from k8s_install.settings import NodeSettings
from k8s_install.steps import runtime
from k8s_install.steps.runtime import RuntimeBinaries
from tests.support.node_bundle import reproducible_tarball

TARBALLS: Dict[str, Dict[str, bytes]] = {  # artifact -> its members
    "containerd": {"bin/containerd": b"\x7fELF containerd 1.6.33", "bin/ctr": b"\x7fELF ctr"},
    "cni-plugins": {"./bridge": b"\x7fELF bridge", "./portmap": b"\x7fELF portmap"},
    "buildkit": {"bin/buildkitd": b"\x7fELF buildkitd", "bin/buildctl": b"\x7fELF buildctl"},
    "nerdctl": {"nerdctl": b"\x7fELF nerdctl", "containerd-rootless.sh": b"#!/bin/sh\n"},
}
RUNC = b"\x7fELF runc 1.1.12"


def tarball(path: Path, members: Dict[str, bytes]) -> Path:
    """The same members give the same bytes (tests/support/node_bundle.py's gzip header carries no time): two
    bundles made a second apart hold the same artifact, as two builds of one release do."""
    path.write_bytes(reproducible_tarball(list(members.items())))
    return path


def artifact(root: Path, name: str, path: Path) -> ArtifactFile:
    data = path.read_bytes()
    return ArtifactFile(name, str(path.relative_to(root)), hashlib.sha256(data).hexdigest(), len(data))


def make_bundle(root: Path, containerd: Dict[str, bytes] = TARBALLS["containerd"]) -> Bundle:
    files = root / "files"
    files.mkdir(parents=True, exist_ok=True)
    artifacts = [artifact(root, name, tarball(files / f"{name}.tar.gz", members)) for name, members in TARBALLS.items()]
    artifacts[0] = artifact(root, "containerd", tarball(files / "containerd.tar.gz", containerd))
    (files / "runc.amd64").write_bytes(RUNC)
    artifacts.append(artifact(root, "runc", files / "runc.amd64"))
    return Bundle(root, BundleManifest("1.29.6", "rocky9", "amd64", artifacts=tuple(artifacts)))


def node_on(root: Path, bundle: Bundle, dry_run: bool = False) -> Node:
    host = Host(root)
    settings = NodeSettings(role="worker", first=False, name="w1", ip="10.213.0.5")
    return Node(host, State(host), bundle, settings, NodeOptions(dry_run=dry_run))


@pytest.fixture
def read_tarballs(monkeypatch: pytest.MonkeyPatch) -> Iterator[List[str]]:
    """The artifacts whose tarball the step reads (their file names), in order."""
    read: List[str] = []
    members = runtime.tar_members

    def counted(path: str) -> Iterator[Tuple[str, bytes]]:
        read.append(Path(path).name)
        return members(path)

    monkeypatch.setattr(runtime, "tar_members", counted)
    yield read


def install(root: Path, bundle: Bundle) -> List[str]:
    report = converge(node_on(root, bundle), [RuntimeBinaries()], dry_run=False, echo=lambda line: None)
    return report.steps[0].changes


def test_a_rerun_reads_no_tarball_and_changes_nothing(tmp_path: Path, read_tarballs: List[str]) -> None:
    root, bundle = tmp_path / "root", make_bundle(tmp_path / "bundle")
    first = install(root, bundle)
    assert "create /usr/local/bin/containerd" in first and "create /usr/local/sbin/runc" in first
    assert sorted(read_tarballs) == ["buildkit.tar.gz", "cni-plugins.tar.gz", "containerd.tar.gz", "nerdctl.tar.gz"]
    recorded = State(Host(root)).runtime_artifact("containerd")
    assert recorded is not None and recorded["files"] == ["/usr/local/bin/containerd", "/usr/local/bin/ctr"]
    assert not (root / "usr/local/bin/containerd-rootless.sh").exists()  # nerdctl's tarball: only nerdctl

    read_tarballs.clear()
    state_before = (root / "var/lib/k8s-install/state.json").read_bytes()
    assert install(root, bundle) == []
    assert read_tarballs == []
    assert (root / "var/lib/k8s-install/state.json").read_bytes() == state_before


def test_a_binary_replaced_or_chmodded_by_hand_is_put_back_from_its_tarball(
    tmp_path: Path, read_tarballs: List[str]
) -> None:
    root, bundle = tmp_path / "root", make_bundle(tmp_path / "bundle")
    install(root, bundle)
    (root / "usr/local/bin/ctr").write_bytes(b"someone's ctr")
    (root / "opt/cni/bin/portmap").chmod(0o700)
    (root / "usr/local/sbin/runc").unlink()
    read_tarballs.clear()
    assert install(root, bundle) == [
        "update /usr/local/bin/ctr",
        "create /usr/local/sbin/runc",
        "chmod 755 /opt/cni/bin/portmap",
    ]
    assert read_tarballs == ["containerd.tar.gz", "cni-plugins.tar.gz"]  # the other sets were untouched
    assert (root / "usr/local/bin/ctr").read_bytes() == b"\x7fELF ctr"
    read_tarballs.clear()
    assert install(root, bundle) == [] and read_tarballs == []


def test_another_artifact_or_layout_reads_the_tarball(tmp_path: Path, read_tarballs: List[str]) -> None:
    root = tmp_path / "root"
    install(root, make_bundle(tmp_path / "bundle"))
    newer = make_bundle(tmp_path / "newer", {"bin/containerd": b"\x7fELF containerd 1.7", "bin/ctr": b"\x7fELF ctr"})
    read_tarballs.clear()
    assert install(root, newer) == ["update /usr/local/bin/containerd"]
    assert read_tarballs == ["containerd.tar.gz"]

    state = State(Host(root))
    record = state.runtime_artifact("containerd")
    assert record is not None
    state.record_runtime_artifact(
        "containerd", record["sha256"], repr(replace(runtime.BINARY_SETS[0], under="")), record["files"]
    )
    read_tarballs.clear()
    assert install(root, newer) == [] and read_tarballs == ["containerd.tar.gz"]  # an older layout's record


def test_a_plan_records_nothing_and_a_cut_run_records_nothing_for_its_set(tmp_path: Path) -> None:
    root, bundle = tmp_path / "root", make_bundle(tmp_path / "bundle")
    converge(node_on(root, bundle, dry_run=True), [RuntimeBinaries()], dry_run=True, echo=lambda line: None)
    assert not (root / "var/lib/k8s-install/state.json").exists()

    node = node_on(root, bundle)
    changes = RuntimeBinaries().plan(node)
    assert changes[0].summary == "create /usr/local/bin/containerd"
    changes[0].apply()  # cut before /usr/local/bin/ctr
    assert node.state.runtime_artifact("containerd") is None
    changes[1].apply()
    assert node.state.runtime_artifact("containerd") is not None


def test_the_same_members_make_the_same_artifact_a_second_later(tmp_path: Path) -> None:
    first = tarball(tmp_path / "first.tar.gz", TARBALLS["cni-plugins"]).read_bytes()
    time.sleep(1.1)  # gzip's header would otherwise carry the time it was written
    assert tarball(tmp_path / "second.tar.gz", TARBALLS["cni-plugins"]).read_bytes() == first
