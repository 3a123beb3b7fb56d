"""GET /admin/report as the gap report's contract says it answers, computed from the question log, for a
server that does not serve the real one yet: the admin view's tests and screenshots read a report either way
(the real one wins as soon as the server has it)."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web

from bot.app import Core
from rag.types import LoggedQuestion, Outcome


def has_report(app: web.Application) -> bool:
    return any(
        route.method == "GET" and route.resource is not None and route.resource.canonical == "/admin/report"
        for route in app.router.routes()
    )


def add_report_standin(app: web.Application, core: Core) -> None:
    if has_report(app):
        return
    admin = f"Bearer {core.settings.admin_token.get_secret_value()}"

    async def report(request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != admin:
            return web.json_response({"error": "a valid bearer token is required"}, status=401)
        if core.questions is None:
            raise web.HTTPNotFound()
        days = int(request.query.get("since", "30"))
        since = datetime.now(UTC) - timedelta(days=days)
        entries = await asyncio.to_thread(core.questions.entries, since=since)
        space = request.query.get("space")
        if space:
            entries = [e for e in entries if space in e.spaces]
        if not entries:
            raise web.HTTPNotFound()
        return web.json_response(_report(entries, since, days))

    app.router.add_get("/admin/report", report)


def _report(entries: list[LoggedQuestion], since: datetime, days: int) -> dict[str, Any]:
    not_found = [e for e in entries if e.outcome is Outcome.NOT_FOUND]
    unanswered = Counter(e.question for e in not_found)
    last = {e.question: e.asked_at.isoformat() for e in not_found}
    cited = Counter((s.page_id, s.title) for e in entries for s in e.sources)
    by_day = []
    for offset in range(days + 1):
        day = (since + timedelta(days=offset)).date()
        that_day = [e for e in entries if e.asked_at.date() == day]
        nf = sum(1 for e in that_day if e.outcome is Outcome.NOT_FOUND)
        by_day.append({"day": day.isoformat(), "questions": len(that_day), "not_found": nf})
    return {
        "questions": len(entries),
        "answered": sum(1 for e in entries if e.outcome is Outcome.ANSWERED),
        "not_found": len(not_found),
        "feedback": {"up": sum(e.up for e in entries), "down": sum(e.down for e in entries)},
        "unanswered": [
            {"question": q, "count": n, "last_asked": last[q]} for q, n in unanswered.most_common(10)
        ],
        "disliked": [
            {"question": e.question, "answer": e.answer, "sources": [s.title for s in e.sources]}
            for e in entries
            if e.down
        ],
        "top_pages": [{"page_id": p, "title": t, "count": n} for (p, t), n in cited.most_common(5)],
        "by_day": by_day,
    }
