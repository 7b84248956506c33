"""Where the bundle host keeps what it makes, and its settings: every path `serve reset` removes is here."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Tuple

SERVE_ETC = "/etc/k8s-bundle-host"
SERVE_VAR = "/var/lib/k8s-bundle-host"
STATE_FILE = f"{SERVE_VAR}/state.json"  # serve's own record, apart from the node installer's
NGINX_CONF = f"{SERVE_ETC}/nginx.conf"
REGISTRY_CONF = f"{SERVE_ETC}/registry.yml"
TLS_DIR = f"{SERVE_ETC}/tls"
TLS_CERT = f"{TLS_DIR}/server.crt"
TLS_KEY = f"{TLS_DIR}/server.key"
REGISTRY_STORAGE = f"{SERVE_VAR}/registry"
NGINX_TEMP = f"{SERVE_VAR}/nginx"
NGINX_RUN = "/run/k8s-bundle-web"  # the web unit's RuntimeDirectory
UNIT_DIR = "/etc/systemd/system"
WEB_SERVICE = "k8s-bundle-web"
REGISTRY_SERVICE = "k8s-bundle-registry"
SERVICES = (REGISTRY_SERVICE, WEB_SERVICE)
FIREWALLD_SERVICE = "k8s-bundle-host"
FIREWALLD_XML = f"/etc/firewalld/services/{FIREWALLD_SERVICE}.xml"
REGISTRY_ARTIFACT = "registry"  # the release's pinned CNCF distribution tarball
REGISTRY_BINARY = "/usr/local/bin/registry"  # where the bundle's registry binary goes
NGINX_BINARY = "/usr/sbin/nginx"  # EL9's nginx package
NGINX_PACKAGE = "nginx"
HTTPS_PORT = 8443
REGISTRY_PORT = 5443
CERT_DAYS = 365
RENEW_DAYS = 30  # a re-run issues a new certificate when the current one expires within this many days
# Every folder serve writes into: what the tests map under a --root, and what reset clears.
OWN_DIRS = (SERVE_ETC, SERVE_VAR, NGINX_RUN)


def unit_path(service: str) -> str:
    return f"{UNIT_DIR}/{service}.service"


@dataclass(frozen=True)
class ServeSettings:
    """What this bundle host serves and how; read from the command line, the bundle and the secrets."""

    bundle: str  # the unpacked bundle folder, as the served machine sees it
    names: Tuple[str, ...]  # DNS subject alternative names of the serving certificate
    addresses: Tuple[str, ...]  # IP subject alternative names
    ca_cert_pem: str
    ca_key_pem: str
    https_port: int = HTTPS_PORT
    registry_port: int = REGISTRY_PORT
    registry_binary: str = REGISTRY_BINARY
    registry_from_bundle: bool = True  # False: --registry-binary names one already on the machine
    nginx_binary: str = NGINX_BINARY
    nginx_given: bool = False  # --nginx-binary: never installed from the bundle
    nginx_group: str = "nobody"  # the workers run as nobody:<this> (nogroup on Debian)

    @property
    def sans(self) -> Tuple[str, ...]:
        return tuple(f"IP:{a}" for a in self.addresses) + tuple(f"DNS:{n}" for n in self.names)

    def urls(self) -> Tuple[str, str]:
        host = self.addresses[0] if self.addresses else self.names[0]
        return f"https://{host}:{self.https_port}/", f"{host}:{self.registry_port}"
