"""Is the cluster API answering at the VIP? Used by joining nodes to wait (with a countdown) for the first.

The probe speaks TLS verified against the cluster CA from the secrets file, for the name every
kube-apiserver certificate carries ("kubernetes"), so a joining node never talks to an impostor, even
before it has any Kubernetes file of its own.
"""

from __future__ import annotations

import datetime
import email.utils
import http.client
import math
import socket
import ssl
import time
from typing import Callable, NamedTuple, Optional

from k8s_install.cluster import paths
from k8s_install.errors import InstallError


class ProbeResult(NamedTuple):
    ok: bool
    detail: str  # "HTTP 200" or why not


def probe_api(host: str, port: int, ca_pem: str, timeout: float = 3.0) -> ProbeResult:
    """GET https://host:port/healthz with the certificate checked against `ca_pem` for "kubernetes"."""
    context = ssl.create_default_context(cadata=ca_pem)
    try:
        raw = socket.create_connection((host, port), timeout=timeout)
    except OSError as error:
        return ProbeResult(False, f"cannot connect to {host}:{port}: {error.strerror or error}")
    try:
        tls = context.wrap_socket(raw, server_hostname=paths.API_SERVER_NAME)
    except ssl.SSLCertVerificationError as error:
        raw.close()
        return ProbeResult(False, f"{host}:{port} is not this cluster's API server: {error.verify_message}")
    except (OSError, ssl.SSLError) as error:
        raw.close()
        return ProbeResult(False, f"TLS with {host}:{port} failed: {error}")
    connection = http.client.HTTPConnection(host, port, timeout=timeout)
    connection.sock = tls
    try:
        connection.request("GET", "/healthz", headers={"Host": paths.API_SERVER_NAME})
        status = connection.getresponse().status
    except (OSError, http.client.HTTPException) as error:
        return ProbeResult(False, f"{host}:{port} did not answer /healthz: {error}")
    finally:
        connection.close()
    return ProbeResult(status == 200, f"HTTP {status}")


def wait_for_api(
    probe: Callable[[], ProbeResult],
    seconds: float,
    report: Callable[[int, str], None],
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    interval: float = 2.0,
) -> None:
    """Probe until it succeeds; before each wait call `report(seconds_left, why)`. InstallError at the end."""
    deadline = clock() + seconds
    while True:
        result = probe()
        if result.ok:
            return
        left = deadline - clock()
        if left <= 0:
            raise InstallError(
                f"the cluster API did not answer within {seconds:.0f} s ({result.detail}): "
                "run `--role control-plane --first` on the first control plane, then retry"
            )
        report(int(math.ceil(left)), result.detail)
        sleep(min(interval, left))


# OpenSSL's X509_V_FLAG_NO_CHECK_TIME (Python names it only from 3.?): verify the chain, not its dates
NO_CHECK_TIME = 0x200000


def api_time(host: str, port: int, ca_pem: str, timeout: float = 3.0) -> Optional[datetime.datetime]:
    """The cluster API's clock (the `Date` header of its /healthz answer), or None when it does not answer.

    The server must still prove it is this cluster's API (its certificate chains to `ca_pem` for
    "kubernetes"), but the certificates' dates are not checked against this node's clock: that clock is
    what is being checked, and when it is off by years every certificate looks expired or not yet valid.
    """
    context = ssl.create_default_context(cadata=ca_pem)
    context.verify_flags = context.verify_flags | NO_CHECK_TIME
    try:
        raw = socket.create_connection((host, port), timeout=timeout)
    except OSError:
        return None
    try:
        tls = context.wrap_socket(raw, server_hostname=paths.API_SERVER_NAME)
    except (OSError, ssl.SSLError):
        raw.close()
        return None
    connection = http.client.HTTPConnection(host, port, timeout=timeout)
    connection.sock = tls
    try:
        connection.request("GET", "/healthz", headers={"Host": paths.API_SERVER_NAME})
        date = connection.getresponse().getheader("Date")
    except (OSError, http.client.HTTPException):
        return None
    finally:
        connection.close()
    try:
        return email.utils.parsedate_to_datetime(date) if date else None
    except (TypeError, ValueError):
        return None
