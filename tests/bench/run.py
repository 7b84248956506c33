"""`make bench`: run every module of tests/bench (each has `run() -> list[str]`) and print its lines."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path


def main() -> int:
    here = Path(__file__).resolve().parent
    for path in sorted(here.glob("*.py")):
        if path.stem in ("run", "__init__"):
            continue
        module = importlib.import_module(f"tests.bench.{path.stem}")
        print(f"== {path.stem}", flush=True)
        for line in module.run():
            print(line, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
