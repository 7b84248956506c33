"""Real RPMs and yum repositories for tests: a spec file per package built by rpmbuild, indexed by
createrepo_c, and served by the loopback MirrorServer. Packages hold only small data files."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence

from tests.support.http_server import MirrorServer

TOOLS = ("rpmbuild", "createrepo_c")


def missing_tools() -> List[str]:
    return [tool for tool in TOOLS if shutil.which(tool) is None]


@dataclass(frozen=True)
class FakeRpm:
    name: str
    version: str
    release: str = "1"
    epoch: Optional[int] = None
    arches: Sequence[str] = ("noarch",)  # built once per arch with rpmbuild --target
    requires: Sequence[str] = ()
    provides: Sequence[str] = ()
    files: Dict[str, str] = field(default_factory=dict)  # absolute path -> content (default: the NVR)
    conflicts: Sequence[str] = ()
    obsoletes: Sequence[str] = ()
    recommends: Sequence[str] = ()
    supplements: Sequence[str] = ()

    @property
    def nvr(self) -> str:
        return f"{self.name}-{self.version}-{self.release}"

    def spec(self, arch: str) -> str:
        files = self.files or {f"/usr/share/fake-rpms/{self.name}": self.nvr}
        lines = [
            "%global debug_package %{nil}",
            "%global __os_install_post %{nil}",
            "%global _build_id_links none",
            f"Name: {self.name}",
            f"Version: {self.version}",
            f"Release: {self.release}",
            "Summary: test package",
            "License: MIT",
            "AutoReqProv: no",
        ]
        if self.epoch is not None:
            lines.append(f"Epoch: {self.epoch}")
        if arch == "noarch":
            lines.append("BuildArch: noarch")
        lines += [f"Requires: {r}" for r in self.requires]
        lines += [f"Provides: {p}" for p in self.provides]
        for tag, values in (("Conflicts", self.conflicts), ("Obsoletes", self.obsoletes),
                            ("Recommends", self.recommends), ("Supplements", self.supplements)):  # fmt: skip
            lines += [f"{tag}: {v}" for v in values]
        lines += ["%description", f"{self.name} for tests", "%install"]
        for path, content in sorted(files.items()):
            folder = path.rsplit("/", 1)[0]
            mode = "755" if "/bin/" in path or path.startswith("/opt/cni/bin/") else "644"
            lines.append(f"mkdir -p %{{buildroot}}{folder}")
            lines.append(f"printf '%s' '{content}' > %{{buildroot}}{path}")
            lines.append(f"chmod {mode} %{{buildroot}}{path}")
        lines += ["%files", *sorted(files)]
        return "\n".join(lines) + "\n"


def build_rpms(packages: Sequence[FakeRpm], work: Path) -> Dict[str, Path]:
    """Build every package for each of its arches; returns file name -> path."""
    top = work / "rpmbuild"
    work.mkdir(parents=True, exist_ok=True)
    built: Dict[str, Path] = {}
    for package in packages:
        for arch in package.arches:
            spec = work / f"{package.nvr}.{arch}.spec"
            spec.write_text(package.spec(arch))
            command = ["rpmbuild", "-bb", "--define", f"_topdir {top}", str(spec)]
            if arch != "noarch":
                command[2:2] = ["--target", arch]
            result = subprocess.run(command, capture_output=True, text=True)
            if result.returncode != 0:
                raise RuntimeError(f"rpmbuild {spec.name} failed: {result.stderr[-2000:]}")
            path = top / "RPMS" / arch / f"{package.nvr}.{arch}.rpm"
            assert path.is_file(), path
            built[path.name] = path
    return built


def make_repo(directory: Path, rpms: Sequence[Path], compress: str = "gz") -> Path:
    """A repository of the given RPM files in `directory` (compress: gz, xz or zstd metadata)."""
    if compress == "zstd":
        return recompress_zstd(make_repo(directory, rpms, "gz"))
    packages = directory / "Packages"
    packages.mkdir(parents=True, exist_ok=True)
    for rpm in rpms:
        shutil.copy2(rpm, packages / rpm.name)
    subprocess.run(
        ["createrepo_c", "-q", "--no-database", f"--general-compress-type={compress}", str(directory)],
        check=True,
    )
    return directory


def recompress_zstd(directory: Path) -> Path:
    """Rewrite a gz repository's metadata as .zst (createrepo_c 0.17 cannot), repomd.xml to match."""
    import gzip
    import hashlib

    import zstandard

    repomd_path = directory / "repodata" / "repomd.xml"
    repomd = repomd_path.read_text()
    for old in sorted((directory / "repodata").glob("*.xml.gz")):
        data = zstandard.ZstdCompressor().compress(gzip.decompress(old.read_bytes()))
        old_sum, new_sum = hashlib.sha256(old.read_bytes()).hexdigest(), hashlib.sha256(data).hexdigest()
        new = old.with_name(old.name.replace(old_sum, new_sum)[: -len(".gz")] + ".zst")
        new.write_bytes(data)
        old_size = old.stat().st_size
        repomd = repomd.replace(f"repodata/{old.name}", f"repodata/{new.name}").replace(old_sum, new_sum)
        repomd = repomd.replace(f"<size>{old_size}</size>", f"<size>{len(data)}</size>")
        old.unlink()
    repomd_path.write_text(repomd)
    return directory


def serve_directory(mirror: MirrorServer, prefix: str, directory: Path) -> None:
    """Serve every file under `directory` at `prefix/<relative path>` on the mirror."""
    for path in sorted(directory.rglob("*")):
        if path.is_file():
            mirror.add(f"{prefix.rstrip('/')}/{path.relative_to(directory).as_posix()}", path.read_bytes())
