# wva developer entry points. `make test` is what CI runs (.ci/run): it installs every test
# component this machine lacks, then runs every tier.
SHELL := /bin/bash
CARGO ?= cargo

.PHONY: all build test tools lint unit fmt bench demo crd manifests clean-tools

all: build

build:
	$(CARGO) build --release

## Control-plane binaries (etcd, kube-apiserver, kube-controller-manager, kubectl) from tools/go.mod,
## the ecosystem the chart tests run (helm, cert-manager, prometheus-adapter, third-party CRDs, KEDA) from
## tools/<name>/go.mod, and the Debian packages the integration tests run (prometheus, nginx, openssl).
## Each is cached by version outside the work tree: a second run builds nothing.
ECOSYSTEM := helm cert-manager prometheus-adapter crds keda
tools:
	bash scripts/test-deps.sh
	bash scripts/tools.sh
	for name in $(ECOSYSTEM); do bash scripts/ecosystem.sh $$name >/dev/null; done

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

## Re-render the plain manifests (config/rbac, certs, webhooks) from the chart, their one source.
manifests:
	bash scripts/manifests.sh

## Regenerate the committed CRD (and the chart's byte-identical copy).
crd:
	$(CARGO) run --quiet -- crd > crds/llmd.ai_variantautoscalings.yaml
	cp crds/llmd.ai_variantautoscalings.yaml charts/wva/crds/
