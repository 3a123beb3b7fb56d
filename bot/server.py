"""The web server: Slack at /slack/events, Teams at /api/messages, the web channel at / (chat) and /admin,
/healthz, /readyz, /metrics, /admin/sync and /admin/status."""

from __future__ import annotations

import asyncio
import hmac
import logging
import socket
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger
from aiohttp.typedefs import Handler
from apscheduler.triggers.interval import IntervalTrigger
from filelock import Timeout
from prometheus_client import CONTENT_TYPE_LATEST

from bot.app import Core, build_core
from bot.config import Settings, SettingsError
from bot.runtime import server_lock
from bot.scheduler import SyncRunner, build_scheduler, needs_startup_sync
from bot.status import status_dict
from rag.types import Readiness

log = logging.getLogger(__name__)

CORE: web.AppKey[Core] = web.AppKey("core", Core)
RUNNER: web.AppKey[SyncRunner] = web.AppKey("runner", SyncRunner)
PROXY_ADMIN: web.AppKey[Callable[[web.Request], bool]] = web.AppKey("proxy_admin")


def _health(core: Core) -> tuple[dict[str, Any], Readiness]:
    """The ledger's summary read once, for the status and for the store check beside it."""
    summary = core.kb.summary()
    return status_dict(core.settings, core.kb, summary=summary), core.kb.readiness(summary=summary)


async def healthz(request: web.Request) -> web.Response:
    core = request.app[CORE]
    info, readiness = await asyncio.to_thread(_health, core)
    info["ready"], info["stored_chunks"] = readiness.ready, readiness.stored_chunks
    # The ledger's counts alone would say "ok" for a collection the store lost (dropped by another process,
    # a wiped Chroma): that is failing too. No index yet (before the first sync) is not.
    lost = readiness.collection is not None and not readiness.ready
    failing = info["failed_syncs_in_a_row"] >= core.settings.health_max_failed_syncs or lost
    info["status"] = "failing" if failing else "ok"
    info["sync_running"] = request.app[RUNNER].running
    last = info.get("last_sync")
    if isinstance(last, dict) and not _is_admin(request, core):
        # The endpoint is public (load balancers, Slack's network): error texts name pages, so they are
        # for the admin token only; everyone sees how many there were.
        last["errors"] = len(last.get("errors") or [])
    return web.json_response(info, status=503 if failing else 200)


async def readyz(request: web.Request) -> web.Response:
    """Readiness for a load balancer: 200 only when the active collection is in the vector store and holds
    chunks (asked of the store, not of the ledger); 503 with the reason otherwise. /healthz stays liveness."""
    readiness = await asyncio.to_thread(request.app[CORE].kb.readiness)
    return web.json_response(readiness.as_dict(), status=200 if readiness.ready else 503)


async def metrics(request: web.Request) -> web.Response:
    """Prometheus text format. Public like /healthz: counts and timings only, no text of any question or page."""
    body = await asyncio.to_thread(request.app[CORE].metrics.exposition)  # reads the ledger
    response = web.Response(body=body)
    # Set on the headers: aiohttp's content_type argument refuses a value with parameters (version, charset).
    response.headers["Content-Type"] = CONTENT_TYPE_LATEST
    return response


# Credentials travel in the Authorization header only: a URL ends up in access logs, proxies and browser
# history. A request that puts one in its query string is refused before any handler reads it.
_CREDENTIAL_PARAMETERS = frozenset(
    {"token", "access_token", "admin_token", "api_key", "apikey", "key", "auth", "authorization", "password"}
)


@web.middleware
async def refuse_credentials_in_url(request: web.Request, handler: Handler) -> web.StreamResponse:
    if any(name.lower() in _CREDENTIAL_PARAMETERS for name in request.query):
        return web.json_response(
            {"error": "send credentials in the Authorization header, never in the URL"}, status=400
        )
    return await handler(request)


async def _plain_server_header(_: web.Request, response: web.StreamResponse) -> None:
    # aiohttp would name itself and its version: a free hint for anyone matching known vulnerabilities.
    response.headers["Server"] = "WikiBot"


class AccessLogger(AbstractAccessLogger):
    """One line per request: method, path and status; never the query string, which may carry secrets."""

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        self.logger.info(
            "%s %s %s %s %.3fs", request.remote, request.method, request.path, response.status, time
        )


def _is_admin(request: web.Request, core: Core) -> bool:
    expected = core.settings.admin_token.get_secret_value()
    given = request.headers.get("Authorization", "")
    if expected and hmac.compare_digest(given.encode(), f"Bearer {expected}".encode()):
        return True
    # The web channel's trusted proxy may vouch for an admin too (WEB_ADMIN_GROUP).
    proxy_admin = request.app.get(PROXY_ADMIN)
    return proxy_admin is not None and proxy_admin(request)


def _admin_on(app: web.Application, core: Core) -> bool:
    return bool(core.settings.admin_token.get_secret_value()) or PROXY_ADMIN in app


def _refused_admin(request: web.Request, core: Core) -> web.Response | None:
    """None for the admin; the admin endpoints do not exist without an admin (ADMIN_TOKEN, or the web channel's
    proxy admin group) (404), and refuse others (401)."""
    if not _admin_on(request.app, core):
        raise web.HTTPNotFound()
    if not _is_admin(request, core):
        return web.json_response({"error": "a valid bearer token is required"}, status=401)
    return None


async def admin_sync(request: web.Request) -> web.Response:
    core = request.app[CORE]
    refused = _refused_admin(request, core)
    if refused is not None:
        return refused
    return await start_sync(request)


async def admin_status(request: web.Request) -> web.Response:
    """What `wikibot status --json` prints, with the recent syncs (durations, errors) and whether one runs:
    the admin view's index panel."""
    core = request.app[CORE]
    refused = _refused_admin(request, core)
    if refused is not None:
        return refused

    def read() -> dict[str, Any]:
        return {**status_dict(core.settings, core.kb), "recent_syncs": core.kb.recent_syncs(10)}

    info = await asyncio.to_thread(read)
    info["chat_model"] = core.settings.litellm_model or None
    info["sync_running"] = request.app[RUNNER].running
    return web.json_response(info)


async def start_sync(request: web.Request) -> web.Response:
    """The sync an admin asked for (POST /admin/sync, and the web channel's POST /ingest, which checks its
    own credentials): 202 when started or queued for the writer replica, 409 while one runs."""
    core = request.app[CORE]
    full = request.query.get("full", "") in ("1", "true", "yes")
    lease = core.lease
    if lease is not None and lease.token() is None:
        writer = await asyncio.to_thread(lease.holder)
        if writer is not None:
            # Another replica is the index's writer: it takes the request within seconds.
            await asyncio.to_thread(lease.request_sync, full=full)
            return web.json_response({"started": True, "full": full, "queued_for": writer}, status=202)
    if not request.app[RUNNER].trigger(full=full):
        return web.json_response({"started": False, "error": "a sync is already running"}, status=409)
    return web.json_response({"started": True, "full": full}, status=202)


async def admin_report(request: web.Request) -> web.Response:
    """GET /admin/report?since=DAYS&space=KEY: what `wikibot report --json` prints, for this deployment."""
    from bot.report import LOG_OFF, report_of
    from rag.question_log import QuestionLogError
    from rag.report import ReportQuery

    core = request.app[CORE]
    refused = _refused_admin(request, core)
    if refused is not None:
        return refused
    if core.questions is None:
        return web.json_response({"error": LOG_OFF}, status=404)
    since, space = request.query.get("since", "30"), request.query.get("space", "")
    if not (since.isdigit() and 1 <= int(since) <= 3650):
        return web.json_response({"error": "since must be a whole number of days from 1 to 3650"}, status=400)
    if len(space) > 255 or not space.isprintable():
        return web.json_response({"error": "space must be a space key"}, status=400)
    query = ReportQuery(days=int(since), space=space.strip())
    try:
        report = await asyncio.to_thread(report_of, core.questions, query, lambda: core.embedder)
    except QuestionLogError as exc:
        log.error("the gap report failed: %s", exc)
        return web.json_response({"error": "the question log cannot be read right now"}, status=503)
    return web.json_response(report)


async def _warm_up(core: Core) -> None:
    try:
        await asyncio.to_thread(core.warm)
    except Exception:
        log.exception("the models could not be loaded; questions will fail until this is fixed")


async def writer_duties(core: Core, runner: SyncRunner) -> None:
    """On the replica holding the sync lease: renew it, and run the syncs other replicas were asked for."""
    lease = core.lease
    if lease is None or lease.token() is None:
        return
    if not await asyncio.to_thread(lease.renew):
        writer = await asyncio.to_thread(lease.holder)
        log.warning("this replica lost the sync lease: %s is the writer now", writer or "nobody yet")
        return
    full = await asyncio.to_thread(lease.take_request)
    if full is not None and not runner.trigger(full=full):
        log.info("a sync asked through another replica arrived during a sync: that one covers it")


def build_web_app(
    core: Core, *, with_scheduler: bool = True, interval_s: float | None = None
) -> web.Application:
    settings = core.settings
    app = web.Application(client_max_size=1024 * 1024, middlewares=[refuse_credentials_in_url])
    app.on_response_prepare.append(_plain_server_header)
    runner = SyncRunner(core)
    app[CORE] = core
    app[RUNNER] = runner
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)
    app.router.add_post("/admin/sync", admin_sync)
    app.router.add_get("/admin/report", admin_report)
    app.router.add_get("/admin/status", admin_status)

    if settings.slack_enabled:
        from adapters.slack import add_slack_routes
        from bot.platforms import slack_config

        add_slack_routes(app, config=slack_config(settings), assistant=core.assistant, dedupe=core.chat_state)
    if settings.teams_enabled:
        # Logs the loud warning itself when TEAMS_ALLOW_ANONYMOUS opens the endpoint without an app id.
        from adapters.teams import add_teams_routes
        from bot.platforms import teams_config

        add_teams_routes(app, config=teams_config(settings), assistant=core.assistant, dedupe=core.chat_state)
    from adapters.web import add_web_routes
    from bot.platforms import web_config

    # Logs one line when it is off; when on, its trusted proxy's admin group counts for /admin/* too.
    channel = add_web_routes(
        app,
        config=web_config(settings),
        assistant=core.assistant,
        start_sync=start_sync,
        throttles=core.chat_state,
    )
    if channel is not None:
        app[PROXY_ADMIN] = channel.is_admin

    async def start_scheduler(app: web.Application) -> None:
        # Load the models now, off the loop, rather than on the first user's question.
        app[WARMUP] = asyncio.get_running_loop().create_task(_warm_up(core))
        if with_scheduler and settings.confluence_url:
            start_now = await asyncio.to_thread(needs_startup_sync, core, datetime.now(UTC))
            scheduler = build_scheduler(core, runner, start_now=start_now, interval_s=interval_s)
            if core.lease is not None:
                scheduler.add_job(
                    writer_duties,
                    IntervalTrigger(seconds=core.lease.renew_every_s, timezone=UTC),
                    args=[core, runner],
                    id="sync-lease",
                    max_instances=1,
                    coalesce=True,
                )
            scheduler.start()
            app[SCHEDULER] = scheduler

    async def stop(app: web.Application) -> None:
        scheduler = app.get(SCHEDULER)
        if scheduler is not None:
            scheduler.shutdown(wait=False)
        await runner.close()
        await core.assistant.close()
        if core.chat_state is not None:
            await core.chat_state.aclose()

    app.on_startup.append(start_scheduler)
    app.on_cleanup.append(stop)
    return app


SCHEDULER: web.AppKey[Any] = web.AppKey("scheduler", object)
WARMUP: web.AppKey[Any] = web.AppKey("warmup", object)


def startup_line(settings: Settings, sock: socket.socket) -> str:
    """Where the server listens and what it serves, in one line an operator can check at a glance."""
    host, port = sock.getsockname()[:2]
    address = f"[{host}]" if ":" in host else host
    admin = bool(settings.admin_token.get_secret_value())
    served = [
        "Slack /slack/events" if settings.slack_enabled else "Slack off",
        "Teams /api/messages" if settings.teams_enabled else "Teams off",
        "/healthz",
        "admin /admin/sync on" if admin else "admin off",
    ]
    if settings.web_enabled:
        served.insert(2, "web chat / and /admin")
    return f"listening on http://{address}:{port}: {', '.join(served)}"


def startup_warnings(settings: Settings) -> list[str]:
    """What an operator may not have meant; each says what is (and is not) served."""
    warnings = []
    if not (settings.slack_enabled or settings.teams_enabled or settings.web_enabled):
        admin = bool(settings.admin_token.get_secret_value())
        warnings.append(
            "neither Slack nor Teams is configured: serving only /healthz"
            + (" and /admin/sync" if admin else " (admin is off too: ADMIN_TOKEN is unset)")
        )
    if not settings.confluence_url:
        warnings.append("CONFLUENCE_URL is not set: the scheduled sync is off")
    return warnings


def _listen(host: str, port: int) -> socket.socket:
    """The listening socket, bound before anything slow starts: a port in use is one line, not a traceback
    from inside aiohttp after the models have loaded."""
    try:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        return socket.create_server((host, port), family=family, backlog=128)
    except OSError as exc:
        raise SettingsError(
            f"--host/--port: cannot listen on {host}:{port}: {exc.strerror or exc} "
            "(another process may hold the port; choose another with --port)"
        ) from None


def _startup_checks(settings: Settings, *, host: str) -> None:
    """What would otherwise fail after the server listens, checked while a failure is still one line."""
    from bot.platforms import slack_config, teams_config

    settings.require_web(host=host)
    if settings.slack_enabled:
        slack_config(settings)
    if settings.teams_enabled:
        teams_config(settings)


def serve(settings: Settings, *, host: str, port: int) -> int:
    """Runs until stopped. Every start-up problem we can name raises SettingsError (one line, exit 2) before
    the port answers: a server that listens is one that can answer."""
    _startup_checks(settings, host=host)
    try:
        lock = server_lock(settings.data_dir)
    except OSError as exc:
        raise SettingsError(f"DATA_DIR: cannot use {settings.data_dir} as the data folder: {exc}") from None
    if not settings.chroma_host:
        try:
            lock.acquire(timeout=0)
        except Timeout:
            raise SettingsError(
                f"DATA_DIR: another wikibot server already uses {settings.data_dir}; give each its own "
                "data folder, or share a Chroma server (CHROMA_HOST) and Redis (REDIS_URL)"
            ) from None
    core: Core | None = None
    try:
        sock = _listen(host, port)
        with sock:
            core = build_core(settings)
            # The models load now, before the port answers: an unusable EMBED_MODEL stops the start (the
            # embedder names it), where a warm-up task would leave a server that fails every question.
            core.warm()
            app = build_web_app(core)
            log.info("%s", startup_line(settings, sock))
            for warning in startup_warnings(settings):
                log.warning("%s", warning)
            web.run_app(app, sock=sock, print=None, access_log_class=AccessLogger)
    finally:
        if core is not None:
            core.close()
        if lock.is_locked:
            lock.release()
    return 0
