"""Helm charts for `bundler build --chart`: references, fetching from a chart repository or an OCI registry
with every byte checked against its pinned digest, and `helm template` to find the images they run."""
