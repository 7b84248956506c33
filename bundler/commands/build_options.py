"""`bundler build`'s command line read into BuildOptions: what the build needs, named, with the cluster file's
Kubernetes version when --k8s is not given."""

from __future__ import annotations

import argparse

from bundler.build_context import BuildOptions, ImageOptions, RpmOptions, WorkloadOptions
from bundler.download import FetchOptions


def image_options(args: argparse.Namespace) -> ImageOptions:
    return ImageOptions(
        images=tuple(args.image),
        image_files=tuple(args.image_file),
        registry_auth=tuple(args.registry_auth),
        insecure_registries=tuple(args.insecure_registry),
        registry_mirrors=tuple(args.registry_mirror),
    )


def options_from_arguments(args: argparse.Namespace) -> BuildOptions:
    """The parsed (and checked) arguments of `bundler build`; the signing key is opened here, before any
    download, so a wrong key stops the build first."""
    from bundler.signing import open_sign_key
    from bundler.sources.cluster import cluster_kubernetes

    kubernetes = args.kubernetes
    if not kubernetes and args.cluster and not args.manifest:  # --k8s wins; else the cluster file names it
        kubernetes = cluster_kubernetes(args.cluster)
    return BuildOptions(
        kubernetes=kubernetes,
        arch=args.arch,
        os=args.os,
        output=args.output,
        cache=args.cache,
        jobs=args.jobs,
        manifest=args.manifest,
        allow_unpinned=args.allow_unpinned,
        lock=args.lock,
        cluster=args.cluster,
        sign_key=open_sign_key(args.sign_key) if args.sign_key else None,
        fetch=FetchOptions(
            mirror=args.mirror,
            timeout=args.timeout,
            retries=args.retries,
            ca_bundle=args.ca_file,
            offline=args.offline,
        ),
        dry_run=args.dry_run,
        json=args.json,
        allow_incomplete=args.allow_incomplete,
        images=image_options(args),
        rpms=RpmOptions(closure=args.rpm_closure, mirror=args.rpm_mirror),
        delta_from=args.delta_from,
        workloads=WorkloadOptions(
            charts=tuple(args.chart), chart_values=tuple(args.chart_values), files=tuple(args.plain_file)
        ),
    )
