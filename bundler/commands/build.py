"""`bundler build`: fetch and verify every artifact of a release and write one bundle tarball."""

from __future__ import annotations

import dataclasses
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List

import yaml

from bundler import __version__
from bundler.build_context import BuildContext, BuildOptions, source_date_epoch
from bundler.bundle_manifest import assemble
from bundler.bundle_writer import BundleContents, write_tarball
from bundler.cache import DEFAULT_CACHE, Cache
from bundler.completeness import Inventory, missing_parts
from bundler.delta import DeltaContents, read_base
from bundler.download import Downloader
from bundler.errors import BundlerError
from bundler.fetcher import fetch_all
from bundler.manifest import load_release
from bundler.plan import Plan, SourcePlan
from bundler.preflight import check_programs, check_space, check_writable, needed_programs, space_needs
from bundler.progress import human_size
from bundler.sbom import add_sbom
from bundler.signing import sign_sums
from bundler.sources.charts import plan_charts
from bundler.sources.cluster import add_cluster_files
from bundler.sources.debs import plan_debs
from bundler.sources.files import plan_files
from bundler.sources.images import plan_images
from bundler.sources.plain_files import plan_plain_files
from bundler.sources.rpms import plan_rpms
from bundler.zipapp import build_installer
from k8s_install.bundle_format.layout import INSTALLER_NAME, MANIFEST_NAME, bundle_dir_name
from k8s_install.bundle_format.model import BundleManifest, InstallerFile
from k8s_install.bundle_format.yaml_loader import load_yaml
from k8s_install.errors import yaml_problem
from k8s_install.report import document


def prepare(options: BuildOptions) -> BuildContext:
    release = load_release(options.kubernetes, options.manifest)
    os_target = release.resolve_os(options.os)
    cache = Cache(options.cache or DEFAULT_CACHE)
    try:
        cache.ensure()
    except OSError as error:
        raise BundlerError(f"cannot create the cache folder {cache.root}: {error.strerror}; choose --cache") from None
    check_writable(cache.partial, "--cache")
    context = BuildContext(
        options=options,
        release=release,
        os_target=os_target,
        arch=options.arch,
        cache=cache,
        downloader=Downloader(cache, options.fetch),
        contents=BundleContents(),
    )
    release.files_for(os_target, options.arch)  # validates the arch early
    if options.lock is not None:
        context.lock = lock = read_lock(options.lock)
        for field, locked, wanted in (
            ("kubernetes", lock.kubernetes, release.kubernetes),
            ("os", lock.os, os_target.id),
        ):
            if locked != wanted:
                raise BundlerError(
                    f"{options.lock}: the lock was built for {field} {locked}, this build is "
                    f"{wanted}: use the bundle.yaml of a build of the same release and OS"
                )
    return context


def read_lock(path: Path) -> BundleManifest:
    """A lock is the bundle.yaml of an earlier build: its resolved digests and RPMs become pins."""
    try:
        data = load_yaml(Path(path).read_text(encoding="utf-8"))
    except OSError as error:
        raise BundlerError(f"{path}: cannot read the lock file: {error.strerror}") from None
    except UnicodeDecodeError as error:
        raise BundlerError(f"{path}: the lock file is not UTF-8 text ({error.reason} at byte {error.start})") from None
    except yaml.YAMLError as error:
        raise BundlerError(f"{path}: the lock file is not valid YAML: {yaml_problem(error)}") from None
    if not isinstance(data, dict) or "kubernetes" not in data:
        raise BundlerError(f"{path}: not a lock file (expected the bundle.yaml of an earlier build)")
    return BundleManifest.from_mapping(data, str(path))  # the shape every bundle.yaml has


def add_installer(context: BuildContext, epoch: int, work: Path) -> InstallerFile:
    pyz = build_installer(work / INSTALLER_NAME, epoch)
    from k8s_install.bundle_format.sums import sha256_file

    digest = sha256_file(pyz)
    size = pyz.stat().st_size
    context.contents.add_file(INSTALLER_NAME, pyz, digest, size, executable=True)
    return InstallerFile(INSTALLER_NAME, digest, size, __version__)


def resolve_plan(context: BuildContext) -> Plan:
    """Read every piece of metadata (pins and sizes, repository metadata and the package solve, image
    indexes, manifests and configs) and describe every blob; nothing large is fetched yet."""
    files = plan_files(context)
    for name in context.release.images_from_files:  # small YAML files whose images are more metadata
        index = next(i for i, blob in enumerate(files.blobs) if blob.name == name)
        listed = files.blobs[index].fetch(None)
        context.fetched_files[name] = listed.path
        files.blobs[index] = dataclasses.replace(files.blobs[index], cached=True, size=listed.size)
    if context.os_target.rpms and context.release.raw.get("rpm"):
        print("  reading the RPM repositories' metadata and solving the packages", file=sys.stderr, flush=True)
    rpms = plan_rpms(context)  # before images: a bad repository fails before any registry is asked
    if context.os_target.debs and context.release.raw.get("deb"):
        print(
            "  reading the apt repositories' metadata and resolving the packages with apt", file=sys.stderr, flush=True
        )
    debs = plan_debs(context)
    if context.options.workloads.charts:
        print("  fetching the charts by their pinned digests and rendering their images", file=sys.stderr, flush=True)
    charts = plan_charts(context)  # before images: their images join the bundle's
    release = context.release
    if release.images or release.images_from_files or context.options.images.any_images or context.chart_images:
        print("  reading the image indexes, manifests and configs", file=sys.stderr, flush=True)
    images = plan_images(context)
    extra = [source for source in (rpms, debs, charts, plan_plain_files(context)) if source is not None]
    return Plan([files, images] + extra)


def missing_from(context: BuildContext, plan: Plan) -> List[str]:
    """The parts a node needs that the plan does not hold (bundler/completeness.py)."""
    by_kind: Dict[str, SourcePlan] = {source.kind: source for source in plan.sources}
    inventory = Inventory(
        os_id=context.os_target.id,
        installs_rpms=context.os_target.packaged,
        kubernetes=context.release.kubernetes,
        files=tuple(blob.name for blob in by_kind["files"].blobs),
        rpms=tuple(name for kind in ("rpms", "debs") if kind in by_kind for name in by_kind[kind].details["packages"]),
        images=tuple(by_kind["images"].details.get("images", ())),
        images_from_files=context.release.images_from_files,
    )
    return missing_parts(inventory)


def require_complete(context: BuildContext, missing: List[str]) -> None:
    """Fail listing every missing part, or with --allow-incomplete warn (bundle.yaml records them)."""
    if missing and not context.options.allow_incomplete:
        raise BundlerError(
            f"the bundle for {context.os_target.id} would be incomplete, missing: {'; '.join(missing)}; "
            f"add them to {context.release.source} (or pass --allow-incomplete for a partial bundle)"
        )
    for part in missing:
        print(f"warning: incomplete bundle (--allow-incomplete): missing {part}", file=sys.stderr)


def print_plan(context: BuildContext, tarball: Path, plan: Plan, missing: List[str], as_json: bool) -> None:
    if as_json:
        target = {"kubernetes": context.release.kubernetes, "os": context.os_target.id, "arch": context.arch}
        body = {"dry_run": True, **target, "bundle": tarball.name, **plan.as_data(), "incomplete": missing}
        print(json.dumps(document("build", body), indent=2))
        return
    for source in plan.sources:
        for blob in source.blobs:
            size = human_size(blob.size) if blob.size is not None else "size unknown"
            state = "cached" if blob.cached else "fetch"
            print(f"{blob.kind:5} {state:6} {size:>10}  {blob.places[0]}  <- {blob.urls[0]}")


def run_build(options: BuildOptions) -> int:
    started = time.monotonic()
    epoch = source_date_epoch()
    output_dir = Path(options.output)
    if not options.dry_run:
        check_writable(output_dir, "--output")  # before anything is fetched, not after
    context = prepare(options)
    programs = needed_programs(context.release, context.os_target, context.arch)
    if options.dry_run:
        programs.pop("rpmkeys", None)  # only the fetched RPMs are checked with it
        programs.pop("apt-ftparchive", None)  # only the bundle's apt repository is written with it
    check_programs(programs)
    base = read_base(options.delta_from) if options.delta_from else None
    cluster_files = add_cluster_files(context)  # validated before anything is downloaded
    cluster = cluster_files[0].cluster if cluster_files else None
    top = bundle_dir_name(context.release.kubernetes, options.os, context.arch, cluster)
    tarball = output_dir / (f"{top}-delta.tar" if base else f"{top}.tar")
    print(f"resolving {tarball.name} (cache {context.cache.root})", file=sys.stderr)
    plan = resolve_plan(context)
    for line in plan.summary_lines():
        print(line, file=sys.stderr)
    missing = missing_from(context, plan)
    if options.dry_run:
        print_plan(context, tarball, plan, missing, options.json)  # also when incomplete: the plan shows what is there
    require_complete(context, missing)
    if options.dry_run:
        return 0
    check_space(space_needs(plan, context.cache.root, output_dir, base.digests if base else frozenset()))
    fetched = fetch_all(plan, options.jobs)
    parts = [source.publish(fetched) for source in plan.sources]
    work = Path(tempfile.mkdtemp(prefix="bundler-", dir=context.cache.root))
    try:
        installer = add_installer(context, epoch, work)
        manifest = assemble(context.release, context.os_target, context.arch, parts, cluster_files, missing, installer)
        manifest = dataclasses.replace(manifest, name=top)  # the folder's name, for readers given only bundle.yaml
        add_sbom(context.contents, manifest, epoch)  # after every source: it describes them all
        context.contents.add_bytes(MANIFEST_NAME, manifest.to_yaml().encode())
        contents = context.contents if base is None else DeltaContents(context.contents, base, top)
        signature = sign_sums(contents.sums_text(), options.sign_key)
        sums_sha256 = write_tarball(contents, top, tarball, epoch, signature)
    finally:
        shutil.rmtree(work, ignore_errors=True)  # a failed cleanup never hides the error being raised
    if isinstance(contents, DeltaContents):
        print(
            f"delta over {contents.base.name}: {contents.left_out} file(s), "
            f"{human_size(contents.left_out_bytes)} left out (the base holds them)"
        )
    size = tarball.stat().st_size
    elapsed = time.monotonic() - started
    print(
        f"wrote {tarball} ({human_size(size)}, {len(contents.entries)} files, {elapsed:.1f} s)\n"
        f"SHA256SUMS sha256: {sums_sha256}  (compare on the node: sha256sum {top}/SHA256SUMS)"
    )
    return 0
