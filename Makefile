# Tickerdeck developer commands. `make run` and `make test` work from a fresh clone.
SHELL := /bin/bash
UV ?= $(shell command -v uv 2>/dev/null || echo "python3 -m uv")
PY := .venv/bin/python
CHROMIUM := /usr/bin/chromium
# Both cores (pytest-xdist; worksteal: an idle worker takes tests queued on the other, so the long live
# and browser tests do not leave one core idle at the end): about 1,500 tests on 2 cores.
# `make test PYTEST_ARGS="-k signup"` runs serially.
PYTEST_ARGS ?= -n 2 --dist worksteal

.PHONY: run cluster test fuzz check lint format setup browser nginx axe clean bench bench-quick bench-alerts bench-tenants soak

setup: .venv/.synced ## virtualenv with the locked dependencies

# Installed packages compiled to bytecode: where PYTHONDONTWRITEBYTECODE is set (as on the CI machine),
# every process would otherwise compile Django and the rest from source at each start (7 s instead of
# 2 s for each server, feed and settings check the tests start).
.venv/.synced: pyproject.toml uv.lock
	@$(UV) --version >/dev/null 2>&1 || python3 -m pip install --quiet uv
	$(UV) sync --frozen --quiet --compile-bytecode
	@touch $@

# The tests' extra data (backtesting's GOOG bars, AGPL): installed for `make test` only, never for `make run`.
.venv/.synced-test: .venv/.synced
	$(UV) sync --frozen --quiet --group test-data --compile-bytecode
	@touch $@

browser: ## Debian's Chromium for the browser tests (Playwright cannot download its own here)
	@test -x $(CHROMIUM) || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

nginx: ## Debian's nginx-light for `make cluster` and its tests
	@command -v nginx >/dev/null || test -x /usr/sbin/nginx || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx-light >/dev/null; }

# axe-core for the accessibility tests (tests/a11y): one pinned release from the npm registry, its
# axe.min.js checked against the checksum below (git-ignored). npm is needed here only, never while
# the tests run; installed with apt when missing, as Chromium is.
AXE_VERSION := 4.14.1
AXE_SHA256 := 29348999450cdf2849a8e70b7912fc2da85a849da39c0d0d5394f51d4a9ed95c
AXE_JS := tests/a11y/vendor/axe.min.js

axe: ## axe-core $(AXE_VERSION) for the accessibility tests, in tests/a11y/vendor/
	@echo "$(AXE_SHA256)  $(AXE_JS)" | sha256sum --check --status 2>/dev/null || { \
	  command -v npm >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq npm >/dev/null; }; \
	  tmp=$$(mktemp -d) && trap 'rm -rf "$$tmp"' EXIT && \
	  npm pack --silent --pack-destination "$$tmp" axe-core@$(AXE_VERSION) >/dev/null && \
	  tar -xzf "$$tmp/axe-core-$(AXE_VERSION).tgz" -C "$$tmp" package/axe.min.js && \
	  echo "$(AXE_SHA256)  $$tmp/package/axe.min.js" | sha256sum --check --quiet && \
	  mkdir -p $(dir $(AXE_JS)) && mv "$$tmp/package/axe.min.js" $(AXE_JS); }

run: setup ## set up everything and serve at http://localhost:$${PORT:-8000}
	$(PY) -m devtools run

cluster: setup nginx ## nginx on $${CLUSTER_PORT:-8080} in front of two web processes and two feeds (leader, standby)
	$(PY) -m devtools cluster

# SKIP_BROWSER=1: nothing installed with apt (it needs root: Chromium, npm for axe-core, nginx), and the
# browser, accessibility and cluster tests deselected, said loudly.
test: .venv/.synced-test $(if $(SKIP_BROWSER),,browser axe nginx) ## set up what the tests need and run the whole suite
	@$(if $(SKIP_BROWSER),echo "SKIP_BROWSER=1: the browser and accessibility and cluster tests are NOT run (-m 'not browser and not cluster')",true)
	@$(PY) -m compileall -q -j 0 -x '(^|/)\.(venv|git|data)' . >/dev/null  # this checkout's modules too
	$(PY) -m devtools test $(PYTEST_ARGS) $(if $(SKIP_BROWSER),-m "not browser and not cluster")

# The fuzzing of tests/security/test_fuzz_*.py with FUZZ_EXAMPLES=10000 cases per target (200 real
# connections for the uvicorn transport target) instead of `make test`'s 100, drawn afresh each run.
FUZZ_EXAMPLES ?= 10000
fuzz: .venv/.synced-test ## hypothesis fuzzing, 10,000 cases per target (README: Tests)
	FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) $(PY) -m devtools test tests/security/test_fuzz_*.py --timeout=7200 $(PYTEST_ARGS)

bench: setup ## streaming benchmark: naive vs raw websockets vs tickerdeck (~8 min; bench/results/latest.json)
	$(PY) -m bench $(BENCH_ARGS)

bench-quick: setup ## the same, fewer connections and rates, short windows (~1.5 min)
	$(PY) -m bench --quick $(BENCH_ARGS)

bench-alerts: setup ## feed CPU per quote without and with 100,000 alerts over 1,000 organisations (~25 min; bench/results/alerts-latest.json)
	$(PY) -m bench.alert_scale $(BENCH_ARGS)

bench-tenants: setup ## 10,000 organisations in a scratch database: sign-up at 0/1,000/10,000, migrate_schemas, catalog size (~1-2 h; BENCH_ARGS="--autovacuum on")
	$(PY) -m bench.tenant_scale $(BENCH_ARGS)

soak: setup ## 2,000 connections churned for 10 minutes: memory, leases, logs, abuse limits (~12 min; bench/results/soak-latest.json)
	$(PY) -m bench.soak $(SOAK_ARGS)

check: .venv/.synced-test ## lint, format check and type check
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .
	.venv/bin/mypy .

format: setup
	.venv/bin/ruff check --fix .
	.venv/bin/ruff format .

clean:
	rm -rf .venv .data .pytest_cache .mypy_cache .ruff_cache
