"""Rebuild planning and CI webhook triggers (a real HTTP server on loopback; no engine needed)."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner
from pytest_httpserver import HTTPServer

from driftwatch.cli import main
from driftwatch.rebuild import base_images, render_body
from driftwatch.store import open_store
from tests.test_store import ok_scan

GITHUB_STYLE = """
[[images]]
reference = "app:1"

[images.rebuild]
type = "webhook"
url_env = "APP_REBUILD_URL"
token_env = "APP_REBUILD_TOKEN"
body = { ref = "main", inputs = { image = "{image}", reason = "{reason}" } }
"""


def run(tmp_path: Path, env: dict[str, str], *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["--db", str(tmp_path / "d.db"), "--config", str(tmp_path / "c.toml"), *args],
                                env={"DRIFTWATCH_NOW": "2026-12-02T03:00:00+00:00", **env}, catch_exceptions=False)
    return result.exit_code, result.output


def test_webhook_rebuild_posts_the_documented_body(httpserver: HTTPServer, tmp_path: Path) -> None:
    (tmp_path / "c.toml").write_text(GITHUB_STYLE)
    store = open_store(tmp_path / "d.db")
    store.save_scan(ok_scan("app:1"))
    store.close()
    httpserver.expect_oneshot_request(
        "/repos/o/r/actions/workflows/rebuild.yml/dispatches", method="POST",
        headers={"Authorization": "Bearer s3cr3t-token"},
        json={"ref": "main", "inputs": {"image": "app:1", "reason": "max_security_pending 1 > 0"}},
    ).respond_with_data("", status=204)
    url = httpserver.url_for("/repos/o/r/actions/workflows/rebuild.yml/dispatches")
    env = {"APP_REBUILD_URL": url, "APP_REBUILD_TOKEN": "s3cr3t-token"}
    code, out = run(tmp_path, env, "rebuild", "--breached")
    assert code == 0, out
    httpserver.check_assertions()
    assert "app:1: rebuilding (CI webhook; why: max_security_pending 1 > 0)" in out
    assert "app:1: triggered" in out and "(HTTP 204)" in out
    assert "s3cr3t-token" not in out and "/repos/o/r" not in out
    store = open_store(tmp_path / "d.db")
    (rec,) = store.rebuilds("app:1")
    assert (rec.trigger, rec.outcome.value, rec.before_security) == ("webhook", "triggered", 1)
    dump = json.dumps(list(store.db.query("select * from rebuilds")))
    assert "s3cr3t-token" not in dump and "/repos/o/r" not in dump
    store.close()

    code, out = run(tmp_path, env, "rebuild", "--breached")  # cooldown: nothing is posted again
    assert code == 0 and "app:1: skip: cooling down until 2026-12-03 03:00 UTC (last rebuild triggered)" in out


def test_webhook_rebuild_fails_clearly_without_its_variable(tmp_path: Path) -> None:
    (tmp_path / "c.toml").write_text(GITHUB_STYLE)
    code, out = run(tmp_path, {}, "rebuild", "app:1")
    assert code == 4
    assert "app:1: failed (- -> -): environment variable APP_REBUILD_URL is not set" in out


def test_webhook_rebuild_rejected_is_failed(httpserver: HTTPServer, tmp_path: Path) -> None:
    (tmp_path / "c.toml").write_text(GITHUB_STYLE)
    httpserver.expect_request("/hook", method="POST").respond_with_data("bad token", status=401)
    code, out = run(tmp_path, {"APP_REBUILD_URL": httpserver.url_for("/hook"), "APP_REBUILD_TOKEN": "t"},
                    "rebuild", "app:1")
    assert code == 4 and "app:1: failed" in out and "401" in out
    assert len(httpserver.log) == 1  # a 4xx is not retried


def test_dry_run_changes_nothing(tmp_path: Path) -> None:
    (tmp_path / "c.toml").write_text(GITHUB_STYLE)
    code, out = run(tmp_path, {}, "rebuild", "--dry-run", "app:1")
    assert (code, out) == (0, "app:1: would rebuild (CI webhook; why: requested)\n")
    store = open_store(tmp_path / "d.db")
    assert store.rebuilds("app:1") == []
    store.close()


def test_render_body_and_base_images(tmp_path: Path) -> None:
    body = {"token": "{token}", "ref": "main", "variables": {"IMG": "{image}"}, "list": ["{reason}", 3]}
    assert render_body(body, {"token": "T", "image": "a:1", "reason": "r"}) == {
        "token": "T", "ref": "main", "variables": {"IMG": "a:1"}, "list": ["r", 3]}
    dockerfile = tmp_path / "Dockerfile"
    dockerfile.write_text("FROM --platform=linux/amd64 debian:12 AS build\nFROM build AS app\n"
                          "from gcr.io/distroless/base\nFROM scratch\n")
    assert base_images(dockerfile) == ["debian:12", "gcr.io/distroless/base"]
    dockerfile.write_text("ARG BASE=debian:12\nARG TAG\nFROM ${BASE} AS app\nFROM app\nFROM $REG/x:${TAG}\n")
    assert base_images(dockerfile) == ["debian:12", "$REG/x:"]  # a declared ARG without a value is empty
    assert base_images(dockerfile, {"BASE": "driftwatch/debian:12", "TAG": "1", "REG": "r.io"}) == [
        "driftwatch/debian:12", "r.io/x:1"]


def test_missing_build_context_or_dockerfile_is_a_failed_build_not_a_crash(tmp_path: Path) -> None:
    from datetime import datetime, timezone

    from driftwatch.config import DockerRebuild, Settings
    from driftwatch.rebuild import Plan, Rebuilder

    class NeverBuild:
        def build(self, *args: object, **kwargs: object) -> None:
            raise AssertionError("the engine must not be asked to build a context that is not there")

        def tag(self, *args: object) -> None:
            raise AssertionError("nothing is tagged")

    store = open_store(tmp_path / "d.db")
    rebuilder = Rebuilder(Settings(), store, NeverBuild(), lambda ref: None, None,  # type: ignore[arg-type]
                          lambda: datetime(2026, 12, 3, tzinfo=timezone.utc))
    plan = Plan("app:1", DockerRebuild(context=tmp_path / "nowhere"), "requested")
    (rec,) = rebuilder.run([plan], {})
    assert (rec.outcome.value, rec.detail) == ("failed", f"build failed: the build context {tmp_path / 'nowhere'} "
                                                          "is not a directory")
    (tmp_path / "ctx").mkdir()
    (rec,) = rebuilder.run([Plan("app:1", DockerRebuild(context=tmp_path / "ctx", dockerfile="Dockerfile.x"),
                                 "requested")], {})
    assert rec.detail == f"build failed: no Dockerfile at {tmp_path / 'ctx' / 'Dockerfile.x'}"
    store.close()
