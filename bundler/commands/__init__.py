"""One module per `bundler` subcommand; each exposes a plain function returning an exit code."""
