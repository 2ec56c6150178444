# hpchaos — the two commands a fresh Debian machine needs:
#   make run    build, validate the bundled scenarios, render the example run
#   make test   the whole test suite
SHELL := /bin/bash
CARGO ?= cargo
HPCHAOS := target/debug/hpchaos
# Snapshots are compared, never rewritten, outside a developer's explicit update.
export INSTA_UPDATE ?= no

.PHONY: setup build test lint run schema fixtures clean

# Installs what building and testing need, skipping what is present.
setup:
	@command -v $(CARGO) >/dev/null || { echo "error: cargo not found: install Rust with rustup (https://rustup.rs), then re-run make setup" >&2; exit 1; }
	@command -v cc >/dev/null && command -v pkg-config >/dev/null && command -v git >/dev/null || { \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq build-essential pkg-config git; }
	@echo "setup: toolchain ready ($$($(CARGO) --version))"

build: setup
	$(CARGO) build --locked

# nextest when installed (parallel, per-test processes), cargo test otherwise.
test: setup
	@if $(CARGO) nextest --version >/dev/null 2>&1; then \
	  $(CARGO) nextest run --locked --no-fail-fast; \
	else \
	  $(CARGO) test --locked --no-fail-fast; \
	fi

lint: setup
	$(CARGO) fmt --check
	$(CARGO) clippy --locked --all-targets -- -D warnings

# Until the lab and the runner land, `run` shows the harness end to end on
# what it has: every bundled scenario and suite validated, then the example
# suite journal rendered in all four formats under reports/example-suite/.
run: build
	$(HPCHAOS) validate scenarios/*.yaml
	@mkdir -p reports/example-suite
	$(HPCHAOS) report tests/fixtures/journals/suite.jsonl --format markdown -o reports/example-suite/report.md
	$(HPCHAOS) report tests/fixtures/journals/suite.jsonl --format json -o reports/example-suite/report.json
	$(HPCHAOS) report tests/fixtures/journals/suite.jsonl --format junit -o reports/example-suite/junit.xml
	$(HPCHAOS) report tests/fixtures/journals/suite.jsonl --format table
	@echo "reports written to reports/example-suite/"

# Regenerates the committed JSON Schemas after a change to the model.
schema: build
	for kind in scenario suite profile; do $(HPCHAOS) schema --kind $$kind -o schema/$$kind.schema.json; done

# Regenerates the committed fixture journals after a change to the journal.
fixtures:
	UPDATE_FIXTURES=1 $(CARGO) test --test report committed_fixture_journals_are_current

clean:
	$(CARGO) clean
