"""The generic webhook: driftwatch's own versioned JSON document, for scripts and other tools.

Schema ``driftwatch.alert/1``. Every key is always present; ``null`` means unknown (never zero).
A new key may be added within version 1; removing or changing the meaning of a key bumps the
version (``driftwatch.alert/2``), so a receiver should check ``schema`` first.

=============================  ===============  =================================================
key                            type             meaning
=============================  ===============  =================================================
``schema``                     string           always ``"driftwatch.alert/1"``
``kind``                       string           ``breach``, ``worsened``, ``reminder``,
                                                ``recovered``, ``failed``, ``eol`` or ``test``
``summary``                    string           one plain-text line, e.g. ``Drift alert:
                                                myorg/api:latest is over its drift threshold``
``reference``                  string           the image reference as the user named it
``image_id``                   string or null   full image ID (``sha256:…``)
``verdict``                    string           the policy verdict (``ok``, ``stale``, ``failed``…)
``breaches``                   list of strings  which thresholds are exceeded, one line each
``pending_security``           int or null      pending security updates; null when unknown
``pending_total``              int or null      all pending updates; null when unknown
``oldest_security_age_days``   number or null   age of the oldest pending security update
``apt_layer_age_days``         number or null   age of the image's apt upgrade layer
``packages``                   list of objects  every pending update in the alert, each with
                                                ``package``, ``installed``, ``candidate`` (strings)
                                                and ``security`` (bool)
``rebuild_outcome``            string or null   outcome of an automatic rebuild, if one ran
``reason``                     string or null   why a scan failed (``index_update_failed``…)
``detail``                     string or null   human-readable detail of the failure
``created_at``                 string           ISO 8601 with offset, in UTC
=============================  ===============  =================================================

Strings are not escaped for any markup (this is data, not a chat message): a receiver that
displays them must escape them for its own medium. They are cleaned like every notifier's text:
terminal escape sequences and control characters removed, whitespace collapsed, at most 4096
characters. Non-finite numbers are sent as ``null``.
"""

from __future__ import annotations

import math
from typing import Any

from .content import clean, compose
from .interface import Alert

SCHEMA = "driftwatch.alert/1"
TEXT_LIMIT = 4096


def _text(value: str | None) -> str | None:
    return None if value is None else clean(value, TEXT_LIMIT)


def _number(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def build(alert: Alert) -> dict[str, Any]:
    """The ``driftwatch.alert/1`` document of one alert."""
    message = compose(alert)
    return {
        "schema": SCHEMA,
        "kind": alert.kind.value,
        "summary": message.headline,
        "reference": clean(alert.reference, TEXT_LIMIT),
        "image_id": _text(alert.image_id),
        "verdict": clean(alert.verdict, TEXT_LIMIT),
        "breaches": [clean(b, TEXT_LIMIT) for b in alert.breaches],
        "pending_security": alert.pending_security,
        "pending_total": alert.pending_total,
        "oldest_security_age_days": _number(alert.oldest_security_age_days),
        "apt_layer_age_days": _number(alert.apt_layer_age_days),
        "packages": [
            {"package": clean(p.package, TEXT_LIMIT), "installed": clean(p.installed, TEXT_LIMIT),
             "candidate": clean(p.candidate, TEXT_LIMIT), "security": bool(p.security)}
            for p in alert.packages
        ],
        "rebuild_outcome": _text(alert.rebuild_outcome),
        "reason": _text(alert.reason),
        "detail": _text(alert.detail),
        "created_at": message.iso_time,
    }


class GenericNotifier:
    """Any endpoint that accepts driftwatch's own JSON (``schema: driftwatch.alert/1``)."""

    name = "generic"

    def payload(self, alert: Alert) -> dict[str, Any]:
        """The ``driftwatch.alert/1`` document; no HTTP."""
        return build(alert)
