"""The page helpers' own rules, without a browser: what counts as a page replaced by navigation.

Regression for the flake `test_decisions_filter_by_tool_and_by_agent` hit in CI: Chromium reported
the previous page's `<html>` as "Node with given id does not belong to the document" (an unknown
error, not a stale element reference) while the next page was being attached, and `submit` failed
instead of seeing that the page had been replaced."""

from __future__ import annotations

import pytest
from selenium.common.exceptions import StaleElementReferenceException, WebDriverException

from console import Console


class Element:
    """A stand-in for a WebElement whose `is_enabled` raises `error` (or answers True)."""

    def __init__(self, error: Exception | None) -> None:
        self.error = error

    def is_enabled(self) -> bool:
        if self.error is not None:
            raise self.error
        return True


def test_a_node_detached_by_navigation_counts_as_gone() -> None:
    detached = WebDriverException(
        'unknown error: unhandled inspector error: {"code":-32000,'
        '"message":"Node with given id does not belong to the document"}'
    )
    assert Console._gone(Element(detached))  # type: ignore[arg-type]


def test_a_stale_node_counts_as_gone_and_a_live_one_does_not() -> None:
    assert Console._gone(Element(StaleElementReferenceException("stale element reference")))  # type: ignore[arg-type]
    assert not Console._gone(Element(None))  # type: ignore[arg-type]


def test_any_other_browser_error_is_raised_not_taken_for_navigation() -> None:
    with pytest.raises(WebDriverException, match="chrome not reachable"):
        Console._gone(Element(WebDriverException("chrome not reachable")))  # type: ignore[arg-type]
