"""RPM repositories for the builder: read repodata, compare versions as rpm does, resolve a package
closure, and write the bundle's own repository metadata."""
