"""Container images on the node: import into containerd, push to a registry."""
