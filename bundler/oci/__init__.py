"""Container images from OCI distribution registries: references, auth, platform choice, the OCI layout."""
