# `make run` and `make test` create .venv when it is missing.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
HOST ?= 127.0.0.1
PORT ?= 8080
# One pytest worker per core and one more: the end-to-end tests spend much of their time
# waiting on the processes they start, and a third worker on 2 cores fills those waits
# (measured: 14 min 27 s with 2 workers, 12 min 51 s with 3).
WORKERS ?= $(shell echo $$(( $$(nproc) + 1 )))

export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export LITELLM_LOCAL_MODEL_COST_MAP := True
export ANONYMIZED_TELEMETRY := False
export TOKENIZERS_PARALLELISM := false

.PHONY: run test lint bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	# The CPU wheel first, so nothing pulls a multi-GB CUDA build of torch.
	$(BIN)/pip install --quiet "torch==2.13.0"
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/answerdesk serve --demo --host $(HOST) --port $(PORT)

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python -m pytest -n $(WORKERS) --dist loadfile --durations=25

bench: $(STAMP)
	$(BIN)/python benchmarks/retrieval.py

clean:
	rm -rf $(VENV) var
