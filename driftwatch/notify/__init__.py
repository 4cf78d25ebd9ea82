"""Chat notifications: alerts, one payload builder per chat platform, and delivery with retries.

Payload builders are pure (``TargetType.SLACK.to_notifier().payload(alert)``); only
:func:`deliver` talks to the network, and nothing here ever shows a webhook URL's secret part.
"""

from __future__ import annotations

from .discord import DiscordNotifier
from .generic import SCHEMA as GENERIC_SCHEMA
from .generic import GenericNotifier
from .googlechat import GoogleChatNotifier
from .http import Delivery, deliver, parse_retry_after, redact
from .interface import Alert, AlertKind, AlertPackage, Notifier, TargetType
from .mattermost import MattermostNotifier
from .slack import SlackNotifier
from .teams import TeamsNotifier

__all__ = [
    "GENERIC_SCHEMA",
    "Alert",
    "AlertKind",
    "AlertPackage",
    "Delivery",
    "DiscordNotifier",
    "GenericNotifier",
    "GoogleChatNotifier",
    "MattermostNotifier",
    "Notifier",
    "SlackNotifier",
    "TargetType",
    "TeamsNotifier",
    "deliver",
    "parse_retry_after",
    "redact",
]
