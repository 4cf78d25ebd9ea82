"""What an alert says, before any platform's markup: shared wording, ordering and sanitising.

Every notifier builds its payload from one :class:`Message`. The image-sourced text in it is
already *cleaned* (terminal escape sequences and control characters removed, whitespace collapsed,
length capped) but not *escaped*: escaping belongs to each platform module, because each platform
parses a different markup.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC

from .interface import Alert, AlertKind

MAX_PACKAGES = 5  # a chat message shows at most this many pending updates, worst first
ZWSP = "\u200b"  # zero-width space: invisible, but breaks a mention or a URL scheme apart

# Limits on cleaned text, before any escaping (platform limits are applied after escaping).
NAME_LIMIT = 200
VALUE_LIMIT = 300
DETAIL_LIMIT = 500

# ECMA-48 sequences: CSI (ESC [ ... final), OSC (ESC ] ... BEL or ST), DCS/SOS/PM/APC strings,
# two- and three-byte escapes, and their 8-bit C1 forms (0x9b CSI, 0x9d OSC).
_TERMINAL_SEQUENCE = re.compile(
    r"""
      \x1b\[ [0-?]* [ -/]* [@-~]
    | \x9b   [0-?]* [ -/]* [@-~]
    | (?:\x1b\]|\x9d) [^\x07\x1b\x9c]* (?:\x07|\x1b\\|\x9c)?
    | \x1b[PX^_] [^\x1b\x9c]* (?:\x1b\\|\x9c)?
    | \x1b [ -/]* [0-~]
    """,
    re.VERBOSE,
)
_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*):(?=//)")
_BROADCAST = re.compile(r"@(everyone|here|channel|all|group)\b", re.IGNORECASE)


def clean(text: object, limit: int = VALUE_LIMIT) -> str:
    """Untrusted text made printable: no terminal escapes, no control or format characters.

    Escape sequences (``ESC [ 31 m`` and friends) are removed whole; line breaks and tabs become
    spaces and runs of whitespace collapse to one, so image text can never start a new line (and
    with it a heading, a quote or a list) in any markup; other non-printable characters (C0, C1,
    DEL, bidi overrides, zero-width characters) are dropped. Text longer than ``limit`` is cut
    and ends in ``…``.
    """
    raw = _TERMINAL_SEQUENCE.sub("", str(text))
    kept = "".join(ch if ch.isprintable() else (" " if ch.isspace() else "") for ch in raw)
    single = " ".join(kept.split())
    if len(single) > limit:
        return single[: max(0, limit - 1)].rstrip() + "…"
    return single


def defuse(text: str) -> str:
    """Break, invisibly, what chat clients turn into a link or a broadcast ping.

    ``scheme://`` gets a zero-width space after its colon (no auto-link), and ``@here``,
    ``@channel``, ``@everyone``, ``@all`` and ``@group`` get one after the ``@``.
    """
    text = _SCHEME.sub(lambda m: m.group(1) + ":" + ZWSP, text)
    return _BROADCAST.sub(lambda m: "@" + ZWSP + m.group(1), text)


def fitted(text: str, escape: Callable[[str], str], limit: int) -> str:
    """``escape(text)``, shortened (on the raw side, ending in ``…``) until it fits ``limit``.

    Cutting the raw text rather than the escaped one never splits an entity, a backslash escape
    or a code span.
    """
    out = escape(text)
    length = len(text)
    while len(out) > limit and length > 0:
        length = max(0, length - max(1, len(out) - limit))
        out = escape(text[:length].rstrip() + "…")
    return out if len(out) <= limit else out[:limit]


class Tone(str, enum.Enum):
    """How alarming an alert is; each platform maps it to its own colours."""

    GOOD = "good"
    WARNING = "warning"
    ATTENTION = "attention"
    ACCENT = "accent"


COLOURS: dict[Tone, int] = {
    Tone.GOOD: 0x2EB67D,
    Tone.WARNING: 0xECB22E,
    Tone.ATTENTION: 0xE01E5A,
    Tone.ACCENT: 0x3B82F6,
}

_WORDING: dict[AlertKind, tuple[str, str]] = {
    AlertKind.BREACH: ("Drift alert", "is over its drift threshold"),
    AlertKind.WORSENED: ("Drift worsened", "has fallen further behind"),
    AlertKind.REMINDER: ("Still drifting", "is still over its drift threshold"),
    AlertKind.RECOVERED: ("Recovered", "is back within policy"),
    AlertKind.FAILED: ("Scan failed", "could not be scanned, so its drift is unknown"),
    AlertKind.EOL: ("End of life", "runs a release that gets no more updates"),
    AlertKind.TEST: ("Test notification", "is a test alert: this channel receives driftwatch alerts"),
}


# A reminder about an image that is not over a threshold but failing or end of life says so.
_REMINDER_WORDING: dict[str, tuple[str, str]] = {
    "failed": ("Still failing", "still cannot be scanned, so its drift is unknown"),
    "unscanned": ("Still failing", "still cannot be scanned, so its drift is unknown"),
    "eol": ("Still end of life", "still runs a release that gets no more updates"),
}


def wording(alert: Alert) -> tuple[str, str]:
    """(title, summary) of an alert: by kind, and for a reminder by its verdict."""
    if alert.kind is AlertKind.REMINDER:
        special = _REMINDER_WORDING.get(alert.verdict.strip().lower())
        if special:
            return special
    return _WORDING[alert.kind]


def tone_of(alert: Alert) -> Tone:
    """Colour class: by kind for test, recovery and failure; otherwise by verdict."""
    if alert.kind is AlertKind.TEST:
        return Tone.ACCENT
    if alert.kind is AlertKind.RECOVERED:
        return Tone.GOOD
    if alert.kind is AlertKind.FAILED:
        return Tone.WARNING
    verdict = alert.verdict.strip().lower()
    if verdict == "ok":
        return Tone.GOOD
    if verdict in {"failed", "unsupported", "unknown"}:
        return Tone.WARNING
    return Tone.ATTENTION


@dataclass(frozen=True, slots=True)
class Fact:
    """One labelled value. ``label`` is driftwatch's own text; ``value`` is cleaned, not escaped.

    ``literal`` is True when the value is data or free text (a reference, a reason, a detail), which
    platforms show verbatim (in a code span or monospace); False for numbers driftwatch formatted.
    """

    label: str
    value: str
    literal: bool = True


@dataclass(frozen=True, slots=True)
class PackageLine:
    """One pending update as shown; every string cleaned, not escaped."""

    package: str
    installed: str
    candidate: str
    security: bool

    @property
    def plain(self) -> str:
        """``libssl3 3.0.15-1~deb12u1 → 3.0.16-1~deb12u1 (security)``, without markup."""
        suffix = " (security)" if self.security else ""
        return f"{self.package} {self.installed} → {self.candidate}{suffix}"


@dataclass(frozen=True, slots=True)
class Message:
    """An alert in words, shared by every platform."""

    kind: AlertKind
    title: str  # driftwatch's own words, e.g. "Drift alert"
    reference: str  # cleaned
    summary: str  # driftwatch's own words after the reference
    facts: tuple[Fact, ...]
    packages: tuple[PackageLine, ...]  # at most MAX_PACKAGES, security first
    more: int  # pending updates not shown
    tone: Tone
    timestamp: str  # "2026-12-03 16:27 UTC"
    iso_time: str  # ISO 8601 in UTC

    @property
    def colour(self) -> int:
        """0xRRGGBB for this message's tone."""
        return COLOURS[self.tone]

    @property
    def headline(self) -> str:
        """``Drift alert: myorg/api:latest is over its drift threshold``, without markup."""
        return f"{self.title}: {self.reference} {self.summary}"

    @property
    def more_line(self) -> str:
        """``…and 2 more``, or empty when every pending update is shown."""
        return f"…and {self.more} more" if self.more else ""

    @property
    def footer(self) -> str:
        """``driftwatch · 2026-12-03 16:27 UTC``."""
        return f"driftwatch · {self.timestamp}"


PACKAGES_HEADING = "Pending updates, security first"


def _days(value: float) -> str:
    return f"{value:.1f} days"


def _count(value: int | None) -> str:
    return "unknown" if value is None else str(value)


def worst_first(alert: Alert) -> list[PackageLine]:
    """All pending updates, security ones first; the caller's order is kept within each group."""
    ordered = sorted(alert.packages, key=lambda p: not p.security)
    return [
        PackageLine(
            package=clean(p.package, NAME_LIMIT) or "(unnamed)",
            installed=clean(p.installed, NAME_LIMIT) or "(none)",
            candidate=clean(p.candidate, NAME_LIMIT) or "(none)",
            security=bool(p.security),
        )
        for p in ordered
    ]


def facts_of(alert: Alert) -> tuple[Fact, ...]:
    """The labelled values an alert shows, in display order. Unknown counts say so (not zero)."""
    facts: list[Fact] = []
    test = alert.kind is AlertKind.TEST

    def add(label: str, value: str | None, *, literal: bool = True, limit: int = VALUE_LIMIT) -> None:
        if value is None:
            return
        facts.append(Fact(label, clean(value, limit) or "(empty)", literal))

    add("Verdict", alert.verdict)
    if not test or alert.pending_security is not None:
        add("Pending security updates", _count(alert.pending_security), literal=False)
    if not test or alert.pending_total is not None:
        add("Pending updates", _count(alert.pending_total), literal=False)
    if alert.oldest_security_age_days is not None:
        add("Oldest security update", _days(alert.oldest_security_age_days), literal=False)
    if alert.apt_layer_age_days is not None:
        add("apt layer age", _days(alert.apt_layer_age_days), literal=False)
    if alert.breaches:
        add("Breaches", "; ".join(alert.breaches), limit=DETAIL_LIMIT)
    add("Reason", alert.reason)
    add("Detail", alert.detail, limit=DETAIL_LIMIT)
    add("Rebuild", alert.rebuild_outcome)
    if alert.image_id:
        add("Image ID", alert.image_id.removeprefix("sha256:")[:12])
    return tuple(facts)


def compose(alert: Alert) -> Message:
    """The words of an alert, cleaned and ordered, ready for one platform's markup."""
    title, summary = wording(alert)
    lines = worst_first(alert)
    created = alert.created_at.astimezone(UTC)
    return Message(
        kind=alert.kind,
        title=title,
        reference=clean(alert.reference, NAME_LIMIT) or "(no reference)",
        summary=summary,
        facts=facts_of(alert),
        packages=tuple(lines[:MAX_PACKAGES]),
        more=max(0, len(lines) - MAX_PACKAGES),
        tone=tone_of(alert),
        timestamp=created.strftime("%Y-%m-%d %H:%M UTC"),
        iso_time=created.isoformat(),
    )
