# The two commands a fresh clone needs: `make demo` and `make test`. Both bootstrap .venv.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
COV_FLOOR := 99.70
FUZZ_SECONDS ?= 600

.PHONY: test lint typecheck pytest fuzz mutate bench bench-session-compiled demo clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev,webrtc]'
	touch $(STAMP)

test: lint typecheck pytest

LINTED := $(wildcard src tests fuzz bench tools setup.py)

lint: $(STAMP)
	$(BIN)/ruff check $(LINTED)
	$(BIN)/ruff format --check $(LINTED)

typecheck: $(STAMP)
	$(BIN)/mypy --strict src/

pytest: $(STAMP)
	$(BIN)/python -m pytest --cov=rtproto --cov-branch --cov-report=term --cov-fail-under=$(COV_FLOOR) tests

# Each harness runs FUZZ_SECONDS; new inputs go to the ignored fuzz/generated/<name>/, a
# failing input to the ignored fuzz/artifacts/<name>/; the committed seeds
# (fuzz/corpus/<name>/, replayed by make test) are read only.
FUZZ_HARNESSES := events websocket server signalling session webhooks twilio
fuzz: $(STAMP)
	$(BIN)/python -m pip install -q -e '.[dev,webrtc,fuzz]'
	for name in $(FUZZ_HARNESSES); do \
		mkdir -p fuzz/generated/$$name fuzz/artifacts/$$name && \
		$(BIN)/python fuzz/fuzz_$$name.py -max_total_time=$(FUZZ_SECONDS) -rss_limit_mb=4096 \
			-artifact_prefix=fuzz/artifacts/$$name/ \
			fuzz/generated/$$name fuzz/corpus/$$name || exit 1; \
	done

# Does a broken rule fail the tests? One change at a time in the session core (tests/mutate.py);
# survivors are printed, every result lands in mutants.jsonl. About 25 minutes on 2 cores.
mutate: $(STAMP)
	$(BIN)/python -m tests.mutate

bench: $(STAMP)
	$(BIN)/python bench/bench_codec.py

# bench/bench_session.py on the compiled session core (RTPROTO_COMPILE=1; docs/session.md,
# "Speed"): the wheel is built and unpacked under build/, then measured; ARGS=--instructions.
bench-session-compiled: $(STAMP)
	rm -rf build/compiled-wheel build/compiled-site
	RTPROTO_COMPILE=1 $(BIN)/python -m pip wheel -q --no-deps --no-build-isolation \
		-w build/compiled-wheel .
	$(BIN)/python -m zipfile -e build/compiled-wheel/rtproto-*.whl build/compiled-site
	PYTHONPATH=build/compiled-site $(BIN)/python bench/bench_session.py $(ARGS)

# The main job: one voice turn against the embedded emulator, reply written to reply.wav.
demo: $(STAMP)
	$(BIN)/rtproto call --output reply.wav

clean:
	rm -rf $(VENV) build dist .pytest_cache .mypy_cache .ruff_cache .coverage tests/interop/node_modules tests/interop/twilio/node_modules
