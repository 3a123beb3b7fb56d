"""Typed settings, loaded once at the edge (CLI or server) and passed in explicitly.

The one place settings are checked: value ranges and formats when they are loaded, and what each use
needs (`require_confluence`, `require_slack`, `require_teams`, `require_web`) when that use starts. The adapters get
small frozen configs built from checked settings (bot/platforms.py) and check nothing themselves.
"""

from __future__ import annotations

import ipaddress
import os
import re
from pathlib import Path
from typing import Literal
from urllib.parse import unquote, urlsplit

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_EMBED_MODEL = "all-MiniLM-L6-v2"
# A web token's name is for the logs and the session namespace; the token is a secret someone types or pastes.
_WEB_TOKEN_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")
_WEB_TOKEN_MIN_CHARS = 16
_HEADER_NAME = re.compile(r"^[A-Za-z0-9-]{1,64}$")
_LOOPBACK_NAMES = {"localhost", "ip6-localhost"}
_PLACEHOLDERS = {"changeme", "change-me", "xxx", "your-token", "your-secret", "todo", "placeholder"}


class SettingsError(Exception):
    """A bad or missing setting. str() is one line naming the variable and the fix."""


def https_url(value: str) -> str:
    """An https:// URL with a host, as Teams requires of an app's links; ValueError says what is wrong."""
    value = value.strip()
    try:
        parts = urlsplit(value)
        ok = parts.scheme == "https" and bool(parts.hostname) and not any(c.isspace() for c in value)
    except ValueError:  # a malformed host, such as an unclosed [IPv6 bracket
        ok = False
    if not ok:
        raise ValueError("must be an https:// URL with a host (Teams refuses any other)")
    return value


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", frozen=True, env_ignore_empty=True
    )

    # Confluence
    confluence_url: str = ""
    confluence_username: str = ""
    confluence_password: SecretStr = SecretStr("")
    confluence_token: SecretStr = SecretStr("")
    confluence_space: str = ""
    confluence_cloud: bool | None = None
    confluence_include_restricted: bool = False
    confluence_timeout_s: int = Field(default=30, ge=1, le=600)
    confluence_page_limit: int = Field(default=50, ge=1, le=250)
    confluence_verify_ssl: bool = True
    confluence_max_retries: int = Field(default=4, ge=0, le=20)
    confluence_backoff_s: float = Field(default=1.0, ge=0, le=60)
    confluence_sync_overlap_minutes: int = Field(default=15, ge=0, le=1440)

    # Embeddings, chunking
    embed_model: str = DEFAULT_EMBED_MODEL
    embed_backend: Literal["auto", "torch", "onnx-int8"] = "auto"
    embed_batch_size: int = Field(default=32, ge=1, le=1024)
    embed_cache_dir: Path | None = None
    chunk_size: int = Field(default=1000, ge=100, le=20000)
    chunk_overlap: int = Field(default=150, ge=0, le=5000)
    # What one page may cost: 5x the biggest page of the bench wiki (git-config: 401,728 characters of
    # storage format, 398 chunks), so no written page is cut, while a 20 MB paste costs what 2 MB do.
    page_max_chars: int = Field(default=2_000_000, ge=10_000, le=50_000_000)
    page_max_chunks: int = Field(default=2_000, ge=10, le=100_000)

    # Index and data
    data_dir: Path = Path("data")
    vector_db_path: Path | None = None
    chroma_host: str = ""
    chroma_port: int = Field(default=8000, ge=1, le=65535)
    chroma_ssl: bool = False
    chroma_collection: str = Field(default="wikibot", pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{1,40}$")
    # Graph candidates a dense search explores (rag.index.DEFAULT_EF_SEARCH, measured by bench/hnsw.py).
    chroma_hnsw_ef_search: int = Field(default=800, ge=20, le=5000)

    # Retrieval
    retrieval_top_k: int = Field(default=5, ge=1, le=50)
    retrieval_max_per_page: int = Field(default=2, ge=1, le=50)
    retrieval_mode: Literal["hybrid", "dense", "lexical"] = "hybrid"
    retrieval_min_similarity: float = Field(default=0.3, ge=0, le=1)
    retrieval_rerank: bool = True
    retrieval_rerank_candidates: int = Field(default=16, ge=1, le=100)
    # French questions also searched in English words, for the wiki's English pages (rag/crosslingual.py).
    retrieval_translate: bool = True
    retrieval_min_rerank_score: float = Field(default=-7.0, ge=-30, le=30)
    retrieval_weak_rerank_score: float = Field(default=-5.0, ge=-30, le=30)
    retrieval_weak_similarity: float = Field(default=0.45, ge=0, le=1)
    retrieval_unseen_name_rerank_score: float = Field(default=-2.0, ge=-30, le=30)
    max_question_chars: int = Field(default=2000, ge=10, le=100000)

    # Model
    litellm_model: str = ""
    litellm_api_base: str = ""
    litellm_api_key: SecretStr = SecretStr("")
    litellm_timeout_s: float = Field(default=60.0, gt=0, le=600)
    litellm_num_retries: int = Field(default=2, ge=0, le=10)
    litellm_fallbacks: str = ""
    litellm_temperature: float = Field(default=0.1, ge=0, le=2)
    system_prompt_file: Path | None = None

    # Sessions
    session_db_path: Path | None = None
    session_max_turns: int = Field(default=10, ge=1, le=200)
    session_idle_minutes: int = Field(default=720, ge=1)
    redis_url: SecretStr = SecretStr("")

    # Question log: what was asked, how it ended, its 👍/👎 (what `wikibot report` reads)
    question_log_enabled: bool = True
    question_log_retention_days: int = Field(default=90, ge=1, le=3650)

    # Sync and server
    # Fractions allowed (0.05 is 3 s): tests run real scheduled ticks, and the writer's lease follows it.
    sync_interval_minutes: float = Field(default=60, ge=0.05, le=10080)
    admin_token: SecretStr = SecretStr("")
    health_max_failed_syncs: int = Field(default=3, ge=1, le=100)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    # Slack
    slack_bot_token: SecretStr = SecretStr("")
    slack_signing_secret: SecretStr = SecretStr("")
    slack_app_token: SecretStr = SecretStr("")
    slack_api_url: str = "https://slack.com/api/"

    # Teams
    microsoft_app_id: str = ""
    microsoft_app_password: SecretStr = SecretStr("")
    microsoft_app_type: Literal["MultiTenant", "SingleTenant", "UserAssignedMSI"] = "MultiTenant"
    microsoft_app_tenant_id: str = ""
    teams_allow_anonymous: bool = False
    # The Teams app package's developer links (`wikibot teams-package`); empty: the manifest's placeholders.
    teams_website_url: str = ""
    teams_privacy_url: str = ""
    teams_terms_url: str = ""

    # Web channel (the chat page at /, the admin view at /admin, the JSON API): off unless one way in is set.
    # WEB_TOKENS: comma-separated bearer tokens, each optionally named for the logs ("alice:tok1,tok2").
    web_tokens: SecretStr = SecretStr("")
    # CIDRs whose requests may name the user in web_user_header (an authenticating reverse proxy).
    web_trusted_proxies: str = ""
    web_user_header: str = "X-Forwarded-User"
    web_groups_header: str = "X-Forwarded-Groups"
    # A group in web_groups_header that makes the user an admin; empty: admin only with ADMIN_TOKEN.
    web_admin_group: str = ""
    # No credentials at all, from loopback only, and only when serve binds a loopback address.
    web_allow_anonymous: bool = False
    # Per user: questions (and resets, ratings) per minute on average, and how many may come at once.
    web_rate_limit_per_minute: float = Field(default=12, gt=0, le=6000)
    web_rate_limit_burst: int = Field(default=6, ge=1, le=1000)

    @field_validator("confluence_url", "litellm_api_base", "slack_api_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        value = value.strip()
        if value and not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value

    @field_validator("teams_website_url", "teams_privacy_url", "teams_terms_url")
    @classmethod
    def _https(cls, value: str) -> str:
        return https_url(value) if value.strip() else ""

    @field_validator(
        "confluence_password",
        "confluence_token",
        "litellm_api_key",
        "admin_token",
        "slack_bot_token",
        "slack_signing_secret",
        "slack_app_token",
        "microsoft_app_password",
    )
    @classmethod
    def _no_placeholder(cls, value: SecretStr) -> SecretStr:
        if value.get_secret_value().strip().lower() in _PLACEHOLDERS:
            raise ValueError("is a placeholder: set the real secret or leave it empty")
        return value

    @field_validator("web_tokens")
    @classmethod
    def _web_tokens(cls, value: SecretStr) -> SecretStr:
        parse_web_tokens(value.get_secret_value())  # raises ValueError saying what is wrong
        return value

    @field_validator("web_trusted_proxies")
    @classmethod
    def _cidrs(cls, value: str) -> str:
        parse_networks(value)
        return value.strip()

    @field_validator("web_user_header", "web_groups_header")
    @classmethod
    def _header_name(cls, value: str) -> str:
        if not _HEADER_NAME.match(value.strip()):
            raise ValueError("must be an HTTP header name (letters, digits and dashes)")
        return value.strip()

    @model_validator(mode="after")
    def _consistent(self) -> Settings:
        if self.chunk_overlap >= self.chunk_size:
            raise ValueError("CHUNK_OVERLAP must be smaller than CHUNK_SIZE")
        admin = self.admin_token.get_secret_value()
        if admin and admin in (token for _, token in self.web_token_list):
            raise ValueError("WEB_TOKENS: one of the tokens is ADMIN_TOKEN; give users tokens of their own")
        if self.web_user_header.lower() == self.web_groups_header.lower():
            raise ValueError("WEB_GROUPS_HEADER must differ from WEB_USER_HEADER")
        return self

    # Derived values: computed, never stored twice.
    @property
    def spaces(self) -> tuple[str, ...]:
        return tuple(s.strip() for s in self.confluence_space.split(",") if s.strip())

    @property
    def chroma_path(self) -> Path:
        return self.vector_db_path or self.data_dir / "chroma"

    @property
    def model_cache_path(self) -> Path:
        return self.embed_cache_dir or self.data_dir / "models"

    @property
    def sessions_path(self) -> Path:
        return self.session_db_path or self.data_dir / "sessions.sqlite3"

    @property
    def question_log_path(self) -> Path:
        return self.data_dir / "questions.sqlite3"

    @property
    def state_path(self) -> Path:
        return self.data_dir / "state.sqlite3"

    @property
    def lexical_path(self) -> Path:
        # Per data folder, so per replica: each catches its own copy up from the ledger.
        return self.data_dir / "lexical"

    @property
    def web_token_list(self) -> tuple[tuple[str, str], ...]:
        """(name, token) pairs; the name is "" for a token given without one."""
        return parse_web_tokens(self.web_tokens.get_secret_value())

    @property
    def web_proxy_networks(self) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
        return parse_networks(self.web_trusted_proxies)

    @property
    def web_enabled(self) -> bool:
        return bool(self.web_token_list or self.web_proxy_networks or self.web_allow_anonymous)

    @property
    def fallback_models(self) -> tuple[str, ...]:
        return tuple(m.strip() for m in self.litellm_fallbacks.split(",") if m.strip())

    @property
    def is_cloud(self) -> bool:
        if self.confluence_cloud is not None:
            return self.confluence_cloud
        return ".atlassian.net" in self.confluence_url or self.confluence_url.rstrip("/").endswith("/wiki")

    def secret_values(self) -> tuple[str, ...]:
        """Every configured secret, as the log redaction must know them (a Redis URL's password too)."""
        values: list[str] = []
        for name, field in type(self).model_fields.items():
            value = getattr(self, name)
            if field.annotation is SecretStr and isinstance(value, SecretStr) and value.get_secret_value():
                values.append(value.get_secret_value())
        password = urlsplit(self.redis_url.get_secret_value()).password
        if password:
            values.append(unquote(password))
        # Each web token on its own: a log line would hold one of them, never the whole list.
        values.extend(token for _, token in self.web_token_list)
        return tuple(values)

    @property
    def slack_enabled(self) -> bool:
        return bool(self.slack_bot_token.get_secret_value())

    @property
    def teams_enabled(self) -> bool:
        return bool(self.microsoft_app_id) or self.teams_allow_anonymous

    def require_confluence(self) -> None:
        """Checks what an ingest needs; the chat and search paths do not need Confluence."""
        if not self.confluence_url:
            raise SettingsError(
                "CONFLUENCE_URL is not set: set it to your wiki's base URL "
                "(https://yourcompany.atlassian.net/wiki or https://confluence.example.com), "
                "or run `wikibot demo` to try the bundled sample wiki"
            )
        if not self.spaces:
            raise SettingsError(
                "CONFLUENCE_SPACE is not set: set one space key or a comma-separated list (e.g. ENG,OPS)"
            )
        has_token = bool(self.confluence_token.get_secret_value())
        has_basic = bool(self.confluence_username and self.confluence_password.get_secret_value())
        if not (has_token or has_basic):
            raise SettingsError(
                "Confluence credentials are missing: set CONFLUENCE_USERNAME and CONFLUENCE_PASSWORD "
                "(an API token on Cloud) or CONFLUENCE_TOKEN (a personal access token on Data Center)"
            )

    def require_slack(self) -> None:
        """Checks what serving Slack needs, the process environment included: Slack's SDK reads it too."""
        bot_token = self.slack_bot_token.get_secret_value()
        app_token = self.slack_app_token.get_secret_value()
        if not bot_token:
            raise SettingsError(
                "SLACK_BOT_TOKEN is not set: copy the Bot User OAuth Token (xoxb-…) of your Slack app"
            )
        if bot_token.startswith("xapp-"):
            raise SettingsError(
                "SLACK_BOT_TOKEN holds an app-level token (xapp-…): that one goes in SLACK_APP_TOKEN"
            )
        if app_token and not app_token.startswith("xapp-"):
            raise SettingsError(
                "SLACK_APP_TOKEN must be an app-level token (xapp-…) with the connections:write scope"
            )
        if not app_token and not self.slack_signing_secret.get_secret_value():
            raise SettingsError(
                "SLACK_SIGNING_SECRET is not set: copy it from your Slack app's Basic Information page "
                "(or set SLACK_APP_TOKEN to use Socket Mode)"
            )
        if os.environ.get("SLACK_CLIENT_ID") and os.environ.get("SLACK_CLIENT_SECRET"):
            # Bolt reads these two behind our back and turns into a multi-workspace OAuth app, dropping the bot token.
            raise SettingsError(
                "SLACK_CLIENT_ID and SLACK_CLIENT_SECRET are set: WikiBot is a single-workspace app, unset them "
                "(Slack's SDK would otherwise ignore SLACK_BOT_TOKEN)"
            )

    def require_teams(self) -> None:
        """Refuses a Teams configuration that could only fail later, naming the variable to fix."""
        if not self.microsoft_app_id.strip():
            return  # the endpoint is off, or anonymous for the Emulator: nothing to authenticate with
        app_type = self.microsoft_app_type
        if app_type in ("MultiTenant", "SingleTenant") and not self.microsoft_app_password.get_secret_value():
            raise SettingsError(
                f"MICROSOFT_APP_PASSWORD is not set: a {app_type} bot needs the client secret of its "
                "Azure app registration to send replies"
            )
        if app_type in ("SingleTenant", "UserAssignedMSI") and not self.microsoft_app_tenant_id.strip():
            raise SettingsError(
                f"MICROSOFT_APP_TENANT_ID is not set: a {app_type} bot needs the id of its Microsoft Entra tenant"
            )

    def require_web(self, *, host: str) -> None:
        """Refuses an anonymous web channel that anyone but this machine could reach."""
        if self.web_allow_anonymous and not is_loopback_host(host):
            raise SettingsError(
                f"WEB_ALLOW_ANONYMOUS=true serves questions without any credentials: it needs a loopback "
                f"--host (127.0.0.1, ::1 or localhost), not {host}; set WEB_TOKENS or WEB_TRUSTED_PROXIES "
                "to serve others"
            )


def parse_web_tokens(value: str) -> tuple[tuple[str, str], ...]:
    """ "alice:tok1,tok2" → (("alice", "tok1"), ("", "tok2")); ValueError says which entry is wrong, never
    showing a token. The name is what precedes the first colon."""
    entries: list[tuple[str, str]] = []
    for number, entry in enumerate((e.strip() for e in value.split(",")), start=1):
        if not entry:
            continue
        named = ":" in entry
        name, token = (part.strip() for part in entry.split(":", 1)) if named else ("", entry)
        if named and not _WEB_TOKEN_NAME.match(name):
            raise ValueError(
                f"entry {number}: a name is 1-64 letters, digits, '.', '_', '@' or '-' before the colon"
            )
        if len(token) < _WEB_TOKEN_MIN_CHARS or any(c.isspace() for c in token):
            raise ValueError(
                f"entry {number}: a token is at least {_WEB_TOKEN_MIN_CHARS} characters without spaces "
                "(python -c 'import secrets; print(secrets.token_urlsafe(24))' makes one)"
            )
        if token.lower() in _PLACEHOLDERS:
            raise ValueError(f"entry {number} is a placeholder: set a real token")
        if token in (t for _, t in entries):
            raise ValueError(f"entry {number} repeats a token given before")
        entries.append((name, token))
    return tuple(entries)


def parse_networks(value: str) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    """ "10.0.0.0/8, ::1" → networks (a bare address is a /32 or /128); ValueError names the bad one."""
    networks = []
    for item in (i.strip() for i in value.split(",")):
        if not item:
            continue
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            raise ValueError(f"{item!r} is not an IP address or a CIDR such as 10.0.0.0/8") from None
    return tuple(networks)


def is_loopback_host(host: str) -> bool:
    """Whether a bind address reaches only this machine (127.0.0.0/8, ::1, localhost)."""
    host = host.strip().strip("[]")
    if host.lower() in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def load_settings(**overrides: object) -> Settings:
    """Builds settings from the environment and .env; raises SettingsError with one readable line."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        error = exc.errors()[0]
        loc = error.get("loc") or ()
        name = str(loc[0]).upper() if loc else "settings"
        message = str(error.get("msg", "is invalid")).removeprefix("Value error, ")
        if name == "settings" or message.startswith(name):
            raise SettingsError(message) from None
        raise SettingsError(f"{name}: {message}") from None
