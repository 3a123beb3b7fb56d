"""The gap report: what people asked that the wiki could not answer, which answers they disliked, which pages
carry the answers, per space; what wiki owners read to fix their pages (`wikibot report`, GET /admin/report).

A question belongs to the spaces of the pages its answer cited; one the wiki could not answer, to the spaces
of the passages the search came closest with (that space's owners are the ones who could have answered it).
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np

from rag.types import LoggedQuestion, Outcome

# Two unanswered questions whose embeddings are at least this close are one gap (paraphrases of one need):
# all-MiniLM-L6-v2 puts paraphrases of a short question at 0.75-0.95, and different questions on one
# topic ("VPN on Linux" / "VPN password") at 0.5-0.7.
SIMILAR = 0.78
MAX_LISTED = 50
_WORD = re.compile(r"\w+")

Embed = Callable[[list[str]], list[list[float]]]


@dataclass(frozen=True, slots=True)
class ReportQuery:
    days: int = 30
    space: str = ""

    def since(self, now: datetime) -> datetime:
        return now - timedelta(days=self.days)


def spaces_of(entry: LoggedQuestion) -> tuple[str, ...]:
    cited = tuple(dict.fromkeys(s.space for s in entry.sources if s.space))
    return cited or entry.spaces


def build_report(
    entries: Sequence[LoggedQuestion],
    query: ReportQuery,
    *,
    now: datetime | None = None,
    embed: Embed | None = None,
) -> dict[str, Any]:
    """The report's JSON (what `wikibot report --json` prints and GET /admin/report returns)."""
    now = now or datetime.now(UTC)
    since = query.since(now)
    chosen = [e for e in entries if e.asked_at >= since and (not query.space or query.space in spaces_of(e))]
    asked = [e for e in chosen if e.outcome is not Outcome.REFUSED]
    report: dict[str, Any] = {
        "since": since.isoformat(timespec="seconds"),
        "days": query.days,
        "space": query.space or None,
        **_counts(chosen),
        "unanswered": _unanswered([e for e in asked if e.outcome is Outcome.NOT_FOUND], embed),
        "disliked": _disliked(asked),
        "top_pages": _top_pages(asked, query.space),
        "by_day": _by_day(chosen, since, now),
    }
    if not query.space:
        report["spaces"] = _per_space(chosen)
    return report


def _counts(entries: Sequence[LoggedQuestion]) -> dict[str, Any]:
    outcomes = Counter(e.outcome for e in entries)
    return {
        "questions": len(entries),
        "answered": outcomes[Outcome.ANSWERED],
        "not_found": outcomes[Outcome.NOT_FOUND],
        "errors": outcomes[Outcome.ERROR],
        "refused": outcomes[Outcome.REFUSED],
        "feedback": {"up": sum(e.up for e in entries), "down": sum(e.down for e in entries)},
    }


def _per_space(entries: Sequence[LoggedQuestion]) -> list[dict[str, Any]]:
    by_space: dict[str, list[LoggedQuestion]] = {}
    for entry in entries:
        for space in spaces_of(entry):
            by_space.setdefault(space, []).append(entry)
    rows = [{"space": space, **_counts(group)} for space, group in by_space.items()]
    return sorted(rows, key=lambda row: (-row["questions"], row["space"]))


def _unanswered(entries: Sequence[LoggedQuestion], embed: Embed | None) -> list[dict[str, Any]]:
    groups = group_similar([e.question for e in entries], embed)
    rows: list[dict[str, Any]] = []
    for members in groups:
        asked = [entries[i] for i in members]
        phrasing = Counter(_normal(e.question) for e in asked).most_common(1)[0][0]
        shown = next(e.question for e in reversed(asked) if _normal(e.question) == phrasing)
        rows.append(
            {
                "question": shown,
                "count": len(asked),
                "askers": len({e.asker for e in asked if e.asker}) or None,
                "last_asked": max(e.asked_at for e in asked).isoformat(timespec="seconds"),
                "also_asked_as": sorted({e.question for e in asked} - {shown})[:5],
                "near_spaces": sorted({s for e in asked for s in e.spaces}),
            }
        )
    rows.sort(key=lambda row: row["last_asked"], reverse=True)
    rows.sort(key=lambda row: -row["count"])  # stable: the most asked first, the latest first among equals
    return rows[:MAX_LISTED]


def _disliked(entries: Sequence[LoggedQuestion]) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = [
        {
            "question": e.question,
            "answer": e.answer,
            "asked_at": e.asked_at.isoformat(timespec="seconds"),
            "down": e.down,
            "up": e.up,
            "comments": list(e.comments),
            "sources": [
                {"page_id": s.page_id, "title": s.title, "url": s.url, "version": s.version, "space": s.space}
                for s in e.sources
            ],
        }
        for e in entries
        if e.down > e.up
    ]
    rows.sort(key=lambda row: row["asked_at"], reverse=True)
    rows.sort(key=lambda row: -row["down"])
    return rows[:MAX_LISTED]


def _top_pages(entries: Sequence[LoggedQuestion], space: str) -> list[dict[str, Any]]:
    pages: dict[str, dict[str, Any]] = {}
    for entry in entries:
        if entry.outcome is not Outcome.ANSWERED:
            continue
        for source in {s.page_id: s for s in entry.sources}.values():
            if space and source.space != space:
                continue
            page = pages.setdefault(
                source.page_id,
                {"page_id": source.page_id, "title": source.title, "url": source.url, "space": source.space}
                | {"citations": 0, "up": 0, "down": 0},
            )
            page["citations"] += 1
            page["up"] += entry.up
            page["down"] += entry.down
    return sorted(pages.values(), key=lambda p: (-p["citations"], p["title"]))[:MAX_LISTED]


def _by_day(entries: Sequence[LoggedQuestion], since: datetime, now: datetime) -> list[dict[str, Any]]:
    days = Counter(e.asked_at.astimezone(UTC).date() for e in entries)
    missing = Counter(e.asked_at.astimezone(UTC).date() for e in entries if e.outcome is Outcome.NOT_FOUND)
    first, last = since.astimezone(UTC).date(), now.astimezone(UTC).date()
    rows = []
    day = first
    while day <= last:
        rows.append({"day": day.isoformat(), "questions": days[day], "not_found": missing[day]})
        day += timedelta(days=1)
    return rows


def group_similar(
    questions: Sequence[str], embed: Embed | None, *, threshold: float = SIMILAR
) -> list[list[int]]:
    """Indexes of questions grouped by meaning (greedy, in order: each joins the first group whose first
    question is close enough). Without an embedder, questions group when their words are the same."""
    if not questions:
        return []
    if embed is None:
        groups: dict[str, list[int]] = {}
        for i, question in enumerate(questions):
            groups.setdefault(" ".join(sorted(set(_words(question)))), []).append(i)
        return list(groups.values())
    # The same question asked again is embedded once; the comparisons are one matrix product per question.
    texts = [_normal(q) for q in questions]
    distinct = list(dict.fromkeys(texts))
    matrix = np.asarray(embed(distinct), dtype=np.float32)
    matrix /= np.maximum(np.linalg.norm(matrix, axis=1, keepdims=True), 1e-12)
    row = {text: n for n, text in enumerate(distinct)}
    vectors = matrix[[row[t] for t in texts]]
    heads: list[int] = []
    members: dict[int, list[int]] = {}
    for i, vector in enumerate(vectors):
        close = np.flatnonzero(vectors[heads] @ vector >= threshold) if heads else np.empty(0, dtype=np.intp)
        if close.size:
            members[heads[int(close[0])]].append(i)
        else:
            heads.append(i)
            members[i] = [i]
    return [members[h] for h in heads]


def _normal(text: str) -> str:
    return " ".join(_words(text))


def _words(text: str) -> list[str]:
    folded = unicodedata.normalize("NFKD", text.casefold())
    return _WORD.findall("".join(c for c in folded if not unicodedata.combining(c)))
