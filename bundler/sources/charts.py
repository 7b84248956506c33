"""Helm charts (`bundler build --chart REF`) into charts/, a chart repository the bundle host serves.

While the build plans, each chart's package is fetched by its pinned digest and verified (bundler/helm/fetch.py),
then rendered with `helm template` and the operator's values (`--chart-values [NAME=]FILE`) to find the
images it runs; those join the bundle's images like `--image` (same OCI layout, same SBOM entries). The
packages are small and already in the cache when the plan is shown. Publishing adds each package as
charts/NAME-VERSION.tgz and writes charts/index.yaml (relative URLs), all listed in SHA256SUMS and
recorded in bundle.yaml `charts:`.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Tuple

from bundler.build_context import BuildContext, source_date_epoch
from bundler.bundle_manifest import ManifestPart
from bundler.download import Fetched
from bundler.errors import BundlerError
from bundler.helm.fetch import FetchedChart, fetch_classic, fetch_oci
from bundler.helm.reference import ChartRef, parse_chart_reference
from bundler.helm.render import chart_images, chart_metadata, helm_binary, repository_index
from bundler.oci.reference import parse_reference
from bundler.oci.registry import RegistryClient
from bundler.plan import Blob, ProgressCallback, SourcePlan
from k8s_install.bundle_format.layout import CHART_INDEX, CHARTS_DIR
from k8s_install.bundle_format.model import Chart

KIND = "charts"


@dataclass(frozen=True)
class ResolvedChart:
    ref: ChartRef
    fetched: FetchedChart
    metadata: Dict[str, Any]
    images: Tuple[str, ...]

    @property
    def file_name(self) -> str:
        return f"{self.ref.name}-{self.ref.version}.tgz"

    @property
    def path(self) -> str:
        return f"{CHARTS_DIR}/{self.file_name}"


def chart_values(context: BuildContext, refs: List[ChartRef]) -> Dict[str, List[Path]]:
    """Chart name -> its values files, in the order given: `NAME=FILE` for one chart, `FILE` for every chart."""
    names = {ref.name for ref in refs}
    found: Dict[str, List[Path]] = {name: [] for name in names}
    for text in context.options.workloads.chart_values:
        name, _, file_name = text.partition("=") if "=" in text and not Path(text).exists() else ("", "", text)
        if name and name not in names:
            charts = ", ".join(sorted(names))
            raise BundlerError(f"--chart-values {text}: no --chart is named {name} (charts: {charts})")
        path = Path(file_name)
        if not path.is_file():
            raise BundlerError(f"--chart-values {text}: {file_name}: no such file")
        for chart in [name] if name else sorted(names):
            found[chart].append(path)
    return found


def lock_pin(context: BuildContext, ref: ChartRef) -> Optional[str]:
    """The digest the --lock bundle.yaml recorded for this chart (same source, name and version)."""
    if context.lock is None:
        return None
    for chart in context.lock.charts:
        if (chart.source, chart.name, chart.version) == (ref.source, ref.name, ref.version):
            return chart.source_digest if ref.oci else f"sha256:{chart.sha256}"
    return None


def requested_charts(context: BuildContext) -> List[ChartRef]:
    refs = [parse_chart_reference(text) for text in context.options.workloads.charts]
    seen: Dict[Tuple[str, str], str] = {}
    for ref in refs:
        key = (ref.name, ref.version)
        if key in seen:
            raise BundlerError(
                f"--chart {ref.text}: {ref.name} {ref.version} is already given by --chart {seen[key]}; give it once"
            )
        seen[key] = ref.text
    return refs


def resolve_chart(
    context: BuildContext, client: Optional[RegistryClient], ref: ChartRef, values: List[Path]
) -> ResolvedChart:
    pin = ref.digest or lock_pin(context, ref)
    if ref.oci:
        assert client is not None
        fetched = fetch_oci(client, ref, pin)
    else:
        fetched = fetch_classic(context, ref, pin)
    metadata = chart_metadata(fetched.path, ref.label, ref.name, ref.version)
    found = chart_images(fetched.path, ref.label, context.release.kubernetes, values)
    images = tuple(sorted({parse_reference(image, f"{ref.label}: image").name for image in found}))
    return ResolvedChart(ref, fetched, metadata, images)


def _already_fetched(chart: FetchedChart, _progress: Optional[ProgressCallback]) -> Fetched:
    return Fetched(chart.path, chart.sha256, chart.size, True)


def plan_charts(context: BuildContext) -> Optional[SourcePlan]:
    refs = requested_charts(context)
    if not refs:
        return None
    helm_binary()  # before anything is fetched: a build that cannot render its charts says so first
    values = chart_values(context, refs)
    client = None
    if any(ref.oci for ref in refs):
        from bundler.sources.images import registry_options

        client = RegistryClient(context.cache, registry_options(context))
    resolved = [resolve_chart(context, client, ref, values[ref.name]) for ref in refs]
    for chart in resolved:
        context.chart_images.extend((image, chart.ref.label) for image in chart.images)
    blobs = [
        Blob(
            kind="chart",
            name=chart.ref.label,
            urls=(chart.ref.source,),
            digest=chart.fetched.sha256,
            algorithm="sha256",
            size=chart.fetched.size,
            places=(chart.path,),
            cached=True,
            fetch=partial(_already_fetched, chart.fetched),
        )  # fmt: skip
        for chart in resolved
    ]

    def publish(fetched: Mapping[str, Fetched]) -> ManifestPart:
        entries = []
        for chart, blob in zip(resolved, blobs):
            result = fetched[blob.key]
            context.contents.add_file(chart.path, result.path, result.sha256, result.size)
            entries.append(
                Chart(
                    name=chart.ref.name,
                    version=chart.ref.version,
                    path=chart.path,
                    sha256=result.sha256,
                    size=result.size,
                    source=chart.ref.source,
                    source_digest=chart.fetched.source_digest,
                    images=chart.images,
                )  # fmt: skip
            )
        index = [(chart.metadata, chart.file_name, chart.fetched.sha256) for chart in resolved]
        context.contents.add_bytes(CHART_INDEX, repository_index(index, source_date_epoch()))
        return ManifestPart(charts=tuple(entries))

    return SourcePlan(KIND, blobs, publish, {"charts": [f"{c.ref.name} {c.ref.version}" for c in resolved]})
