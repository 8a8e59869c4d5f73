"""axe-core in a Playwright page: load the pinned release (`make axe`), run it, describe what it found."""

from functools import cache
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page

AXE_JS = Path(__file__).resolve().parent / "vendor" / "axe.min.js"
# What axe checks: WCAG 2.0, 2.1 and 2.2 at levels A and AA, and Deque's best practices (landmarks,
# one h1, heading order, regions), as axe.run() does with no options.
AXE_OPTIONS: dict[str, Any] = {"resultTypes": ["violations"]}


@cache
def axe_source() -> str:
    if not AXE_JS.is_file():
        pytest.fail(f"{AXE_JS} is missing: `make axe` fetches the pinned axe-core", pytrace=False)
    return AXE_JS.read_text()


def axe_violations(page: Page) -> list[dict[str, Any]]:
    """axe.run() on the whole page (open Shadow DOMs included): its violations.

    The source goes in through the DevTools protocol (Runtime.evaluate), which the page's
    Content-Security-Policy does not govern; `page.add_script_tag` would add an inline <script> that
    the policy blocks.
    """
    if not page.evaluate("() => typeof window.axe === 'object'"):
        page.evaluate(axe_source())
    violations: list[dict[str, Any]] = page.evaluate("(options) => axe.run(document, options)", AXE_OPTIONS)[
        "violations"
    ]
    return violations


def describe(violations: list[dict[str, Any]]) -> str:
    """Each violation's rule, impact and help, and the selectors of the nodes that fail it."""
    lines = []
    for violation in violations:
        lines.append(f"{violation['id']} ({violation['impact']}): {violation['help']} <{violation['helpUrl']}>")
        for node in violation["nodes"]:
            summary = " ".join(node.get("failureSummary", "").split())
            lines.append(f"    {' >> '.join(map(str, node['target']))}: {summary}")
    return "\n".join(lines)


def assert_no_violations(page: Page, what: str) -> None:
    violations = axe_violations(page)
    assert not violations, f"axe-core found {len(violations)} violation(s) on {what}:\n{describe(violations)}"
