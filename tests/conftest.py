"""Shared fixtures: captured-output loader, real SQLite stores, and the real-engine gate.

Tests marked ``docker`` need a real engine. Without one they skip with a loud reason; under
``CI=true`` a missing engine is an error, never a silent skip.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from driftwatch.store import Store, open_store


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    """A real SQLite file under tmp_path."""
    s = open_store(tmp_path / "driftwatch.db")
    yield s
    s.close()


@pytest.fixture(scope="session")
def docker_engine() -> Any:
    """The real engine, once per session; skip (or fail under CI=true) when none answers."""
    from driftwatch.engine import DockerEngine
    from driftwatch.errors import EngineUnavailable

    try:
        return DockerEngine()
    except EngineUnavailable as exc:
        message = f"NO DOCKER ENGINE: {exc}. Run `make test` (it starts one) or set DOCKER_HOST."
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message, pytrace=False)
        pytest.skip(message)


@pytest.fixture(autouse=True)
def _engine_gate(request: pytest.FixtureRequest) -> Iterator[None]:
    """Docker-marked tests get the engine gate, and must leave no probe container behind, nor a
    package-lists volume (of any driftwatch process: the CLI's engines have run IDs of their own)."""
    if request.node.get_closest_marker("docker") is None:
        yield
        return
    engine = request.getfixturevalue("docker_engine")
    before = {v.name for v in engine.find_volumes(all_scopes=True)}
    yield
    assert engine.leftover_probes() == [], "a driftwatch probe container was left behind"
    left = {v.name for v in engine.find_volumes(all_scopes=True)} - before
    assert left == set(), f"driftwatch volume(s) left behind: {sorted(left)}"
