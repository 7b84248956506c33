"""bundler: build a verified offline bundle for a highly available Kubernetes cluster."""

__version__ = "0.1.0"
