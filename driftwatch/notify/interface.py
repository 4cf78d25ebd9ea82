"""The contract of the chat-notification layer: what an alert says, and what a notifier does with it.

An :class:`Alert` is a frozen description of one thing worth telling a chat channel about (a
threshold breach, a recovery, a failed scan...). A :class:`Notifier` turns it into the JSON body
that one chat platform's incoming webhook expects. Notifiers are pure: no HTTP, no clock, no
environment. Sending is :func:`driftwatch.notify.http.deliver`'s job, the only place that talks
to the network.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol, assert_never


class AlertKind(str, enum.Enum):
    """Why an alert is sent. Stored and sent as its text value."""

    BREACH = "breach"  # an image went over a threshold
    WORSENED = "worsened"  # an image already over a threshold drifted further
    REMINDER = "reminder"  # an image is still over a threshold (periodic, rate-limited upstream)
    RECOVERED = "recovered"  # an image is back within policy
    FAILED = "failed"  # the scan failed: drift unknown
    EOL = "eol"  # the image's release is past its end of life: no more updates will come
    TEST = "test"  # `driftwatch notify test`: proves the webhook works


@dataclass(frozen=True, slots=True)
class AlertPackage:
    """One pending update, as an alert shows it. Every string comes from the image: untrusted."""

    package: str
    installed: str
    candidate: str
    security: bool


@dataclass(frozen=True, slots=True)
class Alert:
    """Everything a chat message about one image may say.

    Strings that come from the image or the scan (``reference``, ``image_id``, ``detail``, package
    names and versions) are untrusted: every notifier strips control characters from them and
    escapes them for its platform. ``None`` means unknown, never zero. ``created_at`` must be
    timezone-aware.
    """

    kind: AlertKind
    reference: str
    image_id: str | None
    verdict: str
    breaches: tuple[str, ...]
    pending_security: int | None
    pending_total: int | None
    oldest_security_age_days: float | None
    apt_layer_age_days: float | None
    packages: tuple[AlertPackage, ...]
    rebuild_outcome: str | None
    reason: str | None
    detail: str | None
    created_at: datetime

    def __post_init__(self) -> None:
        """Reject a naive timestamp: every time driftwatch sends is UTC and says so."""
        if self.created_at.tzinfo is None or self.created_at.utcoffset() is None:
            raise ValueError("Alert.created_at must be timezone-aware")


class Notifier(Protocol):
    """Builds one chat platform's webhook payload from an alert. Pure: no HTTP, no I/O."""

    @property
    def name(self) -> str:
        """The platform's name, equal to its :class:`TargetType` value."""
        ...

    def payload(self, alert: Alert) -> dict[str, Any]:
        """The JSON body the platform's incoming webhook expects for this alert."""
        ...


class TargetType(str, enum.Enum):
    """The chat platforms driftwatch can post to; the value is what configuration files spell."""

    SLACK = "slack"
    TEAMS = "teams"
    DISCORD = "discord"
    MATTERMOST = "mattermost"
    GOOGLECHAT = "googlechat"
    GENERIC = "generic"

    def to_notifier(self) -> Notifier:
        """The notifier for this platform. Adding a member without a mapping fails type checking."""
        from . import discord, generic, googlechat, mattermost, slack, teams

        if self is TargetType.SLACK:
            return slack.SlackNotifier()
        if self is TargetType.TEAMS:
            return teams.TeamsNotifier()
        if self is TargetType.DISCORD:
            return discord.DiscordNotifier()
        if self is TargetType.MATTERMOST:
            return mattermost.MattermostNotifier()
        if self is TargetType.GOOGLECHAT:
            return googlechat.GoogleChatNotifier()
        if self is TargetType.GENERIC:
            return generic.GenericNotifier()
        assert_never(self)
