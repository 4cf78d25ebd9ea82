"""Microsoft Teams through a Workflows webhook: one Adaptive Card (schema 1.4) in a message.

The "Post to a channel when a webhook request is received" workflow (Power Automate; the
replacement for Office 365 connectors) takes ``{"type": "message", "attachments": [{"contentType":
"application/vnd.microsoft.card.adaptive", "contentUrl": null, "content": <AdaptiveCard>}]}``
(learn.microsoft.com/microsoftteams/platform/webhooks-and-connectors/how-to/add-incoming-webhook).

Escaping: Teams parses Markdown in ``TextBlock.text`` and in ``Fact.title``/``Fact.value``
(learn.microsoft.com/microsoftteams/platform/task-modules-and-cards/cards/cards-format), and its
backslash escapes render differently on desktop, iOS and Android (microsoft/AdaptiveCards issues
#5590, #5758, #4677; MicrosoftDocs/msteams-docs#5793), so a backslash-escaped package name may show
its backslashes or still turn italic. Untrusted text is therefore never put in a TextBlock or a
FactSet: it goes only into ``TextRun`` elements of a ``RichTextBlock``, whose text is documented as
"Markdown is not supported" (adaptivecards.io schema explorer, TextRun, since 1.2), so ``*``, ``_``,
``[x](url)`` and the like stay literal. Adaptive Cards also expand ``{{DATE(…)}}``/``{{TIME(…)}}``
in text, so ``{{`` gets a zero-width space between its braces, and
:func:`~driftwatch.notify.content.defuse` breaks ``scheme://`` (no auto-link). TextBlocks carry only
driftwatch's own words. Teams has no plain-text mentions: a mention needs ``<at>`` plus an
``msteams.entities`` entry, which driftwatch never sends.
"""

from __future__ import annotations

from typing import Any

from .content import PACKAGES_HEADING, ZWSP, Message, PackageLine, Tone, compose, defuse
from .interface import Alert

CARD_VERSION = "1.4"
CONTENT_TYPE = "application/vnd.microsoft.card.adaptive"
SCHEMA = "http://adaptivecards.io/schemas/adaptive-card.json"

_COLOURS: dict[Tone, str] = {
    Tone.GOOD: "Good",
    Tone.WARNING: "Warning",
    Tone.ATTENTION: "Attention",
    Tone.ACCENT: "Accent",
}


def literal(text: str) -> str:
    """Untrusted text for a TextRun: template braces and URL schemes broken, nothing else changed."""
    return defuse(text).replace("{{", "{" + ZWSP + "{").replace("}}", "}" + ZWSP + "}")


def run(text: str, **style: Any) -> dict[str, Any]:
    """A TextRun (no Markdown) of untrusted or own text, with optional styling."""
    return {"type": "TextRun", "text": literal(text), **style}


def rich(*inlines: dict[str, Any], **props: Any) -> dict[str, Any]:
    """A RichTextBlock of TextRuns."""
    return {"type": "RichTextBlock", "inlines": list(inlines), **props}


def own(text: str, **props: Any) -> dict[str, Any]:
    """A TextBlock for driftwatch's own words only (TextBlocks parse Markdown)."""
    return {"type": "TextBlock", "text": text, "wrap": True, **props}


def package_block(line: PackageLine) -> dict[str, Any]:
    """``• pkg installed → candidate security`` as TextRuns."""
    inlines = [
        run("• "),
        run(line.package, fontType="Monospace", weight="Bolder"),
        run(" "),
        run(line.installed, fontType="Monospace"),
        run(" → "),
        run(line.candidate, fontType="Monospace"),
    ]
    if line.security:
        inlines.append(run(" (security)", color="Attention", weight="Bolder"))
    return rich(*inlines, spacing="None")


def card(message: Message) -> dict[str, Any]:
    """The Adaptive Card of one message."""
    body: list[dict[str, Any]] = [
        own(message.title, size="Large", weight="Bolder", color=_COLOURS[message.tone]),
        rich(run(message.reference, fontType="Monospace", weight="Bolder"), run(" " + message.summary)),
    ]
    for index, fact in enumerate(message.facts):
        style: dict[str, Any] = {"fontType": "Monospace"} if fact.literal else {}
        props: dict[str, Any] = {"spacing": "Medium" if index == 0 else "None"}
        body.append(rich(run(fact.label + ": ", weight="Bolder"), run(fact.value, **style), **props))
    if message.packages:
        body.append(own(PACKAGES_HEADING, weight="Bolder", spacing="Medium"))
        body.extend(package_block(p) for p in message.packages)
        if message.more:
            body.append(own(message.more_line, isSubtle=True, spacing="None"))
    body.append(own(message.footer, isSubtle=True, size="Small", spacing="Medium"))
    return {
        "$schema": SCHEMA,
        "type": "AdaptiveCard",
        "version": CARD_VERSION,
        "msteams": {"width": "Full"},
        "body": body,
    }


def build(message: Message) -> dict[str, Any]:
    """The Workflows webhook payload of one message."""
    return {
        "type": "message",
        "attachments": [{"contentType": CONTENT_TYPE, "contentUrl": None, "content": card(message)}],
    }


class TeamsNotifier:
    """Microsoft Teams Workflows webhook (a Power Automate ``…/workflows/…/invoke?…`` URL)."""

    name = "teams"

    def payload(self, alert: Alert) -> dict[str, Any]:
        """A ``message`` with one Adaptive Card 1.4 attachment; no HTTP."""
        return build(compose(alert))
