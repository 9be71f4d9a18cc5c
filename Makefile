# `make demo` and `make test` each set up .venv (once) and then run.
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-dev
BSTAMP := $(VENV)/.installed-bench
PYTEST_ARGS ?=

.PHONY: demo test bench venv clean docs-figures

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $@

$(BSTAMP): $(STAMP)
	$(PY) -m pip install -q -e '.[dev,bench]'
	touch $@

venv: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/quadfire train

test: $(STAMP)
	$(PY) -m pytest -q $(PYTEST_ARGS)

bench: $(BSTAMP)
	$(PY) benchmarks/neurons.py
	$(PY) benchmarks/models.py

docs-figures: $(STAMP)
	$(PY) scripts/cobweb.py docs/figures/cobweb.png

clean:
	rm -rf $(VENV) build *.egg-info
