"""The `__main__.py` of k8s-install.pyz: bundler/zipapp.py puts this file there in place of shiv's own.

It decides where shiv's bootstrap may extract the bundled packages, then hands over to it:
- `--help`, `-h` and `--version` need nothing extracted: they run straight from the zip and write nothing;
- SHIV_ROOT, when set, wins;
- root extracts under /var/lib/k8s-install/shiv (root-owned; the path recorded in the zipapp);
- anyone else cannot write there, so extracts under their own cache folder ($XDG_CACHE_HOME, else ~/.cache,
  then k8s-install/shiv), else, with no usable home, into a private temporary folder removed at exit.

Runs on the nodes' Python (3.9): standard library only, and no builder module imports it
(tests/test_import_rules.py holds both rules).
"""

import atexit
import os
import shutil
import sys
import tempfile

NO_EXTRACTION = ("-h", "--help", "--version")


def run_from_zip() -> None:
    sys.path.insert(0, os.path.join(sys.argv[0], "site-packages"))
    from k8s_install.main import main

    sys.exit(main())


def user_cache_root() -> str:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    root = os.path.join(base, "k8s-install", "shiv")
    try:
        os.makedirs(root, mode=0o700, exist_ok=True)
    except OSError:
        return ""
    return root if os.access(root, os.W_OK | os.X_OK) else ""


def choose_shiv_root() -> None:
    if os.environ.get("SHIV_ROOT") or os.geteuid() == 0:
        return
    root = user_cache_root()
    if not root:
        root = tempfile.mkdtemp(prefix="k8s-install-shiv-")
        atexit.register(shutil.rmtree, root, True)
    os.environ["SHIV_ROOT"] = root


def launch() -> None:
    if any(argument in NO_EXTRACTION for argument in sys.argv[1:]):
        run_from_zip()
    choose_shiv_root()
    import _bootstrap  # type: ignore[import-not-found]  # shiv's bootstrap, in the zipapp beside this file

    try:
        _bootstrap.bootstrap()
    except OSError as error:  # unpacking failed (the installer itself reports its own errors)
        where = os.environ.get("SHIV_ROOT", "/var/lib/k8s-install/shiv")
        print(
            f"k8s-install.pyz: error: cannot unpack into {where} ({error.strerror or error}): "
            "set SHIV_ROOT to a folder you can write",
            file=sys.stderr,
        )
        sys.exit(1)


if __name__ == "__main__":
    launch()
