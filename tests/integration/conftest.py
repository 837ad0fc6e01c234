"""Markers of the integration tests, and where the console's browser tests left their screenshots."""

from __future__ import annotations

import pytest

from tests.conftest import RUN_DIR

# test_console_browser.py writes a screenshot of each page it visits here.
# One folder per run (tests/conftest.py), which the xdist workers and the controller agree on.
CONSOLE_SCREENSHOTS = RUN_DIR / "console-screenshots"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "browser: drives Chromium with Playwright (the console's browser tests)")


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    ran = [r for kind in ("passed", "failed", "error") for r in terminalreporter.stats.get(kind, [])
           if "test_console_browser.py" in getattr(r, "nodeid", "")]
    if ran and CONSOLE_SCREENSHOTS.is_dir():
        shots = sorted(p.name for p in CONSOLE_SCREENSHOTS.glob("*.png"))
        terminalreporter.write_line(f"console screenshots ({len(shots)}) in {CONSOLE_SCREENSHOTS}: {', '.join(shots)}")
