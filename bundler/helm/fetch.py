"""Fetch a chart's package (.tgz) by its pinned digest, from a classic chart repository or an OCI registry.

Classic: the repository's index.yaml (metadata, fetched over verified TLS) gives the package's URL and its
`digest`; the package must hash to the pin, and index.yaml must not name another digest. OCI: the manifest is
read by the pinned digest and checked against it, its config must be a Helm chart config, and its chart layer
(application/vnd.cncf.helm.chart.content.v1.tar+gzip) is fetched and checked against the digest the
manifest names. Every byte is in the cache, verified, before anything reads it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple
from urllib.parse import urljoin

import yaml

from bundler.build_context import BuildContext
from bundler.errors import BundlerError
from bundler.helm.reference import ChartRef
from bundler.oci.reference import parse_reference
from bundler.oci.registry import RegistryClient
from k8s_install.bundle_format.yaml_loader import load_yaml
from k8s_install.errors import yaml_problem

HELM_CONFIG = "application/vnd.cncf.helm.config.v1+json"
CHART_LAYER = "application/vnd.cncf.helm.chart.content.v1.tar+gzip"


@dataclass(frozen=True)
class FetchedChart:
    path: Path  # the verified .tgz in the cache
    sha256: str  # hex, of the .tgz
    size: int
    source_digest: Optional[str] = None  # OCI: the manifest digest


def needs_pin(ref: ChartRef, found: Optional[str]) -> BundlerError:
    seen = f"; the {'registry' if ref.oci else 'repository'} names {found} today" if found else ""
    return BundlerError(
        f"{ref.label} ({ref.text}) has no pinned digest: append @sha256:HEX to --chart (the digest its publisher "
        f"announces{', `helm push` prints' if ref.oci else ', index.yaml `digest`'}){seen}, or pass --lock with "
        "the bundle.yaml of a build that carried it"
    )


def _index_entry(context: BuildContext, ref: ChartRef) -> Tuple[str, Optional[str]]:
    """(the package's URL, the digest index.yaml gives) for the chart's version."""
    index_url = f"{ref.repository}/index.yaml"
    fetched = context.downloader.fetch(f"chart repository {ref.repository}", index_url, None)
    where = f"{index_url}"
    try:
        index = load_yaml(fetched.path.read_bytes())
    except yaml.YAMLError as error:
        raise BundlerError(f"{ref.label}: {where} is not valid YAML: {yaml_problem(error)}") from None
    entries = index.get("entries") if isinstance(index, dict) else None
    if not isinstance(entries, dict):
        raise BundlerError(f"{ref.label}: {where} is not a chart repository index (no entries)")
    versions: List[Dict[str, Any]] = [v for v in entries.get(ref.name) or [] if isinstance(v, dict)]
    chosen = next((v for v in versions if str(v.get("version")) == ref.version), None)
    if chosen is None:
        known = ", ".join(sorted(str(v.get("version")) for v in versions)[:10]) or "none"
        raise BundlerError(f"{ref.label}: {where} has no such chart version (versions of {ref.name}: {known})")
    urls = chosen.get("urls")
    if not isinstance(urls, list) or not urls or not isinstance(urls[0], str):
        raise BundlerError(f"{ref.label}: {where} names no URL for it")
    digest = chosen.get("digest")
    return urljoin(f"{ref.repository}/", urls[0]), (f"sha256:{digest}" if isinstance(digest, str) else None)


def fetch_classic(context: BuildContext, ref: ChartRef, pin: Optional[str]) -> FetchedChart:
    if pin is not None:
        hit = context.downloader.cached(pin.split(":", 1)[1])
        if hit is not None:  # verified when it went in: no request (offline builds with --lock)
            return FetchedChart(hit.path, hit.sha256, hit.size)
    url, announced = _index_entry(context, ref)
    if pin is None:
        raise needs_pin(ref, announced)
    if announced is not None and announced != pin:
        raise BundlerError(
            f"{ref.label}: the repository's index.yaml gives {announced}, the pin is {pin}: the chart was "
            "published again under the same version (or the pin is wrong); refused"
        )
    expected = pin.split(":", 1)[1]
    try:
        fetched = context.downloader.fetch(ref.label, url, expected)
    except BundlerError as error:
        if "checksum mismatch" not in str(error):
            raise
        raise BundlerError(
            f"{ref.label}: {url} does not match its pinned digest {pin}; refused (the repository's copy was "
            "changed, or the pin is wrong)"
        ) from None
    return FetchedChart(fetched.path, fetched.sha256, fetched.size)


def fetch_oci(client: RegistryClient, ref: ChartRef, pin: Optional[str]) -> FetchedChart:
    image = parse_reference(ref.oci_reference, f"--chart {ref.text}")
    if pin is None:
        raise needs_pin(ref, client.manifest(image).digest)
    manifest = client.manifest(image, pin)  # checked against the pin
    config = manifest.body.get("config") or {}
    if not isinstance(config, dict) or config.get("mediaType") != HELM_CONFIG:
        raise BundlerError(
            f"{ref.label}: {ref.oci_reference}@{pin} is not a Helm chart (its config is not {HELM_CONFIG})"
        )
    layers = [layer for layer in manifest.body.get("layers") or [] if isinstance(layer, dict)]
    chart = next((layer for layer in layers if layer.get("mediaType") == CHART_LAYER), None)
    if chart is None or not isinstance(chart.get("digest"), str) or not isinstance(chart.get("size"), int):
        raise BundlerError(f"{ref.label}: {ref.oci_reference}@{pin} has no chart layer ({CHART_LAYER})")
    try:
        path = client.blob(image, chart["digest"], chart["size"])
    except BundlerError as error:
        raise BundlerError(f"{ref.label}: {error}; refused") from None
    client.store_bytes(manifest.data, manifest.digest)  # a rebuild with --lock --offline finds it
    return FetchedChart(path, chart["digest"].split(":", 1)[1], chart["size"], manifest.digest)
