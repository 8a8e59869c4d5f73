"""Developer entry points behind `make run` and `make test` (no Django imports at module level)."""
