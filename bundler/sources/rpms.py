"""OS packages: resolve the manifest's RPMs and what they need from the configured repositories (the plan:
one blob per package, with the repository's checksum), and once the one fetch has verified them, publish
them as a repository in `rpms/`. `resolve()` is the seam to the solver; everything here is around it."""

from __future__ import annotations

import sys
from typing import Dict, List, Mapping, Optional, Tuple

from bundler.build_context import BuildContext, source_date_epoch
from bundler.bundle_manifest import ManifestPart
from bundler.download import Fetched, mirrored_url
from bundler.errors import BundlerError
from bundler.paths import key_pins_path
from bundler.plan import Blob, ProgressCallback, SourcePlan
from bundler.rpm.keys import load_fingerprint_pins
from bundler.rpm.package_signatures import PackageFile, RepositoryPackages, verify_signatures
from bundler.rpm.remote import RemoteRepository, fetch_checked
from bundler.rpm.repo_writer import PACKAGES, PublishedPackage, write_repodata
from bundler.rpm.repodata import EVR, Dependency, Package
from bundler.rpm.solver import Policy, Resolution, prove_installable, require_libsolv
from bundler.rpm.solver import resolve as solve
from bundler.rpm.spec import RpmSpec, rpm_arch, rpm_spec
from k8s_install.bundle_format.layout import RPMS_DIR
from k8s_install.bundle_format.model import (
    BundleManifest,
    InstallRequest,
    RepositoryKey,
    Rpm,
    RpmRepository,
    SourceRepository,
)

KIND = "rpms"
CLOSURES = ("minimal", "full")
KEYS_DIR = "keys"


def lock_pins(lock: Optional[BundleManifest]) -> Dict[str, Tuple[Dependency, str]]:
    """name -> (exact pin, sha256) from the `rpms:` list of an earlier bundle.yaml."""
    pins: Dict[str, Tuple[Dependency, str]] = {}
    for index, entry in enumerate(lock.rpms if lock is not None else ()):
        if not entry.name or not entry.evr or not entry.sha256:
            raise BundlerError(f"--lock: rpms[{index}] needs name, evr and sha256")
        try:
            evr = EVR.parse(entry.evr)
        except ValueError as error:
            raise BundlerError(f"--lock: rpms[{index}]: {error}") from None
        pins[entry.name] = (Dependency(entry.name, "EQ", evr), entry.sha256)
    return pins


def _options(context: BuildContext, spec: RpmSpec) -> Tuple[str, Optional[str]]:
    closure = context.options.rpms.closure
    if closure not in CLOSURES:
        raise BundlerError(f"--rpm-closure must be one of {', '.join(CLOSURES)}, got {closure!r}")
    mirror = context.options.rpms.mirror
    if mirror and mirror not in spec.mirror_names:
        known = ", ".join(spec.mirror_names) or "none"
        raise BundlerError(f"--rpm-mirror {mirror}: the manifest names no such mirror (known: {known})")
    return closure, mirror


def resolve(context: BuildContext, spec: RpmSpec, repos: List[RemoteRepository], policy: Policy) -> Resolution:
    """Read every repository's metadata and let libsolv choose the packages (see bundler/rpm/solver.py)."""
    require_libsolv()
    metadata = [repo.load() for repo in repos]
    pins: Dict[str, Dependency] = {p.name: p for p in spec.requests if p.flags is not None}
    for name, (pin, _) in lock_pins(context.lock).items():
        pins[name] = pin
    where = f"{context.release.source}: rpm.{context.os_target.id}"
    return solve(metadata, spec.requests, pins, spec.assumed_installed, policy, where)


def _plan_package(context: BuildContext, repo: RemoteRepository, package: Package) -> Blob:
    url = repo.package_url(package)
    algorithm = package.checksum_type.lower()
    hit = context.downloader.cached(package.checksum) if algorithm == "sha256" else None

    def fetch(progress: Optional[ProgressCallback]) -> Fetched:
        downloader = context.downloader
        return fetch_checked(downloader, package.filename, url, package.checksum_type, package.checksum, progress)

    return Blob(
        kind="rpm", name=package.filename, urls=(mirrored_url(url, context.options.fetch.mirror),),
        digest=package.checksum, algorithm=algorithm, size=package.size,
        places=(f"{RPMS_DIR}/{PACKAGES}/{package.filename}",), cached=hit is not None, fetch=fetch,
    )  # fmt: skip


def check_lock(context: BuildContext, packages: Tuple[Package, ...], fetched: List[Fetched]) -> None:
    locked = lock_pins(context.lock)
    for package, result in zip(packages, fetched):
        pin = locked.get(package.name)
        if pin is not None and pin[1] != result.sha256:
            raise BundlerError(
                f"RPM {package.nevra}: sha256 {result.sha256} differs from the --lock file's {pin[1]}: "
                "the repository republished this version; investigate before rebuilding without --lock"
            )


def locked_metadata(lock: Optional[BundleManifest]) -> Dict[str, Dict[str, str]]:
    """repository id -> sha256 of its repomd.xml, repomd.xml.asc and key in the --lock file, so a locked
    rebuild takes the same metadata from the cache instead of asking the repository."""
    found: Dict[str, Dict[str, str]] = {}
    if lock is None:
        return found
    for entry in lock.rpm_repository.repositories if lock.rpm_repository else ():
        if entry.id:
            sums = {"repomd": entry.repomd_sha256, "signature": entry.repomd_asc_sha256}
            found[entry.id] = {k: v for k, v in sums.items() if v}
    for key in lock.repository_keys:
        if key.repository in found and key.sha256:
            found[key.repository]["key"] = key.sha256
    return found


def plan_rpms(context: BuildContext) -> Optional[SourcePlan]:
    """Read every repository's metadata and solve the closure now; the packages become the plan's blobs."""
    spec = rpm_spec(context.release.raw, context.os_target.id, str(context.release.source))
    if not context.os_target.rpms or spec is None:
        return None
    closure, mirror = _options(context, spec)
    key_pins = load_fingerprint_pins(key_pins_path(context.release.kubernetes))
    pinned = locked_metadata(context.lock)
    manifest = str(context.release.source)
    repos = [
        RemoteRepository(
            r, r.url_for(context.arch, mirror), context.downloader, key_pins.get(r.gpgkey or ""), pinned.get(r.id),
            manifest,
        )
        for r in spec.repositories
    ]  # fmt: skip
    policy = Policy(rpm_arch(context.arch), closure)
    resolution = resolve(context, spec, repos, policy)
    for warning in resolution.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    by_id = {repo.id: repo for repo in repos}
    blobs = [_plan_package(context, by_id[package.repo], package) for package in resolution.packages]

    def publish_packages(fetched: Mapping[str, Fetched]) -> ManifestPart:
        results = [fetched[blob.key] for blob in blobs]
        check_lock(context, resolution.packages, results)
        checked = check_package_signatures(repos, resolution.packages, results)
        published = []
        for repo in repos:
            mine = [(p, f) for p, f in zip(resolution.packages, results) if p.repo == repo.id]
            if not mine:
                continue
            elements = repo.primary_xml([p.checksum for p, _ in mine])
            files = repo.files_of([p.checksum for p, _ in mine])
            for package, result in mine:
                listed = files.get(package.checksum) or tuple((path, None) for path in package.files)
                published.append(
                    PublishedPackage(package, elements[package.checksum], listed, result.sha256, result.size)
                )
        return publish(context, spec, repos, resolution, published, policy, mirror, checked)

    details = {
        "closure": closure,
        "repositories": [repo.id for repo in repos],
        "packages": [package.name for package in resolution.packages],
    }
    return SourcePlan(KIND, blobs, publish_packages, details)


def check_package_signatures(
    repos: List[RemoteRepository], packages: Tuple[Package, ...], fetched: List[Fetched]
) -> Dict[str, int]:
    """Every downloaded RPM against the key of its repository, with rpmkeys (bundler/rpm/package_signatures.py),
    before anything is written; repository id -> packages checked. A repository without a key is said
    aloud: nothing proves who made its packages, and dnf's gpgcheck on the node refuses them."""
    groups = []
    for repo in repos:
        mine = tuple(PackageFile(p.nevra, f.path) for p, f in zip(packages, fetched) if p.repo == repo.id)
        if not mine:
            continue
        if repo.key is None:
            print(
                f"warning: repository {repo.id} names no gpgkey: the signatures of its {len(mine)} RPM(s) are not "
                "checked, and the node's dnf refuses them unless the installer runs with --no-gpgcheck",
                file=sys.stderr,
            )
            continue
        label = repo.key_info.fingerprint if repo.key_info else (repo.spec.gpgkey or repo.id)
        groups.append(RepositoryPackages(repo.id, repo.key.path, label, mine))
    if groups:
        count = sum(len(group.packages) for group in groups)
        print(f"  checking the signatures of {count} RPM(s) with rpmkeys", file=sys.stderr, flush=True)
    verify_signatures(groups)
    return {group.repository: len(group.packages) for group in groups}


def publish(
    context: BuildContext,
    spec: RpmSpec,
    repos: List[RemoteRepository],
    resolution: Resolution,
    published: List[PublishedPackage],
    policy: Policy,
    mirror: Optional[str],
    checked: Dict[str, int],
) -> ManifestPart:
    repodata = write_repodata(published, source_date_epoch())
    prove_installable(repodata, spec.requests, resolution, policy.arch)  # before anything is written
    for path, data in sorted(repodata.items()):
        context.contents.add_bytes(f"{RPMS_DIR}/{path}", data)
    entries = []
    for item in sorted(published, key=lambda i: i.package.name):
        package = item.package
        path = f"{RPMS_DIR}/{item.location}"
        context.contents.add_file(path, context.cache.path_for(item.sha256), item.sha256, item.size)
        entries.append(
            Rpm(name=package.name, nevra=package.nevra, evr=str(package.evr), arch=package.arch, path=path,
                sha256=item.sha256, size=item.size, repository=package.repo,
                requested=package.name in resolution.requested, why=" -> ".join(resolution.chains[package.name]))
        )  # fmt: skip
    keys = []
    for repo in repos:
        if repo.key is not None:
            path = f"{RPMS_DIR}/{KEYS_DIR}/{repo.id}.asc"
            context.contents.add_file(path, repo.key.path, repo.key.sha256, repo.key.size)
            fingerprint = repo.key_info.fingerprint if repo.key_info else None
            keys.append(RepositoryKey(repo.id, path, repo.key.sha256, repo.key.size, repo.key_pinned, fingerprint))
    signed = {p.repo for p in resolution.packages}.issubset({repo.id for repo in repos if repo.key is not None})
    versions = {p.name: p for p in resolution.packages}
    repository = RpmRepository(
        path=RPMS_DIR,
        closure=policy.closure,
        policy=policy.record(),
        gpgcheck=signed,
        keys=tuple(key.path for key in keys),
        assumed_installed=tuple(a.record() for a in resolution.assumed),
        install=tuple(
            InstallRequest(name, versions[name].nevra, exact=request.flags is not None)
            for request, name in zip(spec.packages, resolution.requested)  # the nodes'; host_packages follow
        ),
        repositories=tuple(_repository_record(repo, mirror, checked.get(repo.id)) for repo in repos),
    )
    return ManifestPart(rpm_repository=repository, rpms=tuple(entries), extras=tuple(keys))


def _repository_record(repo: RemoteRepository, mirror: Optional[str], checked: Optional[int]) -> SourceRepository:
    if checked is not None:
        package_signatures = f"verified with rpmkeys ({checked} RPMs)"
    else:
        package_signatures = "not checked (no gpgkey)" if repo.key is None else "no RPMs taken"
    return SourceRepository(
        id=repo.id,
        url=repo.url,
        mirror=mirror if mirror and mirror in dict(repo.spec.mirrors) else None,
        revision=repo.repomd.revision if repo.repomd else "",
        repomd_sha256=repo.repomd_sha256,
        signature=repo.metadata_check,
        repomd_asc_sha256=repo.signature_sha256 or None,
        package_signatures=package_signatures,
    )
