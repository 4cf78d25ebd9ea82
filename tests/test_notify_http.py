"""Webhook delivery against a real HTTP server on loopback: retries, Retry-After, and secrecy.

``sleep`` is injected everywhere, so no test really waits for a backoff.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from driftwatch.errors import WebhookError
from driftwatch.notify import Delivery, deliver, parse_retry_after, redact
from driftwatch.notify.http import RETRY_AFTER_CAP, scrub

SECRET = "SECRETSECRET"
HOOK = f"/services/T000/B000/{SECRET}"
PAYLOAD = {"text": "hello"}


class Sleeps:
    """A recording stand-in for time.sleep."""

    def __init__(self) -> None:
        self.calls: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def assert_no_secret(delivery: Delivery, caplog: pytest.LogCaptureFixture) -> None:
    """The secret path is in neither the Delivery, the logs, nor the error raised from it."""
    assert SECRET not in repr(delivery)
    # The loopback server's own access log (logger "werkzeug") is the *receiving* side, which
    # naturally knows its path; everything on the sending side must not.
    formatter = logging.Formatter("%(name)s %(message)s")
    for record in caplog.records:
        if record.name.startswith("werkzeug"):
            continue
        assert SECRET not in formatter.format(record)
        assert SECRET not in (record.exc_text or "")
    if not delivery.delivered:
        with pytest.raises(WebhookError) as raised:
            delivery.raise_for_failure()
        assert SECRET not in str(raised.value) and SECRET not in repr(raised.value)
        assert raised.value.__cause__ is None and raised.value.__context__ is None
        assert raised.value.exit_code == 4


def test_500_then_200_is_delivered_on_the_second_attempt(httpserver: HTTPServer, sleeps: Sleeps) -> None:
    httpserver.expect_ordered_request("/hook", method="POST", json=PAYLOAD).respond_with_data("boom", status=500)
    httpserver.expect_ordered_request("/hook", method="POST", json=PAYLOAD).respond_with_data("ok", status=200)
    delivery = deliver(httpserver.url_for("/hook"), PAYLOAD, backoff=0.5, sleep=sleeps)
    httpserver.check_assertions()
    assert delivery == Delivery(delivered=True, status=200, attempts=2, error=None, retryable=False)
    assert sleeps.calls == [0.5]


def test_2xx_other_than_200_is_delivered(httpserver: HTTPServer, sleeps: Sleeps) -> None:
    httpserver.expect_request("/hook", method="POST").respond_with_data("", status=204)
    delivery = deliver(httpserver.url_for("/hook"), PAYLOAD, sleep=sleeps)
    assert delivery.delivered and delivery.status == 204 and sleeps.calls == []


def test_429_honours_retry_after_seconds(httpserver: HTTPServer, sleeps: Sleeps) -> None:
    httpserver.expect_ordered_request("/hook", method="POST").respond_with_data(
        "slow down", status=429, headers={"Retry-After": "1"})
    httpserver.expect_ordered_request("/hook", method="POST").respond_with_data("ok")
    delivery = deliver(httpserver.url_for("/hook"), PAYLOAD, backoff=0.01, sleep=sleeps)
    httpserver.check_assertions()
    assert delivery.delivered and delivery.attempts == 2
    assert sleeps.calls == [1]


def test_429_with_a_huge_retry_after_waits_at_most_the_cap(httpserver: HTTPServer, sleeps: Sleeps) -> None:
    httpserver.expect_ordered_request("/hook").respond_with_data("", status=429, headers={"Retry-After": "86400"})
    httpserver.expect_ordered_request("/hook").respond_with_data("ok")
    assert deliver(httpserver.url_for("/hook"), PAYLOAD, sleep=sleeps).delivered
    assert sleeps.calls == [RETRY_AFTER_CAP]


def test_retries_exhausted_on_5xx_is_retryable_with_exponential_backoff(
    httpserver: HTTPServer, sleeps: Sleeps, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    httpserver.expect_request(HOOK, method="POST").respond_with_data("upstream down", status=503)
    delivery = deliver(httpserver.url_for(HOOK), PAYLOAD, attempts=4, backoff=1.0, sleep=sleeps)
    assert not delivery.delivered and delivery.retryable
    assert delivery.status == 503 and delivery.attempts == 4 and len(httpserver.log) == 4
    assert sleeps.calls == [1.0, 2.0, 4.0]
    assert delivery.error is not None
    assert "HTTP 503" in delivery.error and "upstream down" in delivery.error and "after 4 attempts" in delivery.error
    assert f"http://{httpserver.host}:{httpserver.port}/…" in delivery.error
    assert_no_secret(delivery, caplog)


def test_404_is_not_retried(httpserver: HTTPServer, sleeps: Sleeps, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    httpserver.expect_request(HOOK, method="POST").respond_with_data("no_service", status=404)
    delivery = deliver(httpserver.url_for(HOOK), PAYLOAD, sleep=sleeps)
    assert not delivery.delivered and not delivery.retryable
    assert delivery.status == 404 and delivery.attempts == 1 and len(httpserver.log) == 1
    assert sleeps.calls == []
    assert delivery.error is not None and "HTTP 404" in delivery.error and "no_service" in delivery.error
    assert_no_secret(delivery, caplog)


def test_redirect_is_not_followed(httpserver: HTTPServer, sleeps: Sleeps) -> None:
    httpserver.expect_request("/hook").respond_with_data("", status=302, headers={"Location": "/elsewhere"})
    httpserver.expect_request("/elsewhere").respond_with_data("ok")
    delivery = deliver(httpserver.url_for("/hook"), PAYLOAD, sleep=sleeps)
    assert not delivery.delivered and not delivery.retryable and delivery.status == 302
    assert [request.path for request, _ in httpserver.log] == ["/hook"]


def test_server_down_is_retryable_and_keeps_the_secret(sleeps: Sleeps, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    port = closed_port()
    delivery = deliver(f"http://127.0.0.1:{port}{HOOK}", PAYLOAD, attempts=3, backoff=0.25, sleep=sleeps)
    assert not delivery.delivered and delivery.retryable
    assert delivery.status is None and delivery.attempts == 3
    assert sleeps.calls == [0.25, 0.5]
    assert delivery.error is not None
    assert f"http://127.0.0.1:{port}/…" in delivery.error and "could not connect" in delivery.error
    assert "refused" in delivery.error.lower()
    assert "/services" not in delivery.error
    assert_no_secret(delivery, caplog)
    # the test means something only if urllib3 did log the request it tried
    assert any(r.name.startswith("urllib3") for r in caplog.records)


def test_secret_never_appears_in_third_party_debug_logs(
    httpserver: HTTPServer, sleeps: Sleeps, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    url = httpserver.url_for(HOOK) + "?token=" + SECRET + "2"
    httpserver.expect_ordered_request(HOOK).respond_with_data("", status=500)
    httpserver.expect_ordered_request(HOOK).respond_with_data("ok")
    delivery = deliver(url, PAYLOAD, sleep=sleeps)
    assert delivery.delivered
    urllib3_lines = [r.getMessage() for r in caplog.records if r.name == "urllib3.connectionpool"]
    assert any('"POST' in line for line in urllib3_lines), urllib3_lines
    assert_no_secret(delivery, caplog)


def test_echoed_secret_in_a_response_body_is_scrubbed(
    httpserver: HTTPServer, sleeps: Sleeps, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    httpserver.expect_request(HOOK).respond_with_data(f"The URL {HOOK} was not found", status=404)
    delivery = deliver(httpserver.url_for(HOOK), PAYLOAD, sleep=sleeps)
    assert delivery.error is not None and "was not found" in delivery.error
    assert_no_secret(delivery, caplog)


def test_a_token_echoed_alone_is_scrubbed(
    httpserver: HTTPServer, sleeps: Sleeps, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    httpserver.expect_request(HOOK).respond_with_data(f"token {SECRET} revoked; team T000 unknown", status=403)
    delivery = deliver(httpserver.url_for(HOOK) + "?sig=AbCdEfGhIjKlMn", PAYLOAD, sleep=sleeps)
    assert delivery.error is not None and delivery.error.endswith("token … revoked; team T000 unknown")
    assert_no_secret(delivery, caplog)
    assert "AbCdEfGhIjKlMn" not in repr(delivery) and "services" in scrub("services")


def test_timeout_is_retryable(httpserver: HTTPServer, sleeps: Sleeps, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)

    released = threading.Event()

    def slow(request: Request) -> Response:
        released.wait(5)
        return Response("late")

    httpserver.expect_request(HOOK).respond_with_handler(slow)
    delivery = deliver(httpserver.url_for(HOOK), PAYLOAD, timeout=0.1, attempts=1, sleep=sleeps)
    released.set()  # let the (single-threaded) server finish before the next test uses it
    deadline = time.monotonic() + 5
    while not httpserver.log and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not delivery.delivered and delivery.retryable and delivery.status is None
    assert delivery.error is not None and "no response within 0.1 s" in delivery.error
    assert_no_secret(delivery, caplog)


def test_invalid_url_is_final_and_redacted(sleeps: Sleeps, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    delivery = deliver(f"hooks.example.com{HOOK}", PAYLOAD, sleep=sleeps)
    assert not delivery.delivered and not delivery.retryable and delivery.attempts == 1
    assert delivery.error == "webhook (invalid webhook URL): invalid webhook URL"
    assert_no_secret(delivery, caplog)


def test_custom_method_and_headers_are_sent_and_kept_secret(
    httpserver: HTTPServer, sleeps: Sleeps, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    token = "tok-" + SECRET
    httpserver.expect_request(HOOK, method="PUT", headers={"Authorization": f"Bearer {token}"},
                              json=PAYLOAD).respond_with_data(f"bad token {token}", status=401)
    delivery = deliver(httpserver.url_for(HOOK), PAYLOAD, headers={"Authorization": f"Bearer {token}"},
                       method="put", sleep=sleeps)
    assert len(httpserver.log) == 1 and delivery.status == 401 and not delivery.retryable
    assert delivery.error is not None and "bad token …" in delivery.error
    assert_no_secret(delivery, caplog)


def test_attempts_must_be_positive() -> None:
    with pytest.raises(ValueError):
        deliver("http://127.0.0.1:9/x", PAYLOAD, attempts=0)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://hooks.slack.com/services/T0/B0/XXXX", "https://hooks.slack.com/…"),
        ("https://user:pass@example.com:8443/hooks/abc?token=x#frag", "https://example.com:8443/…"),
        ("https://prod-12.westus.logic.azure.com:443/workflows/abc/triggers/manual/paths/invoke?sig=s",
         "https://prod-12.westus.logic.azure.com:443/…"),
        ("http://[::1]:8080/hook", "http://[::1]:8080/…"),
        ("https://Discord.com/api/webhooks/1/abc", "https://discord.com/…"),
        ("not a url", "(invalid webhook URL)"),
        ("http://host:notaport/x", "(invalid webhook URL)"),
    ],
)
def test_redact_keeps_scheme_and_host_only(url: str, expected: str) -> None:
    assert redact(url) == expected


def test_parse_retry_after() -> None:
    now = datetime(2026, 12, 3, 16, 27, 40, tzinfo=UTC)
    assert parse_retry_after("1") == 1
    assert parse_retry_after(" 2.5 ") == 2.5
    assert parse_retry_after(format_datetime(now + timedelta(seconds=120), usegmt=True), now=now) == 120
    assert parse_retry_after(format_datetime(now - timedelta(seconds=5), usegmt=True), now=now) == 0
    assert parse_retry_after("99999") == RETRY_AFTER_CAP
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None
    assert parse_retry_after("") is None


def test_retry_after_http_date_is_honoured(httpserver: HTTPServer, sleeps: Sleeps) -> None:
    when = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    httpserver.expect_ordered_request("/hook").respond_with_data("", status=503, headers={"Retry-After": when})
    httpserver.expect_ordered_request("/hook").respond_with_data("ok")
    assert deliver(httpserver.url_for("/hook"), PAYLOAD, backoff=0.01, sleep=sleeps).delivered
    assert len(sleeps.calls) == 1 and 25 <= sleeps.calls[0] <= 30
