"""What the browser tests share: the API over urllib (to seed stores and to check what the console
did) and `Console`, a Selenium driver with the ways a user finds things: fields by their visible
`<label>` text, buttons and links by their visible text, table rows by the text they hold, and
confirmations whether the page asks with `confirm()` or with a `<dialog>`. No CSS class is used."""

from __future__ import annotations

import json
import re
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, TypeVar

from selenium.common.exceptions import (
    NoAlertPresentException,
    NoSuchElementException,
    StaleElementReferenceException,
    WebDriverException,
)
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement

T = TypeVar("T")

WIDTH, HEIGHT = 1280, 800

# The seeded stores' model: people, teams, folders, documents, agents, delegation, tools.
MODEL = (Path(__file__).resolve().parents[2] / "schema" / "agents.fga").read_text()


@dataclass(frozen=True)
class Keys:
    """The server's key per role, from the keys file .ci/browser.sh wrote."""

    by_role: dict[str, str]
    names: dict[str, str]

    @staticmethod
    def load(path: str) -> "Keys":
        entries = json.loads(Path(path).read_text())["keys"]
        return Keys({e["role"]: e["key"] for e in entries}, {e["role"]: e["name"] for e in entries})

    def __getitem__(self, role: str) -> str:
        return self.by_role[role]


class Api:
    """The API as a client uses it: JSON over HTTP with a bearer key (the admin's unless told)."""

    def __init__(self, url: str, keys: Keys) -> None:
        self.url = url.rstrip("/")
        self.keys = keys

    def call(self, method: str, path: str, body: Any = None, role: str = "admin", text: str | None = None) -> Any:
        data, content_type = (text.encode(), "text/plain") if text is not None else (
            json.dumps(body).encode() if body is not None else None,
            "application/json",
        )
        request = urllib.request.Request(self.url + path, data=data, method=method)
        request.add_header("Authorization", f"Bearer {self.keys[role]}")
        request.add_header("Content-Type", content_type)
        try:
            with urllib.request.urlopen(request, timeout=10) as answer:
                payload = answer.read()
        except urllib.error.HTTPError as error:
            raise AssertionError(f"{method} {path} answered {error.code}: {error.read().decode()}") from None
        return json.loads(payload) if payload else None

    def create_store(self, name: str) -> str:
        return str(self.call("POST", "/stores", {"name": name})["id"])

    def put_model(self, store: str, text: str) -> None:
        self.call("PUT", f"/stores/{store}/writ/model", text=text)

    def write(self, store: str, tuples: Iterable[tuple[str, str, str]]) -> None:
        keys = [{"user": user, "relation": relation, "object": obj} for user, relation, obj in tuples]
        self.call("POST", f"/stores/{store}/write", {"writes": {"tuple_keys": keys}})

    def check(self, store: str, user: str, relation: str, obj: str) -> bool:
        body = {"tuple_key": {"user": user, "relation": relation, "object": obj}}
        return bool(self.call("POST", f"/stores/{store}/check", body)["allowed"])

    def obo_check(self, store: str, principals: list[str], relation: str, obj: str, **extra: Any) -> Any:
        body = {"principals": principals, "relation": relation, "object": obj, **extra}
        return self.call("POST", f"/stores/{store}/writ/obo-check", body)

    def tuples(self, store: str, obj: str) -> list[tuple[str, str, str]]:
        found = self.call("POST", f"/stores/{store}/read", {"tuple_key": {"object": obj}})["tuples"]
        return [(t["key"]["user"], t["key"]["relation"], t["key"]["object"]) for t in found]


# The visible elements that own text: every text node's client rectangles, with its element; and
# the short words (up to 24 characters, so not a long id) that are broken across lines; and the
# texts of a drawing (SVG, outside tooltips) that take no room, so are not drawn at all.
TEXT_BOXES_JS = """
const boxes = [], broken = [], undrawn = [];
// A modal dialog makes the rest of the page inert and covered: then only the dialog is read.
const root = document.querySelector('dialog:modal') || document.body;
const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
for (let node = walker.nextNode(); node; node = walker.nextNode()) {
  if (!node.textContent.trim()) continue;
  const element = node.parentElement;
  const style = getComputedStyle(element);
  if (style.visibility !== 'visible' || Number(style.opacity) === 0) continue;
  const range = document.createRange();
  range.selectNodeContents(node);
  const rects = [...range.getClientRects()].filter(r => r.width >= 1 && r.height >= 1);
  if (element instanceof SVGElement && !element.closest('title, desc, defs') && !rects.length) {
    undrawn.push({text: node.textContent.trim().slice(0, 40), tag: element.tagName.toLowerCase()});
  }
  const word = node.textContent.trim();
  const lines = new Set([...range.getClientRects()].filter(r => r.width >= 1).map(r => Math.round(r.top)));
  if (!/\\s/.test(word) && word.length <= 24 && lines.size > 1) {
    broken.push({text: word, tag: element.tagName.toLowerCase()});
  }
  for (const rect of range.getClientRects()) {
    if (rect.width < 1 || rect.height < 1) continue;
    boxes.push({text: node.textContent.trim().slice(0, 40), tag: element.tagName.toLowerCase(),
                left: rect.left, top: rect.top, right: rect.right, bottom: rect.bottom});
  }
}
return {boxes, broken, undrawn};
"""

# Every table's right edge and the page's scroll width.
WIDTHS_JS = """
return {scroll: document.documentElement.scrollWidth, client: document.documentElement.clientWidth,
        tables: [...document.querySelectorAll('table')].map(t => Math.round(t.getBoundingClientRect().right))};
"""

# A visible label's own text (its text nodes, not its control's) → the control it labels.
FIELD_JS = """
const [scope, name] = arguments;
const own = label => [...label.childNodes].filter(n => n.nodeType === Node.TEXT_NODE)
  .map(n => n.textContent).join('').replace(/\\s+/g, ' ').trim();
return [...(scope || document).querySelectorAll('label')]
  .filter(label => label.getClientRects().length && own(label) === name && label.control)
  .map(label => label.control);
"""

# Visible buttons (and submit inputs) and links whose visible text is exactly `name`.
CONTROLS_JS = """
const [scope, name, selector] = arguments;
const text = e => (e.tagName === 'INPUT' ? e.value : e.innerText).replace(/\\s+/g, ' ').trim();
return [...(scope || document).querySelectorAll(selector)]
  .filter(e => e.getClientRects().length && text(e) === name);
"""


# Chromium's message when a node read before a navigation is asked about after the new document
# is attached: the same fact as a stale element reference, reported as an "unknown error".
DETACHED_NODE = "does not belong to the document"


class Console:
    """A browser on the console."""

    def __init__(self, driver: WebDriver, api: Api, screenshots: Path) -> None:
        self.driver = driver
        self.api = api
        self.screenshots = screenshots

    # Finding things as a user does.

    def wait(self, what: str, found: Callable[[], T | None], seconds: float = 5.0) -> T:
        """Polls `found` until it gives something truthy; fails naming `what` and the page."""
        deadline = time.monotonic() + seconds
        last_error = ""
        while True:
            try:
                value = found()
            except (StaleElementReferenceException, NoSuchElementException) as error:
                # The page was replaced while it was read (a stale or detached node): read again.
                # Anything else (a dead browser, a bad selector) fails now, not at the deadline.
                value, last_error = None, f" (last: {error.msg})"
            except WebDriverException as error:
                if DETACHED_NODE not in (error.msg or ""):
                    raise
                value, last_error = None, f" (last: {error.msg})"
            if value:
                return value
            if time.monotonic() > deadline:
                page = f"{self.driver.current_url}{last_error}:\n{self.text()}"
                raise AssertionError(f"{what}: not found within {seconds} s on {page}")
            time.sleep(0.05)

    def field(self, label: str, within: WebElement | None = None) -> WebElement:
        """The input, select or textarea whose visible `<label>` says exactly `label`."""
        return self.wait(f"field labelled {label!r}", lambda: self._first(FIELD_JS, within, label))

    def button(self, name: str, within: WebElement | None = None) -> WebElement:
        """The visible button whose text is exactly `name`."""
        selector = "button, input[type=submit], input[type=button]"
        return self.wait(f"button {name!r}", lambda: self._first(CONTROLS_JS, within, name, selector))

    def buttons(self, name: str, within: WebElement | None = None) -> list[WebElement]:
        selector = "button, input[type=submit], input[type=button]"
        return list(self.driver.execute_script(CONTROLS_JS, within, name, selector))

    def link(self, name: str, within: WebElement | None = None) -> WebElement:
        return self.wait(f"link {name!r}", lambda: self._first(CONTROLS_JS, within, name, "a[href]"))

    def row(self, *texts: str, seconds: float = 5.0) -> WebElement:
        """The first visible table row (or list item) whose text holds every one of `texts`."""

        def find() -> WebElement | None:
            for element in self.driver.find_elements("css selector", "tr, li"):
                content = element.text
                if element.is_displayed() and all(text in content for text in texts):
                    return element
            return None

        return self.wait(f"row with {texts!r}", find, seconds)

    def _first(self, script: str, *arguments: Any) -> WebElement | None:
        found = self.driver.execute_script(script, *arguments)
        return found[0] if found else None

    def text(self) -> str:
        try:
            return str(self.driver.find_element("tag name", "body").text)
        except Exception as error:  # the page may be mid-navigation: say so rather than hide the cause
            return f"(no page text: {error})"

    def wait_text(self, pattern: str, seconds: float = 5.0) -> re.Match[str]:
        """Waits until the page's visible text matches the regular expression `pattern`."""
        return self.wait(f"text /{pattern}/", lambda: re.search(pattern, self.text()), seconds)

    # Doing things.

    def open(self, path: str) -> None:
        self.driver.get(self.api.url + path)

    def type_into(self, label: str, text: str, within: WebElement | None = None) -> None:
        element = self.field(label, within)
        element.clear()
        element.send_keys(text)

    def ask(self, subject: str, relation: str, obj: str, action: str) -> None:
        """Fills the Explain page's **Subject**, **Relation** and **Object** and presses `action`
        (**Check** or **Explain**)."""
        self.type_into("Subject", subject)
        self.type_into("Relation", relation)
        self.type_into("Object", obj)
        self.submit(self.button(action))

    def submit(self, control: WebElement) -> None:
        """Clicks `control` (a link or a form's button) and waits for the page it loads to
        replace this one."""
        page = self.driver.find_element("tag name", "html")
        control.click()
        self.wait("the next page", lambda: self._gone(page))

    @staticmethod
    def _gone(element: WebElement) -> bool:
        """Whether `element`, read before a navigation, belongs to a page that has since been
        replaced. Chromium says so in two ways: a stale element reference, or (when the check
        lands while the new document is being attached) an "unknown error" that the node "does
        not belong to the document". Any other error is a real failure and is raised."""
        try:
            element.is_enabled()
            return False
        except StaleElementReferenceException:
            return True
        except WebDriverException as error:
            if DETACHED_NODE in (error.msg or ""):
                return True
            raise

    def sign_in(self, key: str) -> None:
        self.open("/console/sign-in")
        self.type_into("API key", key)
        self.submit(self.button("Sign in"))

    def expand_all(self) -> None:
        """Opens every collapsed node (`<details>`) by clicking its summary, as a user would."""
        for _ in range(50):
            closed = [
                summary
                for summary in self.driver.find_elements("css selector", "details:not([open]) > summary")
                if summary.is_displayed()
            ]
            if not closed:
                return
            for summary in closed:
                summary.click()
        raise AssertionError("nodes still collapsed after 50 rounds of opening them")

    def sign_out(self) -> None:
        self.submit(self.button("Sign out"))
        self.wait("the sign-in page", lambda: "/console/sign-in" in self.driver.current_url)

    def visit(self, key: str, store: str, page: str) -> None:
        """Signs in with `key`, opens `store` and follows the nav to `page`."""
        self.sign_in(key)
        self.open(f"/console/stores/{store}/decisions")
        self.go(page)

    def go(self, page: str) -> None:
        """Follows the nav's link to `page` (Decisions, Explain, Agents, Tuples, Model, ...)."""
        nav = self.wait("the nav", lambda: self.driver.find_elements("css selector", "nav"))
        self.submit(self.link(page, nav[0]))
        self.wait(f"the {page} page", lambda: re.search(rf"^{page}\b", self.heading()))

    def heading(self) -> str:
        headings = self.driver.find_elements("tag name", "h1")
        return str(headings[0].text) if headings else ""

    def confirm(self, *names: str) -> None:
        """Says yes to the confirmation the last click raised: a `confirm()` alert, or the open
        `<dialog>` (or role=dialog/alertdialog) by its button named one of `names`."""

        self.wait(f"a confirmation answered with one of {names!r}", lambda: self.try_confirm(*names))

    def dismiss(self) -> None:
        """Says no to the confirmation the last click raised (**Cancel**, or the alert's cancel)."""

        def answer() -> bool:
            try:
                self.driver.switch_to.alert.dismiss()
                return True
            except NoAlertPresentException:
                pass
            found = [button for dialog in self.dialogs() for button in self.buttons("Cancel", dialog)]
            if found:
                found[0].click()
            return bool(found)

        self.wait("a confirmation to cancel", answer)
        self.wait("the confirmation closed", lambda: not self.dialogs())

    def try_confirm(self, *names: str) -> bool:
        """Accepts an open `confirm()` alert, or clicks the button named one of `names` in an
        open dialog; answers whether there was a confirmation to answer."""
        try:
            self.driver.switch_to.alert.accept()
            return True
        except NoAlertPresentException:
            pass
        for dialog in self.dialogs():
            for name in names:
                found = self.buttons(name, dialog)
                if found:
                    found[0].click()
                    return True
        return False

    def dialogs(self) -> list[WebElement]:
        found = self.driver.find_elements("css selector", "dialog[open], [role=dialog], [role=alertdialog]")
        return [dialog for dialog in found if dialog.is_displayed()]

    def dialog_text(self) -> str:
        """The text of the open confirmation: an alert's message or the open dialog's text."""
        try:
            return str(self.driver.switch_to.alert.text)
        except NoAlertPresentException:
            return "\n".join(dialog.text for dialog in self.dialogs())

    def post_from_page(self, path: str, form: dict[str, str]) -> int:
        """POSTs a form with the page's own `fetch` (same origin, the session cookie sent as the
        browser sends it) and answers the status."""
        script = """
        const [path, fields, done] = arguments;
        fetch(path, {method: 'POST', body: new URLSearchParams(fields), redirect: 'manual',
                     credentials: 'same-origin'}).then(r => done(r.status), e => done(String(e)));
        """
        status = self.driver.execute_async_script(script, path, form)
        assert isinstance(status, int), f"fetch failed: {status}"
        return status

    def session_cookie(self) -> str:
        cookies = {cookie["name"]: cookie["value"] for cookie in self.driver.get_cookies()}
        assert "writ_console" in cookies, f"no session cookie among {sorted(cookies)}"
        return f"writ_console={cookies['writ_console']}"

    # Looking at it.

    def shot(self, name: str) -> Path:
        size = self.driver.execute_script("return [window.innerWidth, window.innerHeight]")
        assert size == [WIDTH, HEIGHT], f"the viewport is {size}, not {WIDTH}×{HEIGHT}"
        path = self.screenshots / f"{name}.png"
        assert self.driver.save_screenshot(str(path)), f"no screenshot at {path}"
        return path

    def readable(self, name: str) -> None:
        """Saves a screenshot as `name`.png and fails if the page is hard to read."""
        self.shot(name)
        problems = self.unreadable()
        assert not problems, f"{name} at {WIDTH}×{HEIGHT} is hard to read:\n" + "\n".join(problems)

    def unreadable(self) -> list[str]:
        """What makes the page hard to read: text boxes of different elements that overlap, a
        short word broken across lines, a drawing's label that is not drawn, and content (a table)
        wider than the 1280-pixel window."""
        problems = []
        text = self.driver.execute_script(TEXT_BOXES_JS)
        boxes = text["boxes"]
        for label in text["undrawn"]:
            problems.append(f"the text {label['text']!r} <{label['tag']}> is in the page but not drawn")
        for word in text["broken"]:
            problems.append(f"the word {word['text']!r} <{word['tag']}> is broken across lines")
        for index, first in enumerate(boxes):
            for second in boxes[index + 1 :]:
                overlap_x = min(first["right"], second["right"]) - max(first["left"], second["left"])
                overlap_y = min(first["bottom"], second["bottom"]) - max(first["top"], second["top"])
                if overlap_x > 1 and overlap_y > 1:
                    problems.append(f"text {first['text']!r} <{first['tag']}> overlaps {second['text']!r} <{second['tag']}>")
        widths = self.driver.execute_script(WIDTHS_JS)
        if widths["scroll"] > WIDTH:
            problems.append(f"the page is {widths['scroll']} px wide, more than {WIDTH}")
        for right in widths["tables"]:
            if right > widths["client"]:
                problems.append(f"a table ends at {right} px, past the {widths['client']} px the window shows")
        return problems
