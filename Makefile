PYTHON ?= python3
VERMIN = vermin --target=3.9- --no-tips --violations --eval-annotations --backport dataclasses

.PHONY: install test lint bench installer vermin

install:  ## install the builder and the test tools (editable, from this checkout)
	$(PYTHON) -m pip install -e '.[test]'

vermin:  ## the installer must run on EL9's Python 3.9
	$(VERMIN) installer bundler

test: vermin  ## the whole test suite (needs root and the Debian packages .ci/run installs)
	$(PYTHON) -m pytest -q

lint:
	$(PYTHON) -m ruff check bundler installer tests
	$(PYTHON) -m ruff format --check bundler installer tests
	$(PYTHON) -m mypy bundler installer

bench:  ## measured speed against baselines taken in the same run
	$(PYTHON) -m tests.bench.run

installer:  ## build dist/k8s-install.pyz alone
	mkdir -p dist
	$(PYTHON) -c 'from pathlib import Path; from bundler.zipapp import build_installer; from bundler.commands.build import source_date_epoch; print(build_installer(Path("dist/k8s-install.pyz"), source_date_epoch()))'
