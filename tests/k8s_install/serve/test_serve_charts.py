"""The charts a bundle carries are a chart repository wherever the bundle is served: the real `helm` pulls and
renders them from the bundle host's web server (a real nginx serving the unpacked bundle read-only over TLS
with a certificate of the cluster CA, as `serve` sets it up) on loopback, trusting only the cluster CA."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Iterator

import pytest
import yaml

from tests.conftest import StandInRelease
from tests.support.bundle_host import Nginx, sign_server_certificate, unpacked_for_nginx
from tests.support.charts import CHART, VERSION, helm, package_chart, serve_repository
from tests.support.image_fixtures import build_bundle
from tests.support.prerequisites import require
from tests.support.registry import Registry

pytestmark = [pytest.mark.daemons, pytest.mark.root]

TOP = "k8s-bundle-1.29.6-rocky9-amd64"


@pytest.fixture
def served_folder(release: StandInRelease, registry: Registry, tmp_path: Path) -> Iterator[Path]:
    """A bundle built with the demo chart, unpacked where nginx's workers may read it (pytest's tmp is 0700)."""
    require("nginx", "openssl", "helm")
    chart = package_chart(tmp_path / "chart", f"{registry.host}/test/app:2.0", f"{registry.host}/test/busybox:1.0")
    serve_repository(release.mirror, chart)
    result = build_bundle(release, tmp_path, "--insecure-registry", registry.host, "--chart", chart.pinned_ref)
    assert result.returncode == 0, result.stderr
    with unpacked_for_nginx(tmp_path / "out" / f"{TOP}.tar", TOP, "serve-charts-") as top:
        yield top


def test_helm_pulls_and_renders_the_bundled_chart_from_the_bundle_host_over_tls(
    served_folder: Path, registry: Registry, tmp_path: Path
) -> None:
    from k8s_install.cluster.secrets import generate_secrets

    authority = generate_secrets("charts")
    certificate = sign_server_certificate(tmp_path / "tls", authority.ca_cert_pem, authority.ca_key_pem)
    ca = tmp_path / "ca.crt"
    ca.write_text(authority.ca_cert_pem)
    with Nginx(served_folder, tmp_path / "nginx", certificate) as web:
        repository = f"{web.url}/charts"
        pulled = tmp_path / "pulled"
        pulled.mkdir()
        pull = helm("pull", CHART, "--repo", repository, "--version", VERSION, "--ca-file", str(ca),
                    "--destination", str(pulled), cwd=tmp_path)  # fmt: skip
        assert pull.returncode == 0, pull.stderr
        package = pulled / f"{CHART}-{VERSION}.tgz"
        bundled = (served_folder / "charts" / package.name).read_bytes()
        assert package.read_bytes() == bundled  # helm checked it against index.yaml's digest too
        assert hashlib.sha256(bundled).hexdigest() in (served_folder / "SHA256SUMS").read_text()

        rendered = helm("template", "web", CHART, "--repo", repository, "--version", VERSION, "--ca-file", str(ca),
                        cwd=tmp_path)  # fmt: skip
        assert rendered.returncode == 0, rendered.stderr
        images = {
            container["image"]
            for document in yaml.safe_load_all(rendered.stdout)
            if document and document.get("kind") == "Deployment"
            for key in ("initContainers", "containers")
            for container in document["spec"]["template"]["spec"][key]
        }
        assert images == {f"{registry.host}/test/app:2.0", f"{registry.host}/test/busybox:1.0"}
        served = yaml.safe_load((served_folder / "bundle.yaml").read_text())
        assert images <= {image["name"] for image in served["images"]}  # the bundle carries what it runs

        (tmp_path / "untrusted").mkdir()
        untrusted = helm("pull", CHART, "--repo", repository, "--version", VERSION, "--destination",
                         str(tmp_path / "untrusted"), cwd=tmp_path)  # fmt: skip
        assert untrusted.returncode != 0 and "certificate" in untrusted.stderr  # TLS is checked, never skipped
