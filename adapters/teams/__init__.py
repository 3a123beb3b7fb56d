"""Microsoft Teams channel: botbuilder's CloudAdapter at POST /api/messages, and the app package."""

from adapters.teams.config import TeamsConfig
from adapters.teams.package import AppIdError, DeveloperUrls, write_teams_package
from adapters.teams.routes import add_teams_routes

__all__ = ["AppIdError", "DeveloperUrls", "TeamsConfig", "add_teams_routes", "write_teams_package"]
