"""Cluster secrets: generated once with the secrets module, written 0600 atomically, pinned CA."""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
from pathlib import Path

import pytest
import yaml

from k8s_install.cluster.certificates import ca_cert_hash
from k8s_install.cluster.secrets import (
    ClusterSecrets,
    generate_secrets,
    load_secrets,
    parse_secrets,
    secrets_text,
    write_secrets,
)
from k8s_install.errors import InstallError

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl is needed to make the CA")


@pytest.fixture(scope="module")
def made() -> ClusterSecrets:
    return generate_secrets("seed")


def test_generated_material_has_the_shapes_kubeadm_and_keepalived_accept(made: ClusterSecrets) -> None:
    assert re.fullmatch(r"[a-z0-9]{6}\.[a-z0-9]{16}", made.bootstrap_token)
    assert re.fullmatch(r"[0-9a-f]{64}", made.certificate_key)
    assert re.fullmatch(r"[A-Za-z0-9]{8}", made.keepalived_password) and made.keepalived_password != "1111"
    assert made.token_id == made.bootstrap_token[:6]


def test_two_generations_share_nothing(made: ClusterSecrets) -> None:
    other = generate_secrets("seed")
    for field in ("bootstrap_token", "certificate_key", "keepalived_password", "ca_key_pem", "ca_cert_hash"):
        assert getattr(other, field) != getattr(made, field)


def test_the_ca_pin_equals_what_openssl_computes(made: ClusterSecrets, tmp_path: Path) -> None:
    """The documented kubeadm recipe: sha256 of the DER public key of ca.crt."""
    cert = tmp_path / "ca.crt"
    cert.write_text(made.ca_cert_pem)
    pubkey = subprocess.run(["openssl", "x509", "-in", str(cert), "-pubkey", "-noout"], capture_output=True, check=True)
    der = subprocess.run(
        ["openssl", "pkey", "-pubin", "-outform", "der"], input=pubkey.stdout, capture_output=True, check=True
    ).stdout
    import hashlib

    assert made.ca_cert_hash == "sha256:" + hashlib.sha256(der).hexdigest()


def test_the_ca_is_a_ca_kubeadm_can_use(made: ClusterSecrets, tmp_path: Path) -> None:
    cert = tmp_path / "ca.crt"
    cert.write_text(made.ca_cert_pem)
    text = subprocess.run(
        ["openssl", "x509", "-in", str(cert), "-noout", "-text"], capture_output=True, text=True, check=True
    ).stdout
    assert "Subject: CN = kubernetes" in text and "CA:TRUE" in text and "Certificate Sign" in text
    key = tmp_path / "ca.key"
    key.write_text(made.ca_key_pem)
    modulus = [
        subprocess.run(
            ["openssl", kind, "-in", str(path), "-noout", "-modulus"], capture_output=True, check=True
        ).stdout
        for kind, path in (("x509", cert), ("rsa", key))
    ]
    assert modulus[0] == modulus[1]


def test_written_once_0600_and_read_back(made: ClusterSecrets, tmp_path: Path) -> None:
    path = tmp_path / "cluster-secrets.yaml"
    write_secrets(path, made)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert sorted(os.listdir(tmp_path)) == ["cluster-secrets.yaml"]  # no temporary left behind
    loaded = load_secrets(path, "seed")
    assert loaded.secrets == made and loaded.warnings == []
    with pytest.raises(InstallError, match="secrets already exist and belong to a cluster"):
        write_secrets(path, generate_secrets("seed"))
    assert load_secrets(path, "seed").secrets == made


def test_a_readable_file_is_warned_about(made: ClusterSecrets, tmp_path: Path) -> None:
    path = tmp_path / "cluster-secrets.yaml"
    write_secrets(path, made)
    path.chmod(0o644)
    assert "readable by others (mode 0644): `chmod 600` it" in load_secrets(path, "seed").warnings[0]


def corrupt(made: ClusterSecrets, **changes: object) -> dict:
    data = yaml.safe_load(secrets_text(made))
    data.update(changes)
    return data


@pytest.mark.parametrize(
    "changes,message",
    [
        ({"cluster": "other"}, "cluster: these secrets are for cluster 'other', cluster.yaml names 'seed'"),
        (
            {"bootstrap_token": "abcdef0123456789abcdef"},
            "bootstrap_token: not in the form [a-z0-9]{6}.[a-z0-9]{16}",
        ),
        ({"certificate_key": "xyz"}, "certificate_key: not in the form 64 hex digits"),
        (
            {"keepalived_password": "far-too-long"},
            "keepalived_password: not 8 letters or digits: use 8 random letters and digits (keepalived's PASS "
            "authentication uses only the first 8 characters)",
        ),
        ({"ca_cert_hash": "sha256:" + "0" * 64}, "ca_cert_hash does not match ca_cert"),
        ({"ca_cert": "not a pem"}, "ca_cert: not a PEM certificate"),
        ({"ca_key": "nothing"}, "ca_key: not a PEM private key"),
        ({"ca_key": ""}, "ca_key: missing; restore the file from your backup copy"),
        ({"certificate_key": 12}, "certificate_key: must be a string, got int; restore the file"),
        (
            {"bootstrap_token": None, "bootstrap_tokne": "abcdef.0123456789abcdef"},
            "bootstrap_token: missing (is bootstrap_tokne a typo of it?); restore the file from your backup copy",
        ),
    ],
)
def test_damaged_secrets_are_refused_with_the_field(made: ClusterSecrets, changes: dict, message: str) -> None:
    with pytest.raises(InstallError) as caught:
        parse_secrets(corrupt(made, **changes), "cluster-secrets.yaml", "seed")
    assert f"cluster-secrets.yaml: {message}" in str(caught.value)


def test_a_file_that_is_not_utf8_or_not_yaml_is_one_line(made: ClusterSecrets, tmp_path: Path) -> None:
    path = tmp_path / "cluster-secrets.yaml"
    path.write_bytes(secrets_text(made).encode() + b"note: \xff\n")
    path.chmod(0o600)
    with pytest.raises(InstallError, match=r"secrets.yaml: not UTF-8 text \(invalid start byte\); restore it from"):
        load_secrets(path, "seed")
    path.write_text(secrets_text(made) + "note: [\n")
    with pytest.raises(InstallError, match=r"secrets.yaml: not valid YAML \(line \d+: expected the node content"):
        load_secrets(path, "seed")


def test_missing_file_says_where_it_comes_from(tmp_path: Path) -> None:
    with pytest.raises(
        InstallError, match="no secrets file; it is written with cluster.yaml by `bundler cluster init`"
    ):
        load_secrets(tmp_path / "nope.yaml", "seed")


def test_the_pin_of_a_certificate_without_version_field_still_parses(made: ClusterSecrets) -> None:
    assert ca_cert_hash(made.ca_cert_pem) == made.ca_cert_hash
    with pytest.raises(InstallError, match="truncated certificate"):
        body = "".join(made.ca_cert_pem.splitlines()[1:3])
        ca_cert_hash(f"-----BEGIN CERTIFICATE-----\n{body}\n-----END CERTIFICATE-----\n")


def test_worker_secrets_hold_only_the_join(tmp_path: Path) -> None:
    from k8s_install.cluster.secrets import worker_secrets

    made = generate_secrets("seed")
    path = tmp_path / "cluster-secrets-worker.yaml"
    write_secrets(path, worker_secrets(made))
    text = path.read_text()
    assert made.bootstrap_token in text and made.ca_cert_hash in text
    for secret in (made.certificate_key, made.keepalived_password, made.ca_key_pem.splitlines()[1]):
        assert secret not in text
    loaded = load_secrets(path, "seed").secrets
    assert loaded.is_worker_only and loaded.ca_cert_hash == made.ca_cert_hash and loaded.ca_key_pem == ""


@pytest.mark.parametrize(
    "password,why",
    [
        ("1111", "only 4 character(s)"),  # the seed's: the regression
        ("Ab3d", "only 4 character(s)"),
        ("12345678", "a guessable password"),
        ("Password", "a guessable password"),
        ("aaaabbbb", "a guessable password"),
        ("abcdefgh", "a guessable password"),
        ("hgfedcba", "a guessable password"),
        ("Xy7pQ2mZextra", "13 characters, of which keepalived uses only the first 8"),
        ("Xy7pQ2m!", "not 8 letters or digits"),
    ],
)
def test_weak_vrrp_passwords_are_refused(made: ClusterSecrets, password: str, why: str) -> None:
    with pytest.raises(InstallError) as caught:
        parse_secrets(corrupt(made, keepalived_password=password), "cluster-secrets.yaml", "seed")
    assert str(caught.value).startswith(f"cluster-secrets.yaml: keepalived_password: {why}: use 8 random letters")
    assert "only the first 8 characters" in str(caught.value)


def test_a_random_password_is_accepted(made: ClusterSecrets) -> None:
    assert parse_secrets(corrupt(made, keepalived_password="Xy7pQ2mZ"), "s", "seed").keepalived_password == "Xy7pQ2mZ"


SIGNERS = "ops@example.org ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKaOJfMo+LYD/c4W2n9wp7PK+SkL0oKfdT9JONXQhBhA\n"


def test_trusted_signers_travel_in_both_secrets_files_and_survive_a_rewrite(
    made: ClusterSecrets, tmp_path: Path
) -> None:
    """`cluster init --trusted-signers`: the allowed_signers lines are kept as written in both files, and the
    control plane's installed copy (written with secrets_text) keeps them."""
    import dataclasses

    from k8s_install.cluster.secrets import recorded_signers, worker_secrets

    signed = dataclasses.replace(made, trusted_signers=SIGNERS)
    for name, secrets in (("full.yaml", signed), ("worker.yaml", worker_secrets(signed))):
        path = tmp_path / name
        write_secrets(path, secrets)
        assert yaml.safe_load(path.read_text())["trusted_signers"] == SIGNERS
        loaded = load_secrets(path, "seed").secrets
        assert loaded.trusted_signers == SIGNERS
        assert secrets_text(loaded) == path.read_text()
        found = recorded_signers(path)
        assert found is not None and found.text == SIGNERS and found.source == f"{path}: trusted_signers"
    plain = tmp_path / "plain.yaml"
    write_secrets(plain, made)
    assert "trusted_signers" not in plain.read_text() and recorded_signers(plain) is None


@pytest.mark.parametrize(
    "text,message",
    [
        ("ssh-ed25519 AAAAC3Nza ops\n", "line 1: starts with the key type; an allowed_signers line starts with"),
        ("# only a comment\n", "no trusted signer in it"),
        ("-----BEGIN OPENSSH PRIVATE KEY-----\n", "line 1: a private key"),
        ("ops@example.org\n", "line 1: no public key"),
    ],
)
def test_bad_trusted_signers_are_refused(made: ClusterSecrets, text: str, message: str) -> None:
    with pytest.raises(InstallError) as caught:
        parse_secrets(corrupt(made, trusted_signers=text), "cluster-secrets.yaml", "seed")
    assert str(caught.value).startswith("cluster-secrets.yaml: trusted_signers")
    assert message in str(caught.value)


def test_cluster_init_records_trusted_signers(tmp_path: Path) -> None:
    from tests.conftest import run_bundler

    signers = tmp_path / "allowed_signers"
    signers.write_text(SIGNERS)
    result = run_bundler(
        "cluster", "init", "--dir", str(tmp_path / "c"), "--k8s", "1.29.6", "--trusted-signers", str(signers)
    )
    assert result.returncode == 0, result.stderr
    assert "recorded the trusted signers" in result.stdout
    for name in ("cluster-secrets.yaml", "cluster-secrets-worker.yaml"):
        assert yaml.safe_load((tmp_path / "c" / name).read_text())["trusted_signers"] == SIGNERS
    bare = tmp_path / "key.pub"
    bare.write_text(SIGNERS.split(" ", 1)[1])
    refused = run_bundler(
        "cluster", "init", "--dir", str(tmp_path / "d"), "--k8s", "1.29.6", "--trusted-signers", str(bare)
    )
    assert refused.returncode == 1 and "starts with the key type" in refused.stderr
    assert not (tmp_path / "d").exists() or not any((tmp_path / "d").iterdir())
