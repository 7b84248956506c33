"""cluster.yaml `registry:` and the pull account in the secrets: what is accepted, and the one line each
mistake gets."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any, Dict

import pytest
import yaml

from k8s_install.cluster.config import load_cluster_config
from k8s_install.cluster.model import SiteRegistry
from k8s_install.cluster.secrets import (
    generate_secrets,
    load_secrets,
    parse_secrets,
    secrets_text,
    worker_secrets,
)
from k8s_install.errors import ErrorList, InstallError
from tests.support.cluster import load, seed_data


def with_registry(**fields: Any) -> Dict[str, Any]:
    return seed_data(registry=fields)


def test_without_registry_the_config_has_none() -> None:
    assert load(seed_data()).registry is None


def test_a_registry_reads_as_values() -> None:
    config = load(with_registry(endpoint="Harbor.Site.LAN:443", ca_file="site-ca.pem", prefix="/mirror/k8s/"))
    assert config.registry == SiteRegistry(endpoint="harbor.site.lan:443", ca_file="site-ca.pem", prefix="mirror/k8s")
    assert load(with_registry(endpoint="10.0.0.5")).registry == SiteRegistry("10.0.0.5")


@pytest.mark.parametrize(
    "fields, message",
    [
        ({}, "registry.endpoint: is required"),
        ({"endpoint": "https://harbor.site.lan"}, "registry.endpoint: 'https://harbor.site.lan': no scheme or path"),
        ({"endpoint": "harbor.site.lan/k8s"}, "registry.endpoint: 'harbor.site.lan/k8s': no scheme or path"),
        ({"endpoint": "harbor_site:443"}, "registry.endpoint: 'harbor_site:443' is not a host name or IP address"),
        ({"endpoint": "harbor:70000"}, "registry.endpoint: port 70000 is not from 1 to 65535"),
        ({"endpoint": "h:5000", "ca_file": "/etc/pki/ca.pem"}, "registry.ca_file: '/etc/pki/ca.pem': give the file"),
        ({"endpoint": "h:5000", "ca_file": "../ca.pem"}, "registry.ca_file: '../ca.pem': give the file name"),
        ({"endpoint": "h:5000", "ca_file": "ca.key"}, "registry.ca_file: 'ca.key': give the file name"),
        ({"endpoint": "h:5000", "prefix": "Mirror"}, "registry.prefix: 'Mirror': use lowercase letters"),
        ({"endpoint": "h:5000", "password": "x"}, "registry.password: credentials never go in cluster.yaml"),
        ({"endpoint": "h:5000", "mirrors": ["x"]}, "registry.mirrors: unknown field; allowed here: endpoint, ca_file"),
    ],
)
def test_each_mistake_gets_one_line_naming_the_field(fields: Dict[str, Any], message: str) -> None:
    with pytest.raises(ErrorList) as raised:
        load(with_registry(**fields))
    assert any(line.startswith(f"cluster.yaml: {message}") for line in raised.value.errors), raised.value.errors


def test_a_registry_that_is_not_a_mapping() -> None:
    with pytest.raises(ErrorList, match="registry: must be a mapping with the fields endpoint, ca_file, prefix"):
        load(seed_data(registry="harbor:443"))


def make_ca(folder: Path, name: str = "site-ca") -> Path:
    key, cert = folder / f"{name}.key", folder / f"{name}.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=site test CA",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert


def write_config(folder: Path, **registry: Any) -> Path:
    path = folder / "cluster.yaml"
    path.write_text(yaml.safe_dump(seed_data(registry=registry)))
    return path


def test_the_ca_file_is_read_beside_cluster_yaml(tmp_path: Path) -> None:
    ca = make_ca(tmp_path)
    config = load_cluster_config(write_config(tmp_path, endpoint="h:5000", ca_file=ca.name), "1.29.6").config
    assert config.registry is not None and config.registry.ca_pem == ca.read_text()


@pytest.mark.parametrize(
    "content, message",
    [
        (
            None,
            r"registry.ca_file: .*/site-ca.pem: no such file; put the registry's CA certificate beside cluster.yaml",
        ),
        ("not a certificate\n", r"registry.ca_file: .*: no PEM certificate \(-----BEGIN CERTIFICATE-----\) in it"),
        (
            "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
            r"registry.ca_file: .*: not a readable PEM certificate; ask the registry's owners",
        ),
        ("key", r"registry.ca_file: .* holds a private key; give only the CA certificate \(it travels in the bundle\)"),
    ],
)
def test_a_bad_ca_file_is_one_line(tmp_path: Path, content: Any, message: str) -> None:
    path = write_config(tmp_path, endpoint="h:5000", ca_file="site-ca.pem")
    if content == "key":
        cert = make_ca(tmp_path, "other")
        content = cert.read_text() + (tmp_path / "other.key").read_text()
    if content is not None:
        (tmp_path / "site-ca.pem").write_text(content)
    with pytest.raises(InstallError, match=f"^{path}: {message}"):
        load_cluster_config(path, "1.29.6")


# -- the pull account, in the secrets files ---------------------------------------------------------------


def test_the_account_travels_in_both_secrets_files(tmp_path: Path) -> None:
    import dataclasses

    full = dataclasses.replace(generate_secrets("seed"), registry_username="puller", registry_password='p"w\\d')
    for secrets in (full, worker_secrets(full)):
        path = tmp_path / f"{secrets.scope}.yaml"
        path.write_text(secrets_text(secrets))
        path.chmod(0o600)
        loaded = load_secrets(path, "seed").secrets
        assert (loaded.registry_username, loaded.registry_password) == ("puller", 'p"w\\d')
    plain = generate_secrets("seed")
    assert "registry_" not in secrets_text(plain)  # no account: the files are as before


@pytest.mark.parametrize(
    "fields, message",
    [
        ({"registry_username": "puller"}, "registry_password: missing; the site registry's account needs both"),
        ({"registry_password": "pw"}, "registry_username: missing"),
        ({"registry_username": ["a"], "registry_password": "pw"}, "registry_username: must be a string"),
        ({"registry_username": "a", "registry_password": "pw\n"}, "registry_password: has spaces at its ends"),
    ],
)
def test_a_half_or_malformed_account_is_refused(fields: Dict[str, Any], message: str) -> None:
    data = yaml.safe_load(secrets_text(generate_secrets("seed")))
    data.update(fields)
    with pytest.raises(InstallError, match=f"^secrets.yaml: {message}"):
        parse_secrets(data, "secrets.yaml", "seed")
