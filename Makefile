# Tickerdeck developer commands. `make run` and `make test` work from a fresh clone.
SHELL := /bin/bash
UV ?= $(shell command -v uv 2>/dev/null || echo "python3 -m uv")
PY := .venv/bin/python
CHROMIUM := /usr/bin/chromium
# Both cores (pytest-xdist): 774 tests in under 8 minutes on 2 cores. `make test PYTEST_ARGS="-k signup"` runs serially.
PYTEST_ARGS ?= -n 2

.PHONY: run test check lint format setup browser clean bench bench-quick

setup: .venv/.synced ## virtualenv with the locked dependencies

.venv/.synced: pyproject.toml uv.lock
	@$(UV) --version >/dev/null 2>&1 || python3 -m pip install --quiet uv
	$(UV) sync --frozen --quiet
	@touch $@

# The tests' extra data (backtesting's GOOG bars, AGPL): installed for `make test` only, never for `make run`.
.venv/.synced-test: .venv/.synced
	$(UV) sync --frozen --quiet --group test-data
	@touch $@

browser: ## Debian's Chromium for the browser tests (Playwright cannot download its own here)
	@test -x $(CHROMIUM) || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

run: setup ## set up everything and serve at http://localhost:$${PORT:-8000}
	$(PY) -m devtools run

test: .venv/.synced-test browser ## set up what the tests need and run the whole suite
	$(PY) -m devtools test $(PYTEST_ARGS)

bench: setup ## streaming benchmark: naive vs raw websockets vs tickerdeck (~8 min; bench/results/latest.json)
	$(PY) -m bench $(BENCH_ARGS)

bench-quick: setup ## the same, fewer connections and rates, short windows (~1.5 min)
	$(PY) -m bench --quick $(BENCH_ARGS)

check: .venv/.synced-test ## lint, format check and type check
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .
	.venv/bin/mypy .

format: setup
	.venv/bin/ruff check --fix .
	.venv/bin/ruff format .

clean:
	rm -rf .venv .data .pytest_cache .mypy_cache .ruff_cache
