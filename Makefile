# The two commands a fresh clone needs: `make demo` and `make test`. Both bootstrap .venv.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
COV_FLOOR := 96
FUZZ_SECONDS ?= 600

.PHONY: test lint typecheck pytest fuzz bench demo clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $(STAMP)

test: lint typecheck pytest

LINTED := $(wildcard src tests fuzz bench)

lint: $(STAMP)
	$(BIN)/ruff check $(LINTED)
	$(BIN)/ruff format --check $(LINTED)

typecheck: $(STAMP)
	$(BIN)/mypy --strict src/

pytest: $(STAMP)
	$(BIN)/python -m pytest --cov=rtproto --cov-branch --cov-report=term --cov-fail-under=$(COV_FLOOR) tests

# New inputs go to the ignored generated/ folder first; the committed seeds are read only.
fuzz: $(STAMP)
	$(BIN)/python -m pip install -q -e '.[dev,fuzz]'
	mkdir -p fuzz/corpus/events/generated
	$(BIN)/python fuzz/fuzz_events.py -max_total_time=$(FUZZ_SECONDS) -rss_limit_mb=4096 \
		fuzz/corpus/events/generated fuzz/corpus/events

bench: $(STAMP)
	$(BIN)/python bench/bench_codec.py

# The main job: one voice turn against the embedded emulator, reply written to reply.wav.
demo: $(STAMP)
	$(BIN)/rtproto call --output reply.wav

clean:
	rm -rf $(VENV) build dist .pytest_cache .mypy_cache .ruff_cache .coverage tests/interop/node_modules
