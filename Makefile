# Debian/Ubuntu's python3 refuses `pip install` outside a virtual environment (PEP 668): `make install`
# and `make dev` use the venv .venv (with the system's site-packages, so apt's python3-rpm stays visible),
# and the other targets run with it when it exists.
VENV ?= .venv
SYSTEM_PYTHON ?= python3
PYTHON ?= $(if $(wildcard $(VENV)/bin/python),$(VENV)/bin/python,$(SYSTEM_PYTHON))
VERMIN = $(PYTHON) -c 'import sys, vermin; sys.exit(vermin.main())' --target=3.9- --no-tips --violations --eval-annotations --backport dataclasses

# `make test` runs four pytest-xdist workers (the lab's shared nodes all in one, tests/conftest.py); JOBS=1
# runs one. Four on two cores: a worker often waits (nodes booting, sshd, ansible, daemons, sleeps in the
# installer's steps; the lab's group uses a third of a core) and the others keep both cores busy meanwhile
# (docs/testing.md).
JOBS ?= 4
PYTEST_WORKERS = $(if $(filter 1,$(JOBS)),,-n $(JOBS) --dist loadgroup)
# (tests/conftest.py drops PYTHONDONTWRITEBYTECODE for the workers and every process the tests start: it says why)
PYTEST = $(PYTHON) -m pytest

.PHONY: install dev test test-fast profile lint bench installer vermin demo lab-real

# `make dev`'s install, remembered: `make demo` runs it when it has not run yet (or the package list changed).
DEV_STAMP = $(VENV)/.k8s-dev-installed
DEMO_ARGS ?=

$(VENV)/bin/python:
	$(SYSTEM_PYTHON) -m venv --system-site-packages $(VENV)

$(DEV_STAMP): pyproject.toml setup.py | $(VENV)/bin/python
	$(VENV)/bin/python -m pip install -e '.[test]'
	touch $@

install: $(VENV)/bin/python  ## the builder alone into .venv (run it as .venv/bin/bundler)
	$(VENV)/bin/python -m pip install .

dev: $(VENV)/bin/python  ## the builder (editable) and the test tools into .venv
	$(VENV)/bin/python -m pip install -e '.[test]'
	touch $(DEV_STAMP)

vermin:  ## the installer must run on EL9's Python 3.9
	$(VERMIN) installer bundler

test: vermin  ## the whole test suite (needs root and the Debian packages .ci/run installs); prints the slowest
	$(PYTEST) -q $(PYTEST_WORKERS) --durations=25

test-fast:  ## the in-process tier: no root, daemons, lab or slow tests (markers in pyproject.toml); about 2 minutes
	$(PYTEST) -q $(PYTEST_WORKERS) -m 'not root and not daemons and not lab and not slow'

profile:  ## the whole suite as `make test` runs it, then its CPU-seconds per xdist group (tests/support/cpu_profile.py)
	rm -f .cpu-profile.jsonl
	$(PYTEST) -q $(PYTEST_WORKERS) -p tests.support.cpu_profile --cpu-profile=.cpu-profile.jsonl
	$(PYTHON) -m tests.support.cpu_profile .cpu-profile.jsonl

lint:
	$(PYTHON) -m ruff check bundler installer tests
	$(PYTHON) -m ruff format --check bundler installer tests
	$(PYTHON) -m mypy -p bundler -p k8s_install

bench:  ## measured speed against baselines taken in the same run
	$(PYTHON) -m tests.bench.run

demo:  ## the offline path end to end on this machine (root; stand-in servers; a few minutes); sets up .venv first
	@test "$$(id -u)" = 0 || { echo "make demo: needs root (network namespaces, rpm --root): sudo make demo" >&2; exit 1; }
	@$(MAKE) --no-print-directory $(DEV_STAMP)
	$(VENV)/bin/python -m tests.demo $(DEMO_ARGS)

lab-real:  ## a real cluster from a bundle: Kubernetes built from source, three nspawn nodes (root; not CI; see tests/lab_real)
	nice -n 19 ionice -c3 $(PYTHON) -m tests.lab_real.run

installer:  ## build dist/k8s-install.pyz alone
	mkdir -p dist
	$(PYTHON) -c 'from pathlib import Path; from bundler.zipapp import build_installer; from bundler.build_context import source_date_epoch; print(build_installer(Path("dist/k8s-install.pyz"), source_date_epoch()))'
