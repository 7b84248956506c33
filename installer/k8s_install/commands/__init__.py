"""One module per installer command; each takes parsed arguments and returns an exit code."""
