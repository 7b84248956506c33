"""Container runtime binaries from the bundle's tarballs: containerd, runc, CNI plugins, buildkit, nerdctl (and
crictl and the Helm CLI when the bundle carries them).

Members are read from the verified tarballs and written by name to fixed destinations (never extracted
by their own paths), each compared with what is on disk first. The CNI plugins 1.4.0 are re-checked on
every run, so they win over the older plugins of the kubernetes-cni RPM on first install and re-runs.

A re-run reads no tarball when nothing moved: the state records, for each artifact, its sha256 and the files
written from it, and when the bundle's artifact is the recorded one and each of those files still holds what was
written (its sha256 on disk, mode 0755), the set is done. Anything else (another artifact, a file a package or
a hand replaced, no record yet) reads the tarball and compares every member, as the first run did.

A binary an earlier runtime release installed that the bundle's release no longer ships (containerd 1.6's
containerd-shim and containerd-shim-runc-v1 after an upgrade to 1.7 or 2.x) is retired: removed, or the
original it replaced put back, as `reset` would, so no stale binary stays on PATH.
"""

from __future__ import annotations

import posixpath
import tarfile
from dataclasses import dataclass
from typing import Dict, Iterator, List, Optional, Set, Tuple

from k8s_install.bundle_format.sums import sha256_file
from k8s_install.engine import Change, Node, Step
from k8s_install.errors import InstallError
from k8s_install.node.undo import undo_file
from k8s_install.steps.files import plan_file


@dataclass(frozen=True)
class BinarySet:
    """Which files of a bundle artifact go where: every regular member under `under` (all when empty), or only
    the one named `named`, written to `folder` by its base name; a plain binary (`single_file`) goes there whole.
    Plain data, so its repr is the layout the state records beside the files it wrote."""

    artifact: str
    folder: str = ""
    under: str = ""
    named: str = ""
    restarts: Tuple[str, ...] = ()
    single_file: Optional[str] = None  # a plain binary, not a tarball: its destination
    optional: bool = False  # only in some bundles (crictl/kube binaries come from RPMs on EL9)

    def destination(self, member: str) -> Optional[str]:
        """Where a member (its normalised path in the tarball) is installed, or None to leave it out."""
        name = posixpath.basename(member)
        if (self.named and name != self.named) or (self.under and not member.startswith(self.under)):
            return None
        return f"{self.folder}/{name}"


BINARY_SETS: Tuple[BinarySet, ...] = (
    BinarySet("containerd", "/usr/local/bin", under="bin/", restarts=("containerd",)),
    BinarySet("runc", restarts=("containerd",), single_file="/usr/local/sbin/runc"),
    BinarySet("cni-plugins", "/opt/cni/bin"),
    BinarySet("buildkit", "/usr/local/bin", under="bin/", restarts=("buildkitd",)),
    BinarySet("nerdctl", "/usr/local/bin", named="nerdctl"),
    BinarySet("crictl", "/usr/local/bin", named="crictl", optional=True),
    BinarySet("helm", "/usr/local/bin", named="helm", optional=True),  # for the bundle's charts
)


def tar_members(path: str) -> Iterator[Tuple[str, bytes]]:
    """Regular files of a tarball as (normalised name, bytes); links and escaping names are refused."""
    try:
        with tarfile.open(path, "r:*") as archive:
            for member in archive:
                name = posixpath.normpath(member.name.lstrip("./") or ".")
                if member.isdir():
                    continue
                if name.startswith("../") or name == ".." or member.name.startswith("/"):
                    raise InstallError(f"{path}: member {member.name} escapes the archive; the bundle is damaged")
                if not member.isfile():
                    continue  # links and devices are never installed
                stream = archive.extractfile(member)
                if stream is not None:
                    yield name, stream.read()
    except (tarfile.TarError, OSError) as error:
        raise InstallError(f"{path}: cannot read the archive ({error}); run ./k8s-install.pyz verify") from None


def binary_files(node: Node, binaries: BinarySet) -> Dict[str, bytes]:
    """destination -> bytes of what this bundle's artifact installs (empty: an optional artifact it lacks)."""
    if not node.bundle.has_artifact(binaries.artifact):
        if binaries.optional:
            return {}
        raise InstallError(f"the bundle has no {binaries.artifact} artifact; rebuild it with this release")
    source = node.bundle.artifact(binaries.artifact)
    if binaries.single_file:
        return {binaries.single_file: source.read_bytes()}
    files: Dict[str, bytes] = {}
    for name, data in tar_members(str(source)):
        destination = binaries.destination(name)
        if destination is not None:
            files[destination] = data
    if not files:
        raise InstallError(
            f"{source}: no files to install from {binaries.artifact}; the artifact is not what it should be"
        )
    return files


def unchanged_since_written(node: Node, binaries: BinarySet) -> Optional[List[str]]:
    """The files this artifact installed, when the state says they were written from this very artifact by this
    layout (`binaries`) and each still holds what was written; None when the tarball must be read."""
    if not node.bundle.has_artifact(binaries.artifact):
        return None
    record = node.state.runtime_artifact(binaries.artifact)
    if record is None or record.get("layout") != repr(binaries):
        return None
    if record.get("sha256") != node.bundle.artifact_sha256(binaries.artifact):
        return None
    files: List[str] = list(record.get("files") or [])
    for destination in files:
        written = node.state.file_record(destination)
        target = node.host.path(destination)
        if written is None or target.is_symlink() or not target.is_file():
            return None
        if target.stat().st_mode & 0o7777 != 0o755 or sha256_file(target) != written.get("sha256"):
            return None
    return files or None


def recorded_when_applied(node: Node, binaries: BinarySet, files: List[str], changes: List[Change]) -> List[Change]:
    """`changes` with the last one also recording the artifact in the state once it is applied (the engine
    applies a step's changes in order and stops at the first that fails, so a cut run records nothing)."""
    if not changes:
        return changes
    last = changes[-1]
    sha256 = node.bundle.artifact_sha256(binaries.artifact)

    def apply_then_record() -> None:
        last.apply()
        node.state.record_runtime_artifact(binaries.artifact, sha256, repr(binaries), files)

    return changes[:-1] + [Change(last.summary, apply_then_record, last.restarts)]


RUNTIME_FOLDERS = ("/usr/local/bin/", "/usr/local/sbin/", "/opt/cni/bin/")


def plan_retired(node: Node, installed: Set[str]) -> List[Change]:
    """Binaries the installer put in the runtime's folders earlier that this bundle does not install."""
    changes: List[Change] = []
    for path, record in sorted(node.state.files().items()):
        if not path.startswith(RUNTIME_FOLDERS) or path in installed:
            continue

        def retire(path: str = path, record: Dict[str, object] = record) -> None:
            node.host.log(f"retired {path}: {undo_file(node.host, path, record)}")
            node.state.drop_file(path)

        changes.append(Change(f"retire {path} (not in this bundle's runtime)", retire))
    return changes


class RuntimeBinaries(Step):
    name = "runtime-binaries"
    title = "containerd, runc, CNI plugins, buildkit, nerdctl"

    def plan(self, node: Node) -> List[Change]:
        changes: List[Change] = []
        installed: Set[str] = set()
        for binaries in BINARY_SETS:
            unchanged = unchanged_since_written(node, binaries)
            if unchanged is not None:
                installed.update(unchanged)
                continue
            files = binary_files(node, binaries)
            planned: List[Change] = []
            for destination, data in files.items():
                planned += plan_file(node, destination, data, 0o755, binaries.restarts)
            installed.update(files)
            changes += recorded_when_applied(node, binaries, list(files), planned)
        return changes + plan_retired(node, installed)
