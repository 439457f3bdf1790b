# skelreid — the two front-door commands: `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(VENV)/bin/pip
STAMP  := $(VENV)/.installed

.PHONY: setup demo test test-fast bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	# PyTorch first, pinned: on CPU machines this takes the local CPU wheel.
	$(PIP) install --quiet torch==2.13.0
	$(PIP) install --quiet -e ".[test,video-core]"
	# skelreid extract: the pose solution alone (its full dependency list is in the `video` extra).
	$(PIP) install --quiet --no-deps mediapipe==0.10.21
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/skelreid demo --out runs/demo

test: $(STAMP)
	# bytecode of skelreid and the tests is written once, not compiled again in every subprocess a test starts
	PYTHONDONTWRITEBYTECODE= $(PY) -m pytest -n 2 --dist worksteal -q --durations=15

# the quick loop while working: everything but the end-to-end tests marked slow
test-fast: $(STAMP)
	$(PY) -m pytest -n 2 --dist worksteal -q -m "not slow"

bench: $(STAMP)
	$(PY) benchmarks/parse_kgbd.py
	$(PY) benchmarks/harness.py --device cpu --hidden 256 --batch 128 --length 6 --joints 20 --steps 5 --warmup 2 --rn-steps 100 --rn-epochs 2 --embed-windows 2048 --out runs/bench/performance_cpu.json

clean:
	rm -rf runs .cache .pytest_cache
