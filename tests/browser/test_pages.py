"""Every console page at 1280×800: a screenshot of each (in $WRIT_SCREENSHOTS, outside the
checkout) and a mechanical check that it reads: no two visible pieces of text overlap, and nothing
(no table) is wider than the window. Pages are reached as a user reaches them, by the nav."""

from __future__ import annotations

import pytest

from console import Api, Console, Keys

# The nav's pages (DESIGN §10's five and Approvals), each seen by the role that sees it whole.
LONG_ID = "document:" + "9f86d081884c7d659a2feaa0c55ad015" * 4

PAGES = [
    ("Decisions", "admin"),
    ("Explain", "admin"),
    ("Agents", "admin"),
    ("Tuples", "admin"),
    ("Model", "admin"),
    ("Approvals", "approver"),
]


def test_sign_in_page(browser: Console, keys: Keys) -> None:
    browser.open("/console/sign-in")
    browser.field("API key")
    browser.readable("sign-in")
    browser.sign_in("wrong-key")
    browser.wait_text("not valid")
    browser.readable("sign-in-refused")


def test_stores_page(browser: Console, keys: Keys, store: str) -> None:
    browser.sign_in(keys["admin"])
    browser.wait_text("Stores")
    browser.readable("stores")


def seed_decisions(api: Api, store: str) -> None:
    """Something on every page: decisions of both kinds, a pending approval."""
    api.check(store, "user:anne", "viewer", "document:q3")
    api.check(store, "user:bob", "viewer", "document:q3")
    api.obo_check(store, ["user:anne", "agent:planner"], "can_call", "tool:search", audit={"tool": "search"})
    api.obo_check(store, ["user:anne", "agent:planner"], "can_call", "tool:deploy", approval="request")


@pytest.mark.parametrize(("page", "role"), PAGES, ids=[page for page, _ in PAGES])
def test_page(browser: Console, api: Api, keys: Keys, store: str, page: str, role: str) -> None:
    seed_decisions(api, store)
    browser.visit(keys[role], store, page)
    browser.readable(page.lower())


@pytest.mark.parametrize("page", ["Tuples", "Decisions"])
def test_a_long_id_wraps_inside_its_table(browser: Console, api: Api, keys: Keys, store: str, page: str) -> None:
    # An id as long and unbroken as a hash (128 hex digits, well within the 256-byte limit) must
    # wrap in its cell, neither pushing the table past the window nor breaking the short words
    # of the other columns.
    api.write(store, [("user:anne", "viewer", LONG_ID)])
    api.check(store, "user:bob", "viewer", LONG_ID)
    seed_decisions(api, store)
    browser.visit(keys["admin"], store, page)
    browser.readable(f"{page.lower()}-long-id")
