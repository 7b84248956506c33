"""`bundler build`: fetch and verify every artifact of a release and write one bundle tarball."""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Dict

import yaml

from bundler import __version__
from bundler.build_context import BuildContext, BuildOptions
from bundler.bundle_writer import BundleContents, write_tarball
from bundler.cache import DEFAULT_CACHE, Cache
from bundler.delta import DeltaContents, read_base
from bundler.download import Downloader
from bundler.errors import BundlerError
from bundler.manifest import load_release
from bundler.progress import human_size
from bundler.sbom import add_sbom
from bundler.signing import sign_sums
from bundler.sources.cluster import add_cluster_config
from bundler.sources.files import fetch_files
from bundler.sources.images import fetch_images
from bundler.sources.rpms import fetch_rpms
from bundler.zipapp import DEFAULT_EPOCH, build_installer
from installer.layout import BUNDLE_FORMAT, INSTALLER_NAME, MANIFEST_NAME, bundle_dir_name


def source_date_epoch() -> int:
    value = os.environ.get("SOURCE_DATE_EPOCH")
    if value is None:
        return DEFAULT_EPOCH
    if not value.isdigit():
        raise BundlerError(f"SOURCE_DATE_EPOCH must be a whole number of seconds, got {value!r}")
    return int(value)


def prepare(options: BuildOptions) -> BuildContext:
    release = load_release(options.kubernetes, options.manifest)
    os_target = release.resolve_os(options.os)
    cache = Cache(options.cache or DEFAULT_CACHE)
    try:
        cache.ensure()
    except OSError as error:
        raise BundlerError(f"cannot create the cache folder {cache.root}: {error.strerror}; choose --cache") from None
    record: Dict[str, Any] = {
        "format": BUNDLE_FORMAT,
        "kubernetes": release.kubernetes,
        "os": os_target.id,
        "os_aliases": list(os_target.aliases),
        "arch": options.arch,
        "builder": f"bundler {__version__}",
    }
    context = BuildContext(
        options=options,
        release=release,
        os_target=os_target,
        arch=options.arch,
        cache=cache,
        downloader=Downloader(cache, options.fetch),
        contents=BundleContents(),
        record=record,
    )
    release.files_for(os_target, options.arch)  # validates the arch early
    if options.lock is not None:
        context.lock = read_lock(options.lock)
    return context


def read_lock(path: Path) -> Dict[str, Any]:
    """A lock is the bundle.yaml of an earlier build: its resolved digests and RPMs become pins."""
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except OSError as error:
        raise BundlerError(f"{path}: cannot read the lock file: {error.strerror}") from None
    except yaml.YAMLError as error:
        raise BundlerError(f"{path}: the lock file is not valid YAML: {error}") from None
    if not isinstance(data, dict) or "kubernetes" not in data:
        raise BundlerError(f"{path}: not a lock file (expected the bundle.yaml of an earlier build)")
    return data


def add_installer(context: BuildContext, epoch: int, work: Path) -> None:
    pyz = build_installer(work / INSTALLER_NAME, epoch)
    from installer.verify import sha256_file

    digest = sha256_file(pyz)
    size = pyz.stat().st_size
    context.contents.add_file(INSTALLER_NAME, pyz, digest, size, executable=True)
    context.record["installer"] = {"path": INSTALLER_NAME, "version": __version__, "sha256": digest, "size": size}


def run_build(options: BuildOptions) -> int:
    started = time.monotonic()
    epoch = source_date_epoch()
    output_dir = Path(options.output)
    try:
        output_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise BundlerError(f"cannot create the output folder {output_dir}: {error.strerror}") from None
    context = prepare(options)
    base = read_base(options.extra["delta_from"]) if options.extra.get("delta_from") else None
    top = bundle_dir_name(context.release.kubernetes, context.os_target.id, context.arch)
    tarball = output_dir / (f"{top}-delta.tar" if base else f"{top}.tar")
    print(f"building {tarball.name} (cache {context.cache.root})", file=sys.stderr)
    add_cluster_config(context)  # validated before anything is downloaded
    fetch_files(context)
    fetch_images(context)
    fetch_rpms(context)
    # Further source kinds (images, RPMs) add themselves here, in this order.
    with tempfile.TemporaryDirectory(prefix="bundler-", dir=context.cache.root) as work:
        add_installer(context, epoch, Path(work))
        add_sbom(context.contents, context.record, epoch)  # after every source: it describes them all
        manifest_text = yaml.safe_dump(context.record, sort_keys=False, default_flow_style=False)
        context.contents.add_bytes(MANIFEST_NAME, manifest_text.encode())
        contents = context.contents if base is None else DeltaContents(context.contents, base, top)
        signature = sign_sums(contents.sums_text(), options.sign_key)
        sums_sha256 = write_tarball(contents, top, tarball, epoch, signature)
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
