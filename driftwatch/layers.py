"""Pure: which layer of an image last refreshed its packages, from `docker history`.

A cached `RUN apt-get update && apt-get -y upgrade` layer keeps its original creation time in the
history of every image built on top of it, so its age is the age of the packages, even on an image
created today. With no such layer, the packages are as old as the base layer.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from .lint import PackageAction, package_steps
from .models import HistoryEntry


@dataclass(frozen=True, slots=True)
class AptLayer:
    """When the packages were last refreshed, and by which command (None: no upgrade step)."""

    created: datetime | None
    command: str | None


def refreshes_packages(created_by: str) -> bool:
    """Does this layer's command upgrade packages or install them from freshly updated lists?

    The same shell analysis as `driftwatch lint` (one definition of "refresh" for both).
    """
    try:
        steps = package_steps(_clean(created_by))
    except ValueError:  # text the shell lexer cannot read is not an upgrade we can vouch for
        return False
    updated = False
    for step in steps:
        if step.action is PackageAction.UPGRADE or (updated and step.action is PackageAction.INSTALL):
            return True
        updated = updated or step.action is PackageAction.UPDATE
    return False


def _clean(created_by: str) -> str:
    text = re.sub(r"^\|\d+ (?:\S+=\S* )*", "", created_by.strip())  # classic builder's ARG prefix
    text = re.sub(r"^(?:RUN )?/bin/sh -c (?:#\(nop\) )?", "", text)
    return re.sub(r"\s+# buildkit$", "", text).strip()


def find_apt_layer(history: Sequence[HistoryEntry]) -> AptLayer:
    """``history`` newest first, as the engine returns it."""
    for entry in history:
        if refreshes_packages(entry.created_by):
            return AptLayer(entry.created, _clean(entry.created_by))
    base = history[-1].created if history else None
    return AptLayer(base, None)
