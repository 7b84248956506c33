"""The bundle host's steps: binaries, certificate, configuration, firewall, images, services.

Each reads what is there and returns only the changes needed (the engine applies them and restarts the
services whose configuration changed, then polls them): a second `serve` plans nothing.
"""

from __future__ import annotations

import posixpath
import socket
from pathlib import Path
from typing import Callable, List, Optional
from xml.sax.saxutils import escape

from k8s_install.engine import Change, Node, Step, register_readiness
from k8s_install.errors import InstallError
from k8s_install.node.atomic import write_atomically
from k8s_install.render import render
from k8s_install.serve import layout
from k8s_install.serve.layout import ServeSettings
from k8s_install.steps.files import HEADER, plan_file, sha256_bytes
from k8s_install.steps.firewall import firewalld_present, open_service, service_to_open
from k8s_install.steps.runtime import tar_members
from k8s_install.steps.services import is_enabled, plan_enabled


def visible(node: Node, path: str) -> Optional[Path]:
    """A program of the served machine, as this process can run it: under --root the image's own copy, else the
    one of the machine preparing it (an image of the same OS, or a test)."""
    inside = node.host.path(path)
    if inside.exists():
        return inside
    if not node.host.live and Path(path).exists():
        return Path(path)
    return None


class ServeBinaries(Step):
    name = "serve-binaries"
    title = "registry and nginx binaries"

    def __init__(self, settings: ServeSettings) -> None:
        self.settings = settings

    def plan(self, node: Node) -> List[Change]:
        return self._registry(node) + self._nginx(node)

    def _registry(self, node: Node) -> List[Change]:
        wanted = self.settings.registry_binary
        if not self.settings.registry_from_bundle:
            if visible(node, wanted) is None:
                raise InstallError(f"--registry-binary {wanted}: no such file on this machine")
            return []
        if not node.bundle.has_artifact(layout.REGISTRY_ARTIFACT):
            raise InstallError(
                f"{node.bundle.root}: the bundle carries no registry binary (artifact {layout.REGISTRY_ARTIFACT}); "
                "build it from a release manifest that pins it, or pass --registry-binary PATH "
                "(e.g. /usr/bin/docker-registry, the same program packaged)"
            )
        tarball = node.bundle.artifact(layout.REGISTRY_ARTIFACT)
        found = [data for member, data in tar_members(str(tarball)) if posixpath.basename(member) == "registry"]
        if not found:
            raise InstallError(f"{tarball}: no `registry` binary inside; run ./k8s-install.pyz verify")
        return plan_file(node, wanted, found[0], 0o755, restarts=(layout.REGISTRY_SERVICE,))

    def _nginx(self, node: Node) -> List[Change]:
        wanted = self.settings.nginx_binary
        if visible(node, wanted) is not None:
            return []
        if self.settings.nginx_given:
            raise InstallError(f"--nginx-binary {wanted}: no such file on this machine")
        package = next((rpm for rpm in node.bundle.manifest.rpms if rpm.name == layout.NGINX_PACKAGE), None)
        if package is None:
            raise InstallError(
                f"nginx is not installed ({wanted}) and the bundle carries no nginx RPM: install it from the OS "
                "repositories (dnf install nginx), or build the bundle with a release manifest that adds it"
            )

        def install() -> None:
            from k8s_install.packages.dnf import PackageChange, dnf_install_command

            change = PackageChange(package.name, package.nevra, None)
            root = node.host.root
            node.host.run(dnf_install_command(node.bundle, [change], root, not node.options.no_gpgcheck), timeout=900)
            node.state.record_packages([package.name])

        return [Change(f"install {package.nevra} from the bundle's repository", install, (layout.WEB_SERVICE,))]


class ServeCertificate(Step):
    """The serving certificate, issued again when the names, the CA or the files changed, or when it expires
    within RENEW_DAYS."""

    name = "serve-certificate"
    title = "serving certificate from the cluster CA"

    def __init__(self, settings: ServeSettings) -> None:
        self.settings = settings

    def wanted_record(self) -> dict:
        return {"sans": list(self.settings.sans), "ca": sha256_bytes(self.settings.ca_cert_pem.encode())}

    def current(self, node: Node) -> bool:
        from k8s_install.serve.certificate import valid_for

        if node.state.data.get("certificate") != self.wanted_record():
            return False
        for path in (layout.TLS_CERT, layout.TLS_KEY):
            target, record = node.host.path(path), node.state.file_record(path)
            if not target.is_file() or record is None or record.get("sha256") != sha256_bytes(target.read_bytes()):
                return False
        return valid_for(node.host.path(layout.TLS_CERT), layout.RENEW_DAYS * 86400)

    def plan(self, node: Node) -> List[Change]:
        if self.current(node):
            return []

        def issue() -> None:
            from k8s_install.serve.certificate import issue as sign

            made = sign(self.settings.ca_cert_pem, self.settings.ca_key_pem, self.settings.sans,
                        (self.settings.names or self.settings.addresses)[0], layout.CERT_DAYS)  # fmt: skip
            for path, data, mode in ((layout.TLS_KEY, made.key_pem, 0o600), (layout.TLS_CERT, made.cert_pem, 0o644)):
                target = node.host.path(path)
                target.parent.mkdir(parents=True, exist_ok=True, mode=0o755)
                node.state.record_file(path, sha256_bytes(data), None)
                write_atomically(target, data, mode, overwrite=True)
            node.state.data["certificate"] = self.wanted_record()
            node.state.save()

        sans = ", ".join(self.settings.sans)
        return [Change(f"issue the serving certificate ({sans})", issue, layout.SERVICES)]


def nginx_conf(settings: ServeSettings) -> str:
    return render(
        "bundle-host-nginx.conf.j2", header=HEADER, group=settings.nginx_group, run_dir=layout.NGINX_RUN,
        temp=layout.NGINX_TEMP, port=settings.https_port, cert=layout.TLS_CERT, key=layout.TLS_KEY,
        bundle=settings.bundle,
    )  # fmt: skip


def registry_conf(settings: ServeSettings) -> str:
    return render(
        "bundle-host-registry.yml.j2", header=HEADER, storage=layout.REGISTRY_STORAGE,
        addr=f":{settings.registry_port}", readonly=True, tls=True, cert=layout.TLS_CERT, key=layout.TLS_KEY,
    )  # fmt: skip


def web_unit(settings: ServeSettings) -> str:
    return render("k8s-bundle-web.service.j2", header=HEADER, nginx=settings.nginx_binary, conf=layout.NGINX_CONF)


def registry_unit(settings: ServeSettings) -> str:
    return render(
        "k8s-bundle-registry.service.j2", header=HEADER, registry=settings.registry_binary,
        conf=layout.REGISTRY_CONF, storage=layout.REGISTRY_STORAGE,
    )  # fmt: skip


def plan_directory(node: Node, path: str, mode: int = 0o755) -> List[Change]:
    if node.host.path(path).is_dir():
        return []

    def make() -> None:
        node.host.path(path).mkdir(parents=True, exist_ok=True, mode=mode)
        made = node.state.data.setdefault("directories", [])
        if path not in made:
            made.append(path)
        node.state.save()

    return [Change(f"create {path}", make)]


class ServeConfig(Step):
    name = "serve-config"
    title = "nginx and registry configuration, systemd units"

    def __init__(self, settings: ServeSettings) -> None:
        self.settings = settings

    def plan(self, node: Node) -> List[Change]:
        web, registry = (layout.WEB_SERVICE,), (layout.REGISTRY_SERVICE,)
        changes = plan_directory(node, layout.REGISTRY_STORAGE, 0o700) + plan_directory(node, layout.NGINX_TEMP, 0o700)
        changes += plan_file(node, layout.NGINX_CONF, nginx_conf(self.settings).encode(), restarts=web)
        changes += plan_file(node, layout.REGISTRY_CONF, registry_conf(self.settings).encode(), restarts=registry)
        changes += plan_file(node, layout.unit_path(layout.WEB_SERVICE), web_unit(self.settings).encode(), restarts=web)
        unit = registry_unit(self.settings).encode()
        return changes + plan_file(node, layout.unit_path(layout.REGISTRY_SERVICE), unit, restarts=registry)


def firewalld_xml(settings: ServeSettings) -> str:
    return "\n".join([
        '<?xml version="1.0" encoding="utf-8"?>', f"<!-- {escape(HEADER)} -->", "<service>",
        "  <short>Kubernetes bundle host</short>",
        "  <description>k8s-install.pyz serve: the bundle over HTTPS (nginx) and its images (registry)</description>",
        f'  <port protocol="tcp" port="{settings.https_port}"/>',
        f'  <port protocol="tcp" port="{settings.registry_port}"/>',
        "</service>",
    ]) + "\n"  # fmt: skip


class ServeFirewall(Step):
    name = "serve-firewall"
    title = "firewall"

    def __init__(self, settings: ServeSettings) -> None:
        self.settings = settings

    def plan(self, node: Node) -> List[Change]:
        if not firewalld_present(node):
            node.host.log("firewalld is not installed: no firewall to configure")
            return []
        service = layout.FIREWALLD_SERVICE
        changes = plan_file(node, layout.FIREWALLD_XML, firewalld_xml(self.settings).encode())
        if not node.host.live:
            node.host.skipped(f"firewall-cmd --permanent --add-service={service} && firewall-cmd --reload")
            return changes
        if service_to_open(node, service, bool(changes)):

            def open_ports() -> None:
                open_service(node, service)
                node.state.data["firewalld_service"] = service
                node.state.save()

            ports = f"{self.settings.https_port}/tcp, {self.settings.registry_port}/tcp"
            changes.append(Change(f"open firewalld service {service} ({ports}) in the default zone", open_ports))
        return changes


class ServeImages(Step):
    """Every image of the bundle in the registry's storage, loaded through a loopback loader registry."""

    name = "serve-images"
    title = "bundle images in the registry"

    def __init__(self, settings: ServeSettings) -> None:
        self.settings = settings
        self.loaded = 0
        self.total = 0

    def plan(self, node: Node) -> List[Change]:
        from k8s_install.bundle_format.opened import open_bundle
        from k8s_install.serve.loader import bundle_images, is_stored

        storage = node.host.path(layout.REGISTRY_STORAGE)
        with open_bundle(node.bundle.root, check_files=False) as opened:  # verified by the command already
            images = bundle_images(opened)
        self.total = len(images)
        missing = [image for image in images if not is_stored(storage, image)]
        if not missing:
            return []

        def load() -> None:
            from k8s_install.serve.loader import load_images

            binary = visible(node, self.settings.registry_binary)
            if binary is None:
                raise InstallError(f"{self.settings.registry_binary}: the registry binary is missing")
            with open_bundle(node.bundle.root, check_files=False) as opened:
                report = load_images(opened, str(binary), storage, node.host.log)
            self.loaded = len(report.images)
            node.host.log(f"loaded {self.loaded} image(s): {report.blobs_uploaded} blob(s) uploaded")
            still = [image.name for image in missing if not is_stored(storage, image)]
            if still:
                raise InstallError(f"the registry did not store {', '.join(still[:3])}; see {storage}")

        names = ", ".join(image.name for image in missing[:3]) + (", ..." if len(missing) > 3 else "")
        return [Change(f"load {len(missing)} of {len(images)} image(s) into the registry ({names})", load)]


def _answers_on(port: int) -> Callable[[Node], Optional[str]]:
    """Readiness of a bundle host service: something accepts connections on its port."""

    def check(_node: Node) -> Optional[str]:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return None
        except OSError:
            return f"nothing answers on port {port}"

    return check


class ServeServices(Step):
    name = "serve-services"
    title = "services k8s-bundle-registry and k8s-bundle-web"

    def __init__(self, settings: ServeSettings) -> None:
        self.settings = settings

    def plan(self, node: Node) -> List[Change]:
        ports = {layout.REGISTRY_SERVICE: self.settings.registry_port, layout.WEB_SERVICE: self.settings.https_port}
        changes: List[Change] = []
        for service, port in ports.items():
            register_readiness(service, _answers_on(port))
            unit = f"{service}.service"
            enabled = plan_enabled(node, unit)  # records the unit for reset
            changes += enabled
            if not enabled and node.host.live and is_enabled(node, unit):
                active = node.host.run(["systemctl", "is-active", "--quiet", unit], check=False).returncode == 0
                if not active:
                    changes.append(Change(f"start {unit}", lambda: None, (service,)))
        return changes
