"""Resolve RPMs with libsolv, the solver dnf itself uses, chosen to behave as `dnf install` on EL9 does.

The policy is explicit (and recorded in bundle.yaml): the best candidate of each request (dnf's best=True),
no weak dependencies (Recommends/Supplements are not installed on the node either), the node's arch plus
noarch only (never i686 on x86_64), Obsoletes and Conflicts honoured, the newest version wins across
repositories unless a pin (`name = version`, or every name of a `--lock`) says otherwise.

For the minimal closure the assumed minimal-install packages are a real installed set: the newest entry of
each name in the repositories, copied into libsolv's installed repository, so a versioned requirement on
one of them or a Conflicts with one of them is checked. The bundle is the transaction's new installs. For
the full closure nothing is installed and the bundle is everything the transaction installs.

`prove_installable` solves again against the bundle's own repository metadata plus the installed set:
every request must install with zero problems, or the build fails before anything is written.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Tuple

from bundler.errors import BundlerError
from bundler.rpm.explain import Chain, explain, requirement_chains
from bundler.rpm.repodata import EVR, Dependency, Package, open_metadata
from k8s_install.bundle_format.model import AssumedPackage, SolverPolicy

try:
    import solv
except ImportError:  # no wheel for this platform
    solv = None

INSTALLED_REPO = "@assumed"
REL_FLAGS = {"EQ": 2, "GT": 1, "GE": 3, "LT": 4, "LE": 6}  # libsolv's REL_GT | REL_EQ | REL_LT bits
IMPLICIT_PREFIXES = ("rpmlib(",)  # met by rpm itself, never by a package


def require_libsolv() -> None:
    if solv is None:
        raise BundlerError(
            "RPM targets are resolved with libsolv, whose Python package 'solv' is not installed or has no "
            "wheel for this platform: pip install solv (wheels exist for x86_64 and aarch64 Linux)"
        )


@dataclass(frozen=True)
class RepoMetadata:
    """One repository's metadata files, already verified against repomd.xml (href names the compression)."""

    id: str
    primary: Tuple[Path, str]
    filelists: Callable[[], Optional[Tuple[Path, str]]]  # fetched only when a file dependency needs it


@dataclass(frozen=True)
class Policy:
    arch: str  # rpm arch: x86_64, aarch64
    closure: str  # minimal | full

    def record(self) -> SolverPolicy:
        """As bundle.yaml records it: libsolv, best candidates, no weak dependencies, obsoletes and conflicts."""
        return SolverPolicy(closure=self.closure, arches=(self.arch, "noarch"))


@dataclass(frozen=True)
class Assumed:
    """An assumed (minimal-install) package and what the bundle's packages require of it."""

    name: str
    nevra: str
    requires: Tuple[str, ...]

    def record(self) -> AssumedPackage:
        return AssumedPackage(self.name, self.nevra, self.requires)


@dataclass(frozen=True)
class Resolution:
    packages: Tuple[Package, ...]  # sorted by name
    requested: Tuple[str, ...]  # the package chosen for each request, in request order
    chains: Dict[str, Chain]  # package name -> why it is in the set
    assumed: Tuple[Assumed, ...]
    installed_solv: bytes  # the assumed set as a libsolv repository (empty for the full closure)
    warnings: Tuple[str, ...] = ()  # chosen packages another repository offers with the same NEVRA but other bytes


# -- loading -----------------------------------------------------------------------------------------------


def _add_metadata(repo: Any, path: Path, href: str, flags: int = 0) -> None:
    """Load one primary/filelists file; libsolv reads plain and gzip itself, other compressions are opened
    by our reader and handed over as plain XML."""
    where = f"repository {repo.name} {href}"
    with tempfile.TemporaryDirectory(prefix="bundler-solv-") as work:
        if href.endswith(".gz") or href.endswith(".xml"):
            source, name = path, href
        else:
            source, name = Path(work) / "metadata.xml", "metadata.xml"
            with open_metadata(path, href) as stream, open(source, "wb") as out:
                for block in iter(lambda: stream.read(1 << 20), b""):
                    out.write(block)
        fd = os.open(source, os.O_RDONLY)
        try:
            handle = solv.xfopen_fd(name, fd)
        finally:
            os.close(fd)
        if handle is None:
            raise BundlerError(f"{where}: cannot open the metadata")
        try:
            loaded = repo.add_rpmmd(handle, None, flags | solv.Repo.REPO_NO_INTERNALIZE)
        finally:
            handle.close()
    if not loaded:
        raise BundlerError(f"{where}: damaged metadata ({repo.pool.errstr}); the repository may be mid-update, retry")


def _new_pool(arch: str) -> Any:
    require_libsolv()
    pool = solv.Pool()
    pool.setdisttype(solv.Pool.DISTTYPE_RPM)
    pool.setarch(arch)
    return pool


def _unmet_file_dependencies(pool: Any) -> List[str]:
    pool.createwhatprovides()
    needed = pool.addfileprovides_queue()
    pool.createwhatprovides()
    return [pool.id2str(i) for i in needed if not pool.whatprovides(pool.Dep(pool.id2str(i)))]


def load_pool(repos: Sequence[RepoMetadata], arch: str) -> Any:
    """Every repository's primary; filelists too as soon as a file dependency is not met by primary's files."""
    pool = _new_pool(arch)
    loaded = []
    for metadata in repos:
        repo = pool.add_repo(metadata.id)
        _add_metadata(repo, *metadata.primary)
        loaded.append((repo, metadata))
    for repo, _ in loaded:
        repo.internalize()
    if _unmet_file_dependencies(pool):
        for repo, metadata in loaded:
            filelists = metadata.filelists()
            if filelists is not None:
                _add_metadata(repo, *filelists, flags=solv.Repo.REPO_EXTEND_SOLVABLES)
                repo.internalize()
        pool.addfileprovides()
        pool.createwhatprovides()
    return pool


def _no_filelists_note(repos: Sequence[RepoMetadata], message: str) -> str:
    """Why a file requirement found nothing when a repository publishes no filelists.xml (dnf needs it too)."""
    if " requires /" not in message:
        return ""
    lacking = [metadata.id for metadata in repos if metadata.filelists() is None]
    if not lacking:
        return ""
    return (
        f" (repository {', '.join(lacking)} has no filelists in its repomd.xml, so a file requirement can only be met"
        " by the few files primary.xml lists: regenerate its metadata with createrepo_c)"
    )


# -- the installed set and the considered packages -----------------------------------------------------------


def _pin_dep(pool: Any, pin: Dependency) -> Any:
    name = pool.Dep(pin.name)
    if pin.flags is None or pin.evr is None:
        return name
    return name.Rel(REL_FLAGS[pin.flags], pool.Dep(str(pin.evr)))  # str() leaves out epoch 0, as libsolv does


def _allowed(pool: Any, arch: str, pins: Dict[str, Dependency]) -> List[Any]:
    arches = (arch, "noarch")
    pin_deps = {name: _pin_dep(pool, pin) for name, pin in pins.items()}
    allowed = []
    for solvable in pool.solvables_iter():
        if solvable.arch not in arches:
            continue
        pin = pin_deps.get(solvable.name)
        if pin is not None and not solvable.matchesdep(solv.SOLVABLE_PROVIDES, pin):
            continue
        allowed.append(solvable)
    return allowed


def _newest(candidates: Iterable[Any], arch: str) -> Any:
    """The highest epoch:version-release; the node arch over noarch on a tie."""
    best = None
    for solvable in candidates:
        if best is None:
            best = solvable
            continue
        order = solvable.evrcmp(best)
        if order > 0 or (order == 0 and solvable.arch == arch and best.arch != arch):
            best = solvable
    return best


def _install_assumed(pool: Any, allowed: Sequence[Any], names: Sequence[str], arch: str, where: str) -> Any:
    """Copy the newest allowed entry of each assumed name into libsolv's installed repository."""
    by_name: Dict[str, List[Any]] = {}
    for solvable in allowed:
        by_name.setdefault(solvable.name, []).append(solvable)
    installed = pool.add_repo(INSTALLED_REPO)
    for name in names:
        if name not in by_name:
            raise BundlerError(f"{where}: {name} is in none of the repositories; remove it or add its repository")
        source = _newest(by_name[name], arch)
        copy = installed.add_solvable()
        copy.name, copy.evr, copy.arch, copy.vendor = source.name, source.evr, source.arch, source.vendor
        for key in (solv.SOLVABLE_PROVIDES, solv.SOLVABLE_REQUIRES, solv.SOLVABLE_CONFLICTS, solv.SOLVABLE_OBSOLETES):
            for dep in source.lookup_deparray(key, 0):
                copy.add_deparray(key, dep)
    installed.internalize()
    pool.installed = installed
    pool.createwhatprovides()
    return installed


# -- solving -------------------------------------------------------------------------------------------------


def _selection(pool: Any, request: Dependency) -> Any:
    """As `dnf install REQUEST`: the packages of that name, else what provides it (a capability or a file)."""
    text = str(request)
    flags = solv.Selection.SELECTION_NAME | solv.Selection.SELECTION_REL | solv.Selection.SELECTION_DOTARCH
    selection = pool.select(text, flags)
    if selection.isempty():
        flags = solv.Selection.SELECTION_PROVIDES | solv.Selection.SELECTION_REL | solv.Selection.SELECTION_FILELIST
        selection = pool.select(text, flags)
    return selection


Jobs = Tuple[List[Any], List[Tuple[str, set]]]


def _jobs(pool: Any, requests: Sequence[Dependency], how: int, repo_names: str) -> Jobs:
    """The install jobs of the requests, and each request as written with the ids it selects."""
    jobs: List[Any] = []
    selected: List[Tuple[str, set]] = []
    for request in requests:
        selection = _selection(pool, request)
        if selection.isempty():
            raise BundlerError(
                f"cannot resolve the RPMs: requested {request}: nothing in the repositories ({repo_names}) provides it"
            )
        jobs += selection.jobs(how)
        selected.append((str(request), {s.id for s in selection.solvables()}))
    return jobs, selected


def _solver(pool: Any) -> Any:
    solver = pool.Solver()
    solver.set_flag(solv.Solver.SOLVER_FLAG_IGNORE_RECOMMENDED, 1)  # install_weak_deps=False
    solver.set_flag(solv.Solver.SOLVER_FLAG_BEST_OBEY_POLICY, 1)  # as libdnf: best within the arch policy
    solver.set_flag(solv.Solver.SOLVER_FLAG_YUM_OBSOLETES, 1)  # as libdnf: package splits via Obsoletes
    solver.set_flag(solv.Solver.SOLVER_FLAG_ALLOW_VENDORCHANGE, 1)  # as libdnf: no vendor locking
    return solver


def _package(solvable: Any) -> Package:
    checksum = solvable.lookup_checksum(solv.SOLVABLE_CHECKSUM)
    location, _ = solvable.lookup_location()
    evr = EVR.parse(solvable.evr)
    return Package(
        repo=solvable.repo.name,
        name=solvable.name,
        arch=solvable.arch,
        evr=EVR(evr.epoch, evr.version, evr.release or ""),
        checksum_type=checksum.typestr() if checksum else "sha256",
        checksum=checksum.hex() if checksum else "",
        href=location,
        base=solvable.lookup_str(solv.SOLVABLE_MEDIABASE),
        size=solvable.lookup_num(solv.SOLVABLE_DOWNLOADSIZE),
    )


def _assumed_requirements(pool: Any, installed: Any, new: Sequence[Any]) -> Tuple[Assumed, ...]:
    """For each assumed package: the plain requirements of bundled packages that only it meets."""
    bundled = {s.id for s in new}
    needs: Dict[int, List[str]] = {s.id: [] for s in installed.solvables_iter()}
    for solvable in new:
        for dep in solvable.lookup_deparray(solv.SOLVABLE_REQUIRES, 0):
            text = str(dep)
            if text.startswith("(") or text.startswith(IMPLICIT_PREFIXES):
                continue  # rich dependencies are checked by the solve itself; rpmlib() by rpm
            providers = pool.whatprovides(dep)
            if any(p.id in bundled for p in providers):
                continue
            for provider in providers:
                if provider.repo == installed and text not in needs[provider.id]:
                    needs[provider.id].append(text)
    return tuple(
        Assumed(s.name, nevra(s), tuple(sorted(needs[s.id])))
        for s in sorted(installed.solvables_iter(), key=lambda s: s.name)
    )


def nevra(solvable: Any) -> str:
    evr = solvable.evr if ":" in solvable.evr else f"0:{solvable.evr}"
    return f"{solvable.name}-{evr}.{solvable.arch}"


def _write_solv(repo: Any) -> bytes:
    with tempfile.TemporaryDirectory(prefix="bundler-solv-") as work:
        path = Path(work) / "installed.solv"
        handle = solv.xfopen(str(path), "w")
        try:
            repo.write(handle)
        finally:
            handle.close()
        return path.read_bytes()


def resolve(
    repos: Sequence[RepoMetadata],
    requests: Sequence[Dependency],
    pins: Dict[str, Dependency],
    assumed: Sequence[str],
    policy: Policy,
    where: str,
) -> Resolution:
    """The packages to bundle for `dnf install REQUESTS` on a node that has the assumed set (minimal)."""
    pool = load_pool(repos, policy.arch)
    allowed = _allowed(pool, policy.arch, pins)
    installed = None
    if policy.closure == "minimal":
        requested_names = {r.name for r in requests}
        kept = [name for name in assumed if name not in requested_names]  # a request is always bundled
        installed = _install_assumed(pool, allowed, kept, policy.arch, f"{where}.assumed_installed")
        allowed += list(installed.solvables_iter())
    pool.set_considered_list([s.id for s in allowed])
    repo_names = ", ".join(r.id for r in repos)
    jobs, selected = _jobs(pool, requests, solv.Job.SOLVER_INSTALL | solv.Job.SOLVER_FORCEBEST, repo_names)
    solver = _solver(pool)
    problems = solver.solve(jobs)
    if problems:
        message = f"cannot resolve the RPMs: {explain(pool, problems, repo_names, selected)}"
        raise BundlerError(message + _no_filelists_note(repos, message))
    new = list(solver.transaction().newsolvables())
    chains = requirement_chains(pool, new, selected)
    by_id = {s.id: s for s in new}
    requested = []
    for request, ids in selected:
        chosen = [by_id[i] for i in ids if i in by_id]
        if not chosen:
            raise BundlerError(f"cannot resolve the RPMs: requested {request} was not chosen by the solver")
        requested.append(chosen[0].name)
    packages = tuple(sorted((_package(s) for s in new), key=lambda p: (p.name, p.arch)))
    return Resolution(
        packages=packages,
        requested=tuple(requested),
        chains={s.name: chains[s.id] for s in new},
        assumed=_assumed_requirements(pool, installed, new) if installed is not None else (),
        installed_solv=_write_solv(installed) if installed is not None else b"",
        warnings=_same_nevra_other_bytes(pool, new),
    )


def _same_nevra_other_bytes(pool: Any, chosen: Sequence[Any]) -> Tuple[str, ...]:
    """A package whose name-epoch:version-release.arch two repositories publish with different checksums: a
    rebuild or a tampered mirror. dnf takes one silently; the build says which it took."""
    wanted = {(s.name, s.evr, s.arch): s for s in chosen}
    found = []
    for other in pool.solvables_iter():
        mine = wanted.get((other.name, other.evr, other.arch))
        if mine is None or other.id == mine.id or other.repo.name == mine.repo.name:
            continue
        ours, theirs = _package(mine), _package(other)
        if ours.checksum_type == theirs.checksum_type and ours.checksum != theirs.checksum:
            found.append(
                f"{mine.name}-{mine.evr}.{mine.arch} is in repositories {mine.repo.name} and {other.repo.name} with "
                f"different content ({ours.checksum_type} {ours.checksum[:12]}... and {theirs.checksum[:12]}...); "
                f"bundled the one from {mine.repo.name}"
            )
    return tuple(sorted(set(found)))


# -- the proof -------------------------------------------------------------------------------------------------


def prove_installable(
    repodata: Dict[str, bytes], requests: Sequence[Dependency], resolution: Resolution, arch: str
) -> None:
    """Solve `dnf install REQUESTS` against the bundle's own repository (and the assumed set): zero problems."""
    pool = _new_pool(arch)
    with tempfile.TemporaryDirectory(prefix="bundler-proof-") as work:
        repo = pool.add_repo("k8s-bundle")
        for kind, flags in (("primary", 0), ("filelists", solv.Repo.REPO_EXTEND_SOLVABLES)):
            href = next(path for path in repodata if path.endswith(f"-{kind}.xml.gz"))
            path = Path(work) / f"{kind}.xml.gz"
            path.write_bytes(repodata[href])
            _add_metadata(repo, path, href, flags)
            repo.internalize()  # filelists extend the solvables primary made: those must be internalized first
        if resolution.installed_solv:
            path = Path(work) / "installed.solv"
            path.write_bytes(resolution.installed_solv)
            installed = pool.add_repo(INSTALLED_REPO)
            handle = solv.xfopen(str(path))
            try:
                installed.add_solv(handle)
            finally:
                handle.close()
            pool.installed = installed
    pool.addfileprovides()
    pool.createwhatprovides()
    pool.set_considered_list([s.id for s in pool.solvables_iter() if s.arch in (arch, "noarch")])
    jobs, selected = _jobs(pool, requests, solv.Job.SOLVER_INSTALL, "k8s-bundle")
    solver = _solver(pool)  # kept alive: the problems refer to it
    problems = solver.solve(jobs)
    if problems:
        raise BundlerError(
            "the bundle's RPM repository would not install on a node with the assumed packages: "
            f"{explain(pool, problems, 'k8s-bundle', selected)}"
        )
