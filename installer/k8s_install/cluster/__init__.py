"""The cluster: its config (cluster.yaml), secrets, node identity, and the renderers the steps call."""
