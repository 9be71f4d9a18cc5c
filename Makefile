# `make demo` and `make test` each set up .venv (once) and then run.
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-dev
BSTAMP := $(VENV)/.installed-bench
PYTEST_ARGS ?=

.PHONY: demo test bench venv clean docs-figures fmnist

$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c constraints.txt -e '.[dev,docs]'
	touch $@

# The Clang and AArch64 cross compilers let the tests check that the kernels vectorize for
# those compilers and for NEON too (tests/test_ops_vectorization.py); where they cannot be
# installed (not root, no apt-get) those two tests skip and say why.
TOOLS  := $(VENV)/.toolchains
$(TOOLS): $(STAMP)
	@if command -v clang++ >/dev/null 2>&1 && command -v aarch64-linux-gnu-g++ >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		apt-get install -y -qq clang g++-aarch64-linux-gnu >/dev/null 2>&1 || \
		{ apt-get update -qq >/dev/null 2>&1 && \
		  apt-get install -y -qq clang g++-aarch64-linux-gnu >/dev/null 2>&1; } || \
		echo "note: clang and g++-aarch64-linux-gnu could not be installed; their vectorization tests skip"; \
	else echo "note: not root or no apt-get: clang++ and aarch64-linux-gnu-g++ vectorization tests skip"; fi
	@touch $@

$(BSTAMP): $(STAMP)
	$(PY) -m pip install -q -c constraints.txt -e '.[dev,bench]'
	touch $@

venv: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/quadfire demo

test: $(STAMP) $(TOOLS)
	$(PY) -m pytest -q $(PYTEST_ARGS)

bench: $(BSTAMP)
	$(PY) benchmarks/neurons.py
	$(PY) benchmarks/models.py

# Fashion-MNIST from Debian's dataset-fashion-mnist (/usr/share/datasets/fashion-mnist), found
# there by the fashion-mnist datasets without any data.root setting.
fmnist:
	@if command -v apt-get >/dev/null 2>&1; then \
		if [ "$$(id -u)" = 0 ]; then apt-get install -y dataset-fashion-mnist; \
		else sudo apt-get install -y dataset-fashion-mnist; fi; \
	else \
		echo "apt-get not found: no Debian package to install here. Either let torchvision"; \
		echo "fetch Fashion-MNIST: quadfire train <recipe> --set data.download=true"; \
		echo "(into <data.root>/FashionMNIST/raw), or copy the four IDX .gz files"; \
		echo "(train-images-idx3-ubyte.gz ...) into <data.root>/fashion-mnist."; \
	fi

docs-figures: $(STAMP)
	$(PY) scripts/cobweb.py docs/figures/cobweb.png

clean:
	rm -rf $(VENV) build *.egg-info
