"""Web channel: a chat page at /, an admin view at /admin, and a JSON API (POST /query and friends)."""

from adapters.web.config import RateLimit, WebConfig, WebToken
from adapters.web.routes import add_web_routes

__all__ = ["RateLimit", "WebConfig", "WebToken", "add_web_routes"]
