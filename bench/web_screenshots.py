"""Screenshots of the web channel for the README: docs/web-chat.png and docs/web-admin.png.

    python bench/web_screenshots.py            # writes both into docs/

The same pieces as the browser tests (tests/web/): the real server and core on the sample wiki through the
loopback Confluence, the loopback model (which answers from the passages it is sent), headless Debian Chromium
driven by Selenium. Two weeks of questions are written into the question log first, so the gap report's chart
has something to show.
"""

from __future__ import annotations

import asyncio
import secrets
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from aiohttp.test_utils import TestServer  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402
from selenium.webdriver.remote.webdriver import WebDriver  # noqa: E402

from bot.app import Core  # noqa: E402
from bot.server import build_web_app  # noqa: E402
from rag.types import Feedback, LoggedQuestion, Outcome, Rating, Source  # noqa: E402
from tests.e2e_core import real_core  # noqa: E402
from tests.fakes.llm_server import FakeLLM, content_text  # noqa: E402
from tests.web.browser import start_browser, wait_for  # noqa: E402
from tests.web.conftest import ADMIN, ALICE, WEB_SETTINGS  # noqa: E402

OUT = ROOT / "docs"
ASKED = [
    ("How do I reset my MFA token?", Outcome.ANSWERED),
    ("Who is on call for Kafka this week?", Outcome.ANSWERED),
    ("How do I request firewall access?", Outcome.ANSWERED),
    ("What is the travel expenses policy?", Outcome.NOT_FOUND),
    ("Comment réinitialiser mon MFA ?", Outcome.ANSWERED),
    ("Where is the parking badge form?", Outcome.NOT_FOUND),
]


class Responder:
    """What a grounded model would write about the printer page: a first answer, then a follow-up's."""

    def __init__(self) -> None:
        self.answers = 0

    def __call__(self, request: dict[str, Any]) -> str:
        if "standalone question" in content_text(request["messages"][0]):
            return "STANDALONE: How do I add the quillprint7 printer on Linux?"
        self.answers += 1
        if self.answers > 1:
            return "On Linux, add it with `lpadmin -p quillprint7`, then pick the **OPS-PRN** queue [1]."
        return (
            "The floor printer is **quillprint7**; it prints through the queue `OPS-PRN` [1].\n\n"
            "1. Add `quillprint7` from your system's printer settings [1].\n"
            "2. Choose the queue **OPS-PRN** when asked [1].\n\n"
            "If the queue does not show up, ask the service desk."
        )


def seed_questions(core: Core) -> None:
    assert core.questions is not None
    now = datetime.now(UTC)
    printer = Source(
        "9500",
        "Printer setup",
        core.settings.confluence_url + "/spaces/LUMEN/pages/9500",
        version=3,
        space="LUMEN",
    )
    for day in range(14):
        for n in range(2 + (day * 7) % 5):
            question, outcome = ASKED[(day + n) % len(ASKED)]
            entry = LoggedQuestion(
                answer_id=secrets.token_urlsafe(12),
                asked_at=now - timedelta(days=day, hours=n),
                question=question,
                outcome=outcome,
                platform="web",
                sources=(printer,) if outcome is Outcome.ANSWERED else (),
                spaces=("LUMEN",),
            )
            core.questions.record(entry, user_id=f"user-{n}")
    # One answer someone found outdated: what the "not helpful" table is for.
    outdated = LoggedQuestion(
        answer_id=secrets.token_urlsafe(12),
        asked_at=now - timedelta(days=1),
        question="Which queue does the floor printer use?",
        outcome=Outcome.ANSWERED,
        platform="slack",
        answer="The floor printer quillprint7 prints through the queue OPS-PRN [1].",
        sources=(printer,),
        spaces=("LUMEN",),
    )
    core.questions.record(outdated, user_id="user-8")
    comment = "The queue was renamed OPS-PRN2 last month."
    core.questions.rate(
        Feedback(outdated.answer_id, Rating.DOWN, user_id="user-9", platform="slack", comment=comment)
    )


def chat(driver: WebDriver, base: str) -> None:
    driver.get(base + "/")
    wait_for(lambda: driver.find_element(By.ID, "token").is_displayed(), what="the sign-in form")
    driver.find_element(By.ID, "token").send_keys(ALICE, Keys.ENTER)
    for question in ("How do I add the quillprint7 printer?", "and on Linux?"):
        count = len(driver.find_elements(By.CSS_SELECTOR, "#log .message.bot"))
        wait_for(lambda: driver.find_element(By.ID, "question").is_displayed(), what="the chat")
        driver.find_element(By.ID, "question").send_keys(question, Keys.ENTER)
        wait_for(
            lambda count=count: (
                len(driver.find_elements(By.CSS_SELECTOR, "#log .message.bot[aria-busy='false']")) > count
            ),
            timeout_s=60,
            what="the answer",
        )
    driver.find_element(By.ID, "question").send_keys("Who approves emergency changes?")
    driver.save_screenshot(str(OUT / "web-chat.png"))


def admin(driver: WebDriver, base: str) -> None:
    driver.get(base + "/admin")
    wait_for(lambda: driver.find_element(By.ID, "token").is_displayed(), what="the sign-in form")
    driver.find_element(By.ID, "token").send_keys(ADMIN, Keys.ENTER)
    wait_for(lambda: driver.find_elements(By.CSS_SELECTOR, "#report svg.chart"), what="the report")
    driver.save_screenshot(str(OUT / "web-admin.png"))


async def main() -> None:
    OUT.mkdir(exist_ok=True)
    with (
        tempfile.TemporaryDirectory() as folder,
        FakeLLM(responder=Responder()) as llm,
        # The model named as a deployment would name it, for the admin view to show.
        real_core(Path(folder) / "data", llm, litellm_model="openai/gpt-4o-mini", **WEB_SETTINGS) as core,
    ):
        seed_questions(core)
        app = build_web_app(core, with_scheduler=False)
        server = TestServer(app, host="127.0.0.1")
        await server.start_server()
        base = str(server.make_url("")).rstrip("/")
        try:
            llm.word_interval_s = 0.01
            for shot, height in ((chat, 1000), (admin, 1700)):
                driver = start_browser(width=1100, height=height)
                try:
                    await asyncio.to_thread(shot, driver, base)
                finally:
                    driver.quit()
        finally:
            await server.close()
    print(f"wrote {OUT / 'web-chat.png'} and {OUT / 'web-admin.png'}")


if __name__ == "__main__":
    asyncio.run(main())
