"""Mattermost incoming webhooks: a Markdown ``text`` plus one Slack-style message attachment.

Mattermost accepts Slack's webhook shape but renders only the parts it documents: ``text``
("Markdown-formatted message", developers.mattermost.com/integrate/webhooks/incoming) and
``attachments`` with ``fallback``, ``color``, ``title``, ``text``, ``fields`` (``title``,
``value``, ``short``) and ``footer`` (developers.mattermost.com/integrate/reference/message-attachments).
Block Kit ``blocks`` are not rendered by Mattermost, so this module does not reuse Slack's payload.

Escaping: Mattermost renders Markdown, and ``text``, attachment ``text`` and field values all
trigger ``@channel``/``@here``/``@all`` and ``@user`` mentions. Untrusted text is sent inside an
inline code span: Markdown is not applied inside it, and the server removes code before it
looks for mentions (``removeCodeFromMessage`` in the Mattermost server's notification code).
A backtick in the text becomes ``ˋ`` so it cannot close the span, and
:func:`~driftwatch.notify.content.defuse` puts a zero-width space into ``scheme://`` and
``@here``-style words as a second guard. ``fallback`` is plain text shown in notifications;
it gets the same defusing.
"""

from __future__ import annotations

from typing import Any

from .content import PACKAGES_HEADING, Fact, Message, PackageLine, compose, defuse
from .interface import Alert


def code(text: str) -> str:
    """Untrusted text as an inline code span: no Markdown, no mentions."""
    return "`" + defuse(text.replace("`", "\u02cb")) + "`"


def value(fact: Fact) -> str:
    """A field value: a code span for data, driftwatch's own numbers as they are."""
    return code(fact.value) if fact.literal else defuse(fact.value)


def package_text(line: PackageLine) -> str:
    """``- `pkg` `1.0` → `1.1` **(security)**``."""
    suffix = " **(security)**" if line.security else ""
    return f"- {code(line.package)} {code(line.installed)} → {code(line.candidate)}{suffix}"


def build(message: Message) -> dict[str, Any]:
    """The webhook payload of one message."""
    parts = [f"{code(message.reference)} {message.summary}"]
    if message.packages:
        lines = [f"**{PACKAGES_HEADING}**", *(package_text(p) for p in message.packages)]
        parts.append("\n".join(lines))
        if message.more:  # its own paragraph: right after the list it would join the last item
            parts.append(message.more_line)
    attachment: dict[str, Any] = {
        "fallback": defuse(message.headline),
        "color": f"#{message.colour:06X}",
        "title": message.title,
        "text": "\n\n".join(parts),
        "fields": [{"title": f.label, "value": value(f), "short": not f.literal or len(f.value) <= 40}
                   for f in message.facts],
        "footer": message.footer,
    }
    return {
        "text": f"**{message.title}**: {code(message.reference)} {message.summary}",
        "attachments": [attachment],
    }


class MattermostNotifier:
    """Mattermost incoming webhook (``https://mattermost.example.com/hooks/…``)."""

    name = "mattermost"

    def payload(self, alert: Alert) -> dict[str, Any]:
        """Markdown ``text`` and one attachment with colour, fields and the worst updates; no HTTP."""
        return build(compose(alert))
