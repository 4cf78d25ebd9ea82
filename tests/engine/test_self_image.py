"""driftwatch's own image follows its own advice: built from the repository's Dockerfile, scanned
by driftwatch, it has no pending security update and its Dockerfile lints clean."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from driftwatch import __version__
from driftwatch.engine import DockerEngine
from driftwatch.lint import lint_file
from driftwatch.models import ScanStatus
from driftwatch.scanner import Scanner
from tests.engine.conftest import BASE, ImageBuilder

pytestmark = [pytest.mark.docker, pytest.mark.network]
ROOT = Path(__file__).resolve().parents[2]


def test_own_image_is_current_and_runs(docker_engine: DockerEngine, images: ImageBuilder, tmp_path: Path) -> None:
    assert lint_file(ROOT / "Dockerfile") == []
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    shutil.copy(ROOT / "Dockerfile", ctx / "Dockerfile")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--wheel-dir", str(ctx / "build" / "wheels"),
                    str(ROOT)], check=True)
    tag = images.tag("self")
    outcome = docker_engine.build(ctx, tag=tag, buildargs={"BASE": BASE}, labels={"io.driftwatch.test": "1"})
    assert outcome.image_id, f"{outcome.error}\n{outcome.log_tail}"
    images.tags.append(tag)
    identity = docker_engine.inspect_image(tag)
    assert identity.apt_layer_command is not None and "apt-get -y upgrade" in identity.apt_layer_command
    result = Scanner(docker_engine, timeout=300).scan(tag)
    assert result.status is ScanStatus.OK, result.detail
    assert result.pending_security == 0, [u.package for u in result.updates if u.security]
    # not remove=True: docker-py removes the container without its anonymous volume (the image's
    # VOLUME /data), which then outlived every test run
    container = docker_engine.client.containers.run(tag, ["--version"], detach=True,
                                                    labels={"io.driftwatch.test": "1"})
    try:
        container.wait(timeout=60)
        out = container.logs(stdout=True, stderr=False)
    finally:
        container.remove(v=True, force=True)
    assert out.decode().strip() == f"driftwatch, version {__version__}"
