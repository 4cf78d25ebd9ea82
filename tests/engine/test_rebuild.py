"""Issue 5 on the real engine: a rebuild past a threshold, re-scanned to prove it worked."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from driftwatch.cli import main
from driftwatch.engine import DockerEngine
from driftwatch.store import open_store
from tests.engine.conftest import BASE, ONLY_1_0, UPGRADING, ImageBuilder, app_context, publish, scan_config
from tests.support.aptrepo import DEFAULT_SUITES

pytestmark = pytest.mark.docker

NOT_UPGRADING = UPGRADING.rsplit("RUN apt-get update", 1)[0]
BROKEN = UPGRADING + "RUN echo 'the build breaks here' && exit 7\n"


def config(tmp_path: Path, tag: str, ctx: Path, *, pull: bool = False, extra: str = "") -> Path:
    path = tmp_path / f"{ctx.name}.toml"
    path.write_text(scan_config(tag, rebuild_context=ctx, pull=pull, extra=extra))
    return path


def cli(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    return result.exit_code, result.output


def stale_image(images: ImageBuilder, repo: tuple[Path, str], tmp_path: Path, dockerfile: str,
                name: str) -> tuple[str, Path]:
    """Build while only 1.0 exists, then publish 1.1 (security) and 2.0: the image is now behind."""
    path, url = repo
    ctx = app_context(tmp_path / name, url, dockerfile)
    publish(path, ONLY_1_0)
    tag = images.build(ctx, name)
    publish(path, DEFAULT_SUITES)
    return tag, ctx


def test_rebuild_without_cache_is_effective(docker_engine: DockerEngine, images: ImageBuilder,
                                            moving_repo: tuple[Path, str], tmp_path: Path) -> None:
    tag, ctx = stale_image(images, moving_repo, tmp_path, UPGRADING, "upgrading")
    db, cfg = str(tmp_path / "d.db"), str(config(tmp_path, tag, ctx))
    old_id = docker_engine.inspect_image(tag).image_id
    assert cli("--db", db, "--config", cfg, "scan")[0] == 0
    code, out = cli("--db", db, "--config", cfg, "check")
    assert (code, out) == (1, f"BREACH    {tag}: max_security_pending 1 > 0\n")

    code, out = cli("--db", db, "--config", cfg, "rebuild", "--breached", "--dry-run")
    assert code == 0 and f"{tag}: would rebuild (docker build; why: max_security_pending 1 > 0)" in out
    assert docker_engine.inspect_image(tag).image_id == old_id  # dry run changed nothing

    code, out = cli("--db", db, "--config", cfg, "rebuild", "--breached")
    assert code == 0, out
    new_id = docker_engine.inspect_image(tag).image_id
    assert new_id != old_id
    assert f"{tag}: effective ({old_id[7:19]} -> {new_id[7:19]}): security updates pending 1 -> 0 (limit 0)" in out
    images.tags.append(new_id)  # removed at the end of the session
    store = open_store(Path(db))
    (rec,) = store.rebuilds(tag)
    assert (rec.outcome.value, rec.old_image_id, rec.new_image_id) == ("effective", old_id, new_id)
    assert (rec.before_security, rec.before_total, rec.after_security, rec.after_total) == (1, 2, 0, 0)
    assert rec.why == "max_security_pending 1 > 0"
    store.close()
    assert cli("--db", db, "--config", cfg, "check")[0] == 0

    code, out = cli("--db", db, "--config", cfg, "rebuild", tag)  # within the cooldown
    assert code == 0 and f"{tag}: skip: cooling down until" in out and "(last rebuild effective)" in out


def test_rebuild_without_upgrade_step_is_ineffective(docker_engine: DockerEngine, images: ImageBuilder,
                                                     moving_repo: tuple[Path, str], tmp_path: Path) -> None:
    tag, ctx = stale_image(images, moving_repo, tmp_path, NOT_UPGRADING, "static")
    db, cfg = str(tmp_path / "d.db"), str(config(tmp_path, tag, ctx))
    assert cli("--db", db, "--config", cfg, "scan")[0] == 0
    code, out = cli("--db", db, "--config", cfg, "rebuild", tag)
    assert code == 1
    images.tags.append(docker_engine.inspect_image(tag).image_id)
    assert f"{tag}: ineffective" in out
    assert "the Dockerfile has no package upgrade step" in out and "only a newer base image can help" in out


def test_failed_build_moves_no_tag(docker_engine: DockerEngine, images: ImageBuilder, moving_repo: tuple[Path, str],
                                   tmp_path: Path) -> None:
    tag, ctx = stale_image(images, moving_repo, tmp_path, UPGRADING, "breaking")
    (ctx / "Dockerfile").write_text(BROKEN)
    db, cfg = str(tmp_path / "d.db"), str(config(tmp_path, tag, ctx))
    old_id = docker_engine.inspect_image(tag).image_id
    assert cli("--db", db, "--config", cfg, "scan")[0] == 0
    code, out = cli("--db", db, "--config", cfg, "rebuild", tag)
    assert code == 4
    assert f"{tag}: failed" in out and "returned a non-zero code: 7" in out
    assert docker_engine.inspect_image(tag).image_id == old_id
    store = open_store(Path(db))
    (rec,) = store.rebuilds(tag)
    assert rec.outcome.value == "failed" and rec.new_image_id is None
    assert rec.log_tail is not None and "the build breaks here" in rec.log_tail
    store.close()
    for layer in re.findall(r"---> ([0-9a-f]{12})\b", rec.log_tail):  # the failed build's steps that did run
        images.record(layer)


def test_pull_without_registry_names_the_base_image(docker_engine: DockerEngine, images: ImageBuilder,
                                                     moving_repo: tuple[Path, str], tmp_path: Path) -> None:
    tag, ctx = stale_image(images, moving_repo, tmp_path, UPGRADING, "pulling")
    db, cfg = str(tmp_path / "d.db"), str(config(tmp_path, tag, ctx, pull=True))
    code, out = cli("--db", db, "--config", cfg, "rebuild", tag)
    assert code == 4
    assert f"{tag}: failed" in out and f"build failed: pulling {BASE} failed:" in out
    assert "set pull = false for local bases" in out and "Traceback" not in out


