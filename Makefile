# Switchboard: `make run` serves with the embedded SQLite default; `make test` runs everything CI runs.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

# pytest workers: each runs whole test files (their servers and fixtures stay with them)
TEST_WORKERS ?= 2

.PHONY: run test test-deps bench sip-bench call-bench probe-bench lint clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check -e '.[test]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/switchboard migrate
	$(BIN)/switchboard serve

test-deps:
	@scripts/install-test-deps.sh

test: $(STAMP) test-deps
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/lint-imports
	$(BIN)/pytest -q -ra -n $(TEST_WORKERS) --dist loadfile --durations=15

bench: $(STAMP) test-deps
	$(BIN)/python bench/http_bench.py

sip-bench: $(STAMP) test-deps
	$(BIN)/python bench/sip_bench.py

# also needs Debian's rtpengine-daemon (the RTP relay baseline), which test-deps does not install
call-bench: $(STAMP) test-deps
	$(BIN)/python bench/call_bench.py

probe-bench: $(STAMP)
	$(BIN)/python bench/probe_bench.py

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/lint-imports

clean:
	rm -rf $(VENV) var .pytest_cache .ruff_cache .hypothesis
