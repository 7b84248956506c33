"""A bundle host for tests: a real nginx serving an unpacked bundle read-only over TLS at https://127.0.0.1:PORT/,
its certificate signed by the cluster CA (as `k8s-install.pyz serve` sets it up), and a small signed bundle
with control-plane-only parts (Calico's manifest, kube-apiserver's image) beside what a worker needs."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

import yaml

from k8s_install.bundle_format.layout import SIGNATURE_NAMESPACE
from tests.support.registry import free_port

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
TOP = "k8s-bundle-1.29.6-rocky9-amd64"
LOG_FORMAT = "$request_uri $status $body_bytes_sent"


def sign_server_certificate(folder: Path, ca_cert_pem: str, ca_key_pem: str, ip: str = "127.0.0.1") -> Dict[str, Path]:
    """A server certificate for `ip` signed by the given CA (the cluster CA in these tests), made with openssl."""
    folder.mkdir(parents=True, exist_ok=True)
    ca_cert, ca_key = folder / "ca.crt", folder / "ca.key"
    ca_cert.write_text(ca_cert_pem)
    ca_key.write_text(ca_key_pem)
    ca_key.chmod(0o600)
    key, csr, cert, extensions = folder / "host.key", folder / "host.csr", folder / "host.crt", folder / "ext.cnf"
    extensions.write_text(f"subjectAltName=IP:{ip}\nextendedKeyUsage=serverAuth\n")
    subprocess.run(
        ["openssl", "req", "-new", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(csr),
         "-subj", "/CN=bundle host"],
        check=True, capture_output=True,
    )  # fmt: skip
    subprocess.run(
        ["openssl", "x509", "-req", "-in", str(csr), "-CA", str(ca_cert), "-CAkey", str(ca_key), "-CAcreateserial",
         "-out", str(cert), "-days", "2", "-sha256", "-extfile", str(extensions)],
        check=True, capture_output=True,
    )  # fmt: skip
    return {"cert": cert, "key": key}


@contextlib.contextmanager
def unpacked_for_nginx(tarball: Path, top: str, prefix: str) -> Iterator[Path]:
    """The bundle tarball unpacked in a folder nginx's workers (nobody) may read (pytest's tmp is 0700); the
    bundle's top folder `top` inside it, removed afterwards."""
    folder = Path(tempfile.mkdtemp(prefix=prefix))
    folder.chmod(0o755)
    try:
        subprocess.run(["tar", "-xf", str(tarball), "-C", str(folder)], check=True)
        yield folder / top
    finally:
        shutil.rmtree(folder)


class Nginx:
    """nginx (daemon off, our own process) serving `root` read-only and verbatim on 127.0.0.1:`port` over TLS.
    `limit_rate` slows every response (bytes per second), so a test can stop the host mid-file."""

    def __init__(
        self,
        root: Path,
        work: Path,
        certificate: Dict[str, Path],
        port: int = 0,
        prefix: Sequence[str] = (),
        address: str = "127.0.0.1",
    ) -> None:
        self.root, self.work, self.certificate, self.address = root, work, certificate, address
        self.port = port or free_port()
        self.prefix = list(prefix)  # `ip netns exec NAME`: serve inside a network namespace
        self.process: Optional[subprocess.Popen] = None
        work.mkdir(parents=True, exist_ok=True)

    @property
    def url(self) -> str:
        return f"https://{self.address}:{self.port}"

    def start(self, limit_rate: str = "0", extra: str = "") -> Nginx:
        temp = {name: self.work / name for name in ("body", "proxy", "fastcgi", "uwsgi", "scgi")}
        user = "user root root;" if os.geteuid() == 0 else ""  # the workers read the test's 0700 folders
        config = f"""{user}
worker_processes 1;
daemon off;
pid {self.work}/nginx.pid;
error_log {self.work}/error.log;
events {{ worker_connections 64; }}
http {{
    log_format served '{LOG_FORMAT}';
    access_log {self.work}/access.log served;
    client_body_temp_path {temp["body"]};
    proxy_temp_path {temp["proxy"]};
    fastcgi_temp_path {temp["fastcgi"]};
    uwsgi_temp_path {temp["uwsgi"]};
    scgi_temp_path {temp["scgi"]};
    default_type application/octet-stream;
    server {{
        listen {self.address}:{self.port} ssl;
        ssl_certificate {self.certificate["cert"]};
        ssl_certificate_key {self.certificate["key"]};
        root {self.root};
        autoindex off;
        limit_rate {limit_rate};
        location / {{ limit_except GET {{ deny all; }} }}
        {extra}
    }}
}}
"""
        (self.work / "nginx.conf").write_text(config)
        self.process = subprocess.Popen(
            [*self.prefix, NGINX, "-p", str(self.work), "-c", str(self.work / "nginx.conf"),
             "-e", str(self.work / "error.log")],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )  # fmt: skip
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"nginx exited: {self.process.stderr.read().decode() if self.process.stderr else ''}"
                )
            if self._listening():
                return self
            time.sleep(0.05)
        raise RuntimeError("nginx did not listen in 20 s")

    def _listening(self) -> bool:
        if not self.prefix:
            try:
                socket.create_connection((self.address, self.port), timeout=1).close()
                return True
            except OSError:
                return False
        probe = f"import socket; socket.create_connection(('{self.address}', {self.port}), timeout=1).close()"
        return subprocess.run([*self.prefix, sys.executable, "-c", probe], capture_output=True).returncode == 0

    def stop(self) -> None:
        """Stop at once (SIGTERM: nginx's fast shutdown closes every connection mid-response)."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(timeout=20)
        self.process = None

    def requests(self) -> List[Tuple[str, int, int]]:
        """(path, status, body bytes sent) of every request served so far."""
        log = self.work / "access.log"
        found = []
        for line in log.read_text().splitlines() if log.exists() else []:
            path, status, sent = line.split()
            found.append((path, int(status), int(sent)))
        return found

    def __enter__(self) -> Nginx:
        return self if self.process is not None else self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


# -- a small bundle with parts only a control plane needs --------------------------------------------------


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _filler(name: str, size: int) -> bytes:
    block = hashlib.sha512(name.encode()).digest()
    return (block * (size // len(block) + 1))[:size]


IMAGES = {  # name -> own layer size; every image also uses the shared base layer
    "registry.k8s.io/kube-apiserver:v1.29.6": 600_000,
    "registry.k8s.io/kube-proxy:v1.29.6": 1_500_000,
    "registry.k8s.io/pause:3.9": 1_000,
}
SHARED_LAYER = 300_000
CONTROL_PLANE_ONLY = ("files/calico-typha.yaml", "sbom.spdx.json")


def write_served_bundle(folder: Path, signing_key: Optional[Path] = None) -> Path:
    """An unpacked bundle: runtime artifacts, Calico's manifest, an OCI layout of three images sharing a
    layer, an SBOM, SHA256SUMS and (given an OpenSSH key) its signature."""
    files: Dict[str, bytes] = {
        "k8s-install.pyz": b"#!/usr/bin/env python3\n# stand-in installer\n",
        "files/containerd-1.7.0-linux-amd64.tar.gz": _filler("containerd", 200_000),
        "files/runc.amd64": _filler("runc", 50_000),
        "files/calico-typha.yaml": b"kind: ConfigMap\n" + _filler("calico", 20_000).hex().encode(),
        "sbom.spdx.json": json.dumps({"spdxVersion": "SPDX-2.3", "padding": "x" * 5_000}).encode(),
    }
    artifacts = [
        {"name": name, "path": path, "sha256": hashlib.sha256(files[path]).hexdigest(), "size": len(files[path])}
        for name, path in (("containerd", "files/containerd-1.7.0-linux-amd64.tar.gz"), ("runc", "files/runc.amd64"),
                           ("calico-manifest", "files/calico-typha.yaml"))
    ]  # fmt: skip
    shared = _filler("shared-base", SHARED_LAYER)
    blobs = {_digest(shared): shared}
    index_entries, images = [], []
    for name, size in IMAGES.items():
        layer = _filler(name, size)
        config = json.dumps({"architecture": "amd64", "os": "linux", "rootfs": {"diff_ids": []}, "n": name}).encode()
        manifest = json.dumps({
            "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": _digest(config),
                       "size": len(config)},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": _digest(blob),
                        "size": len(blob)} for blob in (shared, layer)],
        }).encode()  # fmt: skip
        blobs.update({_digest(layer): layer, _digest(config): config, _digest(manifest): manifest})
        index_entries.append({
            "mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": _digest(manifest),
            "size": len(manifest), "annotations": {"io.containerd.image.name": name},
        })  # fmt: skip
        size = len(manifest) + len(config) + len(shared) + len(layer)
        images.append({"name": name, "digest": _digest(manifest), "media_type": index_entries[-1]["mediaType"],
                       "platform": "linux/amd64", "size": size})  # fmt: skip
    files["images/oci-layout"] = b'{"imageLayoutVersion": "1.0.0"}'
    files["images/index.json"] = json.dumps({"schemaVersion": 2, "manifests": index_entries}).encode()
    for digest, data in blobs.items():
        files[f"images/blobs/sha256/{digest.split(':', 1)[1]}"] = data
    manifest_doc = {"format": 1, "kubernetes": "1.29.6", "os": "rocky9", "arch": "amd64", "artifacts": artifacts,
                    "images": images}  # fmt: skip
    files["bundle.yaml"] = yaml.safe_dump(manifest_doc, sort_keys=False).encode()
    for path, data in files.items():
        (folder / path).parent.mkdir(parents=True, exist_ok=True)
        (folder / path).write_bytes(data)
    sums = "".join(f"{hashlib.sha256(data).hexdigest()}  {path}\n" for path, data in sorted(files.items()))
    (folder / "SHA256SUMS").write_text(sums)
    if signing_key is not None:
        subprocess.run(
            ["ssh-keygen", "-q", "-Y", "sign", "-n", SIGNATURE_NAMESPACE, "-f", str(signing_key),
             str(folder / "SHA256SUMS")],
            check=True, capture_output=True,
        )  # fmt: skip
    return folder


def control_plane_blobs(folder: Path) -> List[str]:
    """The bundle paths of kube-apiserver's own blobs (manifest, config, layer): never a worker's."""
    index = json.loads((folder / "images/index.json").read_bytes())
    entry = next(e for e in index["manifests"] if "kube-apiserver" in e["annotations"]["io.containerd.image.name"])
    manifest = json.loads((folder / "images/blobs/sha256" / entry["digest"].split(":")[1]).read_bytes())
    digests = [entry["digest"], manifest["config"]["digest"], manifest["layers"][1]["digest"]]
    return [f"images/blobs/sha256/{digest.split(':')[1]}" for digest in digests]


def make_signer(folder: Path) -> Tuple[Path, Path]:
    """An OpenSSH signing key and an allowed_signers file trusting it."""
    folder.mkdir(parents=True, exist_ok=True)
    key = folder / "signer"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "ops", "-f", str(key)], check=True)
    kind, material = key.with_suffix(".pub").read_text().split(" ", 2)[:2]
    allowed = folder / "allowed_signers"
    allowed.write_text(f"ops@example.org {kind} {material}\n")
    return key, allowed
