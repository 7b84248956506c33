"""The Helm CLI a bundle carries (release artifact `helm`, upstream's helm-vX-linux-ARCH.tar.gz) is installed
as /usr/local/bin/helm from the tarball's member by name; a bundle without it installs none (in process)."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Dict

from k8s_install.steps.runtime import BINARY_SETS, binary_files

HELM = next(binaries for binaries in BINARY_SETS if binaries.artifact == "helm")


def helm_tarball(path: Path) -> Path:
    """The layout of helm's release tarball: linux-amd64/{helm,LICENSE,README.md}."""
    with tarfile.open(path, "w:gz") as archive:
        for name, data in (("linux-amd64/helm", b"\x7fELF helm"), ("linux-amd64/LICENSE", b"Apache-2.0"),
                           ("linux-amd64/README.md", b"helm")):  # fmt: skip
            member = tarfile.TarInfo(name)
            member.size, member.mode = len(data), 0o755
            archive.addfile(member, io.BytesIO(data))
    return path


def node_with(artifacts: Dict[str, Path]) -> Any:
    bundle = SimpleNamespace(has_artifact=lambda name: name in artifacts, artifact=lambda name: artifacts[name])
    return SimpleNamespace(bundle=bundle)


def test_the_bundled_helm_goes_to_usr_local_bin(tmp_path: Path) -> None:
    node = node_with({"helm": helm_tarball(tmp_path / "helm-v3.17.3-linux-amd64.tar.gz")})
    assert binary_files(node, HELM) == {"/usr/local/bin/helm": b"\x7fELF helm"}


def test_a_bundle_without_helm_installs_none() -> None:
    assert HELM.optional and binary_files(node_with({}), HELM) == {}
