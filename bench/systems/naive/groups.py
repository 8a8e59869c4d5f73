"""The naive design's group name for a symbol (shared by its consumers and its bridge)."""

import re

_NOT_ALLOWED = re.compile(r"[^A-Za-z0-9._-]")  # what channels allows in a group name


def symbol_group(symbol: str) -> str:
    return "q." + _NOT_ALLOWED.sub("_", symbol)
