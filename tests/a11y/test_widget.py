"""The embedded ticker tape for keyboards and screen readers, on a customer's page in Chromium."""

import re

import pytest
from playwright.sync_api import Page, expect

from tests.a11y.conftest import World

pytestmark = [pytest.mark.live, pytest.mark.browser]

TAPE = "[data-tickerdeck-widget] .tape"


def test_the_ticker_tape_is_a_named_marquee_that_a_keyboard_can_pause(page: Page, world: World) -> None:
    page.goto(world.customer.origin + "/")
    tape = page.get_by_role("marquee", name="Tape")
    expect(tape).to_contain_text(re.compile(r"NVDA\s*\d"))
    track = page.locator(f"{TAPE} .track")
    expect(track).to_have_css("animation-play-state", "running")

    tape.focus()  # focusing the tape stops it while it has focus
    expect(track).to_have_css("animation-play-state", "paused")

    pause = page.get_by_role("button", name="Pause")
    expect(pause).to_have_attribute("aria-pressed", "false")
    pause.focus()
    page.keyboard.press("Enter")
    expect(pause).to_have_attribute("aria-pressed", "true")
    page.mouse.move(0, 0)
    expect(track).to_have_css("animation-play-state", "paused")  # stays paused without focus or pointer

    page.keyboard.press("Space")
    expect(pause).to_have_attribute("aria-pressed", "false")
    expect(track).to_have_css("animation-play-state", "running")
