# The two commands of the README: `make demo` and `make test`. Each creates .venv on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DATA ?= data
# The small CPU twin of the paper's network, sized for 2 cores (see README, "make demo").
DEMO_TRAIN ?= --model small --epochs 8 --lr 3e-3 --lr-step 100 --batch-size 4 --workers 1

.PHONY: demo table1 test install clean-demo predict docker-check

$(BIN)/emoprep: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $@

install: $(BIN)/emoprep

test: install
	$(BIN)/python -m pytest -q tests

# Both images built (podman, or docker) and the compose flow run in them on the CPU: synth ->
# extract -> shard -> fit -> evaluate, then predict on tests/data/grid (docs/docker.md, "Checking
# the images here"). Needs no venv; installs podman, runc and mmdebstrap where it is root with apt.
# Too slow for CI: 18 minutes from nothing, 5 with the images built (2 shared cores).
docker-check:
	./docker/check.sh

# synth -> labels -> extract -> shard -> verify -> inspect -> fit -> evaluate -> predict on real videos.
# Every step resumes or reuses what an earlier run finished, so a second `make demo` is quick.
# CORPUS=crema-d or CORPUS=ravdess runs the same on that corpus's synthetic twin (docs/corpora/): demo-corpus below.
CORPUS ?= iemocap
ifneq ($(CORPUS),iemocap)
demo: demo-corpus
else
demo: install
	$(BIN)/emoprep synth --out $(DATA)/synth
	$(BIN)/emoprep labels --iemocap $(DATA)/synth --out $(DATA)/labels.parquet
	$(BIN)/emoprep extract --iemocap $(DATA)/synth --out $(DATA)/work
	$(BIN)/emoprep shard --work $(DATA)/work --out $(DATA)/shards
	$(BIN)/emoprep verify $(DATA)/shards
	$(BIN)/emoprep inspect $(DATA)/shards --out $(DATA)/contact-sheet.png
	test -f $(DATA)/runs/mm-dynamic/last.pt || $(BIN)/emotrain fit --shards $(DATA)/shards --split paper \
		--out $(DATA)/runs/mm-dynamic $(DEMO_TRAIN)
	$(BIN)/emotrain evaluate --run $(DATA)/runs/mm-dynamic --split paper --part test
	$(MAKE) --no-print-directory predict VIDEOS=tests/data/grid RUN=$(DATA)/runs/mm-dynamic \
		OUT=$(DATA)/predictions.csv PREDICT_OPTIONS=--timeline
	@echo
	@echo "demo done: corpus $(DATA)/synth, shards $(DATA)/shards, contact sheet $(DATA)/contact-sheet.png,"
	@echo "  run $(DATA)/runs/mm-dynamic (metrics.csv, curves.png, eval-paper-test.json),"
	@echo "  predictions on the real GRID clips of tests/data/grid: $(DATA)/predictions.csv, $(DATA)/predictions-videos.csv"
	@echo "Next: make table1 (the six-configuration experiment, about 10 minutes on 2 cores)"
endif

# The paper's Table 1 and Figure 2 on the demo's synthetic shards: six configurations (docs/experiments.md).
table1: demo
	$(BIN)/emotrain experiment --shards $(DATA)/shards --out $(DATA)/runs/table1 $(DEMO_TRAIN)

# The same path on a CREMA-D or RAVDESS twin, in $(DATA)/$(CORPUS)/ (docs/corpora/<corpus>.md): 6 actors,
# 84 clips in the shared four classes, trained on fold actor-1's train actors and scored on its test actor.
DEMO_SYNTH_crema-d := --actors 6 --sentences 2
DEMO_SYNTH_ravdess := --actors 6 --statements 2
.PHONY: demo-corpus
demo-corpus: install
	@test -n "$(DEMO_SYNTH_$(CORPUS))" || { echo "CORPUS=$(CORPUS): choose iemocap, crema-d or ravdess" >&2; exit 2; }
	$(BIN)/emoprep synth --corpus $(CORPUS) --out $(DATA)/$(CORPUS)/synth $(DEMO_SYNTH_$(CORPUS))
	$(BIN)/emoprep labels --corpus $(CORPUS) --root $(DATA)/$(CORPUS)/synth --out $(DATA)/$(CORPUS)/labels.parquet
	$(BIN)/emoprep extract --corpus $(CORPUS) --root $(DATA)/$(CORPUS)/synth --out $(DATA)/$(CORPUS)/work
	$(BIN)/emoprep shard --work $(DATA)/$(CORPUS)/work --out $(DATA)/$(CORPUS)/shards
	$(BIN)/emoprep verify $(DATA)/$(CORPUS)/shards
	$(BIN)/emoprep inspect $(DATA)/$(CORPUS)/shards --out $(DATA)/$(CORPUS)/contact-sheet.png
	test -f $(DATA)/$(CORPUS)/runs/mm-dynamic/last.pt || $(BIN)/emotrain fit --shards $(DATA)/$(CORPUS)/shards \
		--split actor-1 --out $(DATA)/$(CORPUS)/runs/mm-dynamic $(DEMO_TRAIN)
	$(BIN)/emotrain evaluate --run $(DATA)/$(CORPUS)/runs/mm-dynamic --split actor-1 --part test

clean-demo:
	rm -rf $(DATA)

# A folder of videos -> predictions.csv and predictions-videos.csv, with a trained run (docs/prediction.md):
#   make predict VIDEOS=~/my-videos RUN=data/runs/mm-dynamic [OUT=predictions.csv] [PREDICT_OPTIONS=--timeline]
# VIDEOS may hold videos and sound files (wav, flac, mp3, ogg: audio-only windows).
# labels (names the files that are not usable), extract (every window), emoprep.failed_inputs (the files and
# windows that gave no sample, each named), shard and predict (every input file gets a row in both tables, a
# failed one with its reason), in a temporary folder removed afterwards. Where no input gave a sample
# (extract's status 2 with WORK on record), shard is skipped and predict writes the failed rows alone.
# The recipe's status: 0 every window predicted, 3 some inputs failed (in the recipe, extract or predict),
# 1 none or an unusable run/folder; make itself exits 2 on any non-zero status and prints it ("Error 3").
OUT ?= predictions.csv
EXTRACT_OPTIONS ?= --max-failures 100%
predict: install
	@test -n "$(VIDEOS)" -a -n "$(RUN)" || { echo "usage: make predict VIDEOS=folder RUN=run-folder [OUT=predictions.csv]" >&2; exit 2; }
	@work=$$(mktemp -d) && trap 'rm -rf "$$work"' EXIT && \
	{ $(BIN)/emoprep labels --corpus clips --root "$(VIDEOS)" --out "$$work/labels.parquet" > /dev/null || true; } && \
	{ $(BIN)/emoprep extract --corpus clips --root "$(VIDEOS)" --out "$$work/work" $(EXTRACT_OPTIONS); \
	  extracted=$$?; test $$extracted -eq 0 -o \( $$extracted -eq 2 -a -f "$$work/work/manifest.parquet" \) || exit 1; } && \
	{ $(BIN)/python -m emoprep.failed_inputs "$$work/work" "$$work/failed-inputs.csv" || test $$? -eq 3; } && \
	if test $$extracted -eq 0; then \
		$(BIN)/emoprep shard --work "$$work/work" --out "$$work/shards" && set -- --shards "$$work/shards"; \
	else set --; fi && \
	$(BIN)/emotrain predict --run "$(RUN)" "$$@" --out "$(OUT)" \
		--failed-inputs "$$work/failed-inputs.csv" $(PREDICT_OPTIONS)
