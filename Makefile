# Two commands a newcomer needs: `make demo` and `make test`. Both create the venv on first use.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: demo test lint benchmark clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

# Reinstall only when the dependency declarations change.
$(VENV)/.installed-test: pyproject.toml setup.cfg | $(PY)
	$(PY) -m pip install --quiet -e ".[test]"
	touch $@

demo: $(VENV)/.installed-test ## install, then run the example DAGs against a local SMTP inbox
	$(PY) scripts/demo.py

lint: $(VENV)/.installed-test ## ruff + mypy (strict) on the package
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

test: lint ## install, lint, then run the whole test suite
	$(PY) -m pytest

benchmark: $(VENV)/.installed-test ## print cost ratios against the baselines; writes docs/benchmarks.md
	$(PY) benchmarks/run.py

clean:
	rm -rf demo-output test-artifacts .pytest_cache .mypy_cache .ruff_cache
