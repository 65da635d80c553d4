# `make demo` and `make test` both create or refresh .venv first; both are idempotent.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.stamp-installed
# Every plugin and hardware adapter of this repo that installs on this machine.
PLUGIN_DIRS := $(patsubst %/pyproject.toml,%,$(wildcard plugins/*/pyproject.toml hw_adapters/*/pyproject.toml))

.PHONY: setup demo test lint bench docs clean

setup: $(STAMP)

$(STAMP): pyproject.toml constraints.txt $(addsuffix /pyproject.toml,$(PLUGIN_DIRS))
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	# torch first, pinned to the CPU wheel, so that nothing later pulls a CUDA build
	$(PY) -m pip install -q -c constraints.txt torch==2.13.0
	$(PY) -m pip install -q -c constraints.txt -e '.[train,serve,dev]' $(addprefix -e ,$(PLUGIN_DIRS))
	touch $(STAMP)

demo: setup
	OMP_NUM_THREADS=2 $(PY) -m swift_core.demo --work_dir demo_output

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports

test: setup lint
	OMP_NUM_THREADS=1 $(PY) -m pytest -q

bench: setup
	$(PY) bench/cli_startup.py
	$(PY) bench/preprocess.py
	$(PY) bench/train.py

docs: setup
	$(PY) -m swift_core.docgen

clean:
	rm -rf $(VENV)
