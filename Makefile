# Set-up and everyday commands. `make demo` and `make test` work on a fresh machine: they create
# .venv, install torch (CPU build by default; CUDA users: make TORCH_SPEC="torch" demo) and searchlab.
PYTHON ?= python3
VENV ?= .venv
TORCH_SPEC ?= torch==2.13.0
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test bench gpu-check gpu-check-kit install clean

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

# The tests run on every core (at most 4 processes): 4 min 14 s on the 2 idle development cores once
# commands stopped importing plug-ins (and torch) they do not use (6 min 38 s to 7 min 11 s before).
test: $(STAMP)
	$(PY) -m pytest -q -n auto --maxprocesses 4

bench: $(STAMP)
	for b in bench/*.py; do $(PY) $$b || exit 1; done

# The GPU verdicts measured in one command (about 5.5 minutes on one GPU; figures and weights in gpu-check/).
gpu-check: $(STAMP)
	$(PY) bench/gpu_check.py --out gpu-check

# What the check needs on a machine with no network, in ignored folders of the repository root: the
# CIFAR-10 archive in .gpucheck/; in .whl/ wheels of the packages its image lacks and of searchlab itself
# (installed there for its plug-in entry points; rebuilt here each time, so it is this checkout's code).
gpu-check-kit: $(STAMP)
	mkdir -p .gpucheck .whl
	rm -f .whl/searchlab-*.whl
	cp ../shared/data/cifar10/cifar10_jpg.tar.gz .gpucheck/
	$(PY) -m pip wheel --quiet --no-deps --no-build-isolation -w .whl .
	$(PY) -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
		--platform manylinux_2_28_x86_64 -d .whl deap==1.4.4 torch-pruning==1.6.1

clean:
	rm -rf $(VENV) demo-run .pytest_cache
