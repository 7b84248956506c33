"""Test-only certificates made with the real openssl: a kubeadm-like control-plane PKI under a node root."""

from __future__ import annotations

import base64
import subprocess
from pathlib import Path
from typing import Dict

import yaml

from k8s_install.cert_expiry import KUBEADM_CERTIFICATES


def make_certificate(path: Path, days: int, cn: str, key_type: str = "rsa:2048") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", key_type, "-nodes", "-keyout", str(path.with_suffix(".key")),
         "-out", str(path), "-days", str(days), "-subj", f"/O=test/CN={cn}"],
        check=True, capture_output=True,
    )  # fmt: skip
    return path


def openssl_enddate(path: Path) -> str:
    """`openssl x509 -enddate`'s notAfter, e.g. 'Nov 26 06:40:00 2027 GMT'."""
    out = subprocess.run(
        ["openssl", "x509", "-enddate", "-noout", "-in", str(path)], check=True, capture_output=True, text=True
    ).stdout
    return out.strip().split("=", 1)[1]


def make_control_plane_pki(root: Path, days: Dict[str, int], default_days: int = 365) -> None:
    """Every kubeadm certificate (CAs 3650 days), an admin.conf embedding a client certificate, the static pod
    manifests, and the installer's CA copy."""
    for name, path in KUBEADM_CERTIFICATES:
        lifetime = 3650 if name.endswith("ca") else days.get(name, default_days)
        make_certificate(root / path.lstrip("/"), lifetime, name)
    client = make_certificate(root / "tmp-admin.crt", days.get("admin.conf", default_days), "kubernetes-admin")
    kubeconfig = {
        "apiVersion": "v1",
        "kind": "Config",
        "users": [{"name": "kubernetes-admin", "user": {
            "client-certificate-data": base64.b64encode(client.read_bytes()).decode(), "client-key-data": "eA=="}}],
    }  # fmt: skip
    (root / "etc/kubernetes/admin.conf").write_text(yaml.safe_dump(kubeconfig))
    manifests = root / "etc/kubernetes/manifests"
    manifests.mkdir(parents=True, exist_ok=True)
    for pod in ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "etcd"):
        (manifests / f"{pod}.yaml").write_text(f"kind: Pod\nmetadata: {{name: {pod}}}\n")
    ca = root / "etc/k8s-install/kubernetes-ca.crt"
    ca.parent.mkdir(parents=True, exist_ok=True)
    ca.write_bytes((root / "etc/kubernetes/pki/ca.crt").read_bytes())
