# Debian/Ubuntu's python3 refuses `pip install` outside a virtual environment (PEP 668): `make install`
# and `make dev` use the venv .venv (with the system's site-packages, so apt's python3-rpm stays visible),
# and the other targets run with it when it exists.
VENV ?= .venv
SYSTEM_PYTHON ?= python3
PYTHON ?= $(if $(wildcard $(VENV)/bin/python),$(VENV)/bin/python,$(SYSTEM_PYTHON))
VERMIN = $(PYTHON) -c 'import sys, vermin; sys.exit(vermin.main())' --target=3.9- --no-tips --violations --eval-annotations --backport dataclasses

.PHONY: install dev test lint bench installer vermin demo lab-real

$(VENV)/bin/python:
	$(SYSTEM_PYTHON) -m venv --system-site-packages $(VENV)

install: $(VENV)/bin/python  ## the builder alone into .venv (run it as .venv/bin/bundler)
	$(VENV)/bin/python -m pip install .

dev: $(VENV)/bin/python  ## the builder (editable) and the test tools into .venv
	$(VENV)/bin/python -m pip install -e '.[test]'

vermin:  ## the installer must run on EL9's Python 3.9
	$(VERMIN) installer bundler

test: vermin  ## the whole test suite (needs root and the Debian packages .ci/run installs)
	$(PYTHON) -m pytest -q

lint:
	$(PYTHON) -m ruff check bundler installer tests
	$(PYTHON) -m ruff format --check bundler installer tests
	$(PYTHON) -m mypy -p bundler -p k8s_install

bench:  ## measured speed against baselines taken in the same run
	$(PYTHON) -m tests.bench.run

demo:  ## the offline path end to end on this machine (root; stand-in servers; a few minutes)
	$(PYTHON) -m tests.demo

lab-real:  ## a real cluster from a bundle: Kubernetes built from source, three nspawn nodes (root; not CI; see tests/lab_real)
	nice -n 19 ionice -c3 $(PYTHON) -m tests.lab_real.run

installer:  ## build dist/k8s-install.pyz alone
	mkdir -p dist
	$(PYTHON) -c 'from pathlib import Path; from bundler.zipapp import build_installer; from bundler.commands.build import source_date_epoch; print(build_installer(Path("dist/k8s-install.pyz"), source_date_epoch()))'
