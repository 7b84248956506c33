"""Every candidate package of the configured repositories, indexed by what it provides (names and files)."""

from __future__ import annotations

from collections import defaultdict
from typing import Callable, Dict, Iterable, List, Optional, Sequence, Tuple

from bundler.rpm.deps import evr_matches
from bundler.rpm.repodata import Dependency, FileEntry, Package

# repo id -> (pkgid -> files); called only when a file dependency is not among primary.xml's files
FilelistsLoader = Callable[[str], Dict[str, Tuple[FileEntry, ...]]]

RPM_ARCHES = {"amd64": "x86_64", "arm64": "aarch64"}


def rpm_arch(arch: str) -> str:
    return RPM_ARCHES.get(arch, arch)


class Pool:
    def __init__(
        self,
        packages: Iterable[Package],
        arch: str,
        repo_order: Sequence[str],
        load_filelists: Optional[FilelistsLoader] = None,
    ) -> None:
        self.arch = rpm_arch(arch)
        self.repo_order = list(repo_order)
        self.packages = [p for p in packages if p.arch in (self.arch, "noarch")]
        self._load_filelists = load_filelists
        self._provides: Dict[str, List[Tuple[Package, Dependency]]] = defaultdict(list)
        self._files: Dict[str, List[Package]] = defaultdict(list)
        self._by_checksum = {p.checksum: p for p in self.packages}
        self._filelists_loaded: Dict[str, Dict[str, List[Package]]] = {}
        self.by_name: Dict[str, List[Package]] = defaultdict(list)
        for package in self.packages:
            self.by_name[package.name].append(package)
            self._provides[package.name].append((package, Dependency(package.name, "EQ", package.evr)))
            for provide in package.provides:
                self._provides[provide.name].append((package, provide))
            for path in package.files:
                self._files[path].append(package)

    def providers(self, requirement: Dependency) -> List[Package]:
        """Every package that satisfies a simple requirement (name with optional version, or a file path)."""
        if requirement.name.startswith("/"):
            return self._file_providers(requirement.name)
        found = []
        for package, provide in self._provides.get(requirement.name, ()):
            if evr_matches(provide, requirement) and package not in found:
                found.append(package)
        return found

    def _file_providers(self, path: str) -> List[Package]:
        found = list(self._files.get(path, ()))
        if found:
            return found
        for package, _ in self._provides.get(path, ()):  # explicit `Provides: /bin/sh`
            found.append(package)
        if found or self._load_filelists is None:
            return found
        for repo in self.repo_order:
            found.extend(p for p in self._repo_files(repo).get(path, ()) if p not in found)
        return found

    def _repo_files(self, repo: str) -> Dict[str, List[Package]]:
        if repo not in self._filelists_loaded:
            assert self._load_filelists is not None
            index: Dict[str, List[Package]] = defaultdict(list)
            for pkgid, entries in self._load_filelists(repo).items():
                package = self._by_checksum.get(pkgid)
                if package is not None and package.repo == repo:
                    for path, _ in entries:
                        index[path].append(package)
            self._filelists_loaded[repo] = index
        return self._filelists_loaded[repo]

    def repo_rank(self, package: Package) -> int:
        return self.repo_order.index(package.repo) if package.repo in self.repo_order else len(self.repo_order)
