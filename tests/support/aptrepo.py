"""Deterministic apt drift fixture: tiny ``.deb`` packages and a local, unsigned apt repository.

The repository has the standard (non-flat) layout apt expects from a mirror::

    DEST/pool/main/d/demo-a/demo-a_1.0_all.deb
    DEST/dists/<dist>/Release
    DEST/dists/<dist>/main/binary-amd64/Packages{,.gz}

``<dist>`` is the suite's codename (as in Debian, where ``bookworm-security`` is the directory and
the ``Suite:`` field may say ``stable-security``). arch ``all`` packages go into every
``binary-<arch>`` index and the Release file says ``No-Support-for-Architecture-all: Packages``
like Debian's, so apt never asks for ``binary-all`` indexes. Release files are not signed:
images use ``deb [trusted=yes] ...`` lines (see :func:`sources_list`).

Everything is deterministic (fixed mtimes, ``SOURCE_DATE_EPOCH``, fixed Release ``Date``), so the
same suites always give byte-identical debs and indexes.

Run ``python -m tests.support.aptrepo DEST [--serve]`` to build :data:`DEFAULT_SUITES` by hand.
"""

from __future__ import annotations

import argparse
import contextlib
import email.utils
import functools
import gzip
import hashlib
import http.server
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

FIXTURE_EPOCH = 1700000000
"""Fixed timestamp (2023-11-14T22:13:20Z) for file mtimes, ``SOURCE_DATE_EPOCH`` and Release Date."""

DEFAULT_ORIGIN = "driftwatch-fixture"
DEFAULT_ARCHITECTURES: tuple[str, ...] = ("amd64", "all")
MAINTAINER = "driftwatch fixture <fixture@driftwatch.invalid>"


@dataclass(frozen=True)
class Pkg:
    """A binary package to build. ``extra_control`` adds or overrides control fields."""

    name: str
    version: str
    arch: str = "all"
    depends: str | None = None
    # Excluded from the hash (dicts are unhashable) but still compared, so Pkg works as a dict key.
    extra_control: dict[str, str] = field(default_factory=dict, hash=False)

    @property
    def filename(self) -> str:
        """Debian file name, e.g. ``demo-a_1.0_all.deb`` (the epoch is not part of it)."""
        upstream = self.version.split(":", 1)[-1]
        return f"{self.name}_{upstream}_{self.arch}.deb"

    def pool_path(self, component: str = "main") -> str:
        """Path relative to the repository root, e.g. ``pool/main/d/demo-a/demo-a_1.0_all.deb``."""
        prefix = self.name[:4] if self.name.startswith("lib") else self.name[:1]
        return f"pool/{component}/{prefix}/{self.name}/{self.filename}"

    def control(self) -> str:
        """The ``DEBIAN/control`` text."""
        fields = {
            "Package": self.name,
            "Version": self.version,
            "Architecture": self.arch,
            "Maintainer": MAINTAINER,
            "Section": "misc",
            "Priority": "optional",
        }
        if self.depends:
            fields["Depends"] = self.depends
        fields["Description"] = f"driftwatch test fixture {self.name}\n tiny package, version {self.version}"
        fields.update(self.extra_control)
        return "".join(f"{key}: {value}\n" for key, value in fields.items())


@dataclass(frozen=True)
class Suite:
    """One ``dists/`` entry. ``name`` is the Release ``Suite:``; ``codename`` defaults to it."""

    name: str
    packages: tuple[Pkg, ...]
    codename: str | None = None
    label: str | None = None
    origin: str | None = None
    component: str = "main"
    architectures: tuple[str, ...] = DEFAULT_ARCHITECTURES

    @property
    def dist(self) -> str:
        """Directory under ``dists/`` and the distribution sources.list names: the codename."""
        return self.codename or self.name


DEFAULT_SUITES: tuple[Suite, ...] = (
    Suite("bookworm", (Pkg("demo-a", "1.0"), Pkg("demo-b", "1.0"))),
    Suite("bookworm-security", (Pkg("demo-a", "1.1"),), codename="bookworm-security", label="Debian-Security"),
    Suite("bookworm-updates", (Pkg("demo-b", "2.0"),)),
)
"""The issue's fixture: with the 1.0 packages installed, apt sees exactly two pending updates,
demo-a 1.0 -> 1.1 from bookworm-security and demo-b 1.0 -> 2.0 from bookworm-updates."""


def _run(cmd: Sequence[str | os.PathLike[str]], cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``cmd`` in the C locale with ``SOURCE_DATE_EPOCH`` set; raise with its stderr on failure."""
    env = {**os.environ, "LC_ALL": "C", "SOURCE_DATE_EPOCH": str(FIXTURE_EPOCH)}
    result = subprocess.run([os.fspath(c) for c in cmd], capture_output=True, text=True, env=env, cwd=cwd, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"{cmd[0]} failed ({result.returncode}): {result.stderr.strip()}")
    return result


def _write(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Write ``data`` with a fixed mode and mtime."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    path.chmod(mode)
    os.utime(path, (FIXTURE_EPOCH, FIXTURE_EPOCH))


def _build_deb(pkg: Pkg, target: Path) -> Path:
    """Build ``pkg`` into the file ``target`` (a minimal tree: control + a VERSION file)."""
    with tempfile.TemporaryDirectory(prefix="driftwatch-deb-") as tmp:
        root = Path(tmp, "root")
        _write(root / "DEBIAN" / "control", pkg.control().encode())
        _write(root / "usr" / "share" / "doc" / pkg.name / "VERSION", f"{pkg.version}\n".encode())
        for directory in sorted((p for p in root.rglob("*") if p.is_dir()), reverse=True):
            directory.chmod(0o755)
            os.utime(directory, (FIXTURE_EPOCH, FIXTURE_EPOCH))
        root.chmod(0o755)
        target.parent.mkdir(parents=True, exist_ok=True)
        _run(["dpkg-deb", "--build", "--root-owner-group", "-Zxz", root, target])
    os.utime(target, (FIXTURE_EPOCH, FIXTURE_EPOCH))
    return target


def build_debs(pkgs: Iterable[Pkg], outdir: Path) -> dict[Pkg, Path]:
    """Build each package into ``outdir`` (flat, Debian file names); return where each went."""
    outdir = Path(outdir)
    built: dict[Pkg, Path] = {}
    for pkg in pkgs:
        if pkg not in built:
            built[pkg] = _build_deb(pkg, outdir / pkg.filename)
    return built


def _packages_stanzas(dest: Path) -> dict[str, str]:
    """Scan ``dest/pool`` with dpkg-scanpackages; return each stanza keyed by its Filename."""
    output = _run(["dpkg-scanpackages", "--multiversion", "pool"], cwd=dest).stdout
    stanzas: dict[str, str] = {}
    for stanza in output.strip().split("\n\n"):
        for line in stanza.splitlines():
            if line.startswith("Filename: "):
                stanzas[line.removeprefix("Filename: ")] = stanza + "\n"
    return stanzas


def _release(suite: Suite, files: dict[str, bytes]) -> bytes:
    """The text of ``dists/<dist>/Release`` listing ``files`` (paths relative to that directory)."""
    lines = [
        f"Origin: {suite.origin or DEFAULT_ORIGIN}",
        f"Label: {suite.label or DEFAULT_ORIGIN}",
        f"Suite: {suite.name}",
        f"Codename: {suite.codename or suite.name}",
        f"Date: {email.utils.formatdate(FIXTURE_EPOCH, usegmt=True)}",
        f"Architectures: {' '.join(suite.architectures)}",
        f"Components: {suite.component}",
        "Description: driftwatch test fixture",
        # arch-all packages are listed in every binary-<arch> index; as on Debian, tell apt not to
        # look for binary-all ones.
        "No-Support-for-Architecture-all: Packages",
    ]
    for title, algo in (("MD5Sum", hashlib.md5), ("SHA256", hashlib.sha256)):
        lines.append(f"{title}:")
        for name, data in sorted(files.items()):
            lines.append(f" {algo(data).hexdigest()} {len(data):>8} {name}")
    return ("\n".join(lines) + "\n").encode()


def build_repo(dest: Path, suites: Sequence[Suite]) -> Path:
    """Build the debs and indexes of ``suites`` under ``dest`` (created if needed); return ``dest``.

    A package listed in several suites is built once into the pool. Two different packages that
    would share a pool file (same name, version and arch) are an error.
    """
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    pool: dict[str, Pkg] = {}
    for suite in suites:
        for pkg in suite.packages:
            path = pkg.pool_path(suite.component)
            if pool.setdefault(path, pkg) != pkg:
                raise ValueError(f"{path}: two different packages {pool[path]} and {pkg}")
    if len({suite.dist for suite in suites}) != len(suites):
        raise ValueError("two suites share a dists/ directory")
    for path, pkg in sorted(pool.items()):
        _build_deb(pkg, dest / path)
    stanzas = _packages_stanzas(dest)
    for suite in suites:
        files: dict[str, bytes] = {}
        for arch in suite.architectures:
            if arch == "all":
                continue
            paths = {p.pool_path(suite.component) for p in suite.packages if p.arch in (arch, "all")}
            raw = "\n".join(stanzas[path] for path in sorted(paths)).encode()
            index = f"{suite.component}/binary-{arch}/Packages"
            files[index] = raw
            files[index + ".gz"] = gzip.compress(raw, compresslevel=9, mtime=0)
        base = dest / "dists" / suite.dist
        for name, data in files.items():
            _write(base / name, data)
        _write(base / "Release", _release(suite, files))
    return dest


def sources_list(url: str, suites: Sequence[Suite]) -> str:
    """One-line-style sources, e.g. ``deb [trusted=yes] http://127.0.0.1:PORT/ bookworm main``."""
    return "".join(f"deb [trusted=yes] {url} {suite.dist} {suite.component}\n" for suite in suites)


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    """Static file handler that does not log each request to stderr."""

    def log_message(self, format: str, *args: object) -> None:
        """Drop the access log."""


@contextlib.contextmanager
def serve(directory: Path) -> Iterator[str]:
    """Serve ``directory`` over HTTP on 127.0.0.1 (a free port); yield ``http://127.0.0.1:PORT/``.

    Reach it from containers with ``--network host``. The server stops when the block exits.
    """
    handler = functools.partial(_QuietHandler, directory=str(directory))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, name="driftwatch-aptrepo", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def main(argv: Sequence[str] | None = None) -> int:
    """Build :data:`DEFAULT_SUITES` into DEST; with ``--serve``, serve it until interrupted."""
    parser = argparse.ArgumentParser(prog="python -m tests.support.aptrepo", description=main.__doc__)
    parser.add_argument("dest", type=Path, help="directory to build the repository in")
    parser.add_argument("--serve", action="store_true", help="serve it on 127.0.0.1 afterwards")
    args = parser.parse_args(argv)
    if args.dest.exists() and any(args.dest.iterdir()):
        shutil.rmtree(args.dest / "pool", ignore_errors=True)
        shutil.rmtree(args.dest / "dists", ignore_errors=True)
    build_repo(args.dest, DEFAULT_SUITES)
    print(f"built {args.dest}", file=sys.stderr)
    if args.serve:
        with serve(args.dest) as url:
            print(sources_list(url, DEFAULT_SUITES), end="")
            print(f"serving {args.dest} at {url} (Ctrl-C to stop)", file=sys.stderr)
            with contextlib.suppress(KeyboardInterrupt):
                threading.Event().wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
