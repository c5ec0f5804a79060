# The two commands of the README: `make demo` and `make test`. Each creates .venv on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DATA ?= data

.PHONY: demo test install clean-demo

$(BIN)/emoprep: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $@

install: $(BIN)/emoprep

test: install
	$(BIN)/python -m pytest -q tests

demo: install
	$(BIN)/emoprep synth --out $(DATA)/synth
	$(BIN)/emoprep labels --iemocap $(DATA)/synth --out $(DATA)/labels.parquet

clean-demo:
	rm -rf $(DATA)
