"""OS packages: resolve the manifest's RPMs and what they need from the configured repositories, download
each one verified against the repository's checksum, and publish them as a repository in `rpms/`."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Dict, List, Optional, Tuple

from bundler.build_context import BuildContext
from bundler.download import Fetched
from bundler.errors import BundlerError
from bundler.paths import key_pins_path
from bundler.progress import Progress
from bundler.rpm.keys import load_fingerprint_pins
from bundler.rpm.remote import RemoteRepository, fetch_checked
from bundler.rpm.repo_writer import PublishedPackage, write_repodata
from bundler.rpm.repodata import EVR, Dependency, Package
from bundler.rpm.solver import Policy, Resolution, prove_installable, require_libsolv
from bundler.rpm.solver import resolve as solve
from bundler.rpm.spec import RpmSpec, rpm_arch, rpm_spec
from installer.layout import RPMS_DIR

CLOSURES = ("minimal", "full")
KEYS_DIR = "keys"


def lock_pins(lock: Dict[str, object]) -> Dict[str, Tuple[Dependency, str]]:
    """name -> (exact pin, sha256) from the `rpms:` list of an earlier bundle.yaml."""
    pins: Dict[str, Tuple[Dependency, str]] = {}
    entries = lock.get("rpms") or []
    if not isinstance(entries, list):
        raise BundlerError("--lock: field 'rpms' must be a list")
    for index, entry in enumerate(entries):
        if not isinstance(entry, dict) or "name" not in entry or "evr" not in entry or "sha256" not in entry:
            raise BundlerError(f"--lock: rpms[{index}] needs name, evr and sha256")
        try:
            evr = EVR.parse(str(entry["evr"]))
        except ValueError as error:
            raise BundlerError(f"--lock: rpms[{index}]: {error}") from None
        pins[str(entry["name"])] = (Dependency(str(entry["name"]), "EQ", evr), str(entry["sha256"]))
    return pins


def _options(context: BuildContext, spec: RpmSpec) -> Tuple[str, Optional[str]]:
    closure = context.options.extra.get("rpm_closure") or "minimal"
    if closure not in CLOSURES:
        raise BundlerError(f"--rpm-closure must be one of {', '.join(CLOSURES)}, got {closure!r}")
    mirror = context.options.extra.get("rpm_mirror")
    if mirror and mirror not in spec.mirror_names:
        known = ", ".join(spec.mirror_names) or "none"
        raise BundlerError(f"--rpm-mirror {mirror}: the manifest names no such mirror (known: {known})")
    return closure, mirror


def resolve(context: BuildContext, spec: RpmSpec, repos: List[RemoteRepository], policy: Policy) -> Resolution:
    """Read every repository's metadata and let libsolv choose the packages (see bundler/rpm/solver.py)."""
    require_libsolv()
    metadata = [repo.load() for repo in repos]
    pins: Dict[str, Dependency] = {p.name: p for p in spec.packages if p.flags is not None}
    for name, (pin, _) in lock_pins(context.lock).items():
        pins[name] = pin
    where = f"{context.release.source}: rpm.{context.os_target.id}"
    return solve(metadata, spec.packages, pins, spec.assumed_installed, policy, where)


def download(context: BuildContext, repos: Dict[str, RemoteRepository], packages: Tuple[Package, ...]) -> List[Fetched]:
    progress = Progress(len(packages))

    def one(package: Package) -> Fetched:
        url = repos[package.repo].package_url(package)
        fetched = fetch_checked(context.downloader, package.filename, url, package.checksum_type, package.checksum)
        progress.finished(package.filename, fetched.size, fetched.from_cache)
        return fetched

    try:
        with ThreadPoolExecutor(max_workers=max(1, context.options.jobs)) as pool:
            return list(pool.map(one, packages))
    finally:
        progress.close()


def check_lock(context: BuildContext, packages: Tuple[Package, ...], fetched: List[Fetched]) -> None:
    locked = lock_pins(context.lock)
    for package, result in zip(packages, fetched):
        pin = locked.get(package.name)
        if pin is not None and pin[1] != result.sha256:
            raise BundlerError(
                f"RPM {package.nevra}: sha256 {result.sha256} differs from the --lock file's {pin[1]}: "
                "the repository republished this version; investigate before rebuilding without --lock"
            )


def fetch_rpms(context: BuildContext) -> None:
    spec = rpm_spec(context.release.raw, context.os_target.id, str(context.release.source))
    if not context.os_target.rpms or spec is None:
        return
    closure, mirror = _options(context, spec)
    key_pins = load_fingerprint_pins(key_pins_path(context.release.kubernetes))
    repos = [
        RemoteRepository(r, r.url_for(context.arch, mirror), context.downloader, key_pins.get(r.gpgkey or ""))
        for r in spec.repositories
    ]
    policy = Policy(rpm_arch(context.arch), closure)
    resolution = resolve(context, spec, repos, policy)
    by_id = {repo.id: repo for repo in repos}
    fetched = download(context, by_id, resolution.packages)
    check_lock(context, resolution.packages, fetched)
    published = []
    for repo in repos:
        mine = [(p, f) for p, f in zip(resolution.packages, fetched) if p.repo == repo.id]
        if not mine:
            continue
        elements = repo.primary_xml([p.checksum for p, _ in mine])
        files = repo.files_of([p.checksum for p, _ in mine])
        for package, result in mine:
            listed = files.get(package.checksum) or tuple((path, None) for path in package.files)
            published.append(PublishedPackage(package, elements[package.checksum], listed, result.sha256, result.size))
    publish(context, spec, repos, resolution, published, policy, mirror)


def publish(
    context: BuildContext,
    spec: RpmSpec,
    repos: List[RemoteRepository],
    resolution: Resolution,
    published: List[PublishedPackage],
    policy: Policy,
    mirror: Optional[str],
) -> None:
    from bundler.commands.build import source_date_epoch

    repodata = write_repodata(published, source_date_epoch())
    prove_installable(repodata, spec.packages, resolution, policy.arch)  # before anything is written
    for path, data in sorted(repodata.items()):
        context.contents.add_bytes(f"{RPMS_DIR}/{path}", data)
    entries = []
    for item in sorted(published, key=lambda i: i.package.name):
        package = item.package
        path = f"{RPMS_DIR}/{item.location}"
        context.contents.add_file(path, context.cache.path_for(item.sha256), item.sha256, item.size)
        entries.append(
            {"name": package.name, "nevra": package.nevra, "evr": str(package.evr), "arch": package.arch,
             "path": path, "sha256": item.sha256, "size": item.size, "repository": package.repo,
             "requested": package.name in resolution.requested,
             "why": " -> ".join(resolution.chains[package.name])}
        )  # fmt: skip
    keys = []
    for repo in repos:
        if repo.key is not None:
            path = f"{RPMS_DIR}/{KEYS_DIR}/{repo.id}.asc"
            context.contents.add_file(path, repo.key.path, repo.key.sha256, repo.key.size)
            key, pinned = repo.key, repo.spec.gpgkey_sha256 is not None or repo.fingerprint is not None
            keys.append(
                {
                    "repository": repo.id,
                    "path": path,
                    "sha256": key.sha256,
                    "size": key.size,
                    "pinned": pinned,
                    "fingerprint": repo.key_info.fingerprint if repo.key_info else None,
                }
            )
    signed = {p.repo for p in resolution.packages}.issubset({repo.id for repo in repos if repo.key is not None})
    versions = {p.name: p for p in resolution.packages}
    context.record["rpm_repository"] = {
        "path": RPMS_DIR,
        "closure": policy.closure,
        "policy": policy.record(),
        "gpgcheck": signed,
        "keys": [k["path"] for k in keys],
        "assumed_installed": [a.record() for a in resolution.assumed],
        "install": [{"name": name, "nevra": versions[name].nevra, "exact": request.flags is not None}
                    for request, name in zip(spec.packages, resolution.requested)],
        "repositories": [_repository_record(repo, mirror) for repo in repos],
    }  # fmt: skip
    context.record["rpms"] = entries
    context.record["extras"] = list(context.record.get("extras") or []) + keys


def _repository_record(repo: RemoteRepository, mirror: Optional[str]) -> Dict[str, object]:
    return {
        "id": repo.id,
        "url": repo.url,
        "mirror": mirror if mirror and mirror in dict(repo.spec.mirrors) else None,
        "revision": repo.repomd.revision if repo.repomd else "",
        "repomd_sha256": repo.repomd_sha256,
        "signature": f"verified ({repo.signer})" if repo.signer else "not checked (no pinned key)",
    }
