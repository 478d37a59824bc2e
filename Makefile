# icp-research: `make help` lists the targets.
PY ?= .venv/bin/python

.PHONY: help install demo test sweep lint bench clean

help: ## this list
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-10s %s\n", $$1, $$2}'

install: ## create .venv and install the kit with its test extras
	python3 -m venv .venv && .venv/bin/pip install -q -e ".[test]"

demo: ## run the whole report suite on the bundled demo data -> reports/demo/index.html
	.venv/bin/icp-research run --demo --force

test: ## run the test suite
	$(PY) -m pytest -n auto --maxprocesses 4

sweep: ## the whole suite on every fixture export in tests/fixtures/exports (plain and --quarter)
	$(PY) -m devtools.fixture_sweep

lint: ## ruff check + format check
	$(PY) -m ruff check icp_research tests benchmarks devtools && $(PY) -m ruff format --check icp_research tests benchmarks devtools

bench: ## scale and speed benchmarks (slow; not part of the tests)
	$(PY) benchmarks/bench_suite.py

clean: ## remove build and test leftovers (keeps reports/)
	rm -rf build dist *.egg-info .pytest_cache .ruff_cache tests/artifacts
