"""Test helpers for the cluster: the seed's 3+2 layout as data, loaded the way nodes load it."""

from __future__ import annotations

import copy
from typing import Any, Dict, List, Optional

import yaml

from installer.cluster.config import parse_cluster_config
from installer.cluster.model import ClusterConfig

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
