"""End-of-life dates of Debian and Ubuntu releases, from Debian's distro-info-data (vendored CSVs)."""

from __future__ import annotations

import csv
import functools
from dataclasses import dataclass
from datetime import date
from importlib import resources

from .models import OsRelease


@dataclass(frozen=True, slots=True)
class ReleaseInfo:
    """One release line: when its free security support ends (Debian LTS, Ubuntu standard)."""

    distro: str
    version: str
    series: str
    eol: date | None

    def is_eol(self, today: date) -> bool:
        """True once the release gets no more updates from the free archive."""
        return self.eol is not None and today > self.eol


def _day(text: str | None) -> date | None:
    return date.fromisoformat(text) if text else None


@functools.cache
def _table(distro: str) -> tuple[ReleaseInfo, ...]:
    text = resources.files("driftwatch").joinpath("data").joinpath(f"{distro}.csv").read_text(encoding="utf-8")
    rows = []
    for row in csv.DictReader(text.splitlines()):
        # Debian: LTS keeps the security archive going; Ubuntu: standard support (ESM needs Pro).
        end = row.get("eol-lts") or row.get("eol") if distro == "debian" else row.get("eol-server") or row.get("eol")
        rows.append(ReleaseInfo(distro, (row["version"].split() or [""])[0], row["series"], _day(end)))
    return tuple(rows)


def lookup(os_release: OsRelease | None) -> ReleaseInfo | None:
    """The release an image runs, by codename or version; None for other distributions."""
    if os_release is None or os_release.id not in ("debian", "ubuntu"):
        return None
    for info in _table(os_release.id):
        if os_release.version_codename and info.series == os_release.version_codename:
            return info
        if os_release.version_id and info.version == os_release.version_id:
            return info
    return None
