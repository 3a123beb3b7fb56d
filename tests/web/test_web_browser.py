"""The chat page and the admin view in a real browser: headless Debian Chromium, driven by Selenium, against
the real server on loopback and the real core (the model streams word by word through LiteLLM's HTTP path).

Each scenario runs in a worker thread (Selenium blocks) while the server answers on the test's event loop."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import pytest
from aiohttp.test_utils import TestServer
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement

from bot.app import Core
from bot.server import build_web_app
from tests.fakes.llm_server import FakeLLM, content_text
from tests.web.browser import MISSING, executables, start_browser, wait_for
from tests.web.conftest import ADMIN, ALICE

pytestmark = pytest.mark.skipif(executables() is None, reason=MISSING)

QUESTION = "how do I add the quillprint7 printer?"
T = TypeVar("T")


class Site:
    """The server's address, and a way for the browser's thread to ask the test's loop something."""

    def __init__(self, base: str, core: Core, loop: asyncio.AbstractEventLoop) -> None:
        self.base = base
        self.core = core
        self._loop = loop

    def url(self, path: str) -> str:
        return self.base.rstrip("/") + path

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout=30)


@pytest.fixture
async def site(web_core: Core) -> AsyncIterator[Site]:
    app = build_web_app(web_core, with_scheduler=False)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        yield Site(str(server.make_url("/")), web_core, asyncio.get_running_loop())
    finally:
        await server.close()


@pytest.fixture
def browser() -> Iterator[WebDriver]:
    driver = start_browser()
    yield driver
    driver.quit()


def visible(driver: WebDriver, css: str) -> WebElement | None:
    found = [e for e in driver.find_elements(By.CSS_SELECTOR, css) if e.is_displayed()]
    return found[0] if found else None


def focused_id(driver: WebDriver) -> str:
    return str(driver.execute_script("return document.activeElement && document.activeElement.id"))


def sign_in(driver: WebDriver, token: str) -> None:
    field = wait_for(lambda: visible(driver, "#token"), what="the sign-in form")
    assert focused_id(driver) == "token", "the sign-in form takes the focus"
    field.send_keys(token, Keys.ENTER)


def last_answer(driver: WebDriver) -> WebElement | None:
    answers = driver.find_elements(By.CSS_SELECTOR, "#log .message.bot")
    return answers[-1] if answers else None


def ask_and_watch(driver: WebDriver, question: str) -> tuple[WebElement, list[str]]:
    """Types the question and Enter; returns the finished answer and each text it showed on its way."""
    count = len(driver.find_elements(By.CSS_SELECTOR, "#log .message.bot"))
    box = driver.find_element(By.ID, "question")
    box.send_keys(question, Keys.ENTER)
    seen: list[str] = []

    def finished() -> WebElement | None:
        answers = driver.find_elements(By.CSS_SELECTOR, "#log .message.bot")
        if len(answers) <= count:
            return None
        answer = answers[-1]
        text = answer.find_element(By.CSS_SELECTOR, ".body").text
        if not seen or seen[-1] != text:
            seen.append(text)
        return answer if answer.get_attribute("aria-busy") == "false" else None

    return wait_for(finished, timeout_s=30, what=f"the answer to {question!r}"), seen


def condensed(llm: FakeLLM) -> list[dict[str, Any]]:
    """The model requests that rewrote a follow-up with the conversation's history."""
    return [r for r in llm.requests if "standalone" in content_text(r["messages"][0]).lower()]


def chat_scenario(driver: WebDriver, site: Site, llm: FakeLLM) -> None:
    wiki = site.core.settings.confluence_url.rstrip("/")
    driver.get(site.url("/"))
    sign_in(driver, ALICE)
    wait_for(lambda: visible(driver, "#question"), what="the chat after signing in")
    assert focused_id(driver) == "question"
    assert driver.find_element(By.ID, "question").accessible_name == "Your question"

    # The first answer streams: the page shows it growing, then whole, with its citation and sources.
    llm.word_interval_s = 0.12
    answer, seen = ask_and_watch(driver, QUESTION)
    growing = [text for text in seen if text.startswith("According")]
    assert len(growing) >= 3, seen
    assert all(a != b and b.startswith(a[: len(a) // 2]) for a, b in itertools.pairwise(growing))
    citation = answer.find_element(By.CSS_SELECTOR, ".body a.cite")
    assert citation.text == "[1]" and str(citation.get_attribute("href")).startswith(wiki + "/")
    [source] = answer.find_elements(By.CSS_SELECTOR, ".sources li a")
    assert source.text == "Printer setup" and source.get_attribute("href") == citation.get_attribute("href")
    assert source.get_attribute("rel") == "noopener noreferrer"
    user = driver.find_elements(By.CSS_SELECTOR, "#log .message.user")[-1]
    assert user.text.endswith(QUESTION)
    assert focused_id(driver) == "question", "the question box keeps the focus"

    # Shift+Enter is a new line, not a question.
    llm.word_interval_s = 0.0
    box = driver.find_element(By.ID, "question")
    box.send_keys("and on", Keys.SHIFT, Keys.ENTER, Keys.SHIFT, "Linux?")
    assert box.get_attribute("value") == "and on\nLinux?"
    assert len(driver.find_elements(By.CSS_SELECTOR, "#log .message.user")) == 1
    box.clear()

    # A follow-up is read with the conversation so far.
    llm.requests.clear()
    ask_and_watch(driver, "and on Linux?")
    assert condensed(llm), "the follow-up was not read with the conversation's history"

    # 👍 on the answer: the page says thanks and the question log counts it.
    last = last_answer(driver)
    assert last is not None
    up = last.find_element(By.CSS_SELECTOR, ".feedback button[data-rating='up']")
    assert up.accessible_name == "Helpful"
    up.click()
    wait_for(lambda: up.get_attribute("aria-pressed") == "true", what="the rating to be recorded")
    assert site.core.questions is not None
    entries = site.core.questions.entries(since=datetime.now(UTC) - timedelta(hours=1))
    assert [e.up for e in entries] == [0, 1]

    # A new conversation: an empty page, the focus back in the box, and the server forgot the old one.
    old = driver.find_element(By.ID, "chat").get_attribute("data-session")
    driver.find_element(By.ID, "new-conversation").click()
    assert driver.find_elements(By.CSS_SELECTOR, "#log .message") == []
    assert focused_id(driver) == "question"
    wait_for(lambda: site.run(site.core.assistant.history(f"web:token:alice:{old}")) == [], what="the reset")
    llm.requests.clear()
    ask_and_watch(driver, "and on Linux?")
    assert condensed(llm) == [], "the new conversation still had the old one's history"


async def test_ask_see_a_cited_streamed_answer_follow_up_rate_and_start_over(
    site: Site, browser: WebDriver, e2e_llm: FakeLLM
) -> None:
    await asyncio.to_thread(chat_scenario, browser, site, e2e_llm)


def french_scenario(site: Site) -> None:
    driver = start_browser(language="fr-FR")
    try:
        driver.get(site.url("/"))
        sign_in(driver, ALICE)
        wait_for(lambda: visible(driver, "#question"), what="the chat")
        assert driver.find_element(By.TAG_NAME, "html").get_attribute("lang") == "fr"
        assert driver.find_element(By.ID, "new-conversation").text == "Nouvelle conversation"
        assert driver.find_element(By.ID, "question").accessible_name == "Votre question"
        answer, _ = ask_and_watch(driver, QUESTION)
        assert answer.find_element(By.CSS_SELECTOR, ".feedback button").accessible_name == "Utile"
    finally:
        driver.quit()


async def test_the_page_speaks_french_to_a_french_browser(site: Site) -> None:
    await asyncio.to_thread(french_scenario, site)


def wrong_token_scenario(driver: WebDriver, site: Site) -> None:
    driver.get(site.url("/"))
    sign_in(driver, "not-a-token-we-know")
    error = wait_for(lambda: visible(driver, "#sign-in-error"), what="the refusal")
    assert error.text == "This token was refused."
    assert visible(driver, "#question") is None and focused_id(driver) == "token"


async def test_a_refused_token_says_so_and_shows_no_chat(site: Site, browser: WebDriver) -> None:
    await asyncio.to_thread(wrong_token_scenario, browser, site)


def admin_scenario(driver: WebDriver, site: Site, ask: Callable[[], None]) -> None:
    driver.get(site.url("/admin"))
    # A user's token is not enough for the admin view.
    sign_in(driver, ALICE)
    error = wait_for(lambda: visible(driver, "#sign-in-error"), what="the refusal of a user token")
    assert "refused" in error.text
    assert focused_id(driver) == "token"
    driver.switch_to.active_element.send_keys(ADMIN, Keys.ENTER)  # replaces the refused token, selected
    wait_for(lambda: visible(driver, "#index dd"), what="the index panel")
    facts = dict(
        zip(
            [e.text for e in driver.find_elements(By.CSS_SELECTOR, "#index dt")],
            [e.text for e in driver.find_elements(By.CSS_SELECTOR, "#index dd")],
            strict=True,
        )
    )
    assert int(facts["Pages"]) == site.core.kb.summary().pages > 20
    assert facts["Spaces"] == "LUMEN"
    assert len(driver.find_elements(By.CSS_SELECTOR, "#syncs tbody tr")) == 1

    # No question yet: no report.
    report_status = driver.find_element(By.ID, "report-status")
    wait_for(lambda: "No report yet" in report_status.text, what="the empty report")

    # The sync button starts a sync; the table shows it once it is done.
    driver.find_element(By.ID, "sync").click()
    wait_for(
        lambda: len(driver.find_elements(By.CSS_SELECTOR, "#syncs tbody tr")) == 2,
        timeout_s=60,
        what="the sync",
    )
    first = driver.find_element(By.CSS_SELECTOR, "#syncs tbody tr td:nth-child(2)")
    assert first.text == "ok"
    assert driver.find_element(By.ID, "sync").is_enabled()

    # Questions asked: the report shows them, with a bar per day.
    ask()
    driver.find_element(By.ID, "refresh").click()
    wait_for(lambda: visible(driver, "#report svg.chart"), what="the report's chart")
    report = site.run(_report_json(site))
    shown = dict(
        zip(
            [e.text for e in driver.find_elements(By.CSS_SELECTOR, "#report > dl dt")],
            [e.text for e in driver.find_elements(By.CSS_SELECTOR, "#report > dl dd")],
            strict=True,
        )
    )
    assert shown["Questions"] == str(report["questions"]) == "2"
    assert shown["Not found"].startswith(str(report["not_found"]))
    assert len(driver.find_elements(By.CSS_SELECTOR, "#report svg rect.bar")) == len(report["by_day"])
    label = driver.find_element(By.CSS_SELECTOR, "#report svg").get_attribute("aria-label")
    assert label is not None and label.startswith(f"{report['questions']} questions")
    # The most cited page with its space, and every space's own counts.
    cells = [e.text for e in driver.find_elements(By.CSS_SELECTOR, "#report table:last-of-type tbody td")]
    space = report["spaces"][0]
    assert cells[:2] == [space["space"], str(space["questions"])]
    assert (
        report["top_pages"] and report["top_pages"][0]["title"] in driver.find_element(By.ID, "report").text
    )


async def _report_json(site: Site) -> dict[str, Any]:
    import aiohttp

    async with aiohttp.ClientSession() as http:
        response = await http.get(
            site.url("/admin/report?since=30"), headers={"Authorization": f"Bearer {ADMIN}"}
        )
        assert response.status == 200
        return dict(await response.json())


async def test_the_admin_view_shows_the_index_syncs_and_the_report(site: Site, browser: WebDriver) -> None:
    from rag.types import IncomingMessage

    def ask() -> None:
        for question in (QUESTION, "what is the zorbix flux capacitor?"):
            message = IncomingMessage(
                session_key="web:admin-test", text=question, user_id="u", platform="web"
            )
            site.run(site.core.assistant.ask(message))

    await asyncio.to_thread(admin_scenario, browser, site, ask)
