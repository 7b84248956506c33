"""`--chart REF`: which chart, which version, and the digest it is pinned by.

- A classic chart repository: `https://REPO/NAME@VERSION[@sha256:HEX]` (the repository's index.yaml gives the
  package's URL; HEX is the sha256 of the .tgz, what index.yaml's `digest` holds).
- An OCI registry: `oci://HOST/PATH/NAME:VERSION[@sha256:HEX]` (HEX: the chart's manifest digest, as
  `helm push` prints it).

The digest is what pins the chart: without one the build stops and says where to find it (or it comes from
`--lock`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Optional

from bundler.errors import BundlerError

FORMS = "https://REPO/NAME@VERSION@sha256:HEX or oci://HOST/PATH/NAME:VERSION@sha256:HEX"
_NAME = r"[A-Za-z0-9][A-Za-z0-9._-]*"
_VERSION = r"v?[0-9][A-Za-z0-9.+_-]*"
_DIGEST = r"sha256:[0-9a-f]{64}"
CLASSIC = re.compile(
    rf"^(?P<repo>https://[^\s@]+)/(?P<name>{_NAME})@(?P<version>{_VERSION})(?:@(?P<digest>{_DIGEST}))?$"
)
OCI = re.compile(rf"^oci://(?P<repo>[^\s@]+)/(?P<name>{_NAME}):(?P<version>{_VERSION})(?:@(?P<digest>{_DIGEST}))?$")


@dataclass(frozen=True)
class ChartRef:
    text: str  # as the operator wrote it
    oci: bool
    repository: str  # https://REPO, or HOST/PATH (without oci://)
    name: str
    version: str
    digest: Optional[str] = None  # sha256:HEX; None until pinned

    @property
    def label(self) -> str:
        return f"chart {self.name} {self.version}"

    @property
    def source(self) -> str:
        """Where it comes from, as bundle.yaml records it (and a lock matches it by)."""
        return f"oci://{self.repository}/{self.name}" if self.oci else self.repository

    @property
    def oci_reference(self) -> str:
        """HOST/PATH/NAME:TAG as a registry names it (a `+` of the version is `_` in an OCI tag, as helm pushes)."""
        return f"{self.repository}/{self.name}:{self.version.replace('+', '_')}"


def parse_chart_reference(text: str) -> ChartRef:
    stripped = text.strip()
    for oci, pattern in ((True, OCI), (False, CLASSIC)):
        match = pattern.match(stripped)
        if match:
            return ChartRef(
                stripped, oci, match.group("repo").rstrip("/"), match.group("name"), match.group("version"),
                match.group("digest"),
            )  # fmt: skip
    if stripped.startswith("http://"):
        raise BundlerError(f"--chart {text}: plain http is not accepted for a chart repository; use https")
    raise BundlerError(f"--chart {text}: expected {FORMS}")
