"""A real `docker-registry` (Debian's distribution 2.8) on a free loopback port, stopped by its PID.

Variants: plain HTTP, TLS with a test CA, htpasswd basic auth, token auth against `TokenServer`
(tests/support/token_server.py). The storage folder is given by the caller, so one pushed set of test
images can be copied and served by many registries (and damaged on purpose in one copy).
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path
from typing import Dict, Optional

import requests
import yaml

REGISTRY_BINARY = shutil.which("docker-registry") or "/usr/bin/docker-registry"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def make_certificate(folder: Path, name: str = "registry", ip: str = "127.0.0.1") -> Dict[str, Path]:
    """A self-signed certificate (it is its own CA) for `ip`, made with the openssl command."""
    folder.mkdir(parents=True, exist_ok=True)
    key, cert = folder / f"{name}.key", folder / f"{name}.crt"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-sha256", "-days", "2",
         "-keyout", str(key), "-out", str(cert), "-subj", f"/CN={name} test CA",
         "-addext", f"subjectAltName=IP:{ip}", "-addext", "basicConstraints=critical,CA:TRUE",
         "-addext", "keyUsage=critical,digitalSignature,keyCertSign"],
        check=True, capture_output=True,
    )  # fmt: skip
    return {"key": key, "cert": cert}


def make_htpasswd(path: Path, user: str, password: str) -> Path:
    subprocess.run(["htpasswd", "-Bbc", str(path), user, password], check=True, capture_output=True)
    return path


class Registry:
    def __init__(
        self,
        storage: Path,
        work: Path,
        tls: Optional[Dict[str, Path]] = None,
        htpasswd: Optional[Path] = None,
        token: Optional[Dict[str, str]] = None,
    ) -> None:
        self.storage = storage
        self.work = work
        self.port = free_port()
        self.host = f"127.0.0.1:{self.port}"
        self.tls = tls
        self.url = f"{'https' if tls else 'http'}://{self.host}"
        config: Dict[str, object] = {
            "version": 0.1,
            "log": {"level": "error", "accesslog": {"disabled": True}},
            "storage": {"filesystem": {"rootdirectory": str(storage)}, "delete": {"enabled": True}},
            "http": {"addr": self.host, "secret": "test-only-secret"},
        }
        if tls:
            config["http"]["tls"] = {"certificate": str(tls["cert"]), "key": str(tls["key"])}  # type: ignore[index]
        if htpasswd:
            config["auth"] = {"htpasswd": {"realm": "test-registry", "path": str(htpasswd)}}
        if token:
            config["auth"] = {"token": token}
        work.mkdir(parents=True, exist_ok=True)
        self.config_path = work / f"registry-{self.port}.yml"
        self.config_path.write_text(yaml.safe_dump(config))
        self.log_path = work / f"registry-{self.port}.log"
        self.process: Optional[subprocess.Popen] = None

    def start(self) -> Registry:
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen([REGISTRY_BINARY, "serve", str(self.config_path)], stdout=log, stderr=log)
        deadline = time.monotonic() + 20
        verify = str(self.tls["cert"]) if self.tls else True
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"docker-registry exited: {self.log_path.read_text()[-2000:]}")
            try:
                requests.get(f"{self.url}/v2/", timeout=1, verify=verify)
                return self
            except requests.RequestException:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"docker-registry did not answer on {self.url}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def blob_file(self, digest: str) -> Path:
        hex_digest = digest.split(":", 1)[1]
        return self.storage / "docker/registry/v2/blobs/sha256" / hex_digest[:2] / hex_digest / "data"

    def __enter__(self) -> Registry:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
