"""`bundler hosts`: every host a build contacts, from the release manifest alone (no network), for a firewall
or proxy request.

It is its own command rather than `build --dry-run --offline`: a dry run resolves every tag and solves the
RPMs, which needs the network (or a cache that already holds everything), while the hosts follow from the
manifest and the options that redirect traffic (--mirror, --rpm-mirror, --registry-mirror). The one thing
the manifest cannot say offline is which images an `images_from_files` artifact (calico-typha.yaml) names:
they are read from the cache when it holds the pinned file, else the list says so.

Upstream hosts answer some requests with a redirect to a CDN; those known targets are listed with the host
that redirects, as `redirect` (they change over time, rarely).
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple
from urllib.parse import urlsplit

from bundler import paths
from bundler.cache import DEFAULT_CACHE, Cache
from bundler.checksums import load_pins
from bundler.deb.spec import deb_spec
from bundler.download import mirrored_url
from bundler.manifest import OsTarget, Release
from bundler.oci.reference import ImageRef, parse_reference
from bundler.oci.transport import RegistryOptions, endpoint_for, parse_mirrors
from bundler.rpm.spec import rpm_spec
from bundler.sources.image_list import images_in_yaml, read_image_file
from k8s_install.report import document

# Where upstream hosts redirect downloads (seen 2024-2026); a firewall that allows by name needs them too.
KNOWN_REDIRECTS: Dict[str, Tuple[str, ...]] = {
    "github.com": ("objects.githubusercontent.com", "release-assets.githubusercontent.com"),
    "dl.k8s.io": ("cdn.dl.k8s.io",),
    "pkgs.k8s.io": ("prod-cdn.packages.k8s.io",),
    "registry-1.docker.io": ("auth.docker.io", "production.cloudflare.docker.com"),
    "registry.k8s.io": ("*.pkg.dev", "prod-registry-k8s-io-*.s3.dualstack.*.amazonaws.com"),
    "quay.io": ("cdn.quay.io", "cdn01.quay.io", "cdn02.quay.io", "cdn03.quay.io"),
}


@dataclass
class Host:
    name: str  # host[:port] as in the URL
    scheme: str
    uses: List[str] = field(default_factory=list)
    redirect_from: Optional[str] = None

    @property
    def port(self) -> int:
        parsed = urlsplit(f"{self.scheme}://{self.name}")
        return parsed.port or (443 if self.scheme == "https" else 80)

    def as_data(self) -> Dict[str, Any]:
        host = urlsplit(f"{self.scheme}://{self.name}").hostname or self.name
        data: Dict[str, Any] = {"host": host, "port": self.port, "scheme": self.scheme, "for": self.uses}
        if self.redirect_from:
            data["redirect_from"] = self.redirect_from
        return data


@dataclass
class HostsRequest:
    release: Release
    os_target: OsTarget
    arch: str
    mirror: Optional[str] = None
    rpm_mirror: Optional[str] = None
    registry: RegistryOptions = field(default_factory=RegistryOptions)
    images: List[str] = field(default_factory=list)
    image_files: List[str] = field(default_factory=list)
    cache: Optional[Path] = None
    charts: List[str] = field(default_factory=list)  # --chart REF
    files: List[str] = field(default_factory=list)  # --file SRC[=NAME]: its https URL, if it is one


class HostList:
    def __init__(self) -> None:
        self.hosts: Dict[Tuple[str, str], Host] = {}
        self.unknown: List[str] = []

    def add(self, url: str, use: str) -> None:
        parts = urlsplit(url)
        key = (parts.scheme, parts.netloc)
        host = self.hosts.setdefault(key, Host(parts.netloc, parts.scheme))
        if use not in host.uses:
            host.uses.append(use)

    def add_redirects(self) -> None:
        for _scheme, name in list(self.hosts):
            for target in KNOWN_REDIRECTS.get(name, ()):
                key = ("https", target)
                self.hosts.setdefault(key, Host(target, "https", ["redirect"], redirect_from=name))

    def ordered(self) -> List[Host]:
        return sorted(self.hosts.values(), key=lambda h: (h.redirect_from is not None, h.name, h.scheme))


def collect_hosts(request: HostsRequest) -> HostList:
    found = HostList()
    release, target = request.release, request.os_target
    for artifact in release.files_for(target, request.arch):
        found.add(mirrored_url(artifact.url, request.mirror), f"file {artifact.name}")
    spec = rpm_spec(release.raw, target.id, str(release.source)) if target.rpms else None
    for repo in spec.repositories if spec is not None else ():
        found.add(mirrored_url(repo.url_for(request.arch, request.rpm_mirror), request.mirror), f"rpm {repo.id}")
        if repo.gpgkey:
            found.add(mirrored_url(repo.gpgkey, request.mirror), f"rpm {repo.id} key")
    debs = deb_spec(release.raw, target.id, str(release.source)) if target.debs else None
    for apt_repo in debs.repositories if debs is not None else ():
        found.add(mirrored_url(apt_repo.url_for(request.arch), request.mirror), f"deb {apt_repo.id}")
        found.add(mirrored_url(apt_repo.key, request.mirror), f"deb {apt_repo.id} key")
    for ref in _images(request, found):
        endpoint = endpoint_for(ref, request.registry)
        found.add(endpoint.base, f"image {ref.name}")
    _workloads(request, found)
    found.add_redirects()
    return found


def _workloads(request: HostsRequest, found: HostList) -> None:
    """The charts' repositories or registries and the plain files' URLs; what a chart's index.yaml and
    templates name (its package's host, its images' registries) is only known once they are read."""
    from bundler.helm.reference import parse_chart_reference
    from bundler.sources.plain_files import parse_file_request

    for text in request.charts:
        chart = parse_chart_reference(text)
        if chart.oci:
            image = parse_reference(chart.oci_reference, f"--chart {text}")
            found.add(endpoint_for(image, request.registry).base, f"chart {chart.name}")
        else:
            found.add(mirrored_url(f"{chart.repository}/index.yaml", request.mirror), f"chart {chart.name}")
            found.unknown.append(
                f"the host of chart {chart.name}'s package, as its repository's index.yaml names it (often the "
                "repository's own host)"
            )
        found.unknown.append(
            f"the registries of the images chart {chart.name} runs (`helm template` finds them while the build plans)"
        )
    for text in request.files:
        wanted = parse_file_request(text)
        if wanted.is_url:
            found.add(mirrored_url(wanted.source, request.mirror), f"file {wanted.name}")


def _images(request: HostsRequest, found: HostList) -> List[ImageRef]:
    release = request.release
    texts = [(text, f"{release.source}: images") for text in release.images]
    for name in release.images_from_files:
        listed = _cached_artifact_text(request, name)
        if listed is None:
            found.unknown.append(
                f"the registries of the images named in {name} (not in the cache yet: a first `bundler build "
                f"--dry-run` fetches it; for Calico they are docker.io or quay.io)"
            )
            continue
        texts += [(image, f"artifact {name}") for image in images_in_yaml(listed, f"artifact {name}")]
    texts += [(text, "--image") for text in request.images]
    for file_name in request.image_files:
        texts += [(text, f"--image-file {file_name}") for text in read_image_file(Path(file_name))]
    refs: Dict[str, ImageRef] = {}
    for text, where in texts:
        ref = parse_reference(text, where)
        refs.setdefault(ref.name, ref)
    return list(refs.values())


def _cached_artifact_text(request: HostsRequest, name: str) -> Optional[str]:
    release = request.release
    pins = load_pins(paths.checksums_path(release.kubernetes))
    cache = Cache(request.cache or DEFAULT_CACHE)
    for artifact in release.files_for(request.os_target, request.arch):
        if artifact.name == name:
            digest = artifact.inline_sha256 or pins.get(artifact.url)
            path = cache.lookup(digest) if digest else None
            return path.read_text(encoding="utf-8", errors="replace") if path is not None else None
    return None


def request_from_arguments(args: argparse.Namespace) -> HostsRequest:
    """`bundler hosts`'s options (those it shares with build mean what they mean there)."""
    from bundler.manifest import load_release
    from bundler.sources.cluster import cluster_kubernetes

    kubernetes = args.kubernetes or (cluster_kubernetes(args.cluster) if args.cluster and not args.manifest else None)
    release = load_release(kubernetes, args.manifest)
    insecure = frozenset(args.insecure_registry)
    return HostsRequest(
        release=release,
        os_target=release.resolve_os(args.os),
        arch=args.arch,
        mirror=args.mirror,
        rpm_mirror=args.rpm_mirror,
        registry=RegistryOptions(insecure=insecure, mirrors=parse_mirrors(args.registry_mirror, insecure)),
        images=args.image,
        image_files=args.image_file,
        cache=args.cache,
        charts=args.chart,
        files=args.plain_file,
    )


def run_hosts(request: HostsRequest, as_json: bool) -> int:
    found = collect_hosts(request)
    hosts = found.ordered()
    if as_json:
        body = {
            "kubernetes": request.release.kubernetes,
            "os": request.os_target.id,
            "arch": request.arch,
            "hosts": [host.as_data() for host in hosts],
            "unknown": found.unknown,
        }
        print(json.dumps(document("hosts", body), indent=2))
        return 0
    for host in hosts:
        data = host.as_data()
        uses = f"redirect from {host.redirect_from}" if host.redirect_from else _summary(host.uses)
        print(f"{data['host']:40} {data['scheme']}/{data['port']:<5}  {uses}")
    for note in found.unknown:
        print(f"not known offline: {note}", file=sys.stderr)
    print(
        "through a proxy: set HTTPS_PROXY (and HTTP_PROXY for http:// hosts); NO_PROXY lists hosts reached directly",
        file=sys.stderr,
    )
    return 0


def _summary(uses: List[str]) -> str:
    kinds: Dict[str, List[str]] = {}
    for use in uses:
        kind, _, what = use.partition(" ")
        kinds.setdefault(kind, []).append(what.rsplit("/", 1)[-1] if kind == "image" else what)
    parts = []
    for kind, names in kinds.items():
        shown = ", ".join(names[:4]) + (f" and {len(names) - 4} more" if len(names) > 4 else "")
        parts.append(f"{kind}s: {shown}" if len(names) > 1 else f"{kind} {shown}")
    return "; ".join(parts)
