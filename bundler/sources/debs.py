"""OS packages for Debian and Ubuntu targets: read the manifest's apt repositories (InRelease against the pinned
key, indexes by the Release's sums), let apt choose the closure (bundler/deb/resolve.py), plan one blob per
.deb with the index's sha256, and once the one fetch has verified them, write the bundle's flat apt
repository in `debs/`, proven with apt from it alone before anything is added to the bundle."""

from __future__ import annotations

import posixpath
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

from bundler.build_context import BuildContext, source_date_epoch
from bundler.bundle_manifest import ManifestPart
from bundler.deb.flat_repo import KEY_NAME, DebFile, write_flat_repository
from bundler.deb.proof import prove_installable
from bundler.deb.remote import LoadedRepository, PackageEntry, fetch_listed, load_repository
from bundler.deb.resolve import DebResolution, resolve
from bundler.deb.spec import DebSpec, PackageRequest, deb_spec
from bundler.download import Fetched, mirrored_url
from bundler.errors import BundlerError
from bundler.paths import key_pins_path
from bundler.plan import Blob, ProgressCallback, SourcePlan
from bundler.rpm.keys import load_fingerprint_pins
from k8s_install.bundle_format.layout import DEBS_DIR
from k8s_install.bundle_format.model import AptSource, BundleManifest, Deb, DebRepository

KIND = "debs"


def package_url(repo: LoadedRepository, entry: PackageEntry) -> str:
    """The .deb's URL: the index's Filename under the repository's URL, never outside it."""
    path = posixpath.normpath(entry.filename)
    if path.startswith(("/", "../")) or path == "..":
        raise BundlerError(
            f"apt repository {repo.spec.id}: package {entry.name} has Filename {entry.filename!r}, outside the "
            "repository; the index is wrong or hostile"
        )
    return repo.url + path


def _plan_package(context: BuildContext, repo: LoadedRepository, entry: PackageEntry) -> Blob:
    url = package_url(repo, entry)

    def fetch(progress: Optional[ProgressCallback]) -> Fetched:
        where = f"the index of apt repository {repo.spec.id}"
        return fetch_listed(context.downloader, entry.deb_name, url, entry.sha256, where, progress, entry.size)

    return Blob(
        kind="deb", name=entry.deb_name, urls=(mirrored_url(url, context.options.fetch.mirror),),
        digest=entry.sha256, algorithm="sha256", size=entry.size, places=(f"{DEBS_DIR}/{entry.deb_name}",),
        cached=context.downloader.cached(entry.sha256, entry.size) is not None, fetch=fetch,
    )  # fmt: skip


def lock_pins(lock: Optional[BundleManifest]) -> Dict[str, Tuple[PackageRequest, str]]:
    """name -> (exact request, sha256) from the `debs:` list of an earlier bundle.yaml."""
    pins: Dict[str, Tuple[PackageRequest, str]] = {}
    for index, entry in enumerate(lock.debs if lock is not None else ()):
        if not entry.name or not entry.version or not entry.sha256:
            raise BundlerError(f"--lock: debs[{index}] needs name, version and sha256")
        pins[entry.name] = (PackageRequest(entry.name, entry.version), entry.sha256)
    return pins


def load_repositories(context: BuildContext, spec: DebSpec) -> List[LoadedRepository]:
    pins = load_fingerprint_pins(key_pins_path(context.release.kubernetes))
    manifest = str(context.release.source)
    lock = context.lock.deb_repository if context.lock is not None else None
    locked = {source.id: source.inrelease_sha256 for source in lock.repositories} if lock is not None else {}
    return [
        load_repository(
            r,
            r.url_for(context.arch),
            context.downloader,
            pins.get(r.key),
            context.arch,
            manifest,
            locked.get(r.id) or None,
        )  # fmt: skip
        for r in spec.repositories
    ]


def check_lock(locked: Dict[str, Tuple[PackageRequest, str]], packages: Sequence[PackageEntry]) -> None:
    for entry in packages:
        pin = locked.get(entry.name)
        if pin is not None and pin[0].version == entry.version and pin[1] != entry.sha256:
            raise BundlerError(
                f"{entry.deb_name}: sha256 {entry.sha256} in apt repository {entry.repo} differs from the --lock "
                f"file's {pin[1]}: the repository republished this version; investigate before rebuilding "
                "without --lock"
            )


def plan_debs(context: BuildContext) -> Optional[SourcePlan]:
    """Read every repository's metadata and let apt choose the packages now; they become the plan's blobs."""
    spec = deb_spec(context.release.raw, context.os_target.id, str(context.release.source))
    if not context.os_target.debs or spec is None:
        return None
    repos = load_repositories(context, spec)
    where = f"{context.release.source}: deb.{context.os_target.id}"
    work = Path(tempfile.mkdtemp(prefix="bundler-apt-", dir=context.cache.root))
    locked = lock_pins(context.lock)
    try:
        pins = [pin for pin, _ in locked.values()]
        resolution = resolve(repos, spec.packages, spec.installed, context.arch, work, where, pins)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    check_lock(locked, resolution.packages)
    by_id = {repo.spec.id: repo for repo in repos}
    blobs = [_plan_package(context, by_id[entry.repo], entry) for entry in resolution.packages]

    def publish_packages(fetched: Mapping[str, Fetched]) -> ManifestPart:
        debs = [DebFile(entry.deb_name, fetched[blob.key].path) for entry, blob in zip(resolution.packages, blobs)]
        return publish(context, spec, repos, resolution, debs)

    details = {"repositories": [repo.spec.id for repo in repos], "packages": [p.name for p in resolution.packages]}
    return SourcePlan(KIND, blobs, publish_packages, details)


def publish(
    context: BuildContext, spec: DebSpec, repos: List[LoadedRepository], resolution: DebResolution,
    debs: List[DebFile],
) -> ManifestPart:  # fmt: skip
    label = f"k8s-bundle {context.release.kubernetes} {context.os_target.id} {context.arch}"
    metadata = write_flat_repository(debs, context.arch, label, source_date_epoch())
    print(f"  proving the {len(debs)} .deb(s) install with apt from the bundle alone", file=sys.stderr, flush=True)
    prove_installable(metadata, debs, spec.packages, resolution, context.arch)  # before anything is written
    for name, data in sorted(metadata.items()):
        context.contents.add_bytes(f"{DEBS_DIR}/{name}", data)
    entries = []
    requested = set(resolution.requested)
    for entry, deb in sorted(zip(resolution.packages, debs), key=lambda pair: pair[0].name):
        path = f"{DEBS_DIR}/{deb.filename}"
        context.contents.add_file(path, deb.path, entry.sha256, entry.size)
        entries.append(Deb(entry.name, entry.version, entry.arch, path, entry.sha256, entry.size, entry.repo,
                           entry.name in requested))  # fmt: skip
    repository = DebRepository(
        path=DEBS_DIR,
        key=f"{DEBS_DIR}/{KEY_NAME}",
        install=tuple(request.apt_argument for request in spec.packages),
        install_recommends=False,
        minimal_system=tuple(f"{p.name} {p.version}" for p in sorted(resolution.base, key=lambda p: p.name)),
        repositories=tuple(
            AptSource(
                repo.spec.id,
                repo.url,
                repo.spec.suite,
                repo.spec.components,
                repo.inrelease.sha256,
                repo.key_info.fingerprint,
            )  # fmt: skip
            for repo in repos
        ),
    )
    return ManifestPart(deb_repository=repository, debs=tuple(entries))
