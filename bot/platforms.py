"""The seams between settings and the platform adapters: each adapter gets one small frozen config.

Settings are checked in bot/config.py before a config is built, so an adapter never sees a setting that
could only fail later, and never imports anything from bot/.
"""

from __future__ import annotations

from adapters.slack.config import SlackConfig
from adapters.teams.config import TeamsConfig
from adapters.web.config import RateLimit, WebConfig, WebToken
from bot.config import Settings


def slack_config(settings: Settings) -> SlackConfig:
    """Raises SettingsError naming the variable to fix."""
    settings.require_slack()
    return SlackConfig(
        bot_token=settings.slack_bot_token.get_secret_value(),
        signing_secret=settings.slack_signing_secret.get_secret_value(),
        app_token=settings.slack_app_token.get_secret_value(),
        api_url=settings.slack_api_url,
    )


def teams_config(settings: Settings) -> TeamsConfig:
    """Raises SettingsError naming the variable to fix."""
    settings.require_teams()
    return TeamsConfig(
        app_id=settings.microsoft_app_id.strip(),
        app_password=settings.microsoft_app_password.get_secret_value(),
        app_type=settings.microsoft_app_type,
        tenant_id=settings.microsoft_app_tenant_id.strip(),
        allow_anonymous=settings.teams_allow_anonymous,
    )


def web_config(settings: Settings) -> WebConfig:
    """The web channel's config (off when no way in is set); its settings were checked when loaded, and
    `require_web` checks the bind address at serve."""
    admin = settings.admin_token.get_secret_value()
    return WebConfig(
        tokens=tuple(WebToken.of(name, token) for name, token in settings.web_token_list),
        admin_token=WebToken.of("admin", admin) if admin else None,
        trusted_proxies=settings.web_proxy_networks,
        user_header=settings.web_user_header,
        groups_header=settings.web_groups_header,
        admin_group=settings.web_admin_group.strip(),
        allow_anonymous=settings.web_allow_anonymous,
        rate_limit=RateLimit(
            per_minute=settings.web_rate_limit_per_minute, burst=settings.web_rate_limit_burst
        ),
        max_question_chars=settings.max_question_chars,
    )
