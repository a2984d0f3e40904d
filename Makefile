# Everyday commands. Every target bootstraps what it needs (uv, the virtualenv) on a fresh machine.
SHELL := /bin/bash
.DEFAULT_GOAL := help
UV ?= $(shell command -v uv 2>/dev/null || echo $(HOME)/.local/bin/uv)
RUN := $(UV) run --frozen
PYTEST_ARGS ?=
# Release coordinates: VERSION is SemVer without the tag's "v" (CI passes it for the tag v1.2.3).
VERSION ?=
REGISTRY ?= ghcr.io/pinstack
APP_DIGEST ?=
OPERATOR_DIGEST ?=
RELEASE := $(RUN) python -m pinstack_devinfra.release

.PHONY: help
help: ## list the targets
	@grep -E '^[a-zA-Z0-9_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

$(UV):
	@echo "==> installing uv (the Python package manager) into ~/.local/bin"
	@python3 -m pip install --user --quiet uv || curl -LsSf https://astral.sh/uv/install.sh | sh

.venv/.synced: $(UV) uv.lock pyproject.toml $(wildcard services/*/pyproject.toml) operator/pyproject.toml
	@echo "==> installing Python dependencies (uv sync)"
	@$(UV) sync --frozen
	@touch $@

.PHONY: install
install: .venv/.synced ## install the locked dependencies into .venv

.PHONY: run
run: install ## start every component in one process on embedded PostgreSQL and Redis
	$(RUN) pinstack up

.PHONY: dev-up
dev-up: install ## start real PostgreSQL, Redis, Kafka and one process per component
	$(RUN) pinstack dev up

.PHONY: dev-down
dev-down: install ## stop what dev-up started (data is kept)
	$(RUN) pinstack dev down

.PHONY: lint
lint: install ## ruff, mypy strict (tests too), import-linter, generated-code freshness, actionlint
	$(RUN) ruff check .
	$(RUN) ruff format --check .
	$(RUN) mypy $(foreach p,common auth user post relation notification gateway cli devinfra operator,-p pinstack_$(p))
	$(RUN) mypy tests
	$(RUN) lint-imports
	$(RUN) python scripts/gen_proto.py --check
	$(RUN) python scripts/gen_config_docs.py --check
	$(RUN) python scripts/check_proto.py
	$(RUN) python -m pinstack_devinfra.tools actionlint

.PHONY: fmt
fmt: install ## format and autofix
	$(RUN) ruff format .
	$(RUN) ruff check --fix .

.PHONY: config-docs
config-docs: install ## regenerate docs/configuration.md from the settings classes
	$(RUN) python scripts/gen_config_docs.py

.PHONY: proto
proto: install ## regenerate the committed protobuf/gRPC code
	$(RUN) python scripts/gen_proto.py

.PHONY: test
test: lint test-py test-k8s test-cluster ## everything CI runs: lint, unit, integration, contract, Kafka, Kubernetes and cluster tiers

.PHONY: install-browser
install-browser: ## Debian's Chromium, which the Swagger UI test drives (Playwright, no browser download)
	@command -v chromium >/dev/null || (apt-get update -qq && apt-get install -y -qq chromium)

.PHONY: test-py
test-py: install install-browser ## unit, integration, contract and Kafka tests, with coverage and its floor
	$(RUN) pytest tests --ignore=tests/k8s --ignore=tests/cluster --cov --cov-report=term $(PYTEST_ARGS)

.PHONY: test-k8s
test-k8s: install ## the Kubernetes tier alone (builds Kubernetes, etcd, helm once, cached; first, outside test timeouts)
	$(RUN) python -m pinstack_devinfra.tools install
	$(RUN) python -m pinstack_devinfra.cluster binaries
	$(RUN) pytest tests/k8s $(PYTEST_ARGS)

.PHONY: test-cluster
test-cluster: install ## a real single-node cluster (root; builds kubelet & co. and images once, cached)
	$(RUN) python -m pinstack_devinfra.cluster binaries
	$(RUN) pytest tests/cluster $(PYTEST_ARGS)
	$(RUN) python -m pinstack_devinfra.cluster clean --check

.PHONY: images
images: install ## build both images with podman as the cluster tier does (no registry) into dist/images-<tag>.tar
	$(RELEASE) images $(if $(VERSION),--tag $(VERSION))

.PHONY: release-images
release-images: install ## CI, on a tag: amd64+arm64 images (docker buildx), pushed to REGISTRY, cosign-signed
	$(RELEASE) publish --version "$(VERSION)" --registry "$(REGISTRY)"

.PHONY: release-images-check
release-images-check: install ## CI, every push: the release images built for amd64+arm64 (docker buildx), not pushed
	$(RELEASE) publish --check --version "$(or $(VERSION),0.0.0-check)" --registry "$(REGISTRY)"

.PHONY: chart-release
chart-release: install ## both charts pinned to VERSION, APP_DIGEST, OPERATOR_DIGEST, packaged into dist/
	$(RELEASE) charts --version "$(VERSION)" --registry "$(REGISTRY)" \
		--app-digest "$(APP_DIGEST)" --operator-digest "$(OPERATOR_DIGEST)"

.PHONY: chart-push
chart-push: install ## CI, on a tag: helm push dist/'s chart packages to oci://REGISTRY/charts
	$(RELEASE) push-charts --version "$(VERSION)" --registry "$(REGISTRY)"

.PHONY: migrate-up
migrate-up: install ## apply every service's migrations (PINSTACK_*_DATABASE_URL or the embedded server)
	$(RUN) pinstack migrate up

.PHONY: migrate-down
migrate-down: install ## roll every service's schema back one step
	$(RUN) pinstack migrate down

.PHONY: bench
bench: install ## full benchmark against dev-up (starts it, rate limits off); see BENCHMARKS.md
	PINSTACK_RATE_LIMITS_ENABLED=false $(RUN) python bench/run.py

.PHONY: bench-quick
bench-quick: install ## two-minute benchmark against dev-up; results in bench/results/
	PINSTACK_RATE_LIMITS_ENABLED=false $(RUN) python bench/run.py --quick

.PHONY: clean
clean: ## remove the virtualenv, caches and embedded data (.pinstack/)
	rm -rf .venv .mypy_cache .ruff_cache .pytest_cache .pinstack
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
