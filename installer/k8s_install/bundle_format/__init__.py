"""The bundle format: the one contract the builder writes and the installer reads."""
