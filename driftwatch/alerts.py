"""Chat alerts that are never lost, never spam, and never show a webhook's secret.

:func:`notify` does two things on every call, for every ``[[notify]]`` target:

1. **Decide.** For each assessed reference the target covers, compare the verdict with what the
   target was last told (the ``alert_state`` table) and queue an alert only on a change:

   ==========================  =========================  ==============================================
   before (stored state)        now (verdict state)        alert
   ==========================  =========================  ==============================================
   nothing recorded             ``ok``                     none (the first ``ok`` is not news)
   nothing recorded / ``ok``    ``breach``                 ``breach``
   nothing recorded / ``ok``    ``eol``                    ``eol``
   nothing recorded / ``ok``    ``failed``/``unscanned``   ``failed``
   ``breach``/``eol``/          ``ok``                     ``recovered``
   ``failed``/``unscanned``
   one non-ok state             another non-ok state       the new state's kind (``breach``, ``eol``,
                                                           ``failed``)
   same non-ok state            worse than last alerted    ``worsened``: more pending security updates,
                                                           or a threshold breached that was not before
   same non-ok state            not worse, and             ``reminder``, unless an alert about the
                                ``reminder_hours`` since   reference is still undelivered
                                the last alert
   same state                   anything else              none (identical nightly results stay quiet)
   ==========================  =========================  ==============================================

   The stored fingerprint is that of the last alert (state, sorted breached thresholds, pending
   security count), so "worsened" compares with what the channel already knows: 5 → 3 → 5 pending
   security updates sends one alert, 5 → 3 → 6 two. A kind the target does not want (``kinds``)
   moves the state as if it had been sent, so it is not decided again on every run.

   The alert is written to the ``outbox`` table in the same transaction as the new state, *before*
   anything is sent.

2. **Deliver** everything undelivered in the outbox, this call's alerts and those of earlier runs,
   oldest first, with :func:`driftwatch.notify.http.deliver` (up to :data:`ATTEMPTS_PER_RUN`
   requests per alert per call, backoff or ``Retry-After``). Only a 2xx marks an alert delivered.

   * Timeout, connection error, 5xx or 429 after the retries: the alert stays queued, and the
     target's remaining alerts are not tried in this call (the endpoint is down; waiting out the
     backoff once per alert would only delay the run). The next call tries again.
   * Any other 4xx (and a redirect or TLS error): one request, not retried in this call, reported
     with the target's name. The alert is **not** dead-lettered at once: the usual causes are a
     deleted or mistyped webhook (404, 403, 410) that the operator fixes by changing the variable,
     and dropping the alerts meanwhile would lose them. It is retried on later calls like any other.
   * An alert that has had ``max_attempts`` requests in all (over every call) without a 2xx is
     dead-lettered: kept in the outbox with its last (redacted) error, never sent again, and shown
     by ``driftwatch report``.
   * A target whose ``url_env`` variable is unset (or not an http(s) URL) gets one error naming the
     variable; its alerts stay queued and no attempt is counted.

Delivery is at least once: a crash between a 2xx and recording it resends that alert next time.
Secrets: the outbox stores the target's *name* and the payload, never the URL; errors and log
lines carry only :func:`~driftwatch.notify.http.redact` output, and stored errors are scrubbed of
every URL part deliver has seen. No requests import and no SQL here.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from .config import NotifyTarget, Settings
from .errors import NotFound
from .models import AlertState, Assessment, Breach, RebuildRecord, ScanStatus, VerdictState
from .notify.http import deliver, redact, scrub
from .notify.interface import Alert, AlertKind, AlertPackage, TargetType
from .store import Store

logger = logging.getLogger(__name__)

ATTEMPTS_PER_RUN = 4  # requests per alert per call: the first, then after 1 s, 2 s, 4 s (or Retry-After)
BACKOFF = 1.0  # seconds before the first retry
MAX_PACKAGES = 5  # the worst pending updates an alert lists

_OK = VerdictState.OK.value
_ENTERED: dict[str, AlertKind] = {  # the alert for arriving in a non-ok state
    VerdictState.BREACH.value: AlertKind.BREACH,
    VerdictState.EOL.value: AlertKind.EOL,
    VerdictState.FAILED.value: AlertKind.FAILED,
    VerdictState.UNSCANNED.value: AlertKind.FAILED,
}


@dataclass(frozen=True, slots=True)
class Fingerprint:
    """What an alert said, reduced to what decides "changed" and "worse"."""

    state: str
    thresholds: tuple[str, ...]  # sorted names of the breached thresholds
    security: int | None  # pending security updates; None when unknown

    @classmethod
    def of(cls, row: Assessment) -> Fingerprint:
        """The fingerprint of a report row."""
        return cls(row.verdict.state.value, tuple(sorted({b.threshold for b in row.verdict.breaches})),
                   row.summary.pending_security)

    @property
    def text(self) -> str:
        """``["breach",["max_security_pending"],12]``: stored in ``alert_state`` and the outbox."""
        return json.dumps([self.state, list(self.thresholds), self.security], separators=(",", ":"))

    @classmethod
    def parse(cls, text: str) -> Fingerprint | None:
        """The stored form read back; None when it cannot be read."""
        try:
            state, thresholds, security = json.loads(text)
            return cls(str(state), tuple(str(t) for t in thresholds),
                       security if isinstance(security, int) and not isinstance(security, bool) else None)
        except (TypeError, ValueError):
            return None

    def worse_than(self, before: Fingerprint) -> bool:
        """Same state, and a threshold breached that was not, or more pending security updates."""
        if self.state != before.state:
            return False
        if set(self.thresholds) - set(before.thresholds):
            return True
        return self.security is not None and before.security is not None and self.security > before.security


def decide(previous: AlertState | None, current: Fingerprint, now: datetime, reminder_hours: float | None,
           *, undelivered: bool = False) -> AlertKind | None:
    """The alert a target should get for one reference, or None (see the module's table)."""
    state = current.state
    if previous is None:
        return None if state == _OK else _ENTERED[state]
    if previous.state != state:
        return AlertKind.RECOVERED if state == _OK else _ENTERED[state]
    if state == _OK:
        return None
    before = Fingerprint.parse(previous.fingerprint)
    if before is None or current.worse_than(before):
        return AlertKind.WORSENED
    if (reminder_hours is not None and not undelivered and previous.last_alert_at is not None
            and now - previous.last_alert_at >= timedelta(hours=reminder_hours)):
        return AlertKind.REMINDER
    return None


@dataclass
class NotifyOutcome:
    """What one :func:`notify` call did. Every error text is redacted (hosts only, never a URL path)."""

    queued: int = 0  # alerts written to the outbox by this call
    delivered: int = 0  # alerts delivered by this call (this call's and earlier ones)
    failed: int = 0  # alerts whose delivery failed in this call and that stay queued
    dead: int = 0  # alerts dead-lettered by this call
    pending: int = 0  # alerts of configured targets still undelivered after this call
    errors: list[str] = field(default_factory=list)  # "target: what went wrong", in order
    target_errors: dict[str, list[str]] = field(default_factory=dict)  # the same, by target name

    def error(self, target: str, text: str) -> None:
        """Record one error of a target."""
        logger.info("%s: %s", target, text)
        self.errors.append(f"{target}: {text}")
        self.target_errors.setdefault(target, []).append(text)

    @property
    def ok(self) -> bool:
        """True when nothing needs a person."""
        return not self.errors

    @property
    def summary(self) -> str:
        """``notify: 2 queued, 1 delivered, 1 failed, 0 dead-lettered, 1 still queued``."""
        return (f"notify: {self.queued} queued, {self.delivered} delivered, {self.failed} failed, "
                f"{self.dead} dead-lettered, {self.pending} still queued")


@dataclass(frozen=True, slots=True)
class TargetTest:
    """The result of ``driftwatch notify test`` for one target; ``detail`` is redacted."""

    target: str
    delivered: bool
    detail: str


def notify(
    store: Store,
    settings: Settings,
    rows: Sequence[Assessment],
    now: datetime,
    *,
    environ: Mapping[str, str] = os.environ,
    sleep: Callable[[float], object] = time.sleep,
    rebuilds: Mapping[str, RebuildRecord] = {},  # read only, never mutated
) -> NotifyOutcome:
    """Queue the alerts the rows call for, then deliver every undelivered alert (see the module doc).

    ``rebuilds`` are rebuilds that ran just before (by reference); otherwise an alert shows the
    latest recorded rebuild of its reference. Never raises for HTTP trouble; a database error
    raises :class:`~driftwatch.errors.StoreError`.
    """
    outcome = NotifyOutcome()
    for target in settings.notify:
        waiting = {item.reference for item in store.undelivered(target.name)}
        for row in rows:
            if target.covers(row.summary.reference):
                _evaluate(store, target, row, now, waiting, rebuilds, outcome)
    configured = {t.name for t in settings.notify}
    for target in settings.notify:
        _deliver_target(store, target, environ, now, sleep, outcome)
    orphans: dict[str, int] = {}
    for item in store.undelivered():
        if item.target in configured:
            outcome.pending += 1
        else:
            orphans[item.target] = orphans.get(item.target, 0) + 1
    for name, count in orphans.items():
        outcome.error(name, f"{count} queued alert(s) for this target stay in the outbox: "
                            "it is no longer configured in [[notify]]")
    return outcome


def _evaluate(store: Store, target: NotifyTarget, row: Assessment, now: datetime, waiting: set[str],
              rebuilds: Mapping[str, RebuildRecord], outcome: NotifyOutcome) -> None:
    reference = row.summary.reference
    current = Fingerprint.of(row)
    previous = store.alert_state(target.name, reference)
    kind = decide(previous, current, now, target.reminder_hours, undelivered=reference in waiting)
    if kind is not None:
        state = AlertState(target.name, reference, current.state, current.text, now)
    elif previous is None or previous.state != current.state or (
            current.state == _OK and previous.fingerprint != current.text):
        state = AlertState(target.name, reference, current.state, current.text,
                           previous.last_alert_at if previous else None)
    else:
        return  # same non-ok state, not worse: keep the fingerprint of what the channel was told
    if kind is None or not target.wants(kind.value):
        if kind is not None:
            logger.debug("%s: %s alert for %s not wanted (kinds)", target.name, kind.value, reference)
        store.set_alert_state(state)
        return
    alert = build_alert(store, row, kind, now, rebuilds.get(reference))
    body = TargetType(target.type).to_notifier().payload(alert)
    item_id = store.enqueue(state, kind.value, json.dumps(body, ensure_ascii=False, allow_nan=False), now)
    outcome.queued += 1
    logger.info("%s: queued %s alert #%d for %s", target.name, kind.value, item_id, reference)


def _webhook_url(target: NotifyTarget, environ: Mapping[str, str]) -> tuple[str | None, str | None]:
    """(URL, None), or (None, an error naming the variable) without ever showing its value."""
    url = environ.get(target.url_env, "").strip()
    if not url:
        return None, f"environment variable {target.url_env} is not set (it must hold the webhook URL)"
    if not url.lower().startswith(("https://", "http://")) or redact(url).startswith("("):
        return None, f"environment variable {target.url_env} does not hold an http(s) URL"
    return url, None


def _deliver_target(store: Store, target: NotifyTarget, environ: Mapping[str, str], now: datetime,
                    sleep: Callable[[float], object], outcome: NotifyOutcome) -> None:
    url, problem = _webhook_url(target, environ)
    items = store.undelivered(target.name)
    if problem is not None:
        queued = f"; {len(items)} alert(s) stay queued" if items else ""
        outcome.error(target.name, problem + queued)
        return
    assert url is not None
    for index, item in enumerate(items):
        what = f"{item.kind} alert #{item.id} for {item.reference}"
        left = target.max_attempts - item.attempts
        if left <= 0:  # max_attempts was lowered after the alert was queued
            store.mark_attempt_failed(item.id, item.last_error or "max_attempts reached", now, attempts=0,
                                      max_attempts=target.max_attempts)
            outcome.dead += 1
            outcome.error(target.name, f"{what} dead-lettered after {item.attempts} attempt(s)")
            continue
        delivery = deliver(url, json.loads(item.payload), attempts=min(ATTEMPTS_PER_RUN, left), backoff=BACKOFF,
                           sleep=sleep)
        if delivery.delivered:
            store.mark_delivered(item.id, now, attempts=delivery.attempts)
            outcome.delivered += 1
            logger.info("%s: delivered %s (HTTP %s)", target.name, what, delivery.status)
            continue
        error = scrub(delivery.error or "not delivered")
        dead = store.mark_attempt_failed(item.id, error, now, attempts=delivery.attempts,
                                         max_attempts=target.max_attempts)
        total = item.attempts + delivery.attempts
        if dead:
            outcome.dead += 1
            outcome.error(target.name, f"{what} dead-lettered after {total} attempt(s): {error}")
        else:
            outcome.failed += 1
            outcome.error(target.name, f"{what} not delivered ({total} of {target.max_attempts} attempts): {error}")
        if delivery.retryable:
            rest = len(items) - index - 1
            if rest:
                outcome.error(target.name, f"endpoint unavailable: {rest} more alert(s) stay queued for the next run")
            return


# --- what an alert says -------------------------------------------------------------------------

def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:.1f}"


def breach_line(breach: Breach) -> str:
    """``max_security_pending 12 > 0``; ages with one decimal."""
    value = f"{breach.value:.1f}" if breach.threshold.endswith("_days") else _number(breach.value)
    return f"{breach.threshold} {value} > {_number(breach.limit)}"


def worst_packages(store: Store, reference: str, now: datetime, limit: int = MAX_PACKAGES) -> tuple[AlertPackage, ...]:
    """The latest scan's worst pending updates: security first, then pending longest, then by name."""
    try:
        _, scan = store.latest_scan(reference)
    except NotFound:
        return ()
    if scan.status is not ScanStatus.OK:
        return ()
    since = {(d.package, d.arch, d.candidate): d.first_seen for d in store.drift(reference) if d.resolved_at is None}
    ordered = sorted(scan.updates, key=lambda u: (not u.security, since.get((u.package, u.arch, u.candidate), now),
                                                  u.package, u.arch))
    return tuple(AlertPackage(u.package, u.installed, u.candidate, u.security) for u in ordered[:limit])


def rebuild_text(record: RebuildRecord) -> str:
    """``ineffective (2026-12-03 04:10 UTC): …``."""
    when = record.finished_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return f"{record.outcome.value} ({when}): {record.detail}" if record.detail else f"{record.outcome.value} ({when})"


def build_alert(store: Store, row: Assessment, kind: AlertKind, now: datetime,
                rebuild: RebuildRecord | None = None) -> Alert:
    """The alert about one report row; the latest recorded rebuild when none is given."""
    s, v = row.summary, row.verdict
    if rebuild is None:
        rebuild = next(iter(store.rebuilds(s.reference, limit=1)), None)
    breaches = tuple(breach_line(b) for b in v.breaches)
    if v.state is VerdictState.EOL and v.note:
        breaches += (v.note,)
    return Alert(
        kind=kind,
        reference=s.reference,
        image_id=s.image_id,
        verdict=v.state.value,
        breaches=breaches,
        pending_security=s.pending_security,
        pending_total=s.pending_total,
        oldest_security_age_days=row.oldest_security_age_days,
        apt_layer_age_days=row.apt_layer_age_days,
        packages=worst_packages(store, s.reference, now),
        rebuild_outcome=rebuild_text(rebuild) if rebuild else None,
        reason=s.reason if s.status is not ScanStatus.OK else None,
        detail=s.detail if s.status is not ScanStatus.OK else None,
        created_at=now,
    )


def make_test_alert(target: NotifyTarget, now: datetime) -> Alert:
    """The ``test`` alert: names the target, so a channel shows which configuration posts to it."""
    return Alert(kind=AlertKind.TEST, reference=target.name, image_id=None, verdict="test", breaches=(),
                 pending_security=None, pending_total=None, oldest_security_age_days=None,
                 apt_layer_age_days=None, packages=(), rebuild_outcome=None, reason=None, detail=None,
                 created_at=now)


def send_test(
    settings: Settings,
    names: Sequence[str] = (),
    now: datetime | None = None,
    *,
    environ: Mapping[str, str] = os.environ,
    sleep: Callable[[float], object] = time.sleep,
) -> list[TargetTest]:
    """Send a ``test`` alert to the named targets (all when none are named) and say how each went.

    Test alerts bypass the outbox: they are diagnostics, so they are neither stored nor retried on
    a later run. Transient failures are retried as for any alert. Unknown names raise ConfigError.
    """
    targets = [settings.notify_target(n) for n in dict.fromkeys(names)] if names else list(settings.notify)
    when = now or datetime.now(UTC)
    results = []
    for target in targets:
        url, problem = _webhook_url(target, environ)
        if problem is not None:
            results.append(TargetTest(target.name, False, problem))
            continue
        assert url is not None
        payload: dict[str, Any] = TargetType(target.type).to_notifier().payload(make_test_alert(target, when))
        delivery = deliver(url, payload, attempts=ATTEMPTS_PER_RUN, backoff=BACKOFF, sleep=sleep)
        if delivery.delivered:
            results.append(TargetTest(target.name, True, f"delivered to {redact(url)} (HTTP {delivery.status})"))
        else:
            results.append(TargetTest(target.name, False, scrub(delivery.error or "not delivered")))
    return results


__all__ = ["Fingerprint", "NotifyOutcome", "TargetTest", "build_alert", "decide", "notify", "send_test"]
