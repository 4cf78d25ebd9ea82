"""Build contexts for the drift test images (``fixtures/images/drift/Dockerfile``).

The caller builds and removes the images, e.g.::

    with serve(build_repo(tmp / "repo", DEFAULT_SUITES)) as url:
        ctx = prepare_drift_context(tmp / "ctx", tmp / "repo", url, [Pkg("demo-a", "1.0"), Pkg("demo-b", "1.0")])
        docker build --network host -t NAME ctx      # BASE defaults to driftwatch/debian:12
        docker run --rm --network host IMAGE sh -c 'apt-get update && apt list --upgradable'

The repository URL is baked into the image, so the server must still be on the same port when
apt runs in the container.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path

from tests.support.aptrepo import Pkg, Suite, build_debs, sources_list

DRIFT_DOCKERFILE = Path(__file__).resolve().parents[2] / "fixtures" / "images" / "drift" / "Dockerfile"


def _repo_sources(repo_url: str, repo_dir: Path) -> str:
    """sources.list lines for every ``dists/<dist>/Release`` in ``repo_dir``, in name order."""
    lines = []
    for release in sorted(Path(repo_dir).glob("dists/*/Release")):
        components = "main"
        for line in release.read_text().splitlines():
            if line.startswith("Components:"):
                components = line.partition(":")[2].strip()
        lines.append(f"deb [trusted=yes] {repo_url} {release.parent.name} {components}\n")
    if not lines:
        raise FileNotFoundError(f"no dists/*/Release under {repo_dir}")
    return "".join(lines)


def prepare_drift_context(
    workdir: Path,
    repo_dir: Path,
    repo_url: str,
    installed: Sequence[Pkg],
    *,
    suites: Sequence[Suite] | None = None,
) -> Path:
    """Lay out a build context in ``workdir``: the drift Dockerfile, ``debs/`` and ``sources.list``.

    ``installed`` are the packages the image gets with ``dpkg -i``: copied from ``repo_dir``'s pool
    when there, otherwise built (for packages no suite carries). ``sources.list`` points at
    ``repo_url`` for ``suites``, or for every suite found under ``repo_dir/dists`` when ``None``.
    Returns ``workdir``.
    """
    workdir = Path(workdir)
    debs = workdir / "debs"
    if debs.exists():
        shutil.rmtree(debs)
    debs.mkdir(parents=True)
    missing = []
    for pkg in installed:
        found = sorted(Path(repo_dir).glob(f"pool/*/*/{pkg.name}/{pkg.filename}"))
        if found:
            shutil.copy2(found[0], debs / pkg.filename)
        else:
            missing.append(pkg)
    build_debs(missing, debs)
    shutil.copy2(DRIFT_DOCKERFILE, workdir / "Dockerfile")
    text = sources_list(repo_url, suites) if suites is not None else _repo_sources(repo_url, repo_dir)
    (workdir / "sources.list").write_text(text)
    return workdir
