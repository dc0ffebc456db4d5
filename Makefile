# crosssell — the two commands: `make report` and `make test`. `make help` lists the rest.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=

.DEFAULT_GOAL := help

help: ## list the targets
	@grep -E '^[a-z][a-z_-]*:.*## ' $(MAKEFILE_LIST) | sed -E 's/:.*## /\t/' | expand -t 18

$(STAMP): pyproject.toml requirements.lock
	@$(PYTHON) -c 'import sys; sys.exit("crosssell needs Python 3.11+, found " + sys.version.split()[0]) if sys.version_info < (3, 11) else None'
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c requirements.lock -e '.[lab,test,spark]'
	@touch $(STAMP)

setup: $(STAMP) ## create .venv and install the package with its pinned dependencies

browser: ## install Debian's chromium for the browser tests (needs root or sudo)
	@command -v chromium >/dev/null 2>&1 || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq chromium >/dev/null; }

report: $(STAMP) ## render the main report of the bundled sample into reports/
	$(VENV)/bin/crosssell report cross_sell_report --data data/sample --out reports

test: $(STAMP) browser ## run every test (unit, property, notebooks, CLI, browser, Spark)
	CROSSSELL_STRICT_SKIPS=1 $(PY) -m pytest $(PYTEST_ARGS)

lint: $(STAMP) ## ruff on the package, tests, benchmarks and notebooks
	$(VENV)/bin/ruff check crosssell tests benchmarks notebooks

lab: $(STAMP) ## open JupyterLab on the repository
	$(VENV)/bin/jupyter lab --notebook-dir=.

sample: $(STAMP) ## regenerate data/sample (seeded: same bytes)
	$(VENV)/bin/crosssell sample --customers 5000 --seed 42 --out data/sample

bench: $(STAMP) ## run the benchmarks (slow: generates 100k and 1M customers)
	$(PY) benchmarks/run.py

lock: ## re-pin requirements.lock from a fresh resolve (maintainers)
	rm -rf /tmp/crosssell-lock && $(PYTHON) -m venv /tmp/crosssell-lock
	/tmp/crosssell-lock/bin/pip install --quiet -e '.[lab,test,spark]'
	/tmp/crosssell-lock/bin/pip freeze --exclude-editable | grep -v '^-e' > requirements.lock

clean: ## remove generated reports and caches (keeps .venv)
	rm -rf reports/*/ reports/index.html .pytest_cache .ruff_cache .hypothesis

.PHONY: help setup browser report test lint lab sample bench lock clean
