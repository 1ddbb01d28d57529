# Set-up and everyday commands. `make demo` and `make test` work on a fresh machine: they create
# .venv, install torch (CPU build by default; CUDA users: make TORCH_SPEC="torch" demo) and searchlab.
PYTHON ?= python3
VENV ?= .venv
TORCH_SPEC ?= torch==2.13.0
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test bench gpu-check install clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install --quiet "$(TORCH_SPEC)"
	$(PY) -m pip install --quiet -e ".[test]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	rm -rf demo-run
	$(VENV)/bin/searchlab search nasbench101 --strategy renas --max-evals 434 --seed 0 --run demo-run

# The tests run on every core (at most 4 processes): about 4 minutes on 2 idle cores.
test: $(STAMP)
	$(PY) -m pytest -q -n auto --maxprocesses 4

bench: $(STAMP)
	for b in bench/*.py; do $(PY) $$b || exit 1; done

# Every GPU path measured in one command (about 7 minutes on one GPU; figures in gpu_check.json).
gpu-check: $(STAMP)
	$(PY) bench/gpu_check.py --out gpu_check.json

clean:
	rm -rf $(VENV) demo-run .pytest_cache
