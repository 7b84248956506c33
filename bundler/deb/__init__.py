"""Debian and Ubuntu targets: apt repositories read, resolved with apt itself, and written as a flat repository."""
