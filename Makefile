# Deep AndersoNN — the two commands a newcomer types: `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
PY      = $(VENV)/bin/python
STAMP   = $(VENV)/.installed

.PHONY: install demo test test-fast bench clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# torch first and pinned: 2.13.0 has a local CPU wheel; any other spec pulls GBs of CUDA.
	$(PY) -m pip install -q torch==2.13.0
	# every extra (chem, materials, dask): the demo and the tests cover the whole package
	$(PY) -m pip install -q -e ".[all,dev]"
	touch $(STAMP)

demo: install
	OMP_NUM_THREADS=$${OMP_NUM_THREADS:-2} $(VENV)/bin/andersonn demo --out reports/demo

test: install
	$(PY) -m pytest tests

# the edit loop: the suite without the tests marked slow (CI and `make test` run everything)
test-fast: install
	$(PY) -m pytest tests -m "not slow"

bench: install
	$(PY) -m pip install -q -e ".[all,dev,bench]"
	OMP_NUM_THREADS=$${OMP_NUM_THREADS:-2} $(PY) benchmarks/run_all.py

clean:
	rm -rf $(VENV) reports build *.egg-info src/*.egg-info
