"""Issue 3 on the real engine: drift age survives a cached rebuild, ends at an uncached one, and the
apt layer's age is the cached upgrade layer's, not the image's."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from driftwatch import policy
from driftwatch.config import Settings, Thresholds
from driftwatch.engine import DockerEngine
from driftwatch.models import ScanStatus
from driftwatch.scanner import Scanner
from driftwatch.store import open_store
from tests.engine.conftest import BASE, ONLY_1_0, UPGRADING, ImageBuilder, app_context, publish
from tests.support.aptrepo import DEFAULT_SUITES

pytestmark = pytest.mark.docker

# Upgrade layer, then a step that changes on every build (code): a cached rebuild gives a new image
# with old packages.
DOCKERFILE = UPGRADING + 'ARG STAMP=0\nRUN echo "$STAMP" > /build-stamp\n'


def test_cached_rebuild_keeps_drift_age_and_uncached_rebuild_ends_it(
    docker_engine: DockerEngine, images: ImageBuilder, moving_repo: tuple[Path, str], tmp_path: Path
) -> None:
    repo, url = moving_repo
    context = app_context(tmp_path / "ctx", url, DOCKERFILE)
    tag = images.tag("app")

    publish(repo, ONLY_1_0)
    images.build(context, "app", tag=tag, buildargs={"STAMP": "1"})  # upgrade layer: nothing newer yet
    first = docker_engine.inspect_image(tag)
    assert first.apt_layer_command == "apt-get update && apt-get -y upgrade && rm -rf /var/lib/apt/lists/*"

    publish(repo, DEFAULT_SUITES)  # the archive moves on: 1.1 (security) and 2.0 (updates)
    day0 = datetime.now(timezone.utc)
    store = open_store(tmp_path / "d.db")
    scan = Scanner(docker_engine, network="host", timeout=120, clock=lambda: day0).scan(tag)
    assert (scan.status, scan.pending_security, scan.pending_total) == (ScanStatus.OK, 1, 2)
    store.save_scan(scan)

    images.build(context, "app", tag=tag, buildargs={"STAMP": "2"})  # daily cached rebuild
    second = docker_engine.inspect_image(tag)
    assert second.image_id != first.image_id  # a new image ...
    assert second.apt_layer_created == first.apt_layer_created  # ... with the old upgrade layer
    assert second.created is not None and second.apt_layer_created is not None
    assert second.apt_layer_created < second.created

    day3 = day0 + timedelta(days=3)
    later = Scanner(docker_engine, network="host", timeout=120, clock=lambda: day3).scan(tag)
    assert (later.pending_security, later.pending_total) == (1, 2)
    store.save_scan(later)
    (row,) = policy.assess(store.latest(), Settings(defaults=Thresholds(max_security_age_days=2)), day3)
    assert row.summary.image_id == second.image_id
    assert row.summary.oldest_security_since == day0  # first seen on the first image, kept
    assert row.oldest_security_age_days == pytest.approx(3.0)
    assert row.verdict.breaches[0].threshold == "max_security_age_days"
    assert row.apt_layer_age_days is not None and row.apt_layer_age_days > 3.0

    images.build(context, "app", tag=tag, buildargs={"STAMP": "3"}, no_cache=True)  # the remedy
    day4 = day0 + timedelta(days=4)
    fixed = Scanner(docker_engine, network="host", timeout=120, clock=lambda: day4).scan(tag)
    assert (fixed.status, fixed.pending_total) == (ScanStatus.OK, 0)
    store.save_scan(fixed)
    drift = {d.package: d for d in store.drift(tag)}
    assert drift["demo-a"].first_seen == day0 and drift["demo-a"].resolved_at == day4
    assert drift["demo-b"].last_seen == day3 and drift["demo-b"].resolved_at == day4
    (row,) = policy.assess(store.latest(), Settings(defaults=Thresholds(max_security_age_days=2)), day4)
    assert row.verdict.state.value == "ok" and row.oldest_security_age_days is None
    store.close()


def test_image_without_upgrade_step_reports_base_layer(docker_engine: DockerEngine, drift_image: str) -> None:
    identity = docker_engine.inspect_image(drift_image)
    base = docker_engine.inspect_image(BASE)
    assert identity.history_known and identity.apt_layer_command is None
    assert identity.apt_layer_created == base.created.replace(microsecond=0)  # type: ignore[union-attr]
