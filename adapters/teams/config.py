"""The Teams adapter's one input from the outside: a frozen config the composition root builds and checks."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

AppType = Literal["MultiTenant", "SingleTenant", "UserAssignedMSI"]


@dataclass(frozen=True, kw_only=True)
class TeamsConfig:
    """The Azure Bot's app registration; the adapter reads nothing else, the environment included.

    An empty `app_id` turns the endpoint off unless `allow_anonymous` (Bot Framework Emulator only).
    The password stays out of repr: a config may end up in a log line or a test failure.
    """

    app_id: str
    app_password: str = field(repr=False)
    app_type: AppType
    tenant_id: str
    allow_anonymous: bool
