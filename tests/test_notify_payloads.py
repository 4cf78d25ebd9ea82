"""Chat payloads: one golden file per platform, escaping of hostile image text, limits.

The goldens in ``fixtures/webhooks/`` were written from this code once and then read against each
platform's documentation (see ``fixtures/webhooks/README.md``). To rewrite them after an intended
change, run ``DRIFTWATCH_UPDATE_GOLDENS=1 python3 -m pytest tests/test_notify_payloads.py`` and
review the diff.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from pytest_httpserver import HTTPServer

from driftwatch.notify import Alert, AlertKind, AlertPackage, TargetType, deliver
from driftwatch.notify.content import ZWSP, clean

GOLDENS = Path(__file__).resolve().parent.parent / "fixtures" / "webhooks"
ALL_TARGETS = list(TargetType)
CHAT_TARGETS = [t for t in TargetType if t is not TargetType.GENERIC]

# One canonical alert: a Debian 12 image 3 security updates behind, 7 updates in all, given in an
# order that is not security-first, with versions that carry Markdown-looking "~" and "+".
CANONICAL = Alert(
    kind=AlertKind.BREACH,
    reference="myorg/api:latest",
    image_id="sha256:9e99a7d3c5b0f1e2d3c4b5a6978877665544332211009988776655443322110a",
    verdict="stale",
    breaches=(
        "3 security updates pending (threshold 0)",
        "oldest security update 21.4 days old (threshold 14 days)",
    ),
    pending_security=3,
    pending_total=7,
    oldest_security_age_days=21.4,
    apt_layer_age_days=35.0,
    packages=(
        AlertPackage("base-files", "12.4+deb12u9", "12.4+deb12u10", False),
        AlertPackage("libssl3", "3.0.15-1~deb12u1", "3.0.16-1~deb12u1", True),
        AlertPackage("tzdata", "2024b-0+deb12u1", "2025b-0+deb12u1", False),
        AlertPackage("openssl", "3.0.15-1~deb12u1", "3.0.16-1~deb12u1", True),
        AlertPackage("libsystemd0", "252.33-1~deb12u1", "252.36-1~deb12u1", False),
        AlertPackage("libgnutls30", "3.7.9-2+deb12u3", "3.7.9-2+deb12u4", True),
        AlertPackage("libudev1", "252.33-1~deb12u1", "252.36-1~deb12u1", False),
    ),
    rebuild_outcome=None,
    reason=None,
    detail=None,
    created_at=datetime(2026, 12, 3, 16, 27, 40, tzinfo=UTC),
)

HOSTILE = "evil*_[x](http://a.b)<!channel>@everyone\x1b[31m"
HOSTILE_ALERT = replace(
    CANONICAL,
    reference="registry.example/" + HOSTILE,
    breaches=(HOSTILE,),
    packages=(AlertPackage(HOSTILE, HOSTILE, "2.0\x1b]8;;http://x.y\x07link\x1b]8;;\x07", True),),
    reason=HOSTILE,
    detail="E: " + HOSTILE + "\n# heading\r\n> quote {{DATE(2017-02-14T06:08:00Z)}}",
)


def golden(name: str) -> dict[str, Any]:
    """A golden payload from fixtures/webhooks; fails loudly when the file is missing."""
    path = GOLDENS / f"{name}.json"
    assert path.is_file(), f"missing golden payload {path}"
    loaded: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return loaded


def strings(node: Any) -> Iterator[str]:
    """Every string value in a JSON-like tree."""
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for value in node.values():
            yield from strings(value)
    elif isinstance(node, list):
        for value in node:
            yield from strings(value)


def dicts(node: Any) -> Iterator[dict[str, Any]]:
    """Every object in a JSON-like tree."""
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from dicts(value)
    elif isinstance(node, list):
        for value in node:
            yield from dicts(value)


@pytest.mark.parametrize("target", ALL_TARGETS, ids=lambda t: t.value)
def test_payload_matches_golden(target: TargetType) -> None:
    payload = target.to_notifier().payload(CANONICAL)
    path = GOLDENS / f"{target.value}.json"
    if os.environ.get("DRIFTWATCH_UPDATE_GOLDENS") == "1":
        path.write_text(json.dumps(payload, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    assert payload == golden(target.value)


@pytest.mark.parametrize("target", ALL_TARGETS, ids=lambda t: t.value)
def test_golden_payload_arrives_verbatim(target: TargetType, httpserver: HTTPServer) -> None:
    expected = golden(target.value)
    httpserver.expect_request(f"/hook/{target.value}", method="POST", json=expected).respond_with_data("ok")
    delivery = deliver(httpserver.url_for(f"/hook/{target.value}"), target.to_notifier().payload(CANONICAL),
                       sleep=lambda s: None)
    httpserver.check_assertions()
    assert delivery.delivered and delivery.attempts == 1
    request, _ = httpserver.log[0]
    assert request.headers["Content-Type"].startswith("application/json")


def test_to_notifier_is_exhaustive() -> None:
    for target in TargetType:
        notifier = target.to_notifier()
        assert notifier.name == target.value
        assert isinstance(notifier.payload(CANONICAL), dict)


@pytest.mark.parametrize("target", ALL_TARGETS, ids=lambda t: t.value)
def test_no_control_characters_reach_any_payload(target: TargetType) -> None:
    payload = target.to_notifier().payload(HOSTILE_ALERT)
    for text in strings(payload):
        assert "\x1b" not in text and "\x07" not in text and "[31m" not in text and "]8;;" not in text
        assert not any(ord(ch) < 0x20 and ch != "\n" for ch in text), text
    # image text never brings its own line break: the only newlines are driftwatch's own
    for text in strings(payload):
        assert "# heading" not in text.split("\n")


def test_slack_escapes_hostile_text() -> None:
    payload = TargetType.SLACK.to_notifier().payload(HOSTILE_ALERT)
    joined = "\n".join(strings(payload))
    assert "<!channel>" not in joined and "@everyone" not in joined and "http://" not in joined
    assert f"`evil*_[x](http:{ZWSP}//a.b)&lt;!channel&gt;@{ZWSP}everyone`" in joined
    for obj in dicts(payload):
        if obj.get("type") == "mrkdwn":
            assert obj["verbatim"] is True
            # outside code spans, no image text: strip the spans and the hostile marks are gone
            outside = re.sub(r"`[^`]*`", "", obj["text"])
            assert "evil" not in outside and "[x]" not in outside


def test_mattermost_escapes_hostile_text() -> None:
    payload = TargetType.MATTERMOST.to_notifier().payload(HOSTILE_ALERT)
    joined = "\n".join(strings(payload))
    assert "@everyone" not in joined and "http://" not in joined
    assert f"`evil*_[x](http:{ZWSP}//a.b)<!channel>@{ZWSP}everyone`" in joined
    markdown = [payload["text"], payload["attachments"][0]["text"],
                *(f["value"] for f in payload["attachments"][0]["fields"])]
    for text in markdown:
        assert "evil" not in re.sub(r"`[^`]*`", "", text)


def test_discord_escapes_hostile_text() -> None:
    payload = TargetType.DISCORD.to_notifier().payload(HOSTILE_ALERT)
    joined = "\n".join(strings(payload))
    assert payload["allowed_mentions"] == {"parse": []}
    assert "@everyone" not in joined and "http://" not in joined and "[x](" not in joined
    assert f"evil\\*\\_\\[x\\]\\(http:{ZWSP}//a.b\\)\\<!channel\\>@{ZWSP}everyone" in joined
    assert "\\# heading" in joined and "\\> quote" in joined
    embed = payload["embeds"][0]
    assert embed["title"] == "Drift alert" and embed["footer"] == {"text": "driftwatch"}
    assert all("evil" not in f["name"] for f in embed["fields"])


def test_discord_escapes_leading_list_markers() -> None:
    alert = replace(CANONICAL, detail="- not a list", reason="1. not a list either")
    fields = {f["name"]: f["value"] for f in TargetType.DISCORD.to_notifier().payload(alert)["embeds"][0]["fields"]}
    assert fields["Detail"] == "\\- not a list"
    assert fields["Reason"] == "1\\. not a list either"


def test_teams_keeps_hostile_text_out_of_markdown() -> None:
    payload = TargetType.TEAMS.to_notifier().payload(HOSTILE_ALERT)
    card = payload["attachments"][0]["content"]
    runs = [d["text"] for d in dicts(card) if d.get("type") == "TextRun"]
    assert any(f"evil*_[x](http:{ZWSP}//a.b)<!channel>@{ZWSP}everyone" in r for r in runs)
    assert any("{" + ZWSP + "{DATE(" in r for r in runs)
    for obj in dicts(card):
        assert obj.get("type") not in {"FactSet", "Fact"}
        if obj.get("type") == "TextBlock":
            assert "evil" not in obj["text"] and "{{" not in obj["text"]
    assert "{{" not in json.dumps(payload, ensure_ascii=False)


def test_googlechat_escapes_hostile_text() -> None:
    payload = TargetType.GOOGLECHAT.to_notifier().payload(HOSTILE_ALERT)
    joined = "\n".join(strings(payload))
    assert "<!channel>" not in joined and "http://" not in joined
    assert f"evil*_[x](http:{ZWSP}//a.b)&lt;!channel&gt;@{ZWSP}everyone" in joined  # card HTML
    assert payload["text"] == (
        f"*Drift alert*: `registry.example/evil*_[x](http:{ZWSP}//a.b)\u2039!channel\u203a@{ZWSP}everyone` "
        "is over its drift threshold"
    )
    card = payload["cardsV2"][0]["card"]
    assert "evil" not in json.dumps(card["header"]) + "".join(s.get("header", "") for s in card["sections"])


def test_generic_carries_cleaned_but_unescaped_text() -> None:
    payload = TargetType.GENERIC.to_notifier().payload(HOSTILE_ALERT)
    assert payload["packages"][0]["package"] == "evil*_[x](http://a.b)<!channel>@everyone"
    assert payload["packages"][0]["candidate"] == "2.0link"
    assert payload["detail"] == (
        "E: evil*_[x](http://a.b)<!channel>@everyone # heading > quote {{DATE(2017-02-14T06:08:00Z)}}"
    )


def test_generic_schema_has_every_alert_field() -> None:
    payload = TargetType.GENERIC.to_notifier().payload(CANONICAL)
    assert payload["schema"] == "driftwatch.alert/1"
    alert_fields = set(Alert.__dataclass_fields__)
    assert set(payload) == alert_fields | {"schema", "summary"}
    assert payload["kind"] == "breach" and payload["created_at"] == "2026-12-03T16:27:40+00:00"
    assert len(payload["packages"]) == len(CANONICAL.packages)
    assert set(payload["packages"][0]) == {"package", "installed", "candidate", "security"}


def package_order(target: TargetType, alert: Alert) -> list[str]:
    """Package names in the order a payload shows them."""
    text = json.dumps(target.to_notifier().payload(alert), ensure_ascii=False)
    names = [p.package for p in alert.packages]
    found = {name: text.find(name) for name in names if re.search(rf"(?<![\w-]){re.escape(name)}(?![\w-])", text)}
    return sorted(found, key=found.__getitem__)


@pytest.mark.parametrize("target", CHAT_TARGETS, ids=lambda t: t.value)
def test_chat_shows_worst_five_security_first(target: TargetType) -> None:
    shown = package_order(target, CANONICAL)
    assert shown == ["libssl3", "openssl", "libgnutls30", "base-files", "tzdata"]
    assert "…and 2 more" in json.dumps(target.to_notifier().payload(CANONICAL), ensure_ascii=False)


@pytest.mark.parametrize("target", CHAT_TARGETS, ids=lambda t: t.value)
def test_chat_without_more_has_no_more_line(target: TargetType) -> None:
    alert = replace(CANONICAL, packages=CANONICAL.packages[:2])
    assert "more" not in json.dumps(target.to_notifier().payload(alert))


@pytest.mark.parametrize("target", CHAT_TARGETS, ids=lambda t: t.value)
def test_failed_scan_says_unknown_not_zero(target: TargetType) -> None:
    alert = replace(CANONICAL, kind=AlertKind.FAILED, verdict="failed", breaches=(), pending_security=None,
                    pending_total=None, oldest_security_age_days=None, packages=(),
                    reason="index_update_failed", detail="W: Failed to fetch http://deb.debian.org/debian/dists/bookworm/InRelease")
    text = json.dumps(target.to_notifier().payload(alert), ensure_ascii=False).replace("\\\\_", "_")
    assert "Scan failed" in text and "index_update_failed" in text
    assert re.search(r"Pending security updates.{0,60}unknown", text)
    assert re.search(r"Pending updates.{0,60}unknown", text)
    assert "Pending updates, security first" not in text


@pytest.mark.parametrize("target", ALL_TARGETS, ids=lambda t: t.value)
def test_test_alert_with_nothing_known_renders(target: TargetType) -> None:
    alert = Alert(kind=AlertKind.TEST, reference="driftwatch-test", image_id=None, verdict="ok", breaches=(),
                  pending_security=None, pending_total=None, oldest_security_age_days=None,
                  apt_layer_age_days=None, packages=(), rebuild_outcome=None, reason=None, detail=None,
                  created_at=datetime(2026, 12, 3, 16, 27, 40, tzinfo=UTC))
    payload = target.to_notifier().payload(alert)
    text = json.dumps(payload, ensure_ascii=False, allow_nan=False)
    assert "driftwatch-test" in text
    if target is not TargetType.GENERIC:
        assert "Test notification" in text and "unknown" not in text


def test_long_image_text_stays_within_platform_limits() -> None:
    long = "x*" * 5000
    alert = replace(CANONICAL, reference=long, detail=long, breaches=(long, long), reason="<" * 3000,
                    packages=tuple(AlertPackage("&" * 400, "<" * 400, ">" * 400, True) for _ in range(9)))
    slack = TargetType.SLACK.to_notifier().payload(alert)
    for block in slack["blocks"]:
        if block["type"] == "header":
            assert len(block["text"]["text"]) <= 150
        if "text" in block and block["type"] == "section":
            assert len(block["text"]["text"]) <= 3000
        for field in block.get("fields", []):
            assert len(field["text"]) <= 2000
        assert len(block.get("fields", [])) <= 10
    discord = TargetType.DISCORD.to_notifier().payload(alert)
    embed = discord["embeds"][0]
    assert len(discord["content"]) <= 2000 and len(embed["description"]) <= 4096 and len(embed["fields"]) <= 25
    assert all(len(f["value"]) <= 1024 and len(f["name"]) <= 256 for f in embed["fields"])
    assert sum(len(s) for s in strings(embed)) <= 6000


def test_clean_removes_terminal_sequences_and_controls() -> None:
    assert clean("a\x1b[1;31mred\x1b[0m b") == "ared b"
    assert clean("a\x1b]8;;http://evil\x07link\x1b]8;;\x07") == "alink"
    assert clean("a\x1b]0;title\x1b\\b") == "ab"
    assert clean("a\x9b31mb\x1bcc") == "abc"
    assert clean("line\none\ttab\r\n") == "line one tab"
    assert clean("rtl\u202eevil\u200bzw\x00nul\x7fdel") == "rtlevilzwnuldel"
    assert clean("x" * 50, 10) == "x" * 9 + "…"


def test_alert_rejects_naive_timestamp() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        replace(CANONICAL, created_at=datetime(2026, 12, 3, 16, 27, 40))
