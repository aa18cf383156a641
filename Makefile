# Polls Platform -- `make` (or `make help`) lists every target.
# Everything runs natively (no containers): see README.md. Scripts live in scripts/.

SHELL := /bin/bash
.DEFAULT_GOAL := help
PYTHON ?= python3
VENV ?= .venv
VPY := $(VENV)/bin/python

.PHONY: help up up-detached down logs status test lint format migrations-check bench chaos release venv secrets gateway-config deploy-check clean

help: ## list every target
	@if [ -t 1 ]; then c='\033[36m'; r='\033[0m'; else c=''; r=''; fi; \
	 awk -v c="$$c" -v r="$$r" 'BEGIN {FS = ":.*?## "} /^[a-zA-Z_-]+:.*?## / {printf "  %s%-18s%s %s\n", c, $$1, r, $$2}' $(MAKEFILE_LIST)

up: ## run the whole platform in the foreground (logs of every process; Ctrl-C stops all)
	@$(PYTHON) scripts/stack.py up

up-detached: ## start the platform in the background (then `make logs`, `make status`, `make down`)
	@$(PYTHON) scripts/stack.py up --detach

down: ## stop everything `make up` started (by PID and process group)
	@$(PYTHON) scripts/stack.py down

logs: ## follow the logs of every process of the running platform
	@$(PYTHON) scripts/stack.py logs

status: ## show each process of the platform and whether it answers
	@$(PYTHON) scripts/stack.py status

test: ## lint, import contracts, migrations check, every service suite, cross-service suite
	@bash scripts/test.sh

lint: venv ## ruff check, ruff format --check and import-linter contracts
	@bash scripts/test.sh lint

format: venv ## ruff format + safe ruff fixes over the repository
	@$(VENV)/bin/ruff check --fix . ; $(VENV)/bin/ruff format .

migrations-check: venv ## fail when a model change lacks its migration (every service)
	@bash scripts/test.sh migrations

bench: venv ## the vote path through the gateway beside a minimal baseline, one window (scripts/bench.sh; BENCH_ONLY=baseline)
	@bash scripts/infra.sh wrk
	@bash scripts/bench.sh

release: venv ## release SERVICE on the running stack: canary 10/25/50/100 % with rollback (STRATEGY=blue-green; scripts/release.py)
	@$(VPY) scripts/release.py $(or $(SERVICE),votes) --strategy $(or $(STRATEGY),canary)

chaos: venv ## the large fault-injection run (tests/chaos, CHAOS_SCALE=full)
	@bash scripts/infra.sh all
	@if [ -d tests/chaos ]; then CHAOS_SCALE=full $(VENV)/bin/pytest -c tests/pytest.ini tests/chaos; \
	 else echo "chaos: tests/chaos is not written yet (issue 5)"; exit 1; fi

venv: ## create .venv and install the pinned requirements when missing or changed
	@$(PYTHON) scripts/stack.py venv

secrets: venv ## generate missing dev secrets into .run/secrets (never overwrites)
	@$(VPY) scripts/devsecrets.py

gateway-config: ## re-render k8s/base/gateway-nginx.conf from nginx/gateway.conf.template; nginx -t locally
	@$(PYTHON) scripts/gateway.py k8s --out k8s/base/gateway-nginx.conf
	@$(PYTHON) scripts/gateway.py local --run-dir .run/gateway-check --check >/dev/null && echo "nginx -t ok"

observability-config: ## copy ops/prometheus and ops/grafana into the k8s observability component (kustomize reads only inside it)
	@d=k8s/components/observability/config; mkdir -p $$d/rules $$d/grafana $$d/dashboards \
	  && cp ops/prometheus/prometheus.k8s.yml $$d/ && cp ops/prometheus/rules/*.yml $$d/rules/ \
	  && cp ops/grafana/dashboards/*.json $$d/dashboards/ \
	  && cp ops/grafana/provisioning/datasources/prometheus.yml $$d/grafana/datasources.yml \
	  && cp ops/grafana/provisioning/dashboards/polls-platform.yml $$d/grafana/dashboards.yml && echo "copied to $$d"

deploy-check: venv ## hadolint the Dockerfile, validate docker-compose.yml and every k8s overlay
	@$(VENV)/bin/pytest -c tests/pytest.ini -q tests/ops/test_deploy.py tests/ops/test_gateway_config.py

clean: ## stop the platform, remove .run/ (databases, secrets, logs) and caches; keeps .venv
	@-$(PYTHON) scripts/stack.py down
	@-$(PYTHON) scripts/stack.py down --run-dir .run/test-stack
	rm -rf .run .pytest_cache .ruff_cache web/dist
	find . -name __pycache__ -type d -not -path './.venv/*' -prune -exec rm -rf {} +
