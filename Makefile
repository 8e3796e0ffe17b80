# The two commands of the README contract: `make run` and `make test`.
# Each installs what is missing first (a .venv beside this file).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install run test demo lint bench installer installer-smoke screenshot clean fuzz

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade pip
	$(PY) -m pip install -e ".[test]"
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(VENV)/bin/cxr-viewer gui

test: $(STAMP)
	QT_QPA_PLATFORM=offscreen $(PY) -m pytest $(PYTEST_ARGS)

# Long fuzzing campaign (tests/fuzzer.py): make fuzz FUZZ_CASES=5000 FUZZ_SEED=7
FUZZ_CASES ?= 3000
FUZZ_SEED ?= 1
fuzz: $(STAMP)
	QT_QPA_PLATFORM=offscreen $(PY) -m tests.fuzzer --cases $(FUZZ_CASES) --seed $(FUZZ_SEED) --keep out/fuzz-failures

demo: $(STAMP)
	$(VENV)/bin/cxr-viewer demo --out out

lint: $(STAMP)
	$(VENV)/bin/ruff check cxr_viewer tests benchmarks

bench: $(STAMP)
	$(PY) benchmarks/bench_display.py
	$(PY) benchmarks/bench_inference.py
	QT_QPA_PLATFORM=offscreen $(PY) benchmarks/bench_ui.py
	$(PY) benchmarks/bench_pacs.py

screenshot: $(STAMP)
	$(PY) tests/screenshot.py out/screenshot-viewer.png

installer: $(STAMP)
	bash installer/build.sh

installer-smoke: installer
	bash installer/smoke_test.sh dist/cxr-viewer-$$($(PY) -c 'import cxr_viewer; print(cxr_viewer.__version__)')-linux-$$(uname -m).tar.gz

clean:
	rm -rf build dist out .pytest_cache
