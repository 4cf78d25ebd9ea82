"""The five report formats render the same rows; HTML is self-contained and charts every image."""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime, timedelta, timezone
from html.parser import HTMLParser

from driftwatch import policy
from driftwatch.config import Settings, Thresholds
from driftwatch.models import HistoryPoint, ScanStatus
from driftwatch.report import ReportFormat
from driftwatch.store import Store
from tests.test_store import T0, UPDATES, failed_scan, ok_scan

NOW = T0 + timedelta(days=10)
SETTINGS = Settings(defaults=Thresholds(max_security_pending=0, max_security_age_days=7))


def populate(store: Store) -> None:
    for day in range(5):  # app:1: drift accumulates, then a rebuild clears it on day 4
        store.save_scan(ok_scan("app:1", T0 + timedelta(days=day), UPDATES if day < 4 else ()))
    store.save_scan(ok_scan("web:2", T0, UPDATES[1:]))
    store.save_scan(failed_scan("web:2", T0 + timedelta(days=1)))
    store.save_scan(ok_scan("web:2", T0 + timedelta(days=2), UPDATES))
    store.save_scan(ok_scan("evil<script>:1", T0, ()))


def rendered(store: Store, fmt: ReportFormat) -> str:
    rows = policy.assess(store.latest(), SETTINGS, NOW)
    history = {r.summary.reference: store.history(r.summary.reference) for r in rows}
    return fmt.to_formatter().report(rows, history)


class Collect(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.scripts = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


def test_html_is_self_contained_with_one_chart_per_image(store: Store) -> None:
    populate(store)
    page = rendered(store, ReportFormat.HTML)
    parser = Collect()
    parser.feed(page)
    parser.close()
    tags = [t for t, _ in parser.tags]
    assert "script" not in tags and "link" not in tags and "img" not in tags
    assert "http" not in page.replace("http://www.w3.org/2000/svg", "")  # nothing external
    charts = {a["data-reference"]: a for t, a in parser.tags if t == "svg"}
    assert set(charts) == {"app:1", "web:2", "evil<script>:1"}
    assert charts["app:1"]["data-points"] == "5"
    assert charts["web:2"]["data-points"] == "2"  # the failed scan is a gap, not a zero
    circles = [a for t, a in parser.tags if t == "circle"]
    assert len(circles) == 2 * (5 + 2 + 1)  # one per ok scan and series
    assert "evil&lt;script&gt;:1" in page and "<script>" not in page


def test_json_rows_carry_ages_and_verdicts(store: Store) -> None:
    populate(store)
    doc = json.loads(rendered(store, ReportFormat.JSON))
    rows = {i["reference"]: i for i in doc["images"]}
    assert rows["web:2"]["verdict"] == "breach"
    assert rows["web:2"]["breaches"] == [{"threshold": "max_security_pending", "value": 1, "limit": 0},
                                         {"threshold": "max_security_age_days", "value": 8.0, "limit": 7}]
    assert rows["web:2"]["oldest_security_age_days"] == 8.0
    assert rows["app:1"]["verdict"] == "ok" and rows["app:1"]["pending_total"] == 0
    assert rows["app:1"]["oldest_security_age_days"] is None


def test_csv_and_markdown(store: Store) -> None:
    populate(store)
    table = list(csv.DictReader(io.StringIO(rendered(store, ReportFormat.CSV))))
    assert [r["reference"] for r in table] == ["web:2", "app:1", "evil<script>:1"]
    assert table[0]["breaches"] == "max_security_pending 1 > 0; max_security_age_days 8.0 > 7"
    md = rendered(store, ReportFormat.MARKDOWN).splitlines()
    assert md[0].startswith("| reference | os | status | verdict |")
    assert md[2].startswith("| web:2 | debian 12 | ok | breach | 1 | 2 | 8.0 |")
    assert md[4].startswith("| evil\\<script\\>:1 |")


def test_csv_cells_from_images_cannot_run_as_formulas_or_escape_the_terminal(store: Store) -> None:
    from dataclasses import replace

    from driftwatch.models import OsRelease

    hostile = {"=cmd|' /C calc'!A0": "12", "@SUM(1+1)": "\x1b]0;pwned\x07", "\tx": "1", "debian": "-2+3"}
    for n, (os_id, version) in enumerate(hostile.items()):
        store.save_scan(replace(ok_scan(f"h{n}:1", T0, ()), os_release=OsRelease(os_id, version)))
    table = {r["reference"]: r for r in csv.DictReader(io.StringIO(rendered(store, ReportFormat.CSV)))}
    assert table["h0:1"]["os"] == "'=cmd|' /C calc'!A0 12"
    assert table["h1:1"]["os"] == "'@SUM(1+1) ?]0;pwned?"
    assert table["h2:1"]["os"] == "'?x 1"
    assert table["h3:1"]["os"] == "debian -2+3"  # only a cell's first character can start a formula
    assert table["h3:1"]["pending_total"] == "0"


def test_history_points(store: Store) -> None:
    populate(store)
    points = store.history("web:2")
    assert [(p.status, p.pending_security, p.pending_total) for p in points] == [
        (ScanStatus.OK, 0, 1), (ScanStatus.FAILED, None, None), (ScanStatus.OK, 1, 2)]
    assert isinstance(points[0], HistoryPoint) and points[0].scanned_at == T0 + timedelta(seconds=5)


def test_drift_first_seen_survives_rebuilds_and_failures(store: Store) -> None:
    populate(store)
    items = {(d.package, d.candidate): d for d in store.drift("web:2")}
    tz = items[("tzdata", "2025b-0+deb12u1")]
    assert tz.first_seen == T0 + timedelta(seconds=5) and tz.resolved_at is None  # failed scan did not end it
    ssl = items[("libssl3", "3.0.15-1~deb12u1")]
    assert ssl.first_seen == T0 + timedelta(days=2, seconds=5)
    app = {d.package: d for d in store.drift("app:1")}
    assert app["libssl3"].first_seen == T0 + timedelta(seconds=5)
    assert app["libssl3"].last_seen == T0 + timedelta(days=3, seconds=5)
    assert app["libssl3"].resolved_at == T0 + timedelta(days=4, seconds=5)
    assert datetime(2026, 1, 1, tzinfo=timezone.utc) < app["libssl3"].resolved_at
