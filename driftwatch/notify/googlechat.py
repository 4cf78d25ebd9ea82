"""Google Chat incoming webhooks: a short ``text`` plus one ``cardsV2`` card.

Payload (developers.google.com/workspace/chat/api/reference/rest/v1/spaces.messages): ``text`` and
``cardsV2``, a list of ``{"cardId", "card"}``; a card has a ``header`` (``title``, ``subtitle``) and
``sections`` of ``widgets`` (``decoratedText`` with ``topLabel``/``text``/``wrapText``, and
``textParagraph``) (developers.google.com/workspace/chat/api/reference/rest/v1/cards).

Escaping follows "Format messages" (developers.google.com/workspace/chat/format-messages), which
formats the two parts differently:

* ``text`` uses Chat's own markup: ``*bold*``, ``_italic_``, ``~strike~``, ```code```, links
  ``<url|text>`` and mentions ``<users/all>``. Chat documents no escape character, so untrusted
  text is put in a monospace span (no formatting inside), a backtick in it becomes ``ˋ``, and ``<``
  and ``>`` become ``‹`` and ``›``, because every link and mention needs a literal ``<``.
* Card text (``decoratedText.text``, ``textParagraph.text``) is a small HTML subset (``<b>``,
  ``<i>``, ``<font color>``, ``<a href>``, ``<br>``...), so untrusted text is HTML-escaped
  (``&``, ``<``, ``>``). Card header, labels and section headers hold driftwatch's own words only.

Both get :func:`~driftwatch.notify.content.defuse`, which breaks ``scheme://`` so bare URLs are not
auto-linked.
"""

from __future__ import annotations

from typing import Any

from .content import PACKAGES_HEADING, Message, PackageLine, compose, defuse
from .interface import Alert

CARD_ID = "driftwatch-alert"


def html(text: str) -> str:
    """Untrusted text for card HTML: entities for ``&``, ``<``, ``>``; URL schemes defused."""
    return defuse(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def mono(text: str) -> str:
    """Untrusted text for the message ``text``: a monospace span that can hold no link or mention."""
    safe = defuse(text).replace("`", "\u02cb").replace("<", "\u2039").replace(">", "\u203a")
    return f"`{safe}`"


def package_html(line: PackageLine) -> str:
    """``<b>pkg</b> 1.0 → 1.1 <font color="#E01E5A">(security)</font>``."""
    suffix = ' <font color="#E01E5A">(security)</font>' if line.security else ""
    return f"<b>{html(line.package)}</b> {html(line.installed)} → {html(line.candidate)}{suffix}"


def build(message: Message) -> dict[str, Any]:
    """The webhook payload of one message."""
    widgets: list[dict[str, Any]] = [
        {"decoratedText": {"topLabel": "Image", "text": f"<b>{html(message.reference)}</b> {message.summary}",
                           "wrapText": True}},
    ]
    widgets.extend(
        {"decoratedText": {"topLabel": f.label, "text": html(f.value), "wrapText": True}} for f in message.facts
    )
    sections: list[dict[str, Any]] = [{"widgets": widgets}]
    if message.packages:
        lines = [package_html(p) for p in message.packages]
        if message.more:
            lines.append(html(message.more_line))
        sections.append({"header": PACKAGES_HEADING, "widgets": [{"textParagraph": {"text": "<br>".join(lines)}}]})
    return {
        "text": f"*{message.title}*: {mono(message.reference)} {message.summary}",
        "cardsV2": [{
            "cardId": CARD_ID,
            "card": {
                "header": {"title": message.title, "subtitle": message.footer},
                "sections": sections,
            },
        }],
    }


class GoogleChatNotifier:
    """Google Chat space webhook (``https://chat.googleapis.com/v1/spaces/…/messages?key=…&token=…``)."""

    name = "googlechat"

    def payload(self, alert: Alert) -> dict[str, Any]:
        """A ``text`` line and one ``cardsV2`` card; no HTTP."""
        return build(compose(alert))
