# Two commands on a fresh machine:
#   make demo   sets up .venv and runs one pass over the example site (SQLite, channels in dry-run)
#   make test   sets up .venv (+ test tools, chromium, node parser) and runs every test
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint bench setup setup-test clean

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $(STAMP)

setup: $(STAMP)

demo: $(STAMP)
	cd examples && ../$(BIN)/syndicator --config syndicator.toml run-once --verbose; \
	  rc=$$?; ../$(BIN)/syndicator --config syndicator.toml status; exit $$rc

setup-test: $(STAMP)
	bash scripts/setup-test-env

test: setup-test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/pytest -q

bench: $(STAMP)
	for b in bench_pass bench_poll bench_feed bench_pickup bench_web bench_claims; do \
	  echo "== $$b"; $(BIN)/python bench/$$b.py || exit 1; done

clean:
	rm -rf $(VENV) examples/demo.db* examples/public
