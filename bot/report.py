"""The gap report from settings (`wikibot report`) or from a running core (GET /admin/report), and its text form."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, TextIO

from bot.config import Settings, SettingsError
from rag.ports import Embedder, QuestionLog
from rag.report import ReportQuery, build_report
from rag.safe_text import clean
from rag.types import Outcome

log = logging.getLogger(__name__)
LOG_OFF = "the question log is off (QUESTION_LOG_ENABLED=false): there is nothing to report"


def report_of(
    questions: QuestionLog, query: ReportQuery, embedder: Callable[[], Embedder] | None
) -> dict[str, Any]:
    """Blocking (the log, and the embedder when unanswered questions are to be grouped): run it off the loop."""
    from datetime import UTC, datetime

    now = datetime.now(UTC)
    entries = questions.entries(since=query.since(now))
    unanswered = sum(1 for e in entries if e.outcome is Outcome.NOT_FOUND)
    embed = None
    if embedder is not None and unanswered > 1:
        model = embedder()

        def embed(texts: list[str]) -> list[list[float]]:
            return model.embed_documents(texts)

    try:
        return build_report(entries, query, now=now, embed=embed)
    except Exception as exc:  # a model that cannot load must not cost the report: words group them instead
        if embed is None:
            raise
        log.warning("grouping unanswered questions by meaning failed, grouping by words: %s", exc)
        return build_report(entries, query, now=now)


def gap_report(settings: Settings, *, days: int, space: str) -> dict[str, Any]:
    from bot.app import build_embedder, build_question_log

    questions = build_question_log(settings)
    if questions is None:
        raise SettingsError(LOG_OFF)
    try:
        return report_of(questions, ReportQuery(days=days, space=space), lambda: build_embedder(settings))
    finally:
        questions.close()


def write_report(report: dict[str, Any], out: TextIO) -> None:
    """For a person at a terminal. Questions and titles are other people's text: control characters dropped."""
    where = f", space {report['space']}" if report.get("space") else ""
    feedback = report["feedback"]
    out.write(
        f"Since {report['since'][:10]} ({report['days']} days{where}): {report['questions']} questions, "
        f"{report['answered']} answered, {report['not_found']} not found, {report['errors']} failed; "
        f"{feedback['up']} 👍, {feedback['down']} 👎\n"
    )
    _section(out, "Not found in the wiki", report["unanswered"], _unanswered_line)
    _section(out, "Disliked answers", report["disliked"], _disliked_line)
    _section(out, "Most cited pages", report["top_pages"], _page_line)
    _section(out, "Per space", report.get("spaces", []), _space_line)


def _section(
    out: TextIO, title: str, rows: list[dict[str, Any]], line: Callable[[dict[str, Any]], str]
) -> None:
    if not rows:
        return
    out.write(f"\n{title}:\n")
    for row in rows:
        out.write(line(row) + "\n")


def _one_line(text: str, limit: int = 200) -> str:
    text = " ".join(clean(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _unanswered_line(row: dict[str, Any]) -> str:
    return f"  {row['count']}× {_one_line(row['question'])} (last {row['last_asked'][:10]})"


def _disliked_line(row: dict[str, Any]) -> str:
    pages = "; ".join(f"{_one_line(s['title'], 60)} v{s['version']} {s['url']}" for s in row["sources"])
    comments = "".join(f"\n      “{_one_line(c)}”" for c in row["comments"])
    return f"  👎{row['down']} {_one_line(row['question'])}\n      sources: {pages or '-'}{comments}"


def _page_line(row: dict[str, Any]) -> str:
    return f"  {row['citations']}× {_one_line(row['title'], 80)} [{row['space']}] {row['url']} (👍{row['up']} 👎{row['down']})"


def _space_line(row: dict[str, Any]) -> str:
    return (
        f"  {row['space']}: {row['questions']} questions, {row['answered']} answered, "
        f"{row['not_found']} not found, 👍{row['feedback']['up']} 👎{row['feedback']['down']}"
    )
