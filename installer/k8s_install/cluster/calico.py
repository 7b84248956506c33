"""Calico from the bundled upstream calico-typha.yaml, edited as parsed YAML (never as text).

Set on the calico-node container: CALICO_IPV4POOL_CIDR = the pod network (commented out upstream, so
added), CALICO_IPV4POOL_IPIP / _VXLAN per the encapsulation, and IP_AUTODETECTION_METHOD =
kubernetes-internal-ip (the node IP kubeadm registered, right on multi-NIC hosts). With VXLAN alone the
calico_backend becomes "vxlan" and the BGP (bird) probes go. Typha gets `typha_replicas` replicas.
"""

from __future__ import annotations

import math
from typing import Any, Dict, Iterator, List

import yaml

from k8s_install.cluster.model import ClusterConfig
from k8s_install.errors import InstallError, yaml_problem

MANIFEST_WHERE = "calico manifest"
HEADER = "# managed by k8s-install: calico-typha.yaml for cluster {cluster}, edited from the upstream file\n"
# libyaml when the Python has it (fast); pure Python otherwise, as in the zipapp on the nodes.
LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
POD_SPEC_KINDS = ("DaemonSet", "Deployment", "StatefulSet", "ReplicaSet", "Job")


def typha_replicas(node_count: int) -> int:
    """Upstream: one replica per 100-200 nodes, at least 3 in production so a rolling upgrade keeps two.
    Typha uses the host network (port 5473), so there can be no more replicas than nodes."""
    return max(1, min(node_count, max(3, math.ceil(node_count / 200))))


def parse_manifest(text: str) -> List[Dict[str, Any]]:
    try:
        documents = [doc for doc in yaml.load_all(text, Loader=LOADER) if doc is not None]
    except yaml.YAMLError as error:
        raise InstallError(f"{MANIFEST_WHERE}: not valid YAML: {yaml_problem(error)}") from None
    if not all(isinstance(doc, dict) for doc in documents):
        raise InstallError(f"{MANIFEST_WHERE}: every document must be a Kubernetes object")
    return documents


def render_calico(manifest_text: str, config: ClusterConfig) -> str:
    documents = parse_manifest(manifest_text)
    node_container = _container(_find(documents, "DaemonSet", "calico-node"), "calico-node")
    calico = config.calico
    _set_env(node_container, "CALICO_IPV4POOL_CIDR", str(config.pod_network))
    _set_env(node_container, "CALICO_IPV4POOL_IPIP", calico.ipip_mode)
    _set_env(node_container, "CALICO_IPV4POOL_VXLAN", calico.vxlan_mode)
    _set_env(node_container, "IP_AUTODETECTION_METHOD", "kubernetes-internal-ip")
    config_map = _find(documents, "ConfigMap", "calico-config")
    config_map.setdefault("data", {})["calico_backend"] = calico.backend
    if calico.backend != "bird":
        for probe in ("livenessProbe", "readinessProbe"):
            command = node_container.get(probe, {}).get("exec", {}).get("command", [])
            command[:] = [arg for arg in command if arg not in ("-bird-live", "-bird-ready")]
    typha = _find(documents, "Deployment", "calico-typha")
    typha.setdefault("spec", {})["replicas"] = typha_replicas(len(config.nodes))
    body = yaml.dump_all(documents, Dumper=DUMPER, sort_keys=False, default_flow_style=False, width=120)
    return HEADER.format(cluster=config.name) + body


def manifest_images(manifest_text: str) -> List[str]:
    """Every image the manifest's workloads reference (containers and init containers), sorted, once each."""
    images = set()
    for document in parse_manifest(manifest_text):
        for container in _pod_containers(document):
            image = container.get("image")
            if isinstance(image, str) and image:
                images.add(image)
    return sorted(images)


def _pod_containers(document: Dict[str, Any]) -> Iterator[Dict[str, Any]]:
    if document.get("kind") == "Pod":
        spec = document.get("spec") or {}
    elif document.get("kind") in POD_SPEC_KINDS:
        spec = ((document.get("spec") or {}).get("template") or {}).get("spec") or {}
    else:
        return
    for key in ("initContainers", "containers"):
        for container in spec.get(key) or []:
            if isinstance(container, dict):
                yield container


def _find(documents: List[Dict[str, Any]], kind: str, name: str) -> Dict[str, Any]:
    for document in documents:
        if document.get("kind") == kind and (document.get("metadata") or {}).get("name") == name:
            return document
    raise InstallError(f"{MANIFEST_WHERE}: no {kind} {name}: this is not Calico's calico-typha.yaml")


def _container(document: Dict[str, Any], name: str) -> Dict[str, Any]:
    for container in _pod_containers(document):
        if container.get("name") == name:
            return container
    raise InstallError(f"{MANIFEST_WHERE}: {document.get('kind')} {name} has no container {name}")


def _set_env(container: Dict[str, Any], name: str, value: str) -> None:
    env = container.setdefault("env", [])
    for entry in env:
        if entry.get("name") == name:
            entry.pop("valueFrom", None)
            entry["value"] = value
            return
    env.append({"name": name, "value": value})
