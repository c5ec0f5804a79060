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

# synth -> labels -> extract -> shard -> verify -> inspect -> fit -> evaluate -> experiment.
# Every step resumes or reuses what an earlier run finished, so a second `make demo` is quick.
demo: install
	$(BIN)/emoprep synth --out $(DATA)/synth
	$(BIN)/emoprep labels --iemocap $(DATA)/synth --out $(DATA)/labels.parquet
	$(BIN)/emoprep extract --iemocap $(DATA)/synth --out $(DATA)/work --face-detector haar
	$(BIN)/emoprep shard --work $(DATA)/work --out $(DATA)/shards
	$(BIN)/emoprep verify $(DATA)/shards
	$(BIN)/emoprep inspect $(DATA)/shards --out $(DATA)/contact-sheet.png

clean-demo:
	rm -rf $(DATA)
