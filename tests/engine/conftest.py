"""Real-engine fixtures: the deterministic drift repository on loopback, and test images that are
labelled and removed at the end of the session."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from driftwatch.engine import DockerEngine
from tests.support.aptrepo import DEFAULT_SUITES, Pkg, Suite, build_debs, build_repo, serve, sources_list
from tests.support.images import prepare_drift_context

TEST_LABEL = {"io.driftwatch.test": "1"}
BASE = "driftwatch/debian:12"


class ImageBuilder:
    """Builds test images from a context or Dockerfile text; removes them all at the end."""

    def __init__(self, engine: DockerEngine, workdir: Path) -> None:
        self.engine = engine
        self.workdir = workdir
        self.tags: list[str] = []
        self.layers: list[str] = []  # image IDs of every build's chain, newest first

    def record(self, reference: str) -> None:
        """The image and its parents (the classic builder keeps one image a step): removed at the end
        when untagged, so a build whose top image went (a rebuild moved its tag) leaves none behind."""
        try:
            image_id = self.engine.client.images.get(reference).id
            while image_id and image_id not in self.layers:
                self.layers.append(image_id)
                image_id = self.engine.client.images.get(image_id).attrs.get("Parent") or ""
        except Exception:  # noqa: BLE001  (gone already: nothing to record)
            pass

    def tag(self, name: str) -> str:
        """A unique tag for a test image."""
        return f"driftwatch-test/{name}:{uuid.uuid4().hex[:8]}"

    def build(self, context: Path, name: str, *, tag: str | None = None, no_cache: bool = False,
              buildargs: dict[str, str] | None = None) -> str:
        """Build with host networking (the loopback repository); returns the tag."""
        tag = tag or self.tag(name)
        outcome = self.engine.build(context, tag=tag, labels=TEST_LABEL, network="host", no_cache=no_cache,
                                    buildargs=buildargs)
        assert outcome.image_id, f"test image {name} failed to build: {outcome.error}\n{outcome.log_tail}"
        self.tags.append(tag)
        self.record(tag)
        return tag

    def from_dockerfile(self, name: str, dockerfile: str, files: dict[str, str] | None = None) -> str:
        """Build from Dockerfile text (plus small files) in a fresh context."""
        context = self.workdir / f"{name}-{uuid.uuid4().hex[:6]}"
        context.mkdir(parents=True)
        (context / "Dockerfile").write_text(dockerfile)
        for rel, text in (files or {}).items():
            (context / rel).write_text(text)
        return self.build(context, name)

    def cleanup(self) -> None:
        """Remove every image this session built, and the untagged layers of their builds (those
        still used by another image stay)."""
        for tag in self.tags:
            self.record(tag)  # where a rebuild moved the tag
        for tag in reversed(self.tags):
            self.engine.remove_image(tag)
        left = list(self.layers)
        while left:  # children before parents; a layer two builds share goes once both tops have
            kept = []
            for image_id in left:
                try:
                    if not self.engine.client.images.get(image_id).tags:
                        self.engine.client.images.remove(image_id)
                except Exception:  # noqa: BLE001  (gone with its child, or still another image's parent)
                    kept.append(image_id)
            if len(kept) == len(left):
                break
            left = kept


@pytest.fixture(scope="session")
def images(docker_engine: DockerEngine, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ImageBuilder]:
    """The session's image builder; every image is removed afterwards."""
    docker_engine.inspect_image(BASE)  # fails loudly (ImageMissing) when base-images.sh did not run
    builder = ImageBuilder(docker_engine, tmp_path_factory.mktemp("images"))
    yield builder
    builder.cleanup()
    # Rebuild tests move tags to new builds; the images they left untagged are the suite's too
    # (about seven a run, which piled up on the engine's disk).
    docker_engine.client.images.prune(filters={"dangling": True, "label": "io.driftwatch.test=1"})


@pytest.fixture(scope="session")
def drift_repo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, str]]:
    """The issue's fixture repository (demo-a 1.1 in bookworm-security, demo-b 2.0 in
    bookworm-updates) served on loopback for the whole session: (directory, url)."""
    repo = build_repo(tmp_path_factory.mktemp("repo"), DEFAULT_SUITES)
    with serve(repo) as url:
        yield repo, url


@pytest.fixture(scope="session")
def drift_image(images: ImageBuilder, drift_repo: tuple[Path, str], tmp_path_factory: pytest.TempPathFactory) -> str:
    """An image with demo-a 1.0 and demo-b 1.0 installed whose only source is the loopback repo."""
    repo, url = drift_repo
    context = prepare_drift_context(tmp_path_factory.mktemp("drift-ctx"), repo, url,
                                    [Pkg("demo-a", "1.0"), Pkg("demo-b", "1.0")])
    return images.build(context, "drift")


# The suites of DEFAULT_SUITES before the archive published the security and the regular update.
ONLY_1_0 = (DEFAULT_SUITES[0], *(Suite(s.name, (), codename=s.codename, label=s.label) for s in DEFAULT_SUITES[1:]))
# An app image the way the motivating article builds it: packages, then a cached upgrade layer.
UPGRADING = f"""FROM {BASE}
COPY debs/ /tmp/debs/
COPY sources.list /etc/apt/sources.list
RUN rm -f /etc/apt/sources.list.d/* && dpkg -i /tmp/debs/*.deb && rm -rf /tmp/debs
RUN apt-get update && apt-get -y upgrade && rm -rf /var/lib/apt/lists/*
"""


@pytest.fixture
def moving_repo(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """A loopback repository that at first offers only 1.0; tests publish updates into it later."""
    repo = build_repo(tmp_path / "repo", ONLY_1_0)
    with serve(repo) as url:
        yield repo, url


def publish(repo: Path, suites: tuple[Suite, ...]) -> None:
    """Replace what the repository offers (same URL, same pool)."""
    shutil.rmtree(repo / "dists")
    build_repo(repo, suites)


def app_context(where: Path, url: str, dockerfile: str) -> Path:
    """A build context with demo-a and demo-b 1.0, the fixture sources, and the given Dockerfile."""
    (where / "debs").mkdir(parents=True)
    build_debs([Pkg("demo-a", "1.0"), Pkg("demo-b", "1.0")], where / "debs")
    (where / "Dockerfile").write_text(dockerfile)
    (where / "sources.list").write_text(sources_list(url, DEFAULT_SUITES))
    return where


def scan_config(tag: str, *, rebuild_context: Path | None = None, pull: bool = False, extra: str = "") -> str:
    """A config for one image scanned over the loopback repository, optionally rebuilt from a context."""
    rebuild = (f'\n[images.rebuild]\ntype = "docker"\ncontext = "{rebuild_context}"\n'
               f'pull = {str(pull).lower()}\nnetwork = "host"\n') if rebuild_context else ""
    return (f'[defaults]\nmax_security_pending = 0\n\n[scan]\nnetwork = "host"\ntimeout = 120\n\n'
            f'[[images]]\nreference = "{tag}"\n{rebuild}{extra}')
