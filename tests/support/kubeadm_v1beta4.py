"""Field names of kubeadm.k8s.io/v1beta4 (kubeadm 1.31 and later), as nested key sets, like kubeadm_v1beta3.py.

Read from the json tags of cmd/kubeadm/app/apis/kubeadm/v1beta4/types.go (kubernetes/kubernetes), with the list of
changes on kubernetes.io/docs/reference/config-api/kubeadm-config.v1beta4 (summarised in
../shared/pins/UPGRADES.md section 6). What differs from v1beta3, for the parts kubeadm configs use:
- `extraArgs` (control-plane components, etcd.local) and `nodeRegistration.kubeletExtraArgs` are lists of
  {name, value}, no longer maps;
- `extraEnvs` on the control-plane components and etcd.local; `imagePullSerial` in nodeRegistration;
- `apiServer.timeoutForControlPlane` and `discovery.timeout` are gone: `timeouts` (Init, Join, Reset) holds them;
- new in ClusterConfiguration: `proxy.disabled`, `dns.disabled`, `encryptionAlgorithm`,
  `certificateValidityPeriod`, `caCertificateValidityPeriod`; `dryRun` in Init and Join; ResetConfiguration.
"""

from __future__ import annotations

from typing import Any, Dict

from tests.support.kubeadm_v1beta3 import (
    ANY,
    API_ENDPOINT,
    BOOTSTRAP_TOKEN,
    HOST_PATH_MOUNT,
    IMAGE_META,
    KUBE_PROXY_CONFIGURATION,
    KUBELET_CONFIGURATION,
    LIST_OF,
    PATCHES,
    TAINT,
    TYPE_META,
)

ARG = {"name": ANY, "value": ANY}
ENV_VAR = {"name": ANY, "value": ANY, "valueFrom": ANY}
TIMEOUTS = {
    "controlPlaneComponentHealthCheck": ANY,
    "kubeletHealthCheck": ANY,
    "kubernetesAPICall": ANY,
    "etcdAPICall": ANY,
    "tlsBootstrap": ANY,
    "discovery": ANY,
    "upgradeManifests": ANY,
}
NODE_REGISTRATION = {
    "name": ANY,
    "criSocket": ANY,
    "taints": LIST_OF(TAINT),
    "kubeletExtraArgs": LIST_OF(ARG),
    "ignorePreflightErrors": ANY,
    "imagePullPolicy": ANY,
    "imagePullSerial": ANY,
}
CONTROL_PLANE_COMPONENT = {
    "extraArgs": LIST_OF(ARG),
    "extraVolumes": LIST_OF(HOST_PATH_MOUNT),
    "extraEnvs": LIST_OF(ENV_VAR),
}

INIT_CONFIGURATION = {
    **TYPE_META,
    "bootstrapTokens": LIST_OF(BOOTSTRAP_TOKEN),
    "dryRun": ANY,
    "nodeRegistration": NODE_REGISTRATION,
    "localAPIEndpoint": API_ENDPOINT,
    "certificateKey": ANY,
    "skipPhases": ANY,
    "patches": PATCHES,
    "timeouts": TIMEOUTS,
}
CLUSTER_CONFIGURATION = {
    **TYPE_META,
    "etcd": {
        "local": {
            **IMAGE_META,
            "dataDir": ANY,
            "extraArgs": LIST_OF(ARG),
            "extraEnvs": LIST_OF(ENV_VAR),
            "serverCertSANs": ANY,
            "peerCertSANs": ANY,
        },
        "external": {"endpoints": ANY, "caFile": ANY, "certFile": ANY, "keyFile": ANY},
    },
    "networking": {"serviceSubnet": ANY, "podSubnet": ANY, "dnsDomain": ANY},
    "kubernetesVersion": ANY,
    "controlPlaneEndpoint": ANY,
    "apiServer": {**CONTROL_PLANE_COMPONENT, "certSANs": ANY},
    "controllerManager": CONTROL_PLANE_COMPONENT,
    "scheduler": CONTROL_PLANE_COMPONENT,
    "dns": {**IMAGE_META, "disabled": ANY},
    "proxy": {"disabled": ANY},
    "certificatesDir": ANY,
    "imageRepository": ANY,
    "featureGates": ANY,
    "clusterName": ANY,
    "encryptionAlgorithm": ANY,
    "certificateValidityPeriod": ANY,
    "caCertificateValidityPeriod": ANY,
}
JOIN_CONFIGURATION = {
    **TYPE_META,
    "dryRun": ANY,
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
    },
    "controlPlane": {"localAPIEndpoint": API_ENDPOINT, "certificateKey": ANY},
    "skipPhases": ANY,
    "patches": PATCHES,
    "timeouts": TIMEOUTS,
}
RESET_CONFIGURATION = {
    **TYPE_META,
    "cleanupTmpDir": ANY,
    "certificatesDir": ANY,
    "criSocket": ANY,
    "dryRun": ANY,
    "force": ANY,
    "ignorePreflightErrors": ANY,
    "skipPhases": ANY,
    "unmountFlags": ANY,
    "timeouts": TIMEOUTS,
}

SCHEMAS: Dict[Any, Any] = {
    ("kubeadm.k8s.io/v1beta4", "InitConfiguration"): INIT_CONFIGURATION,
    ("kubeadm.k8s.io/v1beta4", "ClusterConfiguration"): CLUSTER_CONFIGURATION,
    ("kubeadm.k8s.io/v1beta4", "JoinConfiguration"): JOIN_CONFIGURATION,
    ("kubeadm.k8s.io/v1beta4", "ResetConfiguration"): RESET_CONFIGURATION,
    ("kubelet.config.k8s.io/v1beta1", "KubeletConfiguration"): KUBELET_CONFIGURATION,
    ("kubeproxy.config.k8s.io/v1alpha1", "KubeProxyConfiguration"): KUBE_PROXY_CONFIGURATION,
}
