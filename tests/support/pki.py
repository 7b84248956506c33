"""Test-only certificates made with the real openssl: a kubeadm-like control-plane PKI under a node root."""

from __future__ import annotations

import atexit
import base64
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Dict

import yaml

from k8s_install.cert_expiry import KUBEADM_CERTIFICATES


def make_certificate(path: Path, days: int, cn: str, key_type: str = "rsa:2048") -> Path:
    """A self-signed certificate at `path`, its key beside it (.key): one key per key type for the whole run,
    as making RSA keys is the slow part and no test here tells certificates apart by their key."""
    path.parent.mkdir(parents=True, exist_ok=True)
    key = path.with_suffix(".key")
    shutil.copyfile(_key(key_type), key)
    subprocess.run(
        ["openssl", "req", "-x509", "-key", str(key), "-out", str(path), "-days", str(days),
         "-subj", f"/O=test/CN={cn}"],
        check=True, capture_output=True,
    )  # fmt: skip
    return path


_KEYS: Dict[str, Path] = {}


def _key(key_type: str) -> Path:
    if key_type not in _KEYS:
        folder = Path(tempfile.mkdtemp(prefix="test-pki-"))
        atexit.register(shutil.rmtree, folder, True)
        key = folder / "key.pem"
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", key_type, "-nodes", "-keyout", str(key), "-out",
             str(folder / "unused.crt"), "-days", "1", "-subj", "/CN=key"],
            check=True, capture_output=True,
        )  # fmt: skip
        _KEYS[key_type] = key
    return _KEYS[key_type]


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
