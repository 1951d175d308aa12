# QuantiFy: `make demo` runs the demo, `make test` runs the static checks and every test,
# `make lab` opens JupyterLab on the notebooks.
# Both create the virtual environment (.venv) on first use.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: demo lab test check setup system bench clean

$(BIN)/quantify: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $@

setup: $(BIN)/quantify

# Debian's Chromium drives the dashboard tests (never a downloaded browser).
system:
	@command -v chromium >/dev/null 2>&1 || scripts/install-system-packages

demo: setup
	$(BIN)/quantify demo

# JupyterLab on notebooks/ (127.0.0.1, token in the printed URL); `make lab LAB_ARGS=--replay` streams offline.
lab: setup
	$(BIN)/quantify lab $(LAB_ARGS)

# Static checks first (ruff, mypy, the import contract), then every test, one test file per core at a time
# (TEST_WORKERS=0 runs them in this process, e.g. to debug with -s or pdb).
TEST_WORKERS ?= auto
test: setup system check
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile

check: setup
	BIN=$(BIN) scripts/check

bench: setup
	$(BIN)/python benchmarks/ingest.py

clean:
	rm -rf $(VENV) .pytest_cache test-artifacts
