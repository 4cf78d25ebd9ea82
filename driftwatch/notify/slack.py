"""Slack incoming webhooks: Block Kit ``blocks`` plus a ``text`` fallback for notifications.

Escaping (Slack, "Formatting text for app surfaces", docs.slack.dev/messaging/formatting-message-text,
formerly api.slack.com/reference/surfaces/formatting): ``&``, ``<`` and ``>`` are Slack's control
characters and must be sent as ``&amp;``, ``&lt;`` and ``&gt;``; every link, user, channel and
``<!channel>``/``<!here>`` mention needs a literal ``<``, so this alone stops link and mention
injection. mrkdwn has no backslash escape for ``*``, ``_``, ``~`` or ``\\```, so untrusted text is
sent inside an inline code span (where Slack applies no formatting), with any backtick replaced by
``ˋ`` (U+02CB) so it cannot close the span; Debian versions such as ``1.0~rc1`` stay readable and
copyable. Every mrkdwn object carries ``"verbatim": true`` (Block Kit text object reference), so
Slack does not auto-link URLs or parse bare ``@here``/``#channel`` in it, and
:func:`~driftwatch.notify.content.defuse` puts a zero-width space into ``scheme://`` and into
``@here``-style words as a second guard. The ``header`` block is ``plain_text`` and holds only
driftwatch's own words.

Limits (Block Kit reference): header text 150 characters, section text 3000, at most 10 section
fields of 2000 characters each.
"""

from __future__ import annotations

from typing import Any

from .content import PACKAGES_HEADING, Fact, Message, PackageLine, compose, defuse, fitted
from .interface import Alert

SECTION_LIMIT = 3000
FIELD_LIMIT = 2000
MAX_FIELDS = 10
PART_LIMIT = 170  # per escaped package name or version: 5 lines of 3 parts stay under SECTION_LIMIT


def escape(text: str) -> str:
    """Slack's three control characters as entities, with links and broadcast mentions defused."""
    return defuse(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def code(text: str) -> str:
    """Untrusted text as an escaped inline code span, which Slack never formats."""
    return "`" + escape(text.replace("`", "\u02cb")) + "`"


def mrkdwn(text: str) -> dict[str, Any]:
    """A mrkdwn text object that Slack does not auto-link or mention-parse."""
    return {"type": "mrkdwn", "text": text, "verbatim": True}


def fact_text(fact: Fact) -> str:
    """``*Label*`` on one line, the value (code span when literal) on the next."""
    value = fitted(fact.value, code if fact.literal else escape, FIELD_LIMIT - len(fact.label) - 3)
    return f"*{fact.label}*\n{value}"


def package_text(line: PackageLine) -> str:
    """``• `pkg` `1.0` → `1.1` (security)``."""
    suffix = " *(security)*" if line.security else ""
    package, installed, candidate = (
        fitted(t, code, PART_LIMIT) for t in (line.package, line.installed, line.candidate)
    )
    return f"• {package} {installed} → {candidate}{suffix}"


def headline(message: Message) -> str:
    """``Drift alert: `ref` is over its drift threshold``, as mrkdwn."""
    return f"{message.title}: {code(message.reference)} {message.summary}"


def build(message: Message) -> dict[str, Any]:
    """The Block Kit payload of one message."""
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": message.title, "emoji": False}},
        {"type": "section", "text": mrkdwn(f"{code(message.reference)} {message.summary}")},
    ]
    if message.facts:
        blocks.append({"type": "section", "fields": [mrkdwn(fact_text(f)) for f in message.facts[:MAX_FIELDS]]})
    if message.packages:
        lines = [f"*{PACKAGES_HEADING}*", *(package_text(p) for p in message.packages)]
        if message.more:
            lines.append(message.more_line)
        blocks.append({"type": "section", "text": mrkdwn("\n".join(lines))})
    blocks.append({"type": "context", "elements": [mrkdwn(escape(message.footer))]})
    return {
        "text": headline(message),
        "blocks": blocks,
        "unfurl_links": False,
        "unfurl_media": False,
    }


class SlackNotifier:
    """Slack incoming webhook (``https://hooks.slack.com/services/…``)."""

    name = "slack"

    def payload(self, alert: Alert) -> dict[str, Any]:
        """Block Kit ``blocks`` and a mrkdwn ``text`` fallback; no HTTP."""
        return build(compose(alert))
