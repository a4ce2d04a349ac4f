# Two commands a newcomer needs: `make demo` and `make test`. Both create the venv on first use.
# `make test` runs on the Airflow pyproject.toml resolves today (3.3.x); `make test-matrix` runs the
# suite without tests/e2e (but with its HITL gates) on the older minors the package supports, each in its own venv.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python

# The newest patch of each older supported minor; one venv each (.venv-af31, .venv-af32).
AIRFLOW_af31 := 3.1.8
AIRFLOW_af32 := 3.2.2
# Airflow 3.2.2 does not cap fastapi, and with fastapi 0.137+ its execution API cannot build the
# task-state model (pydantic: "TITerminalStatePayload needs a discriminator field"), so no task can
# report its end; 3.3.2 itself declares fastapi<0.137. Airflow's constraints file pins it too.
PINS_af32 := "fastapi<0.137"
MATRIX := af31 af32

.PHONY: demo test test-matrix $(addprefix test-,$(MATRIX)) lint benchmark benchmark-versions clean

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

# The venvs of the matrix: the same .[test] extras, with Airflow pinned to that minor's patch.
# PRECIOUS: make would otherwise delete a venv's python as an intermediate file of the pattern chain.
.PRECIOUS: .venv-%/bin/python .venv-%/.installed-test
.venv-%/bin/python:
	$(PYTHON) -m venv .venv-$*
	.venv-$*/bin/python -m pip install --quiet --upgrade pip

.venv-%/.installed-test: pyproject.toml setup.cfg | .venv-%/bin/python
	.venv-$*/bin/python -m pip install --quiet -e ".[test]" "apache-airflow==$(AIRFLOW_$*)" $(PINS_$*)
	touch $@

# tests/e2e starts a whole engine and runs on the README's Airflow (make test); of it, the older minors run
# the Human-in-the-loop gates, whose trigger talks to Airflow differently on each minor.
$(addprefix test-,$(MATRIX)): test-%: .venv-%/.installed-test
	.venv-$*/bin/python -m pytest --ignore=tests/e2e
	.venv-$*/bin/python -m pytest tests/e2e/test_hitl_gates.py tests/e2e/test_hitl_responder.py tests/e2e/test_pushed_responder.py

test-matrix: $(addprefix test-,$(MATRIX)) ## the suite (of tests/e2e: the HITL gates) on Airflow 3.1 and 3.2

benchmark: $(VENV)/.installed-test ## print cost ratios against the baselines; writes docs/benchmarks.md
	$(PY) benchmarks/run.py

benchmark-versions: $(VENV)/.installed-test .venv-af31/.installed-test ## the import ratio on Airflow 3.1 and 3.3, into docs/benchmarks.md
	$(PY) benchmarks/imports_by_version.py .venv-af31 $(VENV)

clean:
	rm -rf demo-output test-artifacts .pytest_cache .mypy_cache .ruff_cache
