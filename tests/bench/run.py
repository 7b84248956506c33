"""`make bench`: run every module of tests/bench (each has `run() -> list[str]`) and print its lines.

A module that fails is reported and the next one still runs; the exit status says whether all finished."""

from __future__ import annotations

import importlib
import sys
import traceback
from pathlib import Path


def main() -> int:
    here = Path(__file__).resolve().parent
    failed = []
    for path in sorted(here.glob("*.py")):
        if path.stem in ("run", "__init__"):
            continue
        print(f"== {path.stem}", flush=True)
        try:
            module = importlib.import_module(f"tests.bench.{path.stem}")
            for line in module.run():
                print(line, flush=True)
        except Exception:  # a benchmark's failure is printed whole; the others still run
            traceback.print_exc()
            failed.append(path.stem)
    if failed:
        print(f"bench: failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
