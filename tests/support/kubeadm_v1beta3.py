"""Field names of the kubeadm configuration API, as nested key sets, for checking generated files.

Taken from the kubeadm.k8s.io/v1beta3 reference
(kubernetes.io/docs/reference/config-api/kubeadm-config.v1beta3
and the json tags of cmd/kubeadm/app/apis/kubeadm/v1beta3/types.go), bootstraptoken/v1 for bootstrapTokens,
and kubelet.config.k8s.io/v1beta1 for the (few) KubeletConfiguration fields used here. A dict maps a field
to the fields it may hold; LIST_OF marks a list whose items have those fields; ANY marks free-form maps
(extraArgs, kubeletExtraArgs) and scalars.
"""

from __future__ import annotations

from typing import Any, Dict

ANY = "any"


def LIST_OF(fields: Dict[str, Any]) -> Dict[str, Any]:  # noqa: N802 - reads like a type
    return {"__list__": fields}


TYPE_META = {"apiVersion": ANY, "kind": ANY}
API_ENDPOINT = {"advertiseAddress": ANY, "bindPort": ANY}
TAINT = {"key": ANY, "value": ANY, "effect": ANY, "timeAdded": ANY}
NODE_REGISTRATION = {
    "name": ANY,
    "criSocket": ANY,
    "taints": LIST_OF(TAINT),
    "kubeletExtraArgs": ANY,
    "ignorePreflightErrors": ANY,
    "imagePullPolicy": ANY,
}
PATCHES = {"directory": ANY}
BOOTSTRAP_TOKEN = {"token": ANY, "description": ANY, "ttl": ANY, "expires": ANY, "usages": ANY, "groups": ANY}
HOST_PATH_MOUNT = {"name": ANY, "hostPath": ANY, "mountPath": ANY, "readOnly": ANY, "pathType": ANY}
CONTROL_PLANE_COMPONENT = {"extraArgs": ANY, "extraVolumes": LIST_OF(HOST_PATH_MOUNT)}
IMAGE_META = {"imageRepository": ANY, "imageTag": ANY}

INIT_CONFIGURATION = {
    **TYPE_META,
    "bootstrapTokens": LIST_OF(BOOTSTRAP_TOKEN),
    "nodeRegistration": NODE_REGISTRATION,
    "localAPIEndpoint": API_ENDPOINT,
    "certificateKey": ANY,
    "skipPhases": ANY,
    "patches": PATCHES,
}
CLUSTER_CONFIGURATION = {
    **TYPE_META,
    "etcd": {
        "local": {**IMAGE_META, "dataDir": ANY, "extraArgs": ANY, "serverCertSANs": ANY, "peerCertSANs": ANY},
        "external": {"endpoints": ANY, "caFile": ANY, "certFile": ANY, "keyFile": ANY},
    },
    "networking": {"serviceSubnet": ANY, "podSubnet": ANY, "dnsDomain": ANY},
    "kubernetesVersion": ANY,
    "controlPlaneEndpoint": ANY,
    "apiServer": {**CONTROL_PLANE_COMPONENT, "certSANs": ANY, "timeoutForControlPlane": ANY},
    "controllerManager": CONTROL_PLANE_COMPONENT,
    "scheduler": CONTROL_PLANE_COMPONENT,
    "dns": IMAGE_META,
    "certificatesDir": ANY,
    "imageRepository": ANY,
    "featureGates": ANY,
    "clusterName": ANY,
}
JOIN_CONFIGURATION = {
    **TYPE_META,
    "nodeRegistration": NODE_REGISTRATION,
    "caCertPath": ANY,
    "discovery": {
        "bootstrapToken": {
            "token": ANY,
            "apiServerEndpoint": ANY,
            "caCertHashes": ANY,
            "unsafeSkipCAVerification": ANY,
        },
        "file": {"kubeConfigPath": ANY},
        "tlsBootstrapToken": ANY,
        "timeout": ANY,
    },
    "controlPlane": {"localAPIEndpoint": API_ENDPOINT, "certificateKey": ANY},
    "skipPhases": ANY,
    "patches": PATCHES,
}
KUBELET_CONFIGURATION = {
    **TYPE_META,
    "cgroupDriver": ANY,
    "clusterDNS": ANY,
    "clusterDomain": ANY,
    "containerRuntimeEndpoint": ANY,
    "failSwapOn": ANY,
    "rotateCertificates": ANY,
    "serverTLSBootstrap": ANY,
}

# kubeproxy.config.k8s.io/v1alpha1 (the only version of it): the fields used here
KUBE_PROXY_CONFIGURATION = {
    **TYPE_META,
    "conntrack": {"maxPerCore": ANY, "min": ANY, "tcpEstablishedTimeout": ANY, "tcpCloseWaitTimeout": ANY},
    "mode": ANY,
}

SCHEMAS = {
    ("kubeadm.k8s.io/v1beta3", "InitConfiguration"): INIT_CONFIGURATION,
    ("kubeadm.k8s.io/v1beta3", "ClusterConfiguration"): CLUSTER_CONFIGURATION,
    ("kubeadm.k8s.io/v1beta3", "JoinConfiguration"): JOIN_CONFIGURATION,
    ("kubelet.config.k8s.io/v1beta1", "KubeletConfiguration"): KUBELET_CONFIGURATION,
    ("kubeproxy.config.k8s.io/v1alpha1", "KubeProxyConfiguration"): KUBE_PROXY_CONFIGURATION,
}


def unknown_keys(value: Any, schema: Any, path: str = "") -> list:
    """Every key path in `value` that `schema` does not allow."""
    if schema == ANY:
        return []
    if isinstance(schema, dict) and "__list__" in schema:
        if not isinstance(value, list):
            return [f"{path} (expected a list)"]
        found = []
        for index, item in enumerate(value):
            found += unknown_keys(item, schema["__list__"], f"{path}[{index}]")
        return found
    if not isinstance(value, dict):
        return [f"{path} (expected a mapping)"]
    found = []
    for key, item in value.items():
        where = f"{path}.{key}" if path else key
        if key not in schema:
            found.append(where)
        else:
            found += unknown_keys(item, schema[key], where)
    return found
