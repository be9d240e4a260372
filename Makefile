# Two entry points, both create .venv first: `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: demo test lint bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	$(PY) -m tracekit.cli demo data/demo-incident -o out

test: $(STAMP)
	$(PY) -m ruff check tracekit tests benchmarks data
	$(PY) -m pytest -q -p no:cacheprovider

bench: $(STAMP)
	$(PY) benchmarks/run.py --n 1000000 --out benchmarks/RESULTS.md
	$(PY) benchmarks/analysis_bench.py

clean:
	rm -rf $(VENV) out
