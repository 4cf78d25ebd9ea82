"""Alerts end to end: decisions, the outbox, delivery and secrecy, on a real SQLite file and a real
HTTP server on loopback (pytest-httpserver). ``sleep`` is injected, so no test waits for a backoff.

Every target here is ``generic``, whose payload is driftwatch's own JSON document: the tests read
``kind`` and ``reference`` from what the server received.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from pytest_httpserver import HTTPServer
from werkzeug import Response

from driftwatch import alerts, policy
from driftwatch.alerts import Fingerprint, NotifyOutcome, decide
from driftwatch.cli import main
from driftwatch.config import NotifyTarget, Settings
from driftwatch.models import AlertState, PendingUpdate, RebuildRecord, RebuildResult
from driftwatch.notify import AlertKind
from driftwatch.store import Store, open_store
from tests.test_notify_http import Sleeps, closed_port
from tests.test_store import T0, UPDATES, failed_scan, ok_scan

SECRET = "T0SECRET/B0SECRET/XoXoSeCrEtToKeN"
PATH = f"/services/{SECRET}"
NOW = T0 + timedelta(days=1)
ENV = "MY_HOOK"


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


def target(**overrides: Any) -> NotifyTarget:
    return replace(NotifyTarget("ops", "generic", ENV), **overrides)


def settings(*targets: NotifyTarget) -> Settings:
    return Settings(notify=targets or (target(),))


def hook(server: HTTPServer) -> str:
    return server.url_for(PATH)


def run_notify(store: Store, conf: Settings, now: datetime, url: str | None, sleeps: Sleeps,
               **kwargs: Any) -> NotifyOutcome:
    rows = policy.assess(store.latest(), conf, now)
    environ = {ENV: url} if url else {}
    return alerts.notify(store, conf, rows, now, environ=environ, sleep=sleeps, **kwargs)


def received(server: HTTPServer) -> list[tuple[str, str]]:
    """(kind, reference) of every request the server got, in order."""
    return [(json.loads(req.data)["kind"], json.loads(req.data)["reference"]) for req, _ in server.log]


def dump_database(path: Path) -> str:
    """Every row of every table, as text."""
    store = open_store(path)
    try:
        return "\n".join(f"{name}: {row!r}" for name in store.db.table_names() for row in store.db[name].rows)
    finally:
        store.close()


def breach_store(store: Store) -> None:
    store.save_scan(ok_scan("app:1"))  # 1 security update pending > max_security_pending 0: breach


# --- delivery -------------------------------------------------------------------------------------

def test_500_then_200_is_delivered_once(store: Store, httpserver: HTTPServer, sleeps: Sleeps) -> None:
    httpserver.expect_ordered_request(PATH, method="POST").respond_with_data("boom", status=500)
    httpserver.expect_ordered_request(PATH, method="POST").respond_with_data("ok", status=200)
    breach_store(store)
    outcome = run_notify(store, settings(), NOW, hook(httpserver), sleeps)
    httpserver.check_assertions()
    assert (outcome.queued, outcome.delivered, outcome.failed, outcome.dead, outcome.pending) == (1, 1, 0, 0, 0)
    assert outcome.errors == [] and outcome.ok
    assert sleeps.calls == [1.0]
    (item,) = store.outbox()
    assert (item.kind, item.reference, item.target, item.attempts, item.delivered_at) == ("breach", "app:1", "ops", 2, NOW)
    again = run_notify(store, settings(), NOW + timedelta(hours=1), hook(httpserver), sleeps)
    assert (again.queued, again.delivered) == (0, 0)
    assert received(httpserver) == [("breach", "app:1"), ("breach", "app:1")]  # the 500 and the 200: one alert


def test_429_with_retry_after_is_honoured(store: Store, httpserver: HTTPServer, sleeps: Sleeps) -> None:
    httpserver.expect_ordered_request(PATH, method="POST").respond_with_response(
        Response("slow down", status=429, headers={"Retry-After": "7"}))
    httpserver.expect_ordered_request(PATH, method="POST").respond_with_data("", status=204)
    breach_store(store)
    outcome = run_notify(store, settings(), NOW, hook(httpserver), sleeps)
    httpserver.check_assertions()
    assert sleeps.calls == [7.0]
    assert (outcome.delivered, outcome.failed) == (1, 0)


def test_endpoint_down_for_a_whole_run_is_delivered_by_the_next_exactly_once(
    store: Store, httpserver: HTTPServer, sleeps: Sleeps
) -> None:
    breach_store(store)
    down = f"http://127.0.0.1:{closed_port()}{PATH}"
    first = run_notify(store, settings(), NOW, down, sleeps)
    assert (first.queued, first.delivered, first.failed, first.dead, first.pending) == (1, 0, 1, 0, 1)
    assert sleeps.calls == [1.0, 2.0, 4.0]  # 4 attempts in this run, then it waits for the next
    assert len(first.errors) == 1 and first.errors[0].startswith("ops: breach alert #1 for app:1 not delivered "
                                                                 "(4 of 10 attempts): webhook http://127.0.0.1:")
    (queued,) = store.undelivered("ops")
    assert (queued.attempts, queued.delivered_at, queued.dead_at) == (4, None, None)
    assert "could not connect" in (queued.last_error or "")

    httpserver.expect_request(PATH, method="POST").respond_with_data("ok")
    second = run_notify(store, settings(), NOW + timedelta(hours=1), hook(httpserver), sleeps)
    assert (second.queued, second.delivered, second.pending) == (0, 1, 0)
    third = run_notify(store, settings(), NOW + timedelta(hours=2), hook(httpserver), sleeps)
    assert (third.queued, third.delivered) == (0, 0)
    assert received(httpserver) == [("breach", "app:1")]  # exactly one request carried it
    assert store.undelivered() == []


def test_4xx_is_not_retried_in_the_run_and_is_reported_with_the_target(
    store: Store, httpserver: HTTPServer, sleeps: Sleeps
) -> None:
    httpserver.expect_oneshot_request(PATH, method="POST").respond_with_data("no_service", status=404)
    breach_store(store)
    outcome = run_notify(store, settings(), NOW, hook(httpserver), sleeps)
    assert sleeps.calls == []
    assert outcome.errors == [(
        f"ops: breach alert #1 for app:1 not delivered (1 of 10 attempts): webhook http://localhost:{httpserver.port}/… "
        "answered HTTP 404 NOT FOUND: no_service")]
    assert outcome.target_errors == {"ops": [outcome.errors[0].removeprefix("ops: ")]}
    (item,) = store.undelivered()  # kept: a deleted or mistyped webhook is fixed by the operator
    assert (item.attempts, item.dead_at) == (1, None)
    httpserver.expect_oneshot_request(PATH, method="POST").respond_with_data("ok")
    fixed = run_notify(store, settings(), NOW + timedelta(hours=1), hook(httpserver), sleeps)
    assert (fixed.delivered, fixed.errors) == (1, [])


def failing(tmp_path: Path, httpserver: HTTPServer, status: int, body: str, max_attempts: int
            ) -> tuple[Path, Store, Settings]:
    """A database with one breach, and a target whose endpoint always answers ``status``."""
    db = tmp_path / "d.db"
    store = open_store(db)
    httpserver.expect_request(PATH, method="POST").respond_with_data(body, status=status)
    breach_store(store)
    return db, store, settings(target(max_attempts=max_attempts))


def test_dead_letter_after_max_attempts_over_runs_and_report_shows_it(
    tmp_path: Path, httpserver: HTTPServer, sleeps: Sleeps
) -> None:
    db, store, conf = failing(tmp_path, httpserver, 503, "boom", max_attempts=6)
    first = run_notify(store, conf, NOW, hook(httpserver), sleeps)
    assert (first.failed, first.dead, len(httpserver.log)) == (1, 0, 4)
    second = run_notify(store, conf, NOW + timedelta(hours=1), hook(httpserver), sleeps)
    assert (second.failed, second.dead, len(httpserver.log)) == (0, 1, 6)  # only the 2 attempts left were made
    assert second.errors[0].startswith("ops: breach alert #1 for app:1 dead-lettered after 6 attempt(s): webhook")
    third = run_notify(store, conf, NOW + timedelta(hours=2), hook(httpserver), sleeps)
    assert (third.delivered, third.failed, third.dead, third.errors, len(httpserver.log)) == (0, 0, 0, [], 6)
    (dead,) = store.dead_letters()
    assert (dead.attempts, dead.dead_at, dead.delivered_at) == (6, NOW + timedelta(hours=1), None)
    store.close()

    runner = CliRunner()
    table = runner.invoke(main, ["--db", str(db), "report"], catch_exceptions=False,
                          env={"DRIFTWATCH_NOW": NOW.isoformat()})
    assert table.exit_code == 0
    assert table.output.splitlines()[-1] == (
        f"1 alert(s) dead-lettered: breach alert for app:1 to ops (webhook http://localhost:{httpserver.port}/… "
        "answered HTTP 503 SERVICE UNAVAILABLE: boom (after 2 attempts))")
    doc = json.loads(runner.invoke(main, ["--db", str(db), "report", "--format", "json"],
                                   catch_exceptions=False).output)
    assert doc["dead_letters"] == 1 and doc["version"] == 1 and len(doc["images"]) == 1


def test_dead_letters_are_listed_and_requeued_then_delivered_once(
    tmp_path: Path, httpserver: HTTPServer, sleeps: Sleeps
) -> None:
    db, store, conf = failing(tmp_path, httpserver, 410, "gone", max_attempts=1)
    assert run_notify(store, conf, NOW, hook(httpserver), sleeps).dead == 1
    store.close()
    runner = CliRunner()

    def cli(*args: str) -> Any:
        return runner.invoke(main, ["--db", str(db), "notify", *args], catch_exceptions=False)

    listed = cli("dead")
    assert listed.exit_code == 0
    assert listed.output.startswith("#1 breach alert for app:1 to ops: 1 attempt(s), dead since ")
    assert f"webhook http://localhost:{httpserver.port}/… answered HTTP 410" in listed.output
    usage = cli("requeue")
    assert usage.exit_code == 2 and "name the alerts to requeue" in usage.output
    both = cli("requeue", "--all", "1")
    assert both.exit_code == 2 and "give alert IDs or --all, not both" in both.output
    unknown = cli("requeue", "1", "7")
    assert unknown.exit_code == 2
    assert unknown.output.strip().endswith("alert #7 is not dead-lettered in " + str(db) + " (dead letters: #1)")
    assert len(open_store(db).dead_letters()) == 1  # all or nothing
    done = cli("requeue", "--all")
    assert done.exit_code == 0 and done.output.startswith("requeued 1 alert(s): #1; ")
    assert cli("dead").output == "no dead-lettered alerts\n"

    httpserver.clear()
    httpserver.expect_request(PATH, method="POST").respond_with_data("ok", status=200)
    store = open_store(db)
    again = run_notify(store, conf, NOW + timedelta(hours=1), hook(httpserver), sleeps)
    assert (again.delivered, again.dead, len(httpserver.log)) == (1, 0, 1)
    (item,) = store.outbox()
    assert (item.attempts, item.dead_at, item.delivered_at) == (1, None, NOW + timedelta(hours=1))
    assert run_notify(store, conf, NOW + timedelta(hours=2), hook(httpserver), sleeps).delivered == 0
    assert len(httpserver.log) == 1
    store.close()


def test_unset_url_variable_is_one_error_and_alerts_stay_queued(
    store: Store, httpserver: HTTPServer, sleeps: Sleeps
) -> None:
    breach_store(store)
    outcome = run_notify(store, settings(), NOW, None, sleeps)
    assert outcome.errors == [
        "ops: environment variable MY_HOOK is not set (it must hold the webhook URL); 1 alert(s) stay queued"]
    (item,) = store.undelivered("ops")
    assert item.attempts == 0  # nothing was attempted, so nothing counts towards dead-lettering
    httpserver.expect_request(PATH, method="POST").respond_with_data("ok")
    later = run_notify(store, settings(), NOW + timedelta(hours=1), hook(httpserver), sleeps)
    assert (later.queued, later.delivered, later.errors) == (0, 1, [])
    assert received(httpserver) == [("breach", "app:1")]


def test_url_variable_that_is_not_a_url_is_rejected_without_echoing_it(store: Store, sleeps: Sleeps) -> None:
    breach_store(store)
    outcome = run_notify(store, settings(), NOW, SECRET, sleeps)
    assert outcome.errors == ["ops: environment variable MY_HOOK does not hold an http(s) URL; 1 alert(s) stay queued"]


def test_queued_alerts_of_a_removed_target_are_reported(store: Store, httpserver: HTTPServer, sleeps: Sleeps) -> None:
    breach_store(store)
    run_notify(store, settings(target(name="old")), NOW, None, sleeps)
    httpserver.expect_request(PATH, method="POST").respond_with_data("ok")
    outcome = run_notify(store, settings(), NOW, hook(httpserver), sleeps)
    assert outcome.delivered == 1
    assert outcome.errors == [
        "old: 1 queued alert(s) for this target stay in the outbox: it is no longer configured in [[notify]]"]


# --- decisions ------------------------------------------------------------------------------------

def test_same_state_on_two_runs_sends_one_alert(store: Store, httpserver: HTTPServer, sleeps: Sleeps) -> None:
    httpserver.expect_request(PATH, method="POST").respond_with_data("ok")
    breach_store(store)
    run_notify(store, settings(), NOW, hook(httpserver), sleeps)
    store.save_scan(ok_scan("app:1", when=T0 + timedelta(days=1)))  # the next night: the same drift
    second = run_notify(store, settings(), NOW + timedelta(days=1), hook(httpserver), sleeps)
    assert (second.queued, second.delivered) == (0, 0)
    assert received(httpserver) == [("breach", "app:1")]


def test_recovery_sends_one_recovery_alert(store: Store, httpserver: HTTPServer, sleeps: Sleeps) -> None:
    httpserver.expect_request(PATH, method="POST").respond_with_data("ok")
    breach_store(store)
    run_notify(store, settings(), NOW, hook(httpserver), sleeps)
    store.save_scan(ok_scan("app:1", when=T0 + timedelta(days=1), updates=()))  # rebuilt: nothing pending
    for hours in (25, 26, 50):
        run_notify(store, settings(), T0 + timedelta(hours=hours), hook(httpserver), sleeps)
    assert received(httpserver) == [("breach", "app:1"), ("recovered", "app:1")]
    body = json.loads(httpserver.log[-1][0].data)
    assert (body["verdict"], body["pending_security"], body["packages"]) == ("ok", 0, [])


def test_first_ok_sends_nothing(store: Store, httpserver: HTTPServer, sleeps: Sleeps) -> None:
    store.save_scan(ok_scan("quiet:1", updates=()))
    outcome = run_notify(store, settings(), NOW, hook(httpserver), sleeps)
    assert (outcome.queued, outcome.delivered, len(httpserver.log)) == (0, 0, 0)
    state = store.alert_state("ops", "quiet:1")
    assert state is not None and (state.state, state.last_alert_at) == ("ok", None)


def test_worsened_compares_with_what_was_last_sent(store: Store, httpserver: HTTPServer, sleeps: Sleeps) -> None:
    httpserver.expect_request(PATH, method="POST").respond_with_data("ok")
    extra = PendingUpdate("openssl", "amd64", "3.0.11-1~deb12u1", "3.0.15-1~deb12u1", ("bookworm-security",), True)
    night = 0

    def scan_and_notify(updates: tuple[PendingUpdate, ...]) -> None:
        nonlocal night
        night += 1
        when = T0 + timedelta(days=night)
        store.save_scan(ok_scan("app:1", when=when, updates=updates))
        run_notify(store, settings(), when + timedelta(minutes=5), hook(httpserver), sleeps)

    scan_and_notify(UPDATES)  # 1 security: breach
    scan_and_notify((*UPDATES, extra))  # 2 security: worsened
    scan_and_notify(UPDATES)  # 1: better, nothing
    scan_and_notify((*UPDATES, extra))  # 2 again: the channel already heard of 2
    assert received(httpserver) == [("breach", "app:1"), ("worsened", "app:1")]
    body = json.loads(httpserver.log[-1][0].data)
    assert body["pending_security"] == 2
    assert [p["package"] for p in body["packages"]] == ["libssl3", "openssl", "tzdata"]  # security, oldest first


def test_reminder_after_reminder_hours_with_a_moved_clock(
    store: Store, httpserver: HTTPServer, sleeps: Sleeps
) -> None:
    httpserver.expect_request(PATH, method="POST").respond_with_data("ok")
    conf = settings(target(reminder_hours=24))
    breach_store(store)
    for hours in (0, 23, 24, 30, 47.9, 48):
        run_notify(store, conf, NOW + timedelta(hours=hours), hook(httpserver), sleeps)
    assert received(httpserver) == [("breach", "app:1"), ("reminder", "app:1"), ("reminder", "app:1")]
    assert store.alert_state("ops", "app:1") == AlertState(
        "ops", "app:1", "breach", '["breach",["max_security_pending"],1]', NOW + timedelta(hours=48))


def test_no_reminder_is_queued_while_an_alert_is_still_undelivered(store: Store, sleeps: Sleeps) -> None:
    conf = settings(target(reminder_hours=1))
    breach_store(store)
    for hours in (0, 2, 4):
        run_notify(store, conf, NOW + timedelta(hours=hours), None, sleeps)
    assert [i.kind for i in store.undelivered()] == ["breach"]


def test_failed_scan_alerts_and_recovers(store: Store, httpserver: HTTPServer, sleeps: Sleeps) -> None:
    httpserver.expect_request(PATH, method="POST").respond_with_data("ok")
    store.save_scan(ok_scan("app:1", updates=()))
    run_notify(store, settings(), NOW, hook(httpserver), sleeps)
    store.save_scan(failed_scan("app:1", when=T0 + timedelta(days=1)))
    run_notify(store, settings(), NOW + timedelta(days=1), hook(httpserver), sleeps)
    body = json.loads(httpserver.log[-1][0].data)
    assert (body["kind"], body["verdict"], body["reason"], body["pending_total"]) == (
        "failed", "failed", "image_missing", None)
    store.save_scan(ok_scan("app:1", when=T0 + timedelta(days=2), updates=()))
    run_notify(store, settings(), NOW + timedelta(days=2), hook(httpserver), sleeps)
    assert received(httpserver) == [("failed", "app:1"), ("recovered", "app:1")]


def test_targets_filter_by_images_and_kinds(store: Store, httpserver: HTTPServer, sleeps: Sleeps) -> None:
    httpserver.expect_request(PATH, method="POST").respond_with_data("ok")
    conf = settings(target(name="api-only", images=("myorg/api:*",)), target(name="good-news", kinds=("recovered",)))
    breach_store(store)
    run_notify(store, conf, NOW, hook(httpserver), sleeps)
    assert len(httpserver.log) == 0  # app:1 is not myorg/api:*, and good-news does not want breaches
    store.save_scan(ok_scan("app:1", when=T0 + timedelta(days=1), updates=()))
    run_notify(store, conf, NOW + timedelta(days=1), hook(httpserver), sleeps)
    assert received(httpserver) == [("recovered", "app:1")]
    assert [i.target for i in store.outbox()] == ["good-news"]


def test_alert_says_rebuild_outcome_and_worst_packages(store: Store) -> None:
    breach_store(store)
    rec = RebuildRecord("app:1", "docker", "max_security_pending 1 > 0", T0, T0 + timedelta(minutes=3),
                        RebuildResult.INEFFECTIVE, "no upgrade step in the Dockerfile")
    store.save_rebuild(rec)
    (row,) = policy.assess(store.latest(), settings(), NOW)
    alert = alerts.build_alert(store, row, AlertKind.BREACH, NOW)
    assert alert.rebuild_outcome == "ineffective (2026-12-01 03:03 UTC): no upgrade step in the Dockerfile"
    assert alert.breaches == ("max_security_pending 1 > 0",)
    assert [(p.package, p.security) for p in alert.packages] == [("libssl3", True), ("tzdata", False)]
    assert (alert.pending_security, alert.pending_total, alert.verdict) == (1, 2, "breach")
    given = replace(rec, outcome=RebuildResult.EFFECTIVE, detail="")
    assert alerts.build_alert(store, row, AlertKind.BREACH, NOW, given).rebuild_outcome == \
        "effective (2026-12-01 03:03 UTC)"


@pytest.mark.parametrize(("before", "now", "expected"), [
    (None, '["ok",[],0]', None),
    (None, '["breach",["max_security_pending"],1]', AlertKind.BREACH),
    (None, '["eol",[],0]', AlertKind.EOL),
    (None, '["failed",[],null]', AlertKind.FAILED),
    ('["ok",[],0]', '["ok",[],1]', None),
    ('["ok",[],0]', '["breach",["max_security_pending"],1]', AlertKind.BREACH),
    ('["ok",[],0]', '["unscanned",[],null]', AlertKind.FAILED),
    ('["breach",["max_security_pending"],1]', '["ok",[],0]', AlertKind.RECOVERED),
    ('["eol",[],0]', '["ok",[],0]', AlertKind.RECOVERED),
    ('["failed",[],null]', '["ok",[],0]', AlertKind.RECOVERED),
    ('["breach",["max_security_pending"],1]', '["eol",["max_security_pending"],1]', AlertKind.EOL),
    ('["breach",["max_security_pending"],1]', '["failed",[],null]', AlertKind.FAILED),
    ('["failed",[],null]', '["breach",["max_security_pending"],1]', AlertKind.BREACH),
    ('["breach",["max_security_pending"],1]', '["breach",["max_security_pending"],2]', AlertKind.WORSENED),
    ('["breach",["max_security_pending"],3]',
     '["breach",["max_security_age_days","max_security_pending"],1]', AlertKind.WORSENED),
    ('["breach",["max_security_pending"],3]', '["breach",["max_security_pending"],3]', None),
    ('["breach",["max_security_age_days","max_security_pending"],3]',
     '["breach",["max_security_pending"],2]', None),
    ('["failed",[],null]', '["failed",[],null]', None),
])
def test_state_machine(before: str | None, now: str, expected: AlertKind | None) -> None:
    current = Fingerprint.parse(now)
    assert current is not None and current.text == now
    previous = None if before is None else AlertState("t", "r", json.loads(before)[0], before, NOW)
    assert decide(previous, current, NOW + timedelta(hours=1), None) is expected


def test_reminder_decision_needs_time_and_nothing_undelivered() -> None:
    fp = '["failed",[],null]'
    previous = AlertState("t", "r", "failed", fp, NOW)
    current = Fingerprint.parse(fp)
    assert current is not None
    assert decide(previous, current, NOW + timedelta(hours=5), 6) is None
    assert decide(previous, current, NOW + timedelta(hours=6), 6) is AlertKind.REMINDER
    assert decide(previous, current, NOW + timedelta(hours=6), 6, undelivered=True) is None
    assert decide(previous, current, NOW + timedelta(hours=600), None) is None


# --- secrets --------------------------------------------------------------------------------------

def test_secret_is_in_no_output_log_or_database_row(
    tmp_path: Path, httpserver: HTTPServer, sleeps: Sleeps, caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.DEBUG)
    db = tmp_path / "secret.db"
    store = open_store(db)
    conf = settings(target(max_attempts=5, reminder_hours=1), target(name="teams", type="teams", url_env="T_HOOK"))
    store.save_scan(ok_scan("app:1"))
    store.save_scan(failed_scan("gone:1"))
    down = f"http://127.0.0.1:{closed_port()}{PATH}?token={SECRET}"
    httpserver.expect_oneshot_request(PATH, method="POST").respond_with_data(f"bad {SECRET} {PATH}", status=400)
    httpserver.expect_request(PATH, method="POST").respond_with_data(f"echo {hook(httpserver)}", status=500)
    outcomes = []
    for hours, url in ((0, down), (1, hook(httpserver)), (2, hook(httpserver))):
        rows = policy.assess(store.latest(), conf, NOW + timedelta(hours=hours))
        outcomes.append(alerts.notify(store, conf, rows, NOW + timedelta(hours=hours), sleep=sleeps,
                                      environ={ENV: url, "T_HOOK": url}))
    outcomes.append(alerts.send_test(conf, now=NOW, sleep=sleeps, environ={ENV: down, "T_HOOK": hook(httpserver)}))
    store.close()
    texts = [repr(o) for o in outcomes] + [dump_database(db)]
    assert "dead-lettered" in " ".join(texts) and "answered HTTP 400" in " ".join(texts)
    formatter = logging.Formatter("%(name)s %(message)s")
    texts += [formatter.format(r) + (r.exc_text or "") for r in caplog.records if not r.name.startswith("werkzeug")]
    captured = capsys.readouterr()
    texts += [captured.out, captured.err]
    assert any("localhost" in t for t in texts)  # the host is shown, for diagnosis
    for text in texts:
        for part in (SECRET, "T0SECRET", "XoXoSeCrEtToKeN", PATH):
            assert part not in text
    assert SECRET.encode() not in db.read_bytes()


# --- the command line -----------------------------------------------------------------------------

CONFIG = """
[[notify]]
name = "ops"
type = "slack"
url_env = "MY_HOOK"

[[notify]]
name = "chat"
type = "generic"
url_env = "OTHER_HOOK"
"""


def cli(tmp_path: Path, env: dict[str, str], *args: str):  # type: ignore[no-untyped-def]
    (tmp_path / "n.toml").write_text(CONFIG)
    return CliRunner().invoke(main, ["--db", str(tmp_path / "n.db"), "--config", str(tmp_path / "n.toml"), *args],
                              catch_exceptions=False, env={"DRIFTWATCH_NOW": NOW.isoformat(), "OTHER_HOOK": "",
                                                           **env})


def test_cli_notify_test_one_target(tmp_path: Path, httpserver: HTTPServer) -> None:
    httpserver.expect_request(PATH, method="POST").respond_with_data("ok")
    result = cli(tmp_path, {"MY_HOOK": hook(httpserver)}, "notify", "test", "ops")
    assert result.exit_code == 0
    assert result.output == f"ops: delivered to http://localhost:{httpserver.port}/… (HTTP 200)\n"
    body = json.loads(httpserver.log[0][0].data)
    assert body["blocks"][0]["text"]["text"] == "Test notification" and "`ops`" in body["text"]
    assert SECRET not in result.output


def test_cli_notify_test_all_targets_exits_4_when_one_fails(tmp_path: Path, httpserver: HTTPServer) -> None:
    httpserver.expect_request(PATH, method="POST").respond_with_data("ok")
    result = cli(tmp_path, {"MY_HOOK": hook(httpserver)}, "notify", "test")
    assert result.exit_code == 4
    assert result.stdout.splitlines() == [
        f"ops: delivered to http://localhost:{httpserver.port}/… (HTTP 200)",
        "chat: failed: environment variable OTHER_HOOK is not set (it must hold the webhook URL)",
    ]


def test_cli_notify_test_unknown_target_and_no_targets(tmp_path: Path) -> None:
    result = cli(tmp_path, {}, "notify", "test", "opz")
    assert (result.exit_code, result.output) == (2, "Error: no notify target named 'opz'; did you mean ops?\n")
    empty = CliRunner().invoke(main, ["--db", str(tmp_path / "e.db"), "--config", str(tmp_path / "none.toml"),
                                      "notify", "send"], catch_exceptions=False)
    assert empty.exit_code == 2  # the config file does not exist


def test_cli_notify_send(tmp_path: Path, httpserver: HTTPServer) -> None:
    httpserver.expect_request(PATH, method="POST").respond_with_data("ok")
    store = open_store(tmp_path / "n.db")
    store.save_scan(ok_scan("app:1"))
    store.close()
    env = {"MY_HOOK": hook(httpserver), "OTHER_HOOK": hook(httpserver)}
    first = cli(tmp_path, env, "notify", "send")
    assert (first.exit_code, first.stdout) == (0, "")
    assert first.stderr == "notify: 2 queued, 2 delivered, 0 failed, 0 dead-lettered, 0 still queued\n"
    second = cli(tmp_path, env, "notify", "send")
    assert second.stderr == "notify: 0 queued, 0 delivered, 0 failed, 0 dead-lettered, 0 still queued\n"
    assert len(httpserver.log) == 2  # one per target, once
    unset = cli(tmp_path, {"MY_HOOK": hook(httpserver)}, "notify", "send")
    assert unset.exit_code == 4
    assert unset.stderr.splitlines()[1] == (
        "notify: chat: environment variable OTHER_HOOK is not set (it must hold the webhook URL)")
    assert not re.search(re.escape(SECRET), first.output + second.output + unset.output)
