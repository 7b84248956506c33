"""A simulated EL node for the package steps: an --installroot holding the minimal-install packages, and
a runner that executes every command in a fresh network namespace (no network at all)."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import List

from tests.conftest import StandInRelease, run_bundler
from tests.support.rpm_graph import ASSUMED, RpmGraph
from tests.support.unpack import unpack_tarball

TOP = "k8s-bundle-1.29.6-rocky9-amd64"


class OfflineRunner:
    """Runs each command under `unshare --net` (only a down loopback); keeps a log of what ran."""

    def __init__(self) -> None:
        self.commands: List[List[str]] = []

    def __call__(self, command: List[str], **kwargs):  # type: ignore[no-untyped-def]
        self.commands.append(command)
        return subprocess.run(["unshare", "--net", "--", *command], **kwargs)

    def ran(self, program: str) -> int:
        return sum(1 for command in self.commands if command[0] == program)


def build_and_unpack(release: StandInRelease, work: Path) -> Path:
    result = run_bundler(
        "build", "--allow-incomplete", "--manifest", str(release.path), "--mirror", release.mirror.url,
        "--cache", str(work / "cache"), "--output", str(work / "out"),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    unpack_tarball(work / "out" / f"{TOP}.tar", work / "unpacked")
    return work / "unpacked" / TOP


def minimal_node(root: Path, rpm_graph: RpmGraph) -> Path:
    """A root holding what the minimal closure assumes (glibc, bash, util-linux, selinux-policy)."""
    root.mkdir()
    rpms = [str(p) for name, p in rpm_graph.rpms.items() if name.rsplit("-", 2)[0] in ASSUMED]
    subprocess.run(
        ["rpm", "--root", str(root), "-i", "--nodeps", "--nosignature", *rpms],
        check=True,
        capture_output=True,
    )
    return root


def installed(root: Path) -> set:
    """Every installed NEVRA under root (the gpg-pubkey pseudo-packages of imported keys left out)."""
    query = subprocess.run(
        ["rpm", "--root", str(root), "-qa", "--qf", "%{NAME}-%{EPOCHNUM}:%{VERSION}-%{RELEASE}.%{ARCH}\n"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return {line for line in query.stdout.split() if not line.startswith("gpg-pubkey-")}
