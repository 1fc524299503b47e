# account-worker: `make demo` runs the demo, `make test` runs every test.
# Both install what they need (librdkafka-dev, kcat) when it is missing.

SWIFT ?= swift
SUDO := $(shell [ "$$(id -u)" = "0" ] || echo sudo)
# swift-testing unwinds the stack at every thrown Swift error to keep its
# backtrace. The fuzz tests throw hundreds of thousands of parse errors, and
# a CI run died in that unwinder (SIGFPE in libgcc_s, under
# JSONParserTests.fuzz): off for every test run. A failing test still
# reports its own source location.
export SWT_SWIFT_ERROR_BACKTRACING_ENABLED ?= 0

.PHONY: deps build release test fuzz demo bench deploy-check clean

deps:
	@missing=""; \
	dpkg -s librdkafka-dev >/dev/null 2>&1 || missing="$$missing librdkafka-dev"; \
	command -v kcat >/dev/null 2>&1 || missing="$$missing kcat"; \
	command -v curl >/dev/null 2>&1 || missing="$$missing curl"; \
	command -v promtool >/dev/null 2>&1 || missing="$$missing prometheus"; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		$(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing; \
	fi

build: deps
	$(SWIFT) build

release: deps
	$(SWIFT) build -c release

# deploy/ is checked with hadolint, yamllint and kubernetes-validate, and
# docs/schemas/ with jsonschema (all from PyPI; see scripts/validate-deploy.sh);
# the alerts with promtool (Debian's prometheus package, from deps). The image
# build is proved without Docker: its context and SwiftPM steps are replayed
# (scripts/check-image-context.sh).
deploy-check: deps
	scripts/validate-deploy.sh
	scripts/check-image-context.sh

# The end-to-end tests run the built binary: build it before the tests.
# The fuzz tests (every test function named fuzz...) run after the others,
# alone, for FUZZ_SECONDS each: a trap in a parser of outside input fails CI.
# After the tests, `promtool check metrics` on a live /metrics of the debug
# binary (scripts/check-metrics.sh).
# Last, a short chaos run (scripts/chaos.sh) on the debug binary just built:
# every command must get an ok result through kills, restarts and outages.
CI_FUZZ_SECONDS ?= 20
FUZZ_SECONDS ?= 120
CI_CHAOS_COMMANDS ?= 300
CI_CHAOS_SECONDS ?= 10

test: deps deploy-check
	scripts/check-boundaries.sh
	$(SWIFT) build
	$(SWIFT) build --build-tests --explicit-target-dependency-import-check error
	$(SWIFT) test --skip-build --disable-xctest --skip fuzz --skip '^UseAPITests\.' --skip '^EndToEndTests\.'
	# The HTTP client's tests measure sub-second deadlines: they run on their own,
	# since beside the Kafka-heavy suites on 2 cores they were starved now and then.
	$(SWIFT) test --skip-build --disable-xctest --skip fuzz --filter '^UseAPITests\.'
	# The tests that spawn the binary and kcat run on their own too: Foundation's
	# Process.run() crashed (memmove in its spawn setup) beside the in-process suites.
	$(SWIFT) test --skip-build --disable-xctest --skip fuzz --filter '^EndToEndTests\.'
	SWIFT="$(SWIFT)" scripts/check-metrics.sh
	FUZZ_SECONDS=$(CI_FUZZ_SECONDS) $(SWIFT) test --skip-build --disable-xctest --filter fuzz
	FUZZ_SECONDS=$(CI_FUZZ_SECONDS) scripts/fuzz.sh
	CHAOS_CONFIGURATION=debug SWIFT="$(SWIFT)" scripts/chaos.sh $(CI_CHAOS_COMMANDS) $(CI_CHAOS_SECONDS)

# Longer fuzzing: each target FUZZ_SECONDS (default 120). The mutation fuzz
# tests (FUZZ_SEED=N replays a run, FUZZ_TRACE=FILE keeps the input being run:
# Tests/TestSupport/Fuzzer.swift), then libFuzzer on the parsers (scripts/fuzz.sh).
fuzz: deps
	$(SWIFT) build --build-tests
	FUZZ_SEED=$${FUZZ_SEED:-$$(date +%s)} FUZZ_SECONDS=$(FUZZ_SECONDS) $(SWIFT) test --skip-build --disable-xctest --filter fuzz
	FUZZ_SECONDS=$(FUZZ_SECONDS) scripts/fuzz.sh

demo: deps
	$(SWIFT) build --product account-worker
	$$($(SWIFT) build --show-bin-path)/account-worker demo

# The worker's figures on the release build, in one run (about 2 minutes):
# throughput against Little's law, idle memory, CPU per command, overhead at
# half load, scale-out (scripts/bench.py; --only picks scenarios). Figures,
# not assertions: it fails only when something is broken. The flock keeps two
# builds of the same tree (another session, an editor) from running at once.
# scripts/bench-simulator.sh (the simulator alone, with wrk) runs on its own.
bench: deps
	flock /tmp/swift-build.lock $(SWIFT) build -c release --product account-worker --static-swift-stdlib
	python3 scripts/bench.py

clean:
	rm -rf .build
