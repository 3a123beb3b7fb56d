"""`wikibot`: ingest, search, ask, chat, status, serve, sync, prepare, demo, teams-package."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TextIO

from bot.config import Settings, SettingsError, load_settings
from bot.runtime import SyncBusy, ensure_no_server, start_process

log = logging.getLogger("wikibot")

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
# What a shell reports for a command Ctrl-C stopped (128 + SIGINT).
EXIT_INTERRUPTED = 130


def _top_k(value: str) -> int:
    k = int(value) if value.strip().isdigit() else 0
    if not 1 <= k <= 50:
        raise argparse.ArgumentTypeError("must be a whole number from 1 to 50")
    return k


def _session_id(value: str) -> str:
    """A session id the stores accept: refused here in one line (exit 2), not by a traceback later."""
    from rag.sessions import MAX_SESSION_ID_CHARS

    if not 0 < len(value) <= MAX_SESSION_ID_CHARS or not value.isprintable():
        raise argparse.ArgumentTypeError(f"must be 1 to {MAX_SESSION_ID_CHARS} printable characters")
    return value


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Every option's help ends with its default, except a flag's (off) and a default the text names."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.default in (None, False) or "default" in (action.help or ""):
            return action.help
        return super()._get_help_string(action)


def _days(value: str) -> int:
    days = int(value) if value.strip().isdigit() else 0
    if not 1 <= days <= 3650:
        raise argparse.ArgumentTypeError("must be a whole number of days from 1 to 3650")
    return days


def _port(value: str) -> int:
    port = int(value) if value.strip().isdigit() else 0
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError("must be a port number from 1 to 65535")
    return port


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="wikibot",
        description="Answers questions from your Confluence wiki.",
        formatter_class=_HelpFormatter,
    )
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="log progress (INFO) as well as problems"
    )
    # Also accepted after the command (`wikibot ask -v ...`); SUPPRESS keeps a flag given before it.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        default=argparse.SUPPRESS,
        help="log progress (INFO) as well as problems",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    def command(name: str, help_text: str) -> argparse.ArgumentParser:
        return sub.add_parser(
            name, parents=[common], help=help_text, description=help_text, formatter_class=_HelpFormatter
        )

    for name, help_text in (
        ("ingest", "index the configured spaces (incremental)"),
        ("sync", "same as ingest"),
    ):
        p = command(name, help_text)
        p.add_argument(
            "--full", action="store_true", help="re-fetch and re-embed everything (blue/green swap)"
        )
        p.add_argument("--json", action="store_true", help="print the sync report as JSON")

    p = command("search", "show the passages retrieval finds")
    p.add_argument("query", help="the query, or - to read one query per line from standard input")
    p.add_argument(
        "-k", type=_top_k, default=None, help="how many passages, 1-50 (default: RETRIEVAL_TOP_K, 5)"
    )
    p.add_argument("--json", action="store_true", help="print the passages as JSON")

    p = command("ask", "answer one question with cited pages")
    p.add_argument("question", help="the question, or - to read one question per line (one session)")
    p.add_argument(
        "--session",
        default=None,
        type=_session_id,
        help="session id, to continue a conversation (default: a new session)",
    )
    p.add_argument("--json", action="store_true", help="print the answer and its sources as JSON")

    p = command("chat", "a conversation in the terminal")
    p.add_argument(
        "--session",
        default=None,
        type=_session_id,
        help="session id, to continue a conversation (default: a new session)",
    )

    p = command("status", "what the index holds and how the last syncs went")
    p.add_argument("--json", action="store_true", help="print the status as JSON")

    p = command("report", "the gap report: unanswered questions, disliked answers, most cited pages")
    p.add_argument(
        "--since", metavar="DAYS", type=_days, default=30, help="the last DAYS days, 1-3650 (default: 30)"
    )
    p.add_argument("--space", metavar="KEY", default="", help="only this space (default: every space)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")

    p = command("serve", "run the Slack/Teams web server and the sync scheduler")
    p.add_argument(
        "--host",
        default="0.0.0.0",  # noqa: S104 - a server is meant to be reachable
        help="address to listen on: 0.0.0.0 is every interface; 127.0.0.1, this machine only, "
        "suits a reverse proxy",
    )
    p.add_argument("--port", metavar="PORT", type=_port, default=3000, help="TCP port to listen on")

    p = command("demo", "ingest the bundled sample wiki through a loopback Confluence and ask it")
    p.add_argument(
        "--question",
        default=None,
        help='the question to ask (default: "How do I connect to the VPN from home?")',
    )
    p.add_argument(
        "--data-dir",
        metavar="DIR",
        default=os.environ.get("DATA_DIR") or "demo-data",
        help="where the demo keeps its index (default: DATA_DIR when set in the environment, else "
        "demo-data; here: %(default)s)",
    )
    p.add_argument(
        "--chat",
        action="store_true",
        help="then chat with the demo's index in the terminal, its Confluence serving the linked pages",
    )
    p.add_argument(
        "--confluence-port",
        metavar="PORT",
        type=_port,
        default=None,
        help="port of the demo's loopback Confluence, so the links stay the same between runs "
        "(default: a free port)",
    )

    p = command(
        "prepare",
        "load the models now and build the int8 export into EMBED_CACHE_DIR (bake it into an image)",
    )
    p.add_argument("--json", action="store_true", help="print what was prepared as JSON")

    p = command("teams-package", "write the Teams app package (zip) with your app id")
    p.add_argument("--app-id", default=None, help="the Azure Bot's app id (default: MICROSOFT_APP_ID)")
    p.add_argument("--out", default="wikibot-teams.zip", help="the zip to write, or a folder for it")
    for option, variable, what in _TEAMS_LINKS:
        p.add_argument(
            f"--{option}-url",
            metavar="URL",
            default=None,
            help=f"https:// URL of your {what} (default: {variable}, else an example.com placeholder)",
        )
    return parser


# teams-package's links: option prefix (and DeveloperUrls field), setting, what the page is.
_TEAMS_LINKS = (
    ("website", "TEAMS_WEBSITE_URL", "website"),
    ("privacy", "TEAMS_PRIVACY_URL", "privacy statement"),
    ("terms", "TEAMS_TERMS_URL", "terms of use"),
)


def _dump(obj: Any, out: TextIO) -> None:
    out.write(json.dumps(obj, ensure_ascii=False) + "\n")
    out.flush()


def _lines(arg: str, stdin: TextIO) -> Iterator[str]:
    if arg != "-":
        yield arg
        return
    for line in stdin:
        if line.strip():
            yield line.rstrip("\n")


@contextmanager
def _progress(tty: bool) -> Iterator[Callable[[int, int], None]]:
    """A progress bar on a terminal (pages/s and ETA); otherwise a plain log line every 10 s."""
    if tty:
        from tqdm import tqdm

        bar = tqdm(unit="page", desc="ingesting", dynamic_ncols=True)

        def update(done: int, total: int) -> None:
            bar.total = total
            bar.n = done
            bar.refresh()

        try:
            yield update
        finally:
            bar.close()
        return

    started = last = time.monotonic()

    def log_line(done: int, total: int) -> None:
        nonlocal last
        now = time.monotonic()
        if now - last < 10 and done < total:
            return
        last = now
        rate = done / max(now - started, 1e-9)
        eta = (total - done) / rate if rate > 0 else float("inf")
        log.info("ingest progress: %d/%d pages, %.1f pages/s, ETA %.0f s", done, total, rate, eta)

    yield log_line


def cmd_ingest(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    from bot.app import build_core
    from bot.status import left_out

    try:
        if not settings.chroma_host:  # a Chroma server takes writes from any number of processes
            ensure_no_server(settings.data_dir)
    except SyncBusy as exc:
        print(f"wikibot: {exc}", file=sys.stderr)
        return EXIT_FAILED
    core = build_core(settings)
    try:
        with _progress(sys.stderr.isatty()) as progress:
            report = core.sync(full=args.full, progress=progress)
    except SyncBusy as exc:
        print(f"wikibot: {exc}", file=sys.stderr)
        return EXIT_FAILED
    finally:
        core.close()
    if args.json:
        _dump(report.as_dict(), out)
    else:
        out.write(
            f"{'ok' if report.ok else 'FAILED'}: {report.added} added, {report.updated} updated, "
            f"{report.removed} removed, {report.unchanged} unchanged; "
            f"{report.chunks_embedded} chunks embedded, {report.chunks_total} in the index "
            f"({report.duration_s:.1f} s)\n"
            # The log names the pages cut; the errors below name those that failed to parse.
            f"  {left_out(report)}\n"
        )
        # A failed run's last error is why it failed: that one goes to stderr, below.
        for error in report.errors if report.ok else report.errors[:-1]:
            out.write(f"  error: {error}\n")
    if not report.ok:
        reason = report.errors[-1] if report.errors else "see the log"
        print(f"wikibot: sync failed: {reason}", file=sys.stderr)
    return EXIT_OK if report.ok else EXIT_FAILED


def cmd_search(args: argparse.Namespace, settings: Settings, out: TextIO, stdin: TextIO) -> int:
    from adapters.terminal import Screen
    from bot.app import build_core

    screen = Screen(out)
    core = build_core(settings)
    empty = not core.retriever.ready()  # then nothing is embedded: no model loads for an empty index
    try:
        for query in _lines(args.query, stdin):
            if not query.strip() or len(query) > settings.max_question_chars:
                print(
                    f"wikibot: the query must be 1 to {settings.max_question_chars} characters",
                    file=sys.stderr,
                )
                if args.query != "-":
                    return EXIT_USAGE
                _dump([], out)
                continue
            hits = () if empty else core.retriever.search(query, k=args.k).hits
            if args.json or args.query == "-":
                _dump(
                    [
                        {
                            "page_id": h.chunk.page_id,
                            "title": h.chunk.title,
                            "url": h.chunk.url,
                            "section": h.chunk.section,
                            "score": round(h.score, 6),
                            "text": h.chunk.text,
                        }
                        for h in hits
                    ],
                    out,
                )
            elif hits:
                screen.passages(hits)
            else:
                out.write(
                    "no passages found (the index is empty: run `wikibot ingest` first)\n"
                    if empty
                    else "no passages found\n"
                )
    finally:
        core.close()
    return EXIT_OK


def cmd_ask(args: argparse.Namespace, settings: Settings, out: TextIO, stdin: TextIO) -> int:
    from adapters.terminal import Screen
    from bot.app import build_core
    from rag.types import IncomingMessage, ReplyKind

    core = build_core(settings)
    # An empty index is answered at once, without a model; otherwise the model loads now: a bad EMBED_MODEL
    # is one line, not a failed answer.
    empty = not core.retriever.ready()
    if not empty:
        _ = core.embedder.fingerprint
    session = args.session or f"cli:{uuid.uuid4()}"
    screen = Screen(out)

    async def run() -> int:
        status = EXIT_OK
        for question in _lines(args.question, stdin):
            reply = await core.assistant.ask(
                IncomingMessage(session_key=session, text=question, platform="cli")
            )
            if reply.kind is ReplyKind.NOTICE and args.question != "-":
                status = EXIT_USAGE
            elif reply.kind is ReplyKind.ERROR and not empty:
                # An empty index is an answer (run `wikibot ingest`), not a failure: exit 1 means one.
                status = EXIT_FAILED
            if args.json or args.question == "-":
                _dump(
                    {
                        "session_id": session,
                        "answer": reply.text,
                        "sources": [
                            {"page_id": s.page_id, "title": s.title, "url": s.url} for s in reply.sources
                        ],
                    },
                    out,
                )
            else:
                screen.reply(reply)
        return status

    try:
        return asyncio.run(run())
    finally:
        core.close()


def cmd_chat(args: argparse.Namespace, settings: Settings) -> int:
    from adapters.terminal import chat
    from bot.app import build_core

    core = build_core(settings)
    if core.retriever.ready():  # the model loads now, not at the first question; an empty index needs none
        _ = core.embedder.fingerprint
    try:
        asyncio.run(chat(core.assistant, session_key=args.session or f"terminal:{uuid.uuid4()}"))
    except KeyboardInterrupt:  # Ctrl-C leaves the chat, as Ctrl-D does
        sys.stdout.write("\n")
    finally:
        core.close()
    return EXIT_OK


def cmd_status(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    from bot.app import build_index_state
    from bot.status import status_dict

    # The ledger alone (the shared one with REDIS_URL): status never opens the vector store nor loads a model.
    state = build_index_state(settings)
    try:
        info = status_dict(settings, state.ledger)
    finally:
        state.close()
    if args.json:
        _dump(info, out)
        return EXIT_OK
    out.write(
        f"spaces: {', '.join(info['spaces']) or '-'}\npages: {info['pages']}\nchunks: {info['chunks']}\n"
        f"last ingest: {info['last_ingest'] or 'never'}\nembedding model: {info['embedding_model'] or '-'}\n"
    )
    last = info["last_sync"]
    if last:
        out.write(f"last sync: {'ok' if last['ok'] else 'FAILED'} at {last['finished_at']}\n")
        for error in last.get("errors", [])[:5]:
            out.write(f"  error: {error}\n")
    return EXIT_OK


def cmd_report(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    from bot.report import gap_report, write_report

    report = gap_report(settings, days=args.since, space=args.space)
    if args.json:
        _dump(report, out)
    else:
        write_report(report, out)
    return EXIT_OK


def cmd_prepare(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    """What a replica would otherwise do at its first start: the int8 export (tens of seconds), the reranker
    and language models. Run at image build time, or once into a shared EMBED_CACHE_DIR."""
    from bot.app import build_core

    started = time.monotonic()
    core = build_core(settings)
    try:
        core.warm()
        info = {
            "embedding_model": core.embedder.fingerprint,
            "model_cache": str(settings.model_cache_path.resolve()),
            "seconds": round(time.monotonic() - started, 1),
        }
    finally:
        core.close()
    if args.json:
        _dump(info, out)
    else:
        out.write(
            f"ready: {info['embedding_model']} in {info['model_cache']} ({info['seconds']} s); "
            "replicas that find it there (the same EMBED_CACHE_DIR) start without exporting\n"
        )
    return EXIT_OK


def cmd_demo(args: argparse.Namespace, out: TextIO) -> int:
    # Before the demo's imports: the offline variables only count if set before a library loads.
    start_process(log_level="INFO" if args.verbose else "WARNING")
    from adapters.terminal import chat
    from bot.demo.run import run_demo
    from rag.ports import Assistant

    async def terminal_chat(assistant: Assistant, session_key: str) -> None:
        await chat(assistant, session_key=session_key)

    return run_demo(
        question=args.question,
        data_dir=Path(args.data_dir),
        out=out,
        confluence_port=args.confluence_port or 0,
        chat=terminal_chat if args.chat else None,
    )


def cmd_teams_package(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    from adapters.teams import AppIdError, DeveloperUrls, write_teams_package
    from adapters.teams.package import placeholder_links
    from bot.config import https_url

    app_id = args.app_id or settings.microsoft_app_id
    if not app_id:
        raise SettingsError("MICROSOFT_APP_ID is not set: pass --app-id or set the Azure Bot's app id")
    links: dict[str, str | None] = {}
    for option, variable, _ in _TEAMS_LINKS:
        given = getattr(args, f"{option}_url")
        try:  # the settings' links are checked when loaded; an option's is checked here, the same way
            links[option] = (
                https_url(given) if given is not None else getattr(settings, variable.lower()) or None
            )
        except ValueError as exc:
            raise SettingsError(f"--{option}-url: {exc}") from None
    urls = DeveloperUrls(**links)
    try:
        path = write_teams_package(app_id=app_id, out=Path(args.out), urls=urls)
    except AppIdError as exc:
        raise SettingsError(f"MICROSOFT_APP_ID: {exc}") from None
    out.write(f"wrote {path}\n")
    left = [variable for option, variable, _ in _TEAMS_LINKS if option in placeholder_links(urls)]
    if left:
        print(
            f"wikibot: warning: the package keeps example.com placeholder links: set {', '.join(left)} "
            "(or the --website-url, --privacy-url, --terms-url options) before publishing it to your organization",
            file=sys.stderr,
        )
    return EXIT_OK


def _log_level(args: argparse.Namespace, settings: Settings) -> str:
    """A service logs LOG_LEVEL (INFO by default); a one-shot command prints its result and logs only
    problems, unless -v asks for progress (or LOG_LEVEL=DEBUG for more)."""
    if args.command == "serve":
        return settings.log_level
    if args.verbose:
        return "DEBUG" if settings.log_level == "DEBUG" else "INFO"
    return "WARNING"


def main(argv: list[str] | None = None, *, stdin: TextIO | None = None, stdout: TextIO | None = None) -> int:
    stdin = stdin or sys.stdin
    out = stdout or sys.stdout
    args = _parser().parse_args(argv)
    try:
        if args.command == "demo":
            return cmd_demo(args, out)
        settings = load_settings()
        start_process(
            log_level=_log_level(args, settings),
            secrets=settings.secret_values(),
            # What the command prints already says it (the retries, the failed sync): a second copy as a
            # log line is noise, unless asked for.
            quiet=() if args.verbose or args.command == "serve" else ("urllib3", "rag.sync"),
        )
        if args.command in ("ingest", "sync"):
            return cmd_ingest(args, settings, out)
        if args.command == "search":
            return cmd_search(args, settings, out, stdin)
        if args.command == "ask":
            return cmd_ask(args, settings, out, stdin)
        if args.command == "chat":
            return cmd_chat(args, settings)
        if args.command == "status":
            return cmd_status(args, settings, out)
        if args.command == "serve":
            from bot.server import serve

            return serve(settings, host=args.host, port=args.port)
        if args.command == "prepare":
            return cmd_prepare(args, settings, out)
        if args.command == "report":
            return cmd_report(args, settings, out)
        if args.command == "teams-package":
            return cmd_teams_package(args, settings, out)
    except SettingsError as exc:
        print(f"wikibot: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:  # Ctrl-C during a one-shot command: stopped, without a traceback
        print("wikibot: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
