# wva developer entry points. `make test` is what CI runs (.ci/run): it installs every test
# component this machine lacks, then runs every tier.
SHELL := /bin/bash
CARGO ?= cargo

.PHONY: all build test tools lint unit fmt bench demo crd clean-tools

all: build

build:
	$(CARGO) build --release

## Control-plane binaries (etcd, kube-apiserver, kube-controller-manager, kubectl) from tools/go.mod,
## and the Debian packages the integration tests run (prometheus, nginx, openssl).
tools:
	bash scripts/tools.sh
	bash scripts/test-deps.sh

## Formatting and lints, as CI checks them.
lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --all-targets -- -D warnings

## Every tier: unit, CLI/integration, control plane.
test: tools lint
	KUBEBUILDER_ASSETS="$$(bash scripts/tools.sh)" $(CARGO) test --all-targets --no-fail-fast

## Unit tier only (no external components).
unit:
	$(CARGO) test --lib

fmt:
	$(CARGO) fmt --all

bench:
	$(CARGO) bench

## The built-in example: the default simulation scenario.
demo:
	$(CARGO) run --release -- simulate

## Regenerate the committed CRD.
crd:
	$(CARGO) run --quiet -- crd > crds/llmd.ai_variantautoscalings.yaml
