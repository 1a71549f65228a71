# Each target sets itself up on a fresh machine: a virtual environment in .venv, torch 2.13.0 (the
# CPU build) installed explicitly, then this package with every extra, in editable mode.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.cfpairs-installed
DEMO_DIR ?= demo_out

.PHONY: install demo test test-fast docs bench bench-smoke clean

install: $(STAMP)

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	mkdir -p $(DEMO_DIR)
	$(VENV)/bin/cfbuild toy --out $(DEMO_DIR)/toy.h5 --force
	$(VENV)/bin/cfbuild inspect $(DEMO_DIR)/toy.h5
	$(VENV)/bin/cfbuild verify $(DEMO_DIR)/toy.h5
	$(VENV)/bin/cftrain table $(DEMO_DIR)/toy.h5 --out $(DEMO_DIR)/toy-table --force

# Tests keep compiled modules (assertion-rewritten tests included) between runs even where the
# environment says PYTHONDONTWRITEBYTECODE: each of pytest's workers compiles every module otherwise.
test: $(STAMP)  # everything CI runs: unit, end-to-end (signals, torchrun, benches' --smoke), statistical
	PYTHONDONTWRITEBYTECODE= $(PY) -m pytest -q -n 2 --dist loadfile  # both cores; a file's tests share one worker (one Slurm cluster)

# The quick loop's temporary files live in memory where the machine has /dev/shm (a second less of
# file-system work than a disk), and only the last run's are kept there (pytest keeps three).
QUICK_TMP := $(firstword $(wildcard /dev/shm) $(or $(TMPDIR),/tmp))

test-fast: $(STAMP)  # the quick loop: in-process tests on both cores; its budget and rule: tests/README.md
	TMPDIR=$(QUICK_TMP) PYTHONDONTWRITEBYTECODE= CFPAIRS_QUICK_BUDGET=0.5 $(PY) -m pytest -q -m "not slow and not e2e and not matrix" \
		-n 2 --dist worksteal -o tmp_path_retention_count=1

docs: $(STAMP)  # the pages the registries write: docs/OPTIONS.md, the lists of modes, models, losses, builders
	$(PY) -m cli.docs

bench: $(STAMP)  # performance figures (minutes; docs/PERFORMANCE.md)
	$(PY) bench/toy_build.py
	$(PY) bench/vqa_build.py
	$(PY) bench/coco_build.py
	$(PY) bench/regions_loader.py
	$(PY) bench/gs_step.py

bench-smoke: $(STAMP)  # every bench script at tiny sizes (make test runs these too)
	$(PY) -m pytest -q tests/test_bench.py

clean:
	rm -rf $(DEMO_DIR) .pytest_cache
