"""Container runtime binaries from the bundle's tarballs: containerd, runc, CNI plugins, buildkit, nerdctl (and
crictl and the Helm CLI when the bundle carries them).

Members are read from the verified tarballs and written by name to fixed destinations (never extracted
by their own paths), each compared with what is on disk first. The CNI plugins 1.4.0 are re-checked on
every run, so they win over the older plugins of the kubernetes-cni RPM on first install and re-runs.

A binary an earlier runtime release installed that the bundle's release no longer ships (containerd 1.6's
containerd-shim and containerd-shim-runc-v1 after an upgrade to 1.7 or 2.x) is retired: removed, or the
original it replaced put back, as `reset` would, so no stale binary stays on PATH.
"""

from __future__ import annotations

import posixpath
import tarfile
from dataclasses import dataclass
from typing import Callable, Dict, Iterator, List, Optional, Set, Tuple

from k8s_install.engine import Change, Node, Step
from k8s_install.errors import InstallError
from k8s_install.node.undo import undo_file
from k8s_install.steps.files import plan_file

Destination = Callable[[str], Optional[str]]  # member path -> absolute destination, or None to skip


def _under(prefix: str, directory: str) -> Destination:
    def place(member: str) -> Optional[str]:
        if prefix and not member.startswith(prefix):
            return None
        return f"{directory}/{posixpath.basename(member)}"

    return place


def _only(name: str, destination: str) -> Destination:
    return lambda member: destination if posixpath.basename(member) == name else None


@dataclass(frozen=True)
class BinarySet:
    artifact: str
    destination: Destination
    restarts: Tuple[str, ...] = ()
    single_file: Optional[str] = None  # a plain binary, not a tarball: its destination
    optional: bool = False  # only in some bundles (crictl/kube binaries come from RPMs on EL9)


BINARY_SETS: Tuple[BinarySet, ...] = (
    BinarySet("containerd", _under("bin/", "/usr/local/bin"), ("containerd",)),
    BinarySet("runc", _only("", ""), ("containerd",), single_file="/usr/local/sbin/runc"),
    BinarySet("cni-plugins", _under("", "/opt/cni/bin")),
    BinarySet("buildkit", _under("bin/", "/usr/local/bin"), ("buildkitd",)),
    BinarySet("nerdctl", _only("nerdctl", "/usr/local/bin/nerdctl")),
    BinarySet("crictl", _only("crictl", "/usr/local/bin/crictl"), optional=True),
    BinarySet("helm", _only("helm", "/usr/local/bin/helm"), optional=True),  # for the bundle's charts
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
            for destination, data in binary_files(node, binaries).items():
                installed.add(destination)
                changes += plan_file(node, destination, data, 0o755, binaries.restarts)
        return changes + plan_retired(node, installed)
