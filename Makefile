# The two commands of the README: `make demo` and `make test`. Each creates .venv on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DATA ?= data
# The small CPU twin of the paper's network, sized for 2 cores (see README, "make demo").
DEMO_TRAIN ?= --model small --epochs 8 --lr 3e-3 --lr-step 100 --batch-size 4 --workers 1

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
	$(BIN)/emoprep extract --iemocap $(DATA)/synth --out $(DATA)/work  # the default detector: CenterFace, offline
	$(BIN)/emoprep shard --work $(DATA)/work --out $(DATA)/shards
	$(BIN)/emoprep verify $(DATA)/shards
	$(BIN)/emoprep inspect $(DATA)/shards --out $(DATA)/contact-sheet.png
	test -f $(DATA)/runs/mm-dynamic/last.pt || $(BIN)/emotrain fit --shards $(DATA)/shards --split paper \
		--out $(DATA)/runs/mm-dynamic $(DEMO_TRAIN)
	$(BIN)/emotrain evaluate --run $(DATA)/runs/mm-dynamic --split paper --part test
	$(BIN)/emotrain experiment --shards $(DATA)/shards --out $(DATA)/runs/table1 $(DEMO_TRAIN)

clean-demo:
	rm -rf $(DATA)
