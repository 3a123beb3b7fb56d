"""Microsoft Teams channel: botbuilder's CloudAdapter at POST /api/messages, and the app package."""

from adapters.teams.package import write_teams_package
from adapters.teams.routes import add_teams_routes

__all__ = ["add_teams_routes", "write_teams_package"]
