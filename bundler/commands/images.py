"""`bundler images push BUNDLE REGISTRY`: a bundle's images into a registry, read from the tarball in place."""

from __future__ import annotations

import argparse

from k8s_install.bundle_format.opened import open_bundle
from k8s_install.images.push import DEFAULT_CHUNK, PushOptions, push_bundle, summary


def run_push(args: argparse.Namespace) -> int:
    options = PushOptions(
        registry=args.registry, prefix=args.prefix, ca_file=args.ca_file, auth_file=args.auth_file,
        plain_http=args.plain_http, chunk_size=args.chunk_size or DEFAULT_CHUNK,
    )  # fmt: skip
    with open_bundle(args.bundle) as bundle:  # every byte pushed is checked against SHA256SUMS first
        print(f"pushing the images of {args.bundle} to {args.registry}")
        report = push_bundle(bundle, options)
    print(summary(report, args.registry))
    return 0
