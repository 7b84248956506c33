"""A cluster.yaml in the real format and its secrets (made once per test session: openssl makes a CA)."""

from __future__ import annotations

from pathlib import Path
from typing import Dict, List

import pytest
import yaml

from k8s_install.cluster.secrets import ClusterSecrets, generate_secrets, worker_secrets, write_secrets

CLUSTER_NAME = "it"
SUBNET = "10.213.7"


def cluster_document(nodes: List[Dict[str, str]], name: str = CLUSTER_NAME) -> dict:
    return {
        "name": name,
        "kubernetes_version": "1.29.6",
        "api": {"vip": f"{SUBNET}.240", "port": 8443},
        "networks": {"nodes": f"{SUBNET}.0/24", "pods": "10.244.0.0/16", "services": "10.96.0.0/12"},
        "nodes": nodes,
    }


SEED_NODES = [
    {"name": "k8s-mn01", "ip": f"{SUBNET}.11", "role": "control-plane"},
    {"name": "k8s-mn02", "ip": f"{SUBNET}.22", "role": "control-plane"},
    {"name": "k8s-mn03", "ip": f"{SUBNET}.33", "role": "control-plane"},
    {"name": "k8s-wn01", "ip": f"{SUBNET}.100", "role": "worker"},
]


@pytest.fixture(scope="session")
def cluster_secrets() -> ClusterSecrets:
    return generate_secrets(CLUSTER_NAME)


def write_cluster(directory: Path, secrets: ClusterSecrets, nodes: List[Dict[str, str]] = SEED_NODES) -> Path:
    """cluster.yaml and, beside it, cluster-secrets.yaml (0600); returns the cluster.yaml path."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "cluster.yaml"
    path.write_text(yaml.safe_dump(cluster_document(nodes), sort_keys=False))
    secrets_file = directory / "cluster-secrets.yaml"
    if not secrets_file.exists():
        write_secrets(secrets_file, secrets)
        write_secrets(directory / "cluster-secrets-worker.yaml", worker_secrets(secrets))
    return path
