"""k8s-install: the node side of the offline Kubernetes bundle (pure Python, 3.9+)."""

__version__ = "0.1.0"
