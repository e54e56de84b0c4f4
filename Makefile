# Switchboard: `make run` serves with the embedded SQLite default; `make test` runs everything CI runs.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

# pytest workers: each runs whole test files (their servers and fixtures stay with them)
TEST_WORKERS ?= 2

# the modules mypyc compiles (switchboard.compiled.COMPILED); rebuilt when one of them changes
HOT := $(addprefix src/switchboard/sip/,message.py headers.py digest.py steer.py rand.py limits.py transaction.py endpoint.py engine.py) \
	src/switchboard/engine/registrar.py src/switchboard/engine/workers.py src/switchboard/events/bus.py \
	src/switchboard/compiled.py
COMPILED := src/switchboard/.compiled

.PHONY: run test test-deps bench sip-bench call-bench probe-bench lint clean compile pure

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check -e '.[test,compile]'
	touch $(STAMP)

# mypyc: C extensions beside the sources; without a compiler the package stays pure Python (a warning)
$(COMPILED): $(STAMP) $(HOT) scripts/compile.py
	$(BIN)/python scripts/compile.py || echo "warning: the hot modules were not compiled (pure Python)"
	touch $(COMPILED)

compile: $(COMPILED)

# back to the pure-Python hot modules (SWITCHBOARD_PURE_PYTHON=1 does the same without removing the build)
pure:
	$(PYTHON) scripts/compile.py --clean
	rm -f $(COMPILED)

run: $(STAMP) $(COMPILED)
	$(BIN)/switchboard migrate
	$(BIN)/switchboard serve

test-deps:
	@scripts/install-test-deps.sh

test: $(STAMP) $(COMPILED) test-deps
	$(BIN)/ruff check src tests bench scripts
	$(BIN)/ruff format --check src tests bench scripts
	$(BIN)/lint-imports
	$(BIN)/pytest -q -ra -n $(TEST_WORKERS) --dist loadfile --durations=15
	# the fallback: the compiled modules' tests once more on their pure-Python sources
	SWITCHBOARD_PURE_PYTHON=1 $(BIN)/pytest -q -n $(TEST_WORKERS) --dist loadfile tests/unit/sip \
		tests/unit/engine/test_registrar_commit.py

bench: $(STAMP) $(COMPILED) test-deps
	$(BIN)/python bench/http_bench.py

sip-bench: $(STAMP) $(COMPILED) test-deps
	$(BIN)/python bench/sip_bench.py

# also needs Debian's rtpengine-daemon (the RTP relay baseline), which test-deps does not install
call-bench: $(STAMP) $(COMPILED) test-deps
	$(BIN)/python bench/call_bench.py

probe-bench: $(STAMP)
	$(BIN)/python bench/probe_bench.py

lint: $(STAMP)
	$(BIN)/ruff check src tests bench scripts
	$(BIN)/ruff format --check src tests bench scripts
	$(BIN)/lint-imports

clean: pure
	rm -rf $(VENV) var .pytest_cache .ruff_cache .hypothesis
