"""Discord webhooks: one embed coloured by verdict, a short ``content`` line, and no pings.

Payload (discord.com/developers/docs/resources/webhook#execute-webhook): ``content``, ``username``,
``embeds`` (``title``, ``description``, ``color`` as an integer, ``fields`` with ``name``/``value``/
``inline``, ``footer.text``, ISO 8601 ``timestamp``) and ``allowed_mentions``. ``{"parse": []}``
(discord.com/developers/docs/resources/message#allowed-mentions-object) means no ``@everyone``,
``@here``, role or user mention in the message can ping anyone, whatever its text says.

Escaping (Discord's Markdown, support.discord.com "Markdown Text 101"; the same rules discord.py's
``utils.escape_markdown`` and discord.js's ``escapeMarkdown`` implement): a backslash before a
punctuation character shows it literally, so ``\\ * _ ~ ` | > # [ ] ( ) <`` are backslash-escaped
everywhere (emphasis, strikethrough, code, spoilers, quotes, headings, ``-#`` subtext, masked
links ``[x](url)``, and ``<@id>``/``<#id>``/``<t:…>`` tags); a leading ``- ``, ``+ `` or ``1. `` that
would start a list is escaped too. ``@everyone``/``@here`` get a zero-width space after the ``@``, and
``scheme://`` one after the colon so bare URLs are not auto-linked
(:func:`~driftwatch.notify.content.defuse`). Untrusted text goes only into ``content``, the
embed ``description`` and field values, which render Markdown; titles, field names and the footer
hold driftwatch's own words.

Limits: ``content`` 2000 characters, embed description 4096, 25 fields, field value 1024.
"""

from __future__ import annotations

import re
from typing import Any

from .content import PACKAGES_HEADING, Fact, Message, PackageLine, compose, defuse, fitted
from .interface import Alert

CONTENT_LIMIT = 2000
DESCRIPTION_LIMIT = 4096
FIELD_LIMIT = 1024
MAX_FIELDS = 24  # 25 in all with the packages field
PART_LIMIT = 150  # per escaped package name or version, so 5 lines fit in one field

_SPECIAL = re.compile(r"([\\*_~`|>#\[\]()<])")
_LEADING = re.compile(r"^([-+]|\d+\.)(?=\s)")


def escape(text: str) -> str:
    """Discord Markdown metacharacters backslash-escaped; broadcast mentions and URLs defused."""
    escaped = _SPECIAL.sub(r"\\\1", defuse(text))
    return _LEADING.sub(lambda m: m.group(1)[:-1] + "\\" + m.group(1)[-1], escaped)


def value(fact: Fact) -> str:
    """A field value, escaped and fitted to Discord's 1024-character limit."""
    return fitted(fact.value, escape, FIELD_LIMIT)


def package_text(line: PackageLine) -> str:
    """``• pkg 1.0 → 1.1 **security**``, each part escaped."""
    package, installed, candidate = (
        fitted(t, escape, PART_LIMIT) for t in (line.package, line.installed, line.candidate)
    )
    suffix = " **(security)**" if line.security else ""
    return f"• **{package}** {installed} → {candidate}{suffix}"


def build(message: Message) -> dict[str, Any]:
    """The webhook payload of one message."""
    fields: list[dict[str, Any]] = [
        {"name": f.label, "value": value(f), "inline": not f.literal or len(f.value) <= 40}
        for f in message.facts[:MAX_FIELDS]
    ]
    if message.packages:
        lines = [package_text(p) for p in message.packages]
        if message.more:
            lines.append(message.more_line)
        fields.append({"name": PACKAGES_HEADING, "value": "\n".join(lines), "inline": False})
    reference = fitted(message.reference, escape, 1000)
    embed: dict[str, Any] = {
        "title": message.title,
        "description": f"{reference} {message.summary}",
        "color": message.colour,
        "fields": fields,
        "footer": {"text": "driftwatch"},
        "timestamp": message.iso_time,
    }
    return {
        "username": "driftwatch",
        "content": f"**{message.title}**: {reference} {message.summary}",
        "embeds": [embed],
        "allowed_mentions": {"parse": []},
    }


class DiscordNotifier:
    """Discord channel webhook (``https://discord.com/api/webhooks/…``)."""

    name = "discord"

    def payload(self, alert: Alert) -> dict[str, Any]:
        """One embed coloured by verdict, a ``content`` line, ``allowed_mentions: {"parse": []}``."""
        return build(compose(alert))
