"""A real headless Chromium page per test (helpers: `tests/support/browser.py`); without
Chromium the tests skip, or fail under CI."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.browser import Browser, chromium_page, chromium_path
from tests.support.needs import missing


@pytest.fixture
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Browser]:
    if chromium_path() is None:
        missing("chromium is not installed: scripts/install-browser.sh installs it")
    with chromium_page(tmp_path_factory.mktemp("chromium-profile")) as page:
        yield page
