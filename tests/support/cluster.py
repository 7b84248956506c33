"""Test helpers for the cluster: the seed's 3+2 layout as data, loaded the way nodes load it."""

from __future__ import annotations

import copy
import subprocess
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import yaml

from k8s_install.cluster.config import parse_cluster_config
from k8s_install.cluster.model import ClusterConfig
from k8s_install.cluster.secrets import ClusterSecrets

SEED_LAYOUT: Dict[str, Any] = {
    "name": "seed",
    "kubernetes_version": "1.29.6",
    "api": {"vip": "192.168.10.240", "port": 8443},
    "networks": {"nodes": "192.168.10.0/24", "pods": "10.244.0.0/16", "services": "10.96.0.0/12"},
    "nodes": [
        {"name": "k8s-mn01", "ip": "192.168.10.11", "role": "control-plane"},
        {"name": "k8s-mn02", "ip": "192.168.10.22", "role": "control-plane"},
        {"name": "k8s-mn03", "ip": "192.168.10.33", "role": "control-plane"},
        {"name": "k8s-wn01", "ip": "192.168.10.100", "role": "worker"},
        {"name": "k8s-wn02", "ip": "192.168.10.200", "role": "worker"},
    ],
}


def seed_data(**changes: Any) -> Dict[str, Any]:
    data = copy.deepcopy(SEED_LAYOUT)
    data.update(changes)
    return data


def load(data: Dict[str, Any], bundle: Optional[str] = "1.29.6") -> ClusterConfig:
    return parse_cluster_config(yaml.safe_dump(data), "cluster.yaml", bundle).config


def warnings_for(data: Dict[str, Any]) -> List[str]:
    return parse_cluster_config(yaml.safe_dump(data), "cluster.yaml", "1.29.6").warnings


def issue_server_certificate(work: Path, secrets: ClusterSecrets, config: ClusterConfig) -> Tuple[Path, Path]:
    """Test-only: a kube-apiserver-like certificate (DNS kubernetes, 127.0.0.1, VIP, node IPs) signed by the
    cluster CA, made with openssl in `work`. Returns (certificate, key)."""
    ca_cert, ca_key = work / "ca.crt", work / "ca.key"
    ca_cert.write_text(secrets.ca_cert_pem)
    ca_key.write_text(secrets.ca_key_pem)
    ca_key.chmod(0o600)
    names = ["DNS:kubernetes", "IP:127.0.0.1", f"IP:{config.vip}"] + [f"IP:{node.ip}" for node in config.nodes]
    extensions = work / "apiserver.cnf"
    extensions.write_text(f"subjectAltName={','.join(names)}\nextendedKeyUsage=serverAuth\n")
    key, request, cert = work / "apiserver.key", work / "apiserver.csr", work / "apiserver.crt"
    commands = [
        f"req -new -newkey rsa:2048 -nodes -keyout {key} -subj /CN=kube-apiserver -out {request}",
        f"x509 -req -in {request} -CA {ca_cert} -CAkey {ca_key} -CAcreateserial -days 2 -sha256 "
        f"-extfile {extensions} -out {cert}",
    ]
    for command in commands:
        subprocess.run(["openssl", *command.split()], check=True, capture_output=True)
    return cert, key
