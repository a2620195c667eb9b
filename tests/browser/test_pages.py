"""Every console page at 1280×800: a screenshot of each (in $WRIT_SCREENSHOTS, outside the
checkout) and a mechanical check that it reads: no two visible pieces of text overlap, and nothing
(no table) is wider than the window. Pages are reached as a user reaches them, by the nav."""

from __future__ import annotations

import pytest

from console import Api, Console, Keys

# The nav's pages (DESIGN §10's five and Approvals), each seen by the role that sees it whole.
PAGES = [
    pytest.param(page, role, marks=pytest.mark.needs(f"{page} page"), id=page)
    for page, role in [
        ("Decisions", "admin"),
        ("Explain", "admin"),
        ("Agents", "admin"),
        ("Tuples", "admin"),
        ("Model", "admin"),
        ("Approvals", "approver"),
    ]
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


@pytest.mark.parametrize(("page", "role"), PAGES)
def test_page(browser: Console, api: Api, keys: Keys, store: str, page: str, role: str) -> None:
    # Something on every page: decisions of both kinds, a pending approval.
    api.check(store, "user:anne", "viewer", "document:q3")
    api.check(store, "user:bob", "viewer", "document:q3")
    api.obo_check(store, ["user:anne", "agent:planner"], "can_call", "tool:search", audit={"tool": "search"})
    api.obo_check(store, ["user:anne", "agent:planner"], "can_call", "tool:deploy", approval="request")
    browser.visit(keys[role], store, page)
    browser.readable(page.lower())
