"""A real headless Chromium (Debian's `chromium` package) driven by Playwright, with a fresh profile per use.

Playwright drives the system browser (`executable_path`): it downloads no browser
of its own, and it reports console messages and uncaught page errors as events.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from playwright.sync_api import Page, sync_playwright

FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]  # Playwright adds --headless


def chromium() -> str:
    """The chromium executable; without one the test fails under CI (.ci/run installs it) and is skipped elsewhere."""
    path = shutil.which("chromium")
    if path:
        return path
    message = "Debian's chromium is missing: apt-get install -y chromium (.ci/run installs it)"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


@contextmanager
def browser_page(profile: Path, width: int = 1280, height: int = 900) -> Iterator[tuple[Page, list[str]]]:
    """A page in headless Chromium (a `width` x `height` window) using the fresh profile dir `profile`, and its errors.

    Yields:
        (page, errors): errors collects console messages of type error and uncaught exceptions.
    """
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            profile, executable_path=chromium(), headless=True, args=FLAGS, viewport={"width": width, "height": height}
        )
        try:
            page = context.pages[0] if context.pages else context.new_page()
            errors: list[str] = []
            page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
            page.on("pageerror", lambda error: errors.append(f"uncaught: {error}"))
            yield page, errors
        finally:
            context.close()
