# hpchaos — the two commands a fresh Debian machine needs:
#   make run    build, bring the lab up, run the bundled nightly suite on it
#   make test   the whole test suite
SHELL := /bin/bash
CARGO ?= cargo
HPCHAOS := target/debug/hpchaos
# Snapshots are compared, never rewritten, outside a developer's explicit update.
export INSTA_UPDATE ?= no

.PHONY: dist dist-check setup build test test-quick lint run schema fixtures clean lab-up lab-down bench install

# Debian packages: the build, and the lab (real Slurm, munge, OpenSSH;
# mmdebstrap builds the Slurm 24.11 root file system; socat is the relay
# that stands in for the SSM plugin as a proxy command in the tests;
# Prometheus, Alertmanager, the Pushgateway and node_exporter are the lab's
# monitoring, `lab up --monitoring`; promtool checks observability/; curl
# queries the monitoring back in the tests; bindfs is the FUSE passthrough
# a frozen file system fault stacks and stops, `lab up --slurm 22.05`).
PACKAGES := build-essential pkg-config git slurm-wlm munge openssh-server openssh-client iproute2 procps util-linux bindfs mmdebstrap socat prometheus prometheus-alertmanager prometheus-pushgateway prometheus-node-exporter curl
# The lab's Slurm 24.11 (HyperPod's release): Debian trixie's packages in a
# root file system built once and kept here (`lab up --slurm 22.05` runs the
# host's own Slurm instead).
ROOTFS ?= /var/cache/hpchaos/rootfs/slurm-24.11

# Installs what building and testing need, skipping what is present. The
# lab starts its own daemons inside namespaces, so the packages' services
# are kept from starting on the host (policy-rc.d, for the install only).
setup:
	@command -v $(CARGO) >/dev/null || { echo "error: cargo not found: install Rust with rustup (https://rustup.rs), then re-run make setup" >&2; exit 1; }
	@missing=$$(for p in $(PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "setup: installing $$missing"; \
	  printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; status=$$?; \
	  rm -f /usr/sbin/policy-rc.d; exit $$status; \
	fi
	@scripts/slurm-rootfs $(ROOTFS)
	@echo "setup: toolchain and lab packages ready ($$($(CARGO) --version))"

build: setup
	$(CARGO) build --locked

# nextest when installed (parallel, per-test processes; lab tests one at a
# time, see .config/nextest.toml), else cargo test one test at a time.
test: setup
	@if $(CARGO) nextest --version >/dev/null 2>&1; then \
	  HPCHAOS_REQUIRE_LAB=1 $(CARGO) nextest run --workspace --locked --no-fail-fast; \
	else \
	  HPCHAOS_REQUIRE_LAB=1 $(CARGO) test --workspace --locked --no-fail-fast -- --test-threads=1; \
	fi

# The tests that need no root and no lab: unit tests, the phase engine,
# reports, validation, history, the SageMaker API over loopback. Under two
# minutes on a warm target/ (about 16 s here, 3 s of it the tests). The
# monitoring rules' tests run promtool (package prometheus, `make setup`):
# without it they say they are skipped; `make test` requires it.
QUICK_TESTS := --workspace --lib --bins --test offline
test-quick:
	@if $(CARGO) nextest --version >/dev/null 2>&1; then \
	  $(CARGO) nextest run --locked --no-fail-fast $(QUICK_TESTS); \
	else \
	  $(CARGO) test --locked --no-fail-fast $(QUICK_TESTS); \
	fi

# The harness alone, for a laptop or a CI runner (no lab packages, no root
# needed beyond PREFIX): the hpchaos binary into $(PREFIX)/bin.
PREFIX ?= /usr/local
install:
	$(CARGO) install --locked --path . --root $(PREFIX)

# A release binary of the harness for x86-64 Linux with glibc 2.31 and
# newer (HyperPod's Ubuntu 20.04+ AMIs, CI runners), whatever glibc this
# machine has: linked by zig (PyPI's ziglang) through cargo-zigbuild against
# glibc 2.31's symbols. Lands in dist/. `make dist-check` runs it inside a
# Debian 11 root file system (glibc 2.31, no Rust).
DIST_TARGET := x86_64-unknown-linux-gnu.2.31
dist:
	@command -v cargo-zigbuild >/dev/null || $(CARGO) install --locked cargo-zigbuild
	@python3 -m ziglang version >/dev/null 2>&1 || python3 -m pip install --quiet ziglang
	$(CARGO) zigbuild --locked --release --target $(DIST_TARGET) -p hpchaos --bin hpchaos
	mkdir -p dist
	cp target/x86_64-unknown-linux-gnu/release/hpchaos dist/hpchaos-x86_64-linux-gnu
	@echo "dist/hpchaos-x86_64-linux-gnu: glibc $$(scripts/glibc-needed dist/hpchaos-x86_64-linux-gnu) or newer"

dist-check: dist
	scripts/dist-check dist/hpchaos-x86_64-linux-gnu

lint: setup
	$(CARGO) fmt --check
	$(CARGO) clippy --workspace --locked --all-targets -- -D warnings

# Benchmarks (root, a lab each; minutes, not part of `make test`): lab up
# time (4 nodes, and 240), phase timing error against the lab's ground
# truth, a fault on 48 targets at once against one, and watching one target
# of a 4,096-node cluster (API calls, cycle cost, controller-log latency,
# CPU against Chaos Toolkit, which it installs from PyPI into a venv).
bench: build
	benches/lab-up 4 5
	benches/timing-error scenarios/xid48-replace.yaml 5
	benches/fan-out 48 3
	benches/watch-scale 16 4096 60
	benches/controller-load 4 4096 60
	benches/lab-up 240 1
	cargo bench --bench history

# The bundled nightly suite on a fresh lab (root): the lab is restarted so
# every node has the host key known_hosts expects, then every scenario of
# scenarios/nightly.suite.yaml runs against it; the journal and the
# markdown/JSON/JUnit reports land in reports/<time>-nightly/. The lab stays
# up afterwards (hpchaos lab status, make lab-down).
LAB_DIR ?= /tmp/hpchaos-lab
run: build
	$(HPCHAOS) lab down --dir $(LAB_DIR)
	$(HPCHAOS) lab up --nodes 4 --timings fast --dir $(LAB_DIR)
	$(HPCHAOS) run scenarios/nightly.suite.yaml --cluster $(LAB_DIR)/profile.yaml --report-dir reports

# The local lab (root): 4 compute nodes with fast timings, in /tmp/hpchaos-lab.
lab-up: build
	$(HPCHAOS) lab up --nodes 4 --timings fast

lab-down: build
	$(HPCHAOS) lab down

# Regenerates the committed JSON Schemas after a change to the model.
schema: build
	for kind in scenario suite profile; do $(HPCHAOS) schema --kind $$kind -o schema/$$kind.schema.json; done

# Regenerates the committed fixture journals after a change to the journal.
fixtures:
	UPDATE_FIXTURES=1 $(CARGO) test --test offline report::committed_fixture_journals_are_current

clean:
	$(CARGO) clean
