"""Locate fixture files and the real-world cases."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent.parent
FIXTURES = ROOT / "fixtures"


def fixture_path(name: str) -> Path:
    """A file under fixtures/; a missing one fails loudly instead of reading as empty."""
    path = FIXTURES / name
    assert path.is_file(), f"fixture {name} is missing"
    return path


def fixture_text(name: str) -> str:
    """Text of a fixture file."""
    return fixture_path(name).read_text(encoding="utf-8")


def case(case_id: str) -> dict[str, Any]:
    """One case from fixtures/cases/cases.json (copied from the shared real-world reports)."""
    for item in json.loads(fixture_text("cases/cases.json")):
        if item["id"] == case_id:
            return item  # type: ignore[no-any-return]
    raise AssertionError(f"case {case_id} not found")
