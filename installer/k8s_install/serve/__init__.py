"""The bundle host (`k8s-install.pyz serve`): nginx and the CNCF distribution registry, as systemd services,
serving one unpacked bundle to the nodes of the air gap over TLS from the cluster CA.

Only configuration is ours: nginx serves the bundle folder read-only and verbatim, the registry serves the
bundle's images (loaded once through a temporary loopback instance of the same binary); the nodes verify
every byte against the signed SHA256SUMS themselves (docs/bundle-host.md).
"""
