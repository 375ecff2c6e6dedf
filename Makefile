# The README's two set-up commands. Needs only Python (>= 3.10) and pip.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
TEST_STAMP := $(VENV)/.installed-test

.PHONY: demo test test-fast install clean studies-quick bench-install bench

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade pip

# tfaug alone (make demo, make install); the test extras only for make test
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -e .
	touch $(STAMP)

$(TEST_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -e ".[test]"
	touch $(STAMP) $(TEST_STAMP)

install: $(STAMP)

## make demo: create .venv, install tfaug (without the test extras), run the main job on the embedded default dataset
demo: $(STAMP)
	$(BIN)/tfaug demo

## make test: create/update .venv, install with test extras, run the test suite (2 workers, one test file each
## at a time, so module fixtures run once; the longest files first, in the order tests/conftest.py gives them)
test: $(TEST_STAMP)
	$(BIN)/python -m pytest -q -n 2 --dist loadfile --no-loadscope-reorder

## make test-fast: the development subset (-m "not slow": no end-to-end studies or enrich runs, demo, executors,
## mirrored or multi-worker subprocesses, benchmarks, mixed-precision zoo runs; see tests/conftest.py), same 2 workers
test-fast: $(TEST_STAMP)
	$(BIN)/python -m pytest -q -n 2 --dist loadfile --no-loadscope-reorder -m "not slow"

clean:
	rm -rf $(VENV) runs saved_models .pytest_cache

## make studies-quick: every shipped study config with --quick (the S configs need ../shared/data/mnist10k.npz)
studies-quick: $(STAMP)
	for c in configs/*.yaml; do $(BIN)/tfaug study $$c --quick --no-progress --out runs/quick/$$(basename $$c .yaml) || exit 1; done

## make bench-install: PyTorch's CPU build, for benchmarks/train_throughput.py (benchmarks only, not a dependency)
bench-install: $(STAMP)
	$(BIN)/python -m pip install torch --index-url https://download.pytorch.org/whl/cpu

## make bench: training and generation throughput on this machine (run it idle; ~10 min), results in benchmarks/results/;
## training runs float32, and bf16 too where the CPU (AMX/AVX512-BF16) or GPU (>= 8.0) has it, and prints which
bench: $(STAMP)
	$(BIN)/python benchmarks/train_throughput.py --out benchmarks/results/train_throughput.md
	$(BIN)/python benchmarks/train_throughput.py --threads 1 --out benchmarks/results/train_throughput_1thread.md
	$(BIN)/python benchmarks/train_throughput.py --onednn off --out benchmarks/results/train_throughput_onednn_off.md
	$(BIN)/python benchmarks/generation_throughput.py --out benchmarks/results/generation_throughput.md
