"""Build the lab's cached base ahead of the test run (`python3 -m tests.lab.prebuild`).

`.ci/run` starts this in the background as soon as mmdebstrap is installed, so the base (about 50 CPU-seconds
and a minute of downloads on a fresh machine) is made while apt and pip install everything else, instead of
inside the test run. The suite's fixtures take the same cache lock (tests/lab/root.py): they wait for this build,
find the base made, or build it themselves when this one failed, and then report that failure as their own.
Needs only the standard library: it runs on Debian's python3 before the venv exists.
"""

from __future__ import annotations

import subprocess
import sys
import time
from typing import Dict

from tests.lab.root import built_base


def main() -> int:
    started = time.monotonic()
    timings: Dict[str, float] = {}
    try:
        folder = built_base(timings)
    except (OSError, RuntimeError, subprocess.SubprocessError) as error:
        print(f"lab base: not built ahead ({error}); the lab tests build it", file=sys.stderr)
        return 1
    print(f"lab base: {folder} ready after {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
