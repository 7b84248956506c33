"""The packages a node needs, as apt chooses them: the minimal system of the release counted as installed, then
`apt-get install` of the requested packages simulated on it. Depends, Pre-Depends, alternatives, virtual
packages, versions, Breaks and Conflicts are apt's job; this module lays out what apt reads and maps its
answer back to the verified index entries.

The minimal system is what apt installs, from nothing, for the Essential and Priority: required packages
(debootstrap's minbase; the manifest's `installed` adds to it, apt by default), from the repositories marked
`minimal_system` (the release's own suite, not its -updates or -security: a node installed from the release
may not have those): a node has all of it, so none of it is bundled unless a requested package needs a newer
version.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Sequence, Tuple

from bundler.deb.apt import Action, PrivateApt
from bundler.deb.control import Stanza
from bundler.deb.remote import LoadedRepository, PackageEntry, read_index
from bundler.deb.spec import PackageRequest
from bundler.errors import BundlerError

DOWNLOAD_FIELDS = ("Filename", "Size", "MD5sum", "SHA1", "SHA256", "SHA512", "Description-md5")


@dataclass(frozen=True)
class DebResolution:
    packages: Tuple[PackageEntry, ...]  # what the bundle carries, in apt's install order
    base: Tuple[PackageEntry, ...]  # the minimal system apt counted as installed
    requested: Tuple[str, ...]  # the names of the requested packages

    def status_stanzas(self) -> List[str]:
        return [status_stanza(entry.stanza) for entry in self.base]


def status_stanza(stanza: Stanza) -> str:
    """A Packages stanza as dpkg's status file has it for an installed package."""
    fields = stanza.without(DOWNLOAD_FIELDS).fields
    return Stanza(fields[:1] + (("Status", "install ok installed"),) + fields[1:]).render()


def verified_lists(repo: LoadedRepository) -> List[Tuple[str, bytes]]:
    """InRelease and each index (uncompressed), by their paths under the repository's URL."""
    lists = [(repo.spec.release_dir + "InRelease", repo.inrelease.path.read_bytes())]
    lists += [(index.path, read_index(index.file, index.path).encode()) for index in repo.indexes]
    return lists


def private_apt(repos: Sequence[LoadedRepository], arch: str, work: Path) -> PrivateApt:
    apt = PrivateApt(work, arch)
    for repo in repos:
        suite = "/" if repo.spec.flat and not repo.spec.release_dir else repo.spec.suite
        uri = str(work / "sources" / repo.spec.id)  # never read: the lists hold what was verified
        apt.add_verified_source(repo.spec.id, uri, suite, repo.spec.components, repo.key.path, verified_lists(repo))
    return apt


def _entries_for(
    actions: List[Action], by_key: Dict[Tuple[str, str, str], PackageEntry], what: str
) -> List[PackageEntry]:
    chosen = []
    for action in actions:
        entry = by_key.get((action.name, action.version, action.arch))
        if entry is None:
            raise BundlerError(
                f"{what}: apt chose {action.name} {action.version} ({action.arch}), which no index lists"
            )
        chosen.append(entry)
    return chosen


def resolve(
    repos: Sequence[LoadedRepository],
    requests: Sequence[PackageRequest],
    installed: Sequence[str],
    arch: str,
    work: Path,
    where: str,
    pins: Sequence[PackageRequest] = (),
) -> DebResolution:
    """`pins`: exact versions (from --lock) asked of apt beside the requests; a request of a pinned name is
    replaced by its pin."""
    by_key: Dict[Tuple[str, str, str], PackageEntry] = {}
    for repo in repos:  # the first repository listing a version is the one it is taken from
        for entry in repo.packages:
            by_key.setdefault(entry.key, entry)
    base_repos = [repo for repo in repos if repo.spec.minimal_system] or list(repos)
    fresh = private_apt(base_repos, arch, work / "minimal")
    listed = (entry for repo in base_repos for entry in repo.packages)
    base_names = sorted({e.name for e in listed if e.essential or e.required} | set(installed))
    base_actions = fresh.simulate(base_names, f"{where}: the minimal system (Essential, Priority: required, installed)")
    base = _entries_for([a for a in base_actions if a.kind == "Inst"], by_key, where)
    apt = private_apt(repos, arch, work / "apt")
    apt.write_status(status_stanza(entry.stanza) for entry in base)
    pinned = {pin.name: pin for pin in pins}
    asked = [pinned.pop(r.name, r) for r in requests] + list(pinned.values())
    actions = apt.simulate([r.apt_argument for r in asked], f"{where}: the requested packages")
    removed = [a for a in actions if a.kind == "Remv"]
    if removed:
        names = ", ".join(f"{a.name} {a.version}" for a in removed)
        raise BundlerError(
            f"{where}: installing the requested packages would remove {names} from a minimal system; change the "
            "requests (or the package that conflicts) in the release manifest"
        )
    packages = _entries_for([a for a in actions if a.kind == "Inst"], by_key, where)
    return DebResolution(tuple(packages), tuple(base), tuple(r.name for r in requests))
