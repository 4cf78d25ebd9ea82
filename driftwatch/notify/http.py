"""Delivering webhook payloads: the only module that imports ``requests``.

A webhook URL is a credential: whoever has ``https://hooks.slack.com/services/T…/B…/…`` can post
to the channel. Its path and query must therefore never leave this module. :func:`redact` keeps
the scheme and host only; every :class:`Delivery`, log line, and :class:`~driftwatch.errors.WebhookError`
says ``https://hooks.slack.com/…``. ``requests`` and ``urllib3`` put the full URL into their
exception messages and their DEBUG log lines, so this module never shows a ``requests`` exception's
text (it describes the failure from the exception's type and the operating system's error
string), and it installs a logging filter on the ``urllib3`` and ``requests`` loggers that
replaces the secret part of every URL it has delivered to.

Retries: a timeout, a connection error, HTTP 429 and any 5xx are retried with exponential backoff
(``backoff``, ``2 × backoff``, ``4 × backoff``…), or after the server's ``Retry-After`` (seconds or
an HTTP-date, capped at :data:`RETRY_AFTER_CAP`). Any other 4xx, a redirect (never followed: a
POST must not be replayed elsewhere) and an invalid URL are final. A read timeout is retried
although the server may have posted the message: a duplicate is better than a lost alert.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit

import requests

from .. import __version__
from ..errors import WebhookError
from .content import clean

logger = logging.getLogger(__name__)

RETRY_AFTER_CAP = 300.0  # seconds: never wait longer than this for one retry
SNIPPET_LIMIT = 200  # characters of a failed response's body kept in the error
REDACTED = "…"
USER_AGENT = f"driftwatch/{__version__}"


@dataclass(frozen=True, slots=True)
class Delivery:
    """The outcome of delivering one payload. Never contains the webhook URL's secret part.

    ``retryable`` is True when the last failure was transient (timeout, connection error, 429,
    5xx): the caller should keep the alert and try again later instead of dropping it.
    """

    delivered: bool
    status: int | None
    attempts: int
    error: str | None
    retryable: bool

    def raise_for_failure(self) -> None:
        """Raise :class:`~driftwatch.errors.WebhookError` (redacted text) unless delivered."""
        if not self.delivered:
            raise WebhookError(self.error or "webhook not delivered")


def redact(url: str) -> str:
    """Scheme, host and port of a webhook URL; its path, query and credentials become ``…``.

    ``https://hooks.slack.com/services/T0/B0/XXXX`` → ``https://hooks.slack.com/…``.
    """
    try:
        parts = urlsplit(str(url).strip())
        host = parts.hostname
        port = parts.port
    except ValueError:
        return "(invalid webhook URL)"
    if not parts.scheme or not host:
        return "(invalid webhook URL)"
    netloc = f"[{host}]" if ":" in host else host
    if port is not None:
        netloc += f":{port}"
    return f"{parts.scheme}://{netloc}/{REDACTED}"


# --- keeping the secret out of third-party logs ------------------------------------------------

_secrets: set[str] = set()
_secrets_lock = threading.Lock()


def _secret_parts(url: str) -> set[str]:
    """Every substring of ``url`` that must not be shown: path+query, each alone, credentials."""
    found: set[str] = set()
    for candidate in {url, _prepared(url)}:
        try:
            parts = urlsplit(candidate)
        except ValueError:
            found.add(candidate)
            continue
        tail = candidate.split(parts.netloc, 1)[1] if parts.netloc else candidate
        found.update({tail, parts.path, parts.query, parts.fragment})
        # A server may echo one token alone (``…/B0/XXXX`` → ``XXXX``): each path segment and query
        # value that looks like a key is a secret too; plain words such as ``services`` are not.
        pieces = [*parts.path.split("/"), *(v for q in parts.query.split("&") for v in q.split("=")[1:])]
        found.update(p for p in pieces if _token_like(p))
        with contextlib.suppress(ValueError):
            found.update({parts.username or "", parts.password or ""})
    return {s for s in found if len(s) >= 2 and s.strip("/?#")}


def _token_like(piece: str) -> bool:
    """A path segment or query value that may be a key: 12+ characters, or 8+ with a digit."""
    return len(piece) >= 12 or (len(piece) >= 8 and any(c.isdigit() for c in piece))


def _prepared(url: str) -> str:
    """The URL as requests will send it (requoted), or the input when requests rejects it."""
    try:
        prepared = requests.models.PreparedRequest()
        prepared.prepare_url(url, None)
        return prepared.url or url
    except (requests.RequestException, ValueError):  # rejected: nothing more to register
        return url


def _remember(url: str, headers: Mapping[str, str]) -> None:
    """Register the URL's secret parts, and caller-supplied header values (tokens), for scrubbing."""
    parts = _secret_parts(url)
    for value in headers.values():
        parts.update(v for v in {str(value), *str(value).split()} if len(v) >= 8)
    with _secrets_lock:
        _secrets.update(parts)


def scrub(text: str) -> str:
    """``text`` with every known webhook secret replaced by ``…``."""
    with _secrets_lock:
        known = sorted(_secrets, key=len, reverse=True)
    for secret in known:
        if secret in text:
            text = text.replace(secret, REDACTED)
    return text


class _ScrubSecrets(logging.Filter):
    """Rewrites records of third-party loggers that contain a webhook URL's secret part."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not _secrets:
            return True
        try:
            message = record.getMessage()
        except (TypeError, ValueError):  # a malformed record is logged as it is
            return True
        scrubbed = scrub(message)
        if scrubbed != message:
            record.msg, record.args = scrubbed, None
        if record.exc_info:
            text = logging.Formatter().formatException(record.exc_info)
            record.exc_info, record.exc_text = None, scrub(text)
        elif record.exc_text:
            record.exc_text = scrub(record.exc_text)
        return True


_FILTER = _ScrubSecrets()
_GUARDED_LOGGERS = (
    "requests",
    "urllib3",
    "urllib3.connection",
    "urllib3.connectionpool",
    "urllib3.poolmanager",
    "urllib3.response",
    "urllib3.util.retry",
)


def _guard_third_party_logs() -> None:
    """Attach the scrubbing filter to the loggers that print request URLs (idempotent)."""
    for name in _GUARDED_LOGGERS:
        third_party = logging.getLogger(name)
        if _FILTER not in third_party.filters:
            third_party.addFilter(_FILTER)


_guard_third_party_logs()


# --- Retry-After -------------------------------------------------------------------------------

def parse_retry_after(value: str | None, *, now: datetime | None = None, cap: float = RETRY_AFTER_CAP) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delay-seconds or HTTP-date), capped.

    None when the header is absent or unreadable; 0 for a date in the past.
    """
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - (now or datetime.now(UTC))).total_seconds()
    if not math.isfinite(seconds):
        return None
    return min(max(seconds, 0.0), cap)


# --- describing failures without the URL ---------------------------------------------------------

def _chain(exc: BaseException) -> Iterator[BaseException]:
    """The exception, its causes, contexts and wrapped reasons, each once."""
    seen: set[int] = set()
    stack: list[BaseException] = [exc]
    while stack:
        current = stack.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        linked = [current.__cause__, current.__context__, getattr(current, "reason", None), *current.args]
        stack.extend(e for e in linked if isinstance(e, BaseException))


def _cause(exc: BaseException) -> str:
    """What went wrong, in words that cannot contain the URL (OS error strings, TLS reason codes)."""
    for link in _chain(exc):
        if isinstance(link, socket.gaierror):
            return "name resolution failed"
        if isinstance(link, ssl.SSLError):
            reason = link.reason if isinstance(link.reason, str) else None
            return f"TLS error ({reason})" if reason else "TLS error"
        if isinstance(link, OSError) and isinstance(link.errno, int) and isinstance(link.strerror, str):
            return link.strerror
    return type(exc).__name__


def _from_exception(exc: requests.RequestException, target: str, timeout: float) -> tuple[str, bool]:
    """(error text, retryable) for a requests exception, never using the exception's own text."""
    if isinstance(exc, requests.exceptions.SSLError):
        return f"webhook {target}: {_cause(exc)}", False
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return f"webhook {target}: connection timed out after {timeout:g} s", True
    if isinstance(exc, requests.Timeout):
        return f"webhook {target}: no response within {timeout:g} s", True
    if isinstance(exc, requests.ConnectionError):
        return f"webhook {target}: could not connect ({_cause(exc)})", True
    if isinstance(exc, (requests.exceptions.InvalidURL, requests.exceptions.MissingSchema,
                        requests.exceptions.InvalidSchema, requests.exceptions.URLRequired)):
        return f"webhook {target}: invalid webhook URL", False
    return f"webhook {target}: request failed ({type(exc).__name__})", False


def _snippet(response: requests.Response) -> str:
    """The start of a failed response's body (Slack says ``no_service``, Discord a JSON reason)."""
    try:
        raw = response.raw.read(4 * SNIPPET_LIMIT, decode_content=True) if response.raw is not None else b""
    except Exception:  # noqa: BLE001 - urllib3 read errors vary; the body is only a courtesy
        return ""
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else ""
    return clean(scrub(text), SNIPPET_LIMIT)


def _from_response(response: requests.Response, target: str) -> tuple[str, bool]:
    """(error text, retryable) for a non-2xx response."""
    status = response.status_code
    reason = clean(scrub(response.reason or ""), 80)
    snippet = _snippet(response)
    error = f"webhook {target} answered HTTP {status}" + (f" {reason}" if reason else "")
    if snippet:
        error += f": {snippet}"
    if 300 <= status < 400:
        return error + " (redirects are not followed)", False
    return error, status == 429 or 500 <= status <= 599


# --- delivery ----------------------------------------------------------------------------------

def deliver(
    url: str,
    payload: Mapping[str, Any],
    *,
    timeout: float = 10,
    attempts: int = 4,
    backoff: float = 1.0,
    sleep: Callable[[float], object] = time.sleep,
    headers: Mapping[str, str] | None = None,
    method: str = "POST",
) -> Delivery:
    """POST ``payload`` as JSON to ``url``, retrying transient failures; never raises for HTTP trouble.

    Makes at most ``attempts`` requests. Between them it waits ``backoff × 2**(n-1)`` seconds after
    the n-th failure, or what the server's ``Retry-After`` asks (capped at :data:`RETRY_AFTER_CAP`).
    Returns a :class:`Delivery`; call :meth:`Delivery.raise_for_failure` to turn a failure into a
    :class:`~driftwatch.errors.WebhookError`. Raises ``ValueError`` for ``attempts < 1`` or a payload
    that is not JSON (NaN included).

    ``headers`` are added to (and may override) the JSON content type and driftwatch's User-Agent,
    for example a CI token; their values are treated as secrets like the URL's path. ``method`` is
    ``POST`` (chat webhooks) or another verb a CI trigger wants, such as ``PUT``.
    """
    if attempts < 1:
        raise ValueError("attempts must be at least 1")
    body = json.dumps(payload, ensure_ascii=False, allow_nan=False).encode("utf-8")
    target = redact(url)
    extra = dict(headers or {})
    _remember(str(url), extra)
    sent = {"Content-Type": "application/json; charset=utf-8", "User-Agent": USER_AGENT, **extra}
    verb = method.upper()
    status: int | None = None
    error = "webhook not delivered"
    retryable = False
    with requests.Session() as session:
        for attempt in range(1, attempts + 1):
            logger.debug("%s %s (%d bytes), attempt %d of %d", verb, target, len(body), attempt, attempts)
            wait: float | None = None
            try:
                response = session.request(verb, url, data=body, headers=sent, timeout=timeout,
                                           allow_redirects=False, stream=True)
            except requests.RequestException as exc:
                status = None
                error, retryable = _from_exception(exc, target, timeout)
            else:
                with response:
                    status = response.status_code
                    if 200 <= status < 300:
                        logger.debug("%s accepted the payload: HTTP %d", target, status)
                        return Delivery(True, status, attempt, None, False)
                    error, retryable = _from_response(response, target)
                    if retryable:
                        wait = parse_retry_after(response.headers.get("Retry-After"))
            logger.debug("attempt %d failed: %s", attempt, error)
            if not retryable or attempt == attempts:
                if attempt > 1:
                    error += f" (after {attempt} attempts)"
                logger.info("%s", error)
                return Delivery(False, status, attempt, error, retryable)
            delay = wait if wait is not None else backoff * 2 ** (attempt - 1)
            logger.debug("retrying %s in %g s", target, delay)
            sleep(delay)
    raise AssertionError("unreachable")  # pragma: no cover
