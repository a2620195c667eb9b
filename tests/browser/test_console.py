"""The flows of issue 30's "Done when", each as a user goes through it in a real browser: fields
found by their labels, buttons by their text, rows by what they say. What a change did is checked
through the API, the console's own word is not taken for it."""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.parse
import urllib.request

import pytest

from console import MODEL, Api, Console, Keys


def test_sign_in_refuses_a_bad_key_and_lets_a_good_one_in(browser: Console, keys: Keys, store: str) -> None:
    browser.open("/console/")
    browser.wait("the sign-in page", lambda: "/console/sign-in" in browser.driver.current_url)
    browser.sign_in("not-a-key-" + keys["admin"][:8])
    browser.wait_text("not valid")
    assert "/console/sign-in" in browser.driver.current_url
    assert not browser.driver.find_elements("css selector", "nav")

    browser.sign_in(keys["admin"])
    browser.wait_text(f"Signed in as {keys.names['admin']}")
    picker = browser.field("Store")
    picker.find_element("css selector", f"option[value='{store}']").click()
    browser.button("Open").click()
    browser.wait(f"store {store}", lambda: store in browser.driver.current_url)
    browser.go("Decisions")

    browser.sign_out()
    browser.open(f"/console/stores/{store}/decisions")
    browser.wait("signed out", lambda: "/console/sign-in" in browser.driver.current_url)


def test_a_check_through_the_api_shows_on_decisions(browser: Console, api: Api, keys: Keys, store: str) -> None:
    assert not api.check(store, "user:bob", "viewer", "document:q3")
    browser.sign_in(keys["reader"])
    browser.open(f"/console/stores/{store}/decisions")
    row = browser.row("user:bob", "viewer", "document:q3")
    assert "deny" in row.text


def test_decisions_filter_by_tool_and_by_agent(browser: Console, api: Api, keys: Keys, store: str) -> None:
    # Three recorded calls: anne's planner searches and deploys, bob's helper searches.
    api.obo_check(store, ["user:anne", "agent:planner"], "can_call", "tool:search", audit={"tool": "search"})
    api.obo_check(store, ["user:bob", "agent:helper"], "can_call", "tool:search", audit={"tool": "search"})
    api.obo_check(store, ["user:anne", "agent:planner"], "can_call", "tool:deploy", audit={"tool": "deploy"})
    browser.visit(keys["reader"], store, "Decisions")

    def rows() -> list[str]:
        return [row.text for row in browser.driver.find_elements("css selector", "tbody tr") if row.is_displayed()]

    browser.type_into("Tool", "deploy")
    browser.submit(browser.button("Filter"))
    shown = rows()
    assert len(shown) == 1 and "tool:deploy" in shown[0] and "agent:planner" in shown[0], shown
    assert browser.field("Tool").get_attribute("value") == "deploy"

    browser.type_into("Tool", "")
    browser.type_into("Agent", "agent:helper")
    browser.submit(browser.button("Filter"))
    shown = rows()
    assert len(shown) == 1 and "user:bob → agent:helper" in shown[0] and "search" in shown[0], shown

    browser.type_into("Agent", "agent:planner")
    browser.type_into("Tool", "search")
    browser.submit(browser.button("Filter"))
    shown = rows()
    assert len(shown) == 1 and "user:anne → agent:planner" in shown[0] and "tool:search" in shown[0], shown
    browser.readable("decisions-filtered")


def test_a_check_on_the_explain_page_shows_on_decisions(browser: Console, api: Api, keys: Keys, store: str) -> None:
    browser.visit(keys["writer"], store, "Explain")
    browser.ask("user:anne", "viewer", "document:q3", "Check")
    browser.wait_text(r"(?i)\ballowed\b")
    browser.go("Decisions")
    row = browser.row("user:anne", "viewer", "document:q3")
    assert "allow" in row.text


def test_explain_from_a_deny_row_names_the_failing_reason(browser: Console, api: Api, keys: Keys, store: str) -> None:
    assert not api.check(store, "user:bob", "viewer", "document:q3")
    browser.sign_in(keys["reader"])
    browser.open(f"/console/stores/{store}/decisions")
    browser.button("Explain", browser.row("user:bob", "viewer", "document:q3")).click()
    browser.wait("the Explain page", lambda: browser.heading().startswith("Explain"))
    assert browser.field("Subject").get_attribute("value") == "user:bob"
    assert browser.field("Relation").get_attribute("value") == "viewer"
    assert browser.field("Object").get_attribute("value") == "document:q3"
    # The tree: bob holds no viewer tuple on q3, nor is he in team:eng that views its folder.
    browser.wait_text(r"(?i)\bdenied\b")
    browser.expand_all()
    browser.wait_text(r"no[_ ]tuple")
    browser.readable("explain-tree")


def test_grant_a_would_allow_tuple_then_check_allows(browser: Console, api: Api, keys: Keys, store: str) -> None:
    browser.visit(keys["writer"], store, "Explain")
    browser.ask("user:bob", "viewer", "document:q3", "Explain")
    browser.wait_text(r"(?i)\bdenied\b")
    # The shortest would_allow tuple, bob as a direct viewer of q3, comes first.
    grant = browser.button("Grant", browser.row("user:bob", "document:q3"))
    # Cancelled, the grant writes nothing.
    grant.click()
    browser.dismiss()
    assert not api.check(store, "user:bob", "viewer", "document:q3")
    grant.click()
    question = browser.wait("the confirmation", browser.dialog_text)
    assert "user:bob" in question and "document:q3" in question, question
    browser.readable("explain-grant-dialog")
    browser.confirm("Grant", "Confirm", "Yes", "OK")
    browser.wait("the grant written", lambda: api.check(store, "user:bob", "viewer", "document:q3"))
    assert ("user:bob", "viewer", "document:q3") in api.tuples(store, "document:q3")
    browser.go("Explain")
    browser.ask("user:bob", "viewer", "document:q3", "Check")
    browser.wait_text(r"(?i)\ballowed\b")


def test_revoke_a_delegation_previews_the_flips_then_obo_denies(
    browser: Console, api: Api, keys: Keys, store: str
) -> None:
    chain = ["user:anne", "agent:planner"]
    # Recent allowed decisions: the chain through the delegation (flips), planner on its own
    # grant (stays), and bob's helper (another delegation: stays).
    assert api.obo_check(store, chain, "can_call", "tool:search", audit={"tool": "search"})["allowed"]
    assert api.check(store, "agent:planner", "viewer", "document:q3")
    assert api.obo_check(store, ["user:bob", "agent:helper"], "can_call", "tool:search")["allowed"]
    browser.visit(keys["admin"], store, "Agents")
    browser.submit(browser.button("Revoke", browser.row("agent:planner", "user:anne")))
    # The preview lists the decision that the revocation turns to deny, and only that one.
    flips = browser.row("user:anne → agent:planner", "can_call", "tool:search")
    assert "tool:search" in flips.text
    listed = browser.text()
    assert "document:q3" not in listed and "agent:helper" not in listed, listed
    assert api.obo_check(store, chain, "can_call", "tool:search")["allowed"], "the preview wrote something"
    browser.readable("agents-revoke-preview")
    browser.button("Revoke").click()
    question = browser.wait("the confirmation", browser.dialog_text)
    assert "agent:planner" in question and re.search(r"\b1 recent decision", question), question
    browser.confirm("Revoke", "Confirm", "Yes", "OK")
    browser.wait("the delegation deleted", lambda: not api.obo_check(store, chain, "can_call", "tool:search")["allowed"])
    denied = api.obo_check(store, chain, "can_call", "tool:search")
    assert denied["denied_by"]["kind"] == "delegation", denied
    assert ("agent:planner", "delegate", "user:anne") not in api.tuples(store, "user:anne")
    # The other delegation stands, and so does planner's own grant.
    assert api.obo_check(store, ["user:bob", "agent:helper"], "can_call", "tool:search")["allowed"]
    assert api.check(store, "agent:planner", "viewer", "document:q3")


def test_add_and_delete_a_tuple_on_the_tuples_page(browser: Console, api: Api, keys: Keys, store: str) -> None:
    browser.visit(keys["writer"], store, "Tuples")
    form = browser.field("Subject").find_element("xpath", "./ancestor::form")
    browser.type_into("Subject", "user:dave", form)
    browser.type_into("Relation", "viewer", form)
    browser.type_into("Object", "document:roadmap", form)
    browser.button("Add", form).click()
    browser.wait("the tuple added", lambda: ("user:dave", "viewer", "document:roadmap") in api.tuples(store, "document:roadmap"))
    assert api.check(store, "user:dave", "viewer", "document:roadmap")
    # The change feed names the key that made it.
    browser.row("write", "document:roadmap#viewer@user:dave", keys.names["writer"])

    browser.button("Delete", browser.row("document:roadmap", "viewer", "user:dave")).click()
    browser.confirm("Delete", "Confirm", "Yes", "OK")
    browser.wait("the tuple deleted", lambda: ("user:dave", "viewer", "document:roadmap") not in api.tuples(store, "document:roadmap"))
    assert not api.check(store, "user:dave", "viewer", "document:roadmap")
    browser.row("delete", "document:roadmap#viewer@user:dave", keys.names["writer"])


def test_saving_a_model_with_an_error_shows_its_line_and_column(
    browser: Console, api: Api, keys: Keys, store: str
) -> None:
    browser.visit(keys["admin"], store, "Model")
    text = browser.field("Model text")
    before = text.get_attribute("value")
    broken = before.rstrip("\n") + "\n\ntype broken\n  relations\n    define viewer: [nosuchtype]\n"
    browser.driver.execute_script("arguments[0].value = '';", text)
    text.send_keys(broken)
    assert text.get_attribute("value") == broken
    browser.button("Save").click()
    found = browser.wait_text(r"(\d+):(\d+): [^\n]*nosuchtype")
    line, column = int(found.group(1)), int(found.group(2))
    lines = broken.split("\n")
    assert "nosuchtype" in lines[line - 1], (line, lines[line - 1])
    assert 1 <= column <= len(lines[line - 1]), (column, lines[line - 1])
    # Nothing was saved: the latest model has no type `broken`.
    models = api.call("GET", f"/stores/{store}/authorization-models")["authorization_models"]
    assert all(t["type"] != "broken" for model in models for t in model["type_definitions"])


CHANGE_CONTROLS = ("Add", "Delete", "Save", "Grant", "Revoke", "Approve", "Deny")


def test_the_model_page_draws_every_type_and_relation(browser: Console, keys: Keys, store: str) -> None:
    browser.visit(keys["reader"], store, "Model")
    # The drawing is an image by role, as assistive technology finds it; its labels are text.
    drawings = browser.wait(
        "the model's drawing", lambda: [d for d in browser.driver.find_elements("css selector", "[role=img]") if d.is_displayed()]
    )
    # The labels a user sees: each SVG <text> (or, in HTML, the visible text).
    labels = "return [...arguments[0].querySelectorAll('text')].map(t => t.textContent).join('\\n') || arguments[0].innerText"
    drawn = "\n".join(str(browser.driver.execute_script(labels, drawing)) for drawing in drawings)
    words = set(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", drawn))
    types = re.findall(r"^type (\w+)", MODEL, re.MULTILINE)
    relations = re.findall(r"^\s+define (\w+):", MODEL, re.MULTILINE)
    assert len(types) == 9 and relations, (types, relations)
    missing = sorted({name for name in types + relations if name not in words})
    assert not missing, f"the drawing lacks {missing}:\n{drawn}"
    browser.driver.execute_script("arguments[0].scrollIntoView()", drawings[0])
    browser.readable("model-graph")


def test_a_reader_gets_no_change_controls_and_forged_posts_are_refused(
    browser: Console, api: Api, keys: Keys, store: str
) -> None:
    browser.visit(keys["reader"], store, "Tuples")
    browser.row("document:q3", "parent", "folder:finance")
    for page in ("Tuples", "Model", "Decisions"):
        browser.go(page)
        shown = [name for name in CHANGE_CONTROLS if browser.buttons(name)]
        assert not shown, f"a reader sees {shown} on {page}"
    # Even with the session's own CSRF token, a reader's change is refused.
    token = browser.driver.execute_script("return document.querySelector('input[name=csrf]').value")
    add = f"/console/stores/{store}/tuples/add"
    form = {"subject": "user:mallory", "relation": "viewer", "object": "document:q3"}
    assert browser.post_from_page(add, {**form, "csrf": token}) == 403

    # A writer's session: a POST without the token, or with a wrong one, is refused.
    browser.sign_out()
    browser.sign_in(keys["writer"])
    browser.open(f"/console/stores/{store}/tuples")
    browser.field("Subject")
    assert browser.post_from_page(add, form) == 403
    assert browser.post_from_page(add, {**form, "csrf": "0" * 64}) == 403
    # The same forgery from outside the browser, carrying the stolen cookie.
    request = urllib.request.Request(
        api.url + add, data=urllib.parse.urlencode({**form, "csrf": "forged"}).encode(), method="POST"
    )
    request.add_header("Cookie", browser.session_cookie())
    request.add_header("Content-Type", "application/x-www-form-urlencoded")
    try:
        urllib.request.urlopen(request, timeout=10)
        raise AssertionError("a forged POST was accepted")
    except urllib.error.HTTPError as error:
        assert error.code == 403, error.code
    assert ("user:mallory", "viewer", "document:q3") not in api.tuples(store, "document:q3")
    assert not api.check(store, "user:mallory", "viewer", "document:q3")


def test_a_reader_gets_no_grant_or_revoke(browser: Console, api: Api, keys: Keys, store: str) -> None:
    api.obo_check(store, ["user:anne", "agent:planner"], "can_call", "tool:search", audit={"tool": "search"})
    browser.visit(keys["reader"], store, "Explain")
    browser.ask("user:bob", "viewer", "document:q3", "Explain")
    browser.wait_text(r"(?i)\bdenied\b")
    for page in ("Explain", "Agents"):
        browser.go(page)
        shown = [name for name in CHANGE_CONTROLS if browser.buttons(name)]
        assert not shown, f"a reader sees {shown} on {page}"


def test_an_approver_approves_a_pending_approval(browser: Console, api: Api, keys: Keys, store: str) -> None:
    chain = ["user:anne", "agent:planner"]
    call = {"audit": {"tool": "deploy"}, "approval": "request"}
    asked = api.obo_check(store, chain, "can_call", "tool:deploy", **call)
    assert not asked["allowed"] and asked["approval"]["state"] == "pending", json.dumps(asked)
    browser.visit(keys["approver"], store, "Approvals")
    approve = browser.button("Approve", browser.row("tool:deploy", "agent:planner"))
    path = f"/stores/{store}/writ/approvals/{asked['approval']['id']}"
    # The approve form without its CSRF token is refused, and approves nothing.
    action = browser.driver.execute_script("return new URL(arguments[0].form.action).pathname", approve)
    assert browser.post_from_page(action, {"ttl": "15m", "uses": "1"}) == 403
    assert api.call("GET", path, role="approver")["state"] == "pending"
    approve.click()

    def approved() -> bool:
        # Approving may ask for a confirmation first: answer it if it does.
        browser.try_confirm("Approve", "Confirm", "Yes", "OK")
        return api.call("GET", path, role="approver")["state"] == "approved"

    browser.wait("the approval approved", approved)
    # The same call, retried unchanged, is now allowed, and the step names the approver's key.
    assert api.obo_check(store, chain, "can_call", "tool:deploy", **call)["allowed"]
    log = json.dumps(api.call("GET", f"/stores/{store}/writ/decisions"))
    assert keys.names["approver"] in log


def test_an_agents_first_call_of_a_tool_shows_as_an_alert(browser: Console, api: Api, keys: Keys, store: str) -> None:
    # The server runs with `first_tool_call` on (.ci/browser.sh): planner's first call of search alerts.
    assert api.obo_check(store, ["user:anne", "agent:planner"], "can_call", "tool:search", audit={"tool": "search"})["allowed"]
    browser.visit(keys["reader"], store, "Approvals")
    alert = browser.row("first_tool_call", "agent:planner")
    assert "search" in alert.text, alert.text
    browser.readable("approvals-alerts")


TEST_FILE = """name: roadmap
tuples:
  - user: user:carol
    relation: owner
    object: document:memo
tests:
  - name: owners edit
    check:
      - user: user:carol
        object: document:memo
        assertions:
          editor: true
          viewer: true
  - name: strangers do not
    check:
      - user: user:dave
        object: document:memo
        assertions:
          viewer: true
"""


def test_a_reader_runs_a_model_test_file_on_the_model_page(browser: Console, api: Api, keys: Keys, store: str) -> None:
    browser.visit(keys["reader"], store, "Model")
    browser.type_into("Test file", TEST_FILE)
    browser.submit(browser.button("Run tests"))
    browser.wait_text(r"Tests 1/2 passing")
    browser.wait_text(r"2 passed · 1 failed")
    failing = browser.row("strangers do not", "user:dave", "failed")
    assert "true" in failing.text and "false" in failing.text, failing.text
    assert browser.field("Test file").get_attribute("value").startswith("name: roadmap")
    # The file's tuples stayed in memory: the store never got them.
    assert api.tuples(store, "document:memo") == []
    browser.driver.execute_script("arguments[0].scrollIntoView()", failing)
    browser.readable("model-tests")
