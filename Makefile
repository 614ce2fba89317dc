# Two entry points: `make demo` (the main job on the embedded default) and `make test` (the suite).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# torch is pinned to the CPU wheel these machines carry; any other version downloads gigabytes.
TORCH := torch==2.13.0

.PHONY: demo test venv-demo venv-test bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(VENV)/.demo: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e '.[ort,train,report]' '$(TORCH)'
	touch $@

$(VENV)/.test: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e '.[dev]' '$(TORCH)'
	touch $@ $(VENV)/.demo

venv-demo: $(VENV)/.demo
venv-test: $(VENV)/.test

demo: $(VENV)/.demo
	$(BIN)/poselift-edge demo

test: $(VENV)/.test
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

bench: $(VENV)/.test
	for b in bench/bench_*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
