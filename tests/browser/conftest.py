"""Fixtures of the console's real-browser tests: the running `writ serve --console` that
.ci/browser.sh started (its URL and keys file in the environment), a fresh store per test seeded
through the API with schema/agents.fga and the tuples below, and a headless Debian chromium driven
by Debian's chromedriver with a 1280×800 viewport. Without that environment every test fails and says why:
nothing here is skipped."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterator

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service

from console import HEIGHT, MODEL, WIDTH, Api, Console, Keys

# People, a team, folders and documents, agents, delegations and tools:
# - anne is in team:eng, whose members view folder:finance, the parent of document:q3; bob is not,
#   so bob's check on q3 denies with `no_tuple` everywhere and `would_allow` names
#   `user:bob viewer document:q3`;
# - anne delegates to agent:planner, bob to agent:helper; planner and anne may call tool:search,
#   so anne → planner on tool:search is allowed until the delegation is revoked; nobody may call
#   tool:deploy, so a chain asking for it raises an approval.
TUPLES = [
    ("user:anne", "member", "team:eng"),
    ("team:eng#member", "viewer", "folder:finance"),
    ("folder:finance", "parent", "document:q3"),
    ("user:carol", "owner", "document:roadmap"),
    ("agent:planner", "delegate", "user:anne"),
    ("agent:helper", "delegate", "user:bob"),
    ("user:anne", "caller", "tool:search"),
    ("agent:planner", "caller", "tool:search"),
    ("user:bob", "caller", "tool:search"),
    ("agent:helper", "caller", "tool:search"),
    ("agent:planner", "viewer", "document:q3"),
]


def required_env(name: str) -> str:
    value = os.environ.get(name, "")
    if not value:
        pytest.fail(f"{name} is not set: run these tests through `bash .ci/browser.sh`, which starts the server")
    return value


@pytest.fixture(scope="session")
def keys() -> Keys:
    return Keys.load(required_env("WRIT_CONSOLE_KEYS"))


@pytest.fixture(scope="session")
def api(keys: Keys) -> Api:
    return Api(required_env("WRIT_CONSOLE_URL"), keys)


@pytest.fixture
def store(api: Api, request: pytest.FixtureRequest) -> str:
    """A new store named after the test (the name's end, if it is long), with the model and TUPLES."""
    store_id = api.create_store(request.node.name[-64:])
    api.put_model(store_id, MODEL)
    api.write(store_id, TUPLES)
    return store_id


@pytest.fixture(scope="session")
def screenshots() -> Path:
    folder = Path(os.environ.get("WRIT_SCREENSHOTS") or Path(os.environ.get("TMPDIR", "/tmp")) / "writ-screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture
def browser(api: Api, screenshots: Path) -> Iterator[Console]:
    options = webdriver.ChromeOptions()
    options.binary_location = required_env("WRIT_CHROMIUM")
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--window-size=1280,800",
        "--disable-gpu",
        "--lang=en-US",
    ):
        options.add_argument(argument)
    driver = webdriver.Chrome(options=options, service=Service(executable_path=required_env("WRIT_CHROMEDRIVER")))
    driver.implicitly_wait(0)
    # --window-size is the outer window: grow it by the browser's own frame so the page sees 1280×800.
    inner = driver.execute_script("return [window.innerWidth, window.innerHeight]")
    outer = driver.get_window_size()
    driver.set_window_size(outer["width"] + WIDTH - inner[0], outer["height"] + HEIGHT - inner[1])
    try:
        yield Console(driver, api, screenshots)
    finally:
        driver.quit()
