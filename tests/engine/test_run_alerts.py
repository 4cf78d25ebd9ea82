"""Issue 7 end to end: a breach alerts, a rebuild fixes it and a recovery alert follows, and a run
with nothing new sends nothing. Real engine, real loopback apt repository, real HTTP receiver."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner
from pytest_httpserver import HTTPServer

from driftwatch.cli import main
from driftwatch.engine import DockerEngine
from driftwatch.store import open_store
from tests.engine.conftest import UPGRADING, ImageBuilder, scan_config
from tests.engine.test_rebuild import stale_image

pytestmark = pytest.mark.docker


def config(path: Path, tag: str, ctx: Path | None) -> None:
    notify = '\n[[notify]]\nname = "hook"\ntype = "generic"\nurl_env = "DW_TEST_HOOK"\n'
    path.write_text(scan_config(tag, rebuild_context=ctx, extra=notify))


def run(db: Path, cfg: Path, url: str) -> tuple[int, dict[str, object]]:
    result = CliRunner().invoke(main, ["--db", str(db), "--config", str(cfg), "run", "--json"],
                                env={**os.environ, "DW_TEST_HOOK": url}, catch_exceptions=False)
    return result.exit_code, json.loads(result.stdout)


def test_breach_rebuild_recovery_then_silence(docker_engine: DockerEngine, images: ImageBuilder,
                                               moving_repo: tuple[Path, str], tmp_path: Path,
                                               httpserver: HTTPServer) -> None:
    tag, ctx = stale_image(images, moving_repo, tmp_path, UPGRADING, "nightly")
    db, cfg = tmp_path / "d.db", tmp_path / "c.toml"
    httpserver.expect_request("/hook/SECRET-PATH", method="POST").respond_with_data("", status=204)
    url = httpserver.url_for("/hook/SECRET-PATH")

    config(cfg, tag, None)  # first night: no rebuild configured yet
    code, summary = run(db, cfg, url)
    assert code == 1 and summary["verdicts"] == {tag: "breach"} and summary["alerts_sent"] == 1
    (first,) = [json.loads(r.get_data()) for r, _ in httpserver.log]
    assert (first["kind"], first["reference"], first["pending_security"]) == ("breach", tag, 1)

    config(cfg, tag, ctx)  # second night: the rebuild runs, is re-scanned, and the alert says recovered
    code, summary = run(db, cfg, url)
    assert code == 0, summary
    assert [r["outcome"] for r in summary["rebuilds"]] == ["effective"]  # type: ignore[index]
    assert summary["verdicts"] == {tag: "ok"} and summary["alerts_sent"] == 1
    second = json.loads(httpserver.log[-1][0].get_data())
    assert (second["kind"], second["reference"], second["pending_security"]) == ("recovered", tag, 0)
    assert second["rebuild_outcome"].startswith("effective (")
    assert second["rebuild_outcome"].endswith("): security updates pending 1 -> 0 (limit 0)")
    images.tags.append(docker_engine.inspect_image(tag).image_id)

    code, summary = run(db, cfg, url)  # third night: nothing new, nothing sent
    assert code == 0 and summary["alerts_sent"] == 0 and summary["rebuilds"] == []
    assert len(httpserver.log) == 2
    store = open_store(db)
    dump = json.dumps([list(store.db.query(f"select * from [{t}]")) for t in store.db.table_names()])
    assert "SECRET-PATH" not in dump
    (rec,) = store.rebuilds(tag)
    assert (rec.outcome.value, rec.before_security, rec.after_security) == ("effective", 1, 0)
    store.close()
