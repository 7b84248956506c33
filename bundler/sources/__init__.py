"""Source kinds: each adds its artifacts to the bundle contents and its records to bundle.yaml."""
