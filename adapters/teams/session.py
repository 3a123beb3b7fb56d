"""What a Teams activity means to the core: its session key, its sender and the question it carries."""

from __future__ import annotations

import html
import logging
import re
from collections.abc import Mapping

from botbuilder.core import TurnContext
from botbuilder.schema import Activity

_LOG = logging.getLogger(__name__)
THREAD_MARKER = ";messageid="
_AT_TAG = re.compile(r"<at[^>]*>(.*?)</at>", re.IGNORECASE | re.DOTALL)
_NO_TENANT = "-"


def _tenant_id(activity: Activity) -> str:
    conversation = activity.conversation
    tenant = getattr(conversation, "tenant_id", None) if conversation is not None else None
    if not tenant and conversation is not None:
        # The SDK's schema maps "tenantID"; Teams sends "tenantId", which lands in the extra properties.
        extra = getattr(conversation, "additional_properties", None)
        tenant = extra.get("tenantId") if isinstance(extra, Mapping) else None
    if not tenant:
        # Older Teams payloads carry the tenant only in channelData.
        channel_data = activity.channel_data
        tenant_data = channel_data.get("tenant") if isinstance(channel_data, Mapping) else None
        tenant = tenant_data.get("id") if isinstance(tenant_data, Mapping) else None
    return str(tenant) if tenant else _NO_TENANT


def session_key(activity: Activity) -> str:
    """`teams:<tenant>:<conversation id>`: one session per personal chat, group chat or channel thread.

    Teams names a channel thread `19:...@thread.tacv2;messageid=<root id>`, so the conversation id alone
    separates threads. A channel activity without the marker (seen from older clients) is keyed by the
    thread root it replies to, never by the whole channel: two threads must not share a history.
    """
    conversation = activity.conversation
    conversation_id = str(getattr(conversation, "id", "") or "") if conversation is not None else ""
    conversation_type = getattr(conversation, "conversation_type", None) if conversation is not None else None
    if conversation_type == "channel" and THREAD_MARKER not in conversation_id:
        root = activity.reply_to_id or activity.id
        if root:
            conversation_id = f"{conversation_id}{THREAD_MARKER}{root}"
    return f"teams:{_tenant_id(activity)}:{conversation_id}"


def user_id(activity: Activity) -> str:
    """The sender's Entra (AAD) object id, the same in every chat; the channel account id without one."""
    sender = activity.from_property
    return str(getattr(sender, "aad_object_id", None) or getattr(sender, "id", None) or "")


def question_text(activity: Activity) -> str:
    """The message text without the bot's @mention, as the user meant it."""
    try:
        # The SDK's helper knows Teams' mention entities; it rewrites activity.text in place.
        text = TurnContext.remove_recipient_mention(activity) or ""
        # Other people's mentions stay as their plain names: "ask <at>Alice</at>" keeps "Alice".
        text = _AT_TAG.sub(r"\1", text)
    except (AttributeError, KeyError, TypeError, IndexError, re.error):
        # A malformed mention entity is untrusted input, not a reason to drop the question.
        _LOG.debug("could not apply the SDK mention helper; removing every <at> tag instead")
        text = _AT_TAG.sub(" ", activity.text or "")
    return " ".join(html.unescape(text).split())
