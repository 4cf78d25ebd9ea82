"""Smoke test against the live Debian archive: driftwatch's pending set equals apt's own answer."""

from __future__ import annotations

import pytest

from driftwatch import aptparse
from driftwatch.engine import PROBE_LABEL, DockerEngine
from driftwatch.models import ScanStatus
from driftwatch.scanner import PROBE_ENV, Scanner
from tests.engine.conftest import BASE

pytestmark = [pytest.mark.docker, pytest.mark.network]


def apt_simulation(engine: DockerEngine, image: str) -> str:
    """`apt-get -s dist-upgrade` in the same image, run directly through the SDK (not driftwatch)."""
    container = engine.client.containers.create(
        image, entrypoint=["/bin/sh", "-c"], command=["apt-get update -qq && apt-get -s dist-upgrade"],
        user="0:0", environment=PROBE_ENV, labels={PROBE_LABEL: "1"})
    try:
        container.start()
        assert container.wait(timeout=300)["StatusCode"] == 0
        return container.logs(stdout=True, stderr=False).decode()
    finally:
        container.remove(force=True)


def test_debian12_base_matches_apt(docker_engine: DockerEngine) -> None:
    result = Scanner(docker_engine, timeout=300).scan(BASE)
    assert result.status is ScanStatus.OK, f"{result.reason}: {result.detail}"
    sim = aptparse.parse_simulation(apt_simulation(docker_engine, BASE))
    upgrades = {(i.package, i.candidate) for i in sim.installs if i.installed is not None}
    assert {(u.package, u.candidate) for u in result.updates} == upgrades
    security = {i.package for i in sim.installs if i.installed is not None and i.security}
    assert {u.package for u in result.updates if u.security} == security
