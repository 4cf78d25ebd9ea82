"""Threshold evaluation, table-driven over every threshold and every verdict state."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest

from driftwatch import policy
from driftwatch.config import Thresholds
from driftwatch.models import Breach, ImageSummary, ScanStatus, Verdict, VerdictState

NOW = datetime(2026, 12, 3, 12, 0, tzinfo=timezone.utc)


def summary(**kw: object) -> ImageSummary:
    base: dict[str, object] = dict(reference="app:1", scan_id=1, image_id="sha256:aa", os="debian 12",
                                   status=ScanStatus.OK, reason=None, detail=None, pending_security=2,
                                   pending_total=10, scanned_at=NOW - timedelta(hours=1),
                                   oldest_security_since=NOW - timedelta(days=9),
                                   apt_layer_created=NOW - timedelta(days=90), history_known=True,
                                   apt_layer_command="apt-get update && apt-get -y upgrade")
    base.update(kw)
    return ImageSummary(**base)  # type: ignore[arg-type]


@pytest.mark.parametrize(("limits", "expected"), [
    (Thresholds(), []),
    (Thresholds(max_security_pending=2), []),
    (Thresholds(max_security_pending=1), [Breach("max_security_pending", 2, 1)]),
    (Thresholds(max_total_pending=10), []),
    (Thresholds(max_total_pending=9), [Breach("max_total_pending", 10, 9)]),
    (Thresholds(max_security_age_days=10), []),
    (Thresholds(max_security_age_days=7), [Breach("max_security_age_days", 9.0, 7)]),
    (Thresholds(max_apt_layer_age_days=90), []),
    (Thresholds(max_apt_layer_age_days=30), [Breach("max_apt_layer_age_days", 90.0, 30)]),
    (Thresholds(0, 0, 0, 0), [Breach("max_security_pending", 2, 0), Breach("max_total_pending", 10, 0),
                              Breach("max_security_age_days", 9.0, 0), Breach("max_apt_layer_age_days", 90.0, 0)]),
])
def test_each_threshold(limits: Thresholds, expected: list[Breach]) -> None:
    verdict = policy.evaluate("app:1", summary(), limits, NOW)
    assert verdict.breaches == tuple(expected)
    assert verdict.state is (VerdictState.BREACH if expected else VerdictState.OK)


def test_no_security_pending_means_no_security_age() -> None:
    v = policy.evaluate("a", summary(pending_security=0, oldest_security_since=None), Thresholds(0, None, 0), NOW)
    assert v == Verdict("a", VerdictState.OK)


@pytest.mark.parametrize("status", [ScanStatus.FAILED, ScanStatus.UNSUPPORTED])
def test_failed_latest_scan_is_never_passing(status: ScanStatus) -> None:
    v = policy.evaluate("a", summary(status=status, reason="index_update_failed", pending_security=None,
                                     pending_total=None), Thresholds(), NOW)
    assert v.state is VerdictState.FAILED
    assert v.note == f"latest scan {status.value}: index_update_failed"
    assert policy.exit_code([v]) == 3


def test_unscanned_is_undecided() -> None:
    v = policy.evaluate("a", None, Thresholds(), NOW)
    assert (v.state, v.note, policy.exit_code([v])) == (VerdictState.UNSCANNED, "no scan recorded", 3)


def test_eol_release_is_its_own_verdict_even_with_zero_pending() -> None:
    s = summary(pending_security=0, pending_total=0, oldest_security_since=None, release_eol=date(2024, 6, 30))
    v = policy.evaluate("old:10", s, Thresholds(max_security_pending=0), NOW)
    assert (v.state, v.note) == (VerdictState.EOL, "release ended 2024-06-30")
    assert policy.exit_code([v]) == 1
    assert policy.evaluate("new", summary(release_eol=date(2028, 6, 30)), Thresholds(), NOW).state is VerdictState.OK


def test_exit_code_ranks_undecided_over_breach() -> None:
    ok, breach = Verdict("a", VerdictState.OK), Verdict("b", VerdictState.BREACH)
    failed = Verdict("c", VerdictState.FAILED)
    assert policy.exit_code([]) == 0
    assert policy.exit_code([ok]) == 0
    assert policy.exit_code([ok, breach]) == 1
    assert policy.exit_code([breach, failed]) == 3


def test_age_days() -> None:
    assert policy.age_days(None, NOW) is None
    assert policy.age_days(NOW - timedelta(hours=36), NOW) == 1.5
    assert policy.age_days(NOW + timedelta(hours=1), NOW) == 0.0  # clock skew never gives negative ages


def test_held_and_phased_are_listed_but_not_counted_against_thresholds(tmp_path: object) -> None:
    from driftwatch.models import PendingUpdate, ScanResult
    from driftwatch.store import open_store

    updates = (
        PendingUpdate("postgresql-16", "amd64", "16.4", "16.6", ("jammy-pgdg",), False, held=True, kept_back=True),
        PendingUpdate("systemd", "amd64", "1", "2", ("jammy-updates",), False, phased=True),
        PendingUpdate("curl", "amd64", "7.81.0-1ubuntu1.17", "7.81.0-1ubuntu1.18", ("jammy-security",), True),
        PendingUpdate("libpam0g", "amd64", "1", "2", ("jammy-security",), True, held=True),
        PendingUpdate("ffmpeg", "amd64", "1", "2", ("jammy-updates",), False, kept_back=True),
    )
    result = ScanResult("app:1", ScanStatus.OK, NOW, NOW, updates=updates)
    assert (result.pending_security, result.pending_total, result.actionable) == (2, 5, (1, 2))
    store = open_store(memory=True)
    store.save_scan(result)
    (row,) = store.latest()
    assert (row.pending_security, row.pending_total, row.actionable_security, row.actionable_total) == (2, 5, 1, 2)
    v = policy.evaluate("app:1", row, Thresholds(max_security_pending=1, max_total_pending=2), NOW)
    assert v.state is VerdictState.OK
    v = policy.evaluate("app:1", row, Thresholds(max_security_pending=0, max_total_pending=1), NOW)
    assert v.breaches == (Breach("max_security_pending", 1, 0), Breach("max_total_pending", 2, 1))
