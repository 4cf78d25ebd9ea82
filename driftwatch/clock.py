"""The one clock. ``DRIFTWATCH_NOW`` (ISO 8601) pins it, for reproducible reports and tests."""

from __future__ import annotations

import os
from datetime import datetime, timezone

from .errors import ConfigError


def now() -> datetime:
    """The current time, timezone-aware UTC."""
    pinned = os.environ.get("DRIFTWATCH_NOW")
    if not pinned:
        return datetime.now(timezone.utc)
    try:
        stamp = datetime.fromisoformat(pinned)
    except ValueError as exc:
        raise ConfigError(
            f"DRIFTWATCH_NOW={pinned!r} is not an ISO 8601 time (e.g. 2026-12-03T04:00:00+00:00)"
        ) from exc
    return (stamp if stamp.tzinfo else stamp.replace(tzinfo=timezone.utc)).astimezone(timezone.utc)
