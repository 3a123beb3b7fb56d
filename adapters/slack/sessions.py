"""Session keys: a pure function of where a Slack message was posted.

A key is `slack:<team>:<channel>:<root>`, where root is the thread's root ts, or `main` for the top level of a
direct message (one continuing conversation). A channel mention at the top level starts a thread rooted at the
mention itself, so the bot's answer and every reply under it share one key. The user is not part of the key: a
channel thread is one conversation whoever speaks in it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

_PLATFORM = "slack"
DM_MAIN = "main"

# Slack ids are upper-case alphanumerics and ts values are "seconds.micros"; anything else is not from Slack,
# and refusing it keeps the ':' separator of the key unambiguous.
_ID = re.compile(r"^[A-Z0-9]{1,32}$")
_TS = re.compile(r"^\d{1,12}\.\d{1,9}$")


@dataclass(frozen=True, slots=True)
class Conversation:
    """Where a message belongs: its session, and where the bot's answer goes."""

    team_id: str
    channel_id: str
    # The thread's root ts; None only for the top level of a direct message.
    thread_ts: str | None
    is_dm: bool

    @property
    def session_key(self) -> str:
        return session_key(self.team_id, self.channel_id, self.thread_ts or DM_MAIN)


def session_key(team_id: str, channel_id: str, root: str) -> str:
    return f"{channel_prefix(team_id, channel_id)}{root}"


def channel_prefix(team_id: str, channel_id: str) -> str:
    """The prefix every session key of one conversation (a DM, a channel) starts with."""
    return f"{_PLATFORM}:{team_id}:{channel_id}:"


def is_dm_channel(channel_id: str, channel_type: str | None = None) -> bool:
    # app_mention and slash-command payloads carry no channel_type; a DM's id starts with D.
    return channel_type == "im" or (channel_type is None and channel_id.startswith("D"))


def valid_id(value: object) -> bool:
    return isinstance(value, str) and bool(_ID.match(value))


def valid_ts(value: object) -> bool:
    return isinstance(value, str) and bool(_TS.match(value))


def team_of(body: Mapping[str, Any]) -> str:
    """The workspace the event was delivered to (the envelope's), else the event's own."""
    event = body.get("event")
    candidates = [body.get("team_id")]
    if isinstance(event, Mapping):
        candidates.append(event.get("team"))
    for team in candidates:
        if valid_id(team):
            return str(team)
    return ""


def conversation_of(body: Mapping[str, Any]) -> Conversation | None:
    """The conversation of an Events API message or app_mention envelope; None if it names none."""
    event = body.get("event")
    if not isinstance(event, Mapping):
        return None
    team = team_of(body)
    channel = event.get("channel")
    ts = event.get("ts")
    if not (team and valid_id(channel) and valid_ts(ts)):
        return None
    channel_type = event.get("channel_type")
    is_dm = is_dm_channel(str(channel), channel_type if isinstance(channel_type, str) else None)
    thread_ts = event.get("thread_ts")
    in_thread = valid_ts(thread_ts) and thread_ts != ts
    root: str | None = None  # a DM's top level: one continuing conversation
    if in_thread:
        root = str(thread_ts)
    elif not is_dm:
        root = str(ts)  # a channel mention starts a thread rooted at itself
    return Conversation(team_id=team, channel_id=str(channel), thread_ts=root, is_dm=is_dm)
