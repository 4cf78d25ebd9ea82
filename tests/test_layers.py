"""Which layer last refreshed packages, from real `docker history` text."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest

from driftwatch.layers import find_apt_layer, refreshes_packages
from driftwatch.models import HistoryEntry
from tests.support.files import fixture_text


@pytest.mark.parametrize(("created_by", "expected"), [
    ("/bin/sh -c apt-get update && apt-get -y upgrade && rm -rf /var/lib/apt/lists/*", True),
    ("|1 STAMP=2 /bin/sh -c apt-get update && apt-get install -y curl", True),
    ("RUN /bin/sh -c apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get -y dist-upgrade # buildkit", True),
    ("/bin/sh -c apt full-upgrade -y", True),
    ("/bin/sh -c apt-get install -y curl", False),  # no update in the same step: cached lists
    ("/bin/sh -c pip install --upgrade pip", False),
    ('/bin/sh -c echo "apt-get upgrade" > /notes', False),
    ("/bin/sh -c apt-get -s upgrade", False),  # a simulation changes nothing
    ('/bin/sh -c #(nop)  CMD ["bash"]', False),
    ("", False),
])
def test_refreshes_packages(created_by: str, expected: bool) -> None:
    assert refreshes_packages(created_by) is expected


def test_newest_refreshing_layer_wins() -> None:
    t = [datetime(2026, m, 1, tzinfo=timezone.utc) for m in (9, 6, 3, 1)]
    history = [HistoryEntry(t[0], "/bin/sh -c echo $STAMP > /stamp"),
               HistoryEntry(t[1], "/bin/sh -c apt-get update && apt-get -y upgrade"),
               HistoryEntry(t[2], "/bin/sh -c apt-get update && apt-get install -y curl"),
               HistoryEntry(t[3], "")]
    layer = find_apt_layer(history)
    assert (layer.created, layer.command) == (t[1], "apt-get update && apt-get -y upgrade")


def test_captured_imported_base_has_no_upgrade_step() -> None:
    rows = [json.loads(line) for line in fixture_text("inspect/driftwatch-debian-12.history.jsonl").splitlines()]
    assert len(rows) == 1 and rows[0]["CreatedBy"] == ""
    base = datetime(2026, 12, 3, 16, 22, 43, tzinfo=timezone.utc)
    layer = find_apt_layer([HistoryEntry(base, rows[0]["CreatedBy"])])
    assert (layer.created, layer.command) == (base, None)
    assert find_apt_layer([]) == find_apt_layer([]).__class__(None, None)
