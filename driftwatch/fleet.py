"""Scan many images at once: probes in parallel, and one package-list refresh per group of images
whose apt sources are identical.

Grouping reads each image's apt configuration *without running it* (the archive API of a created,
never started container): the sources, keyrings, apt.conf.d, foreign architectures and the release,
hashed with the image's platform. Images with the same fingerprint would fetch the very same lists,
so one probe (in the group's first image) refreshes them into a volume, with the scan's own
``apt-get update`` and failure rules, and that update writes apt's source cache beside them. Each
image of the group is then scanned with that volume mounted read-only instead of its own refresh. A
failed refresh fails every image of its group as its own refresh would have. An image that cannot be
fingerprinted, or has no twin, is scanned on its own as before.

Results are yielded on the caller's thread as they finish (the caller stores them: SQLite
connections stay on one thread). Closing the generator early (Ctrl-C, SIGTERM, an error) cancels
what has not started, removes every running probe, waits for the workers and removes the volumes.
No docker import and no SQL here.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os as os_module
import posixpath
import re
import signal
import threading
import time
from collections.abc import Callable, Generator, Iterable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Protocol

from . import aptparse
from .engine import normalize_architecture
from .errors import DriftwatchError, EngineUnavailable, ImageMissing
from .models import ImageFile, ImageIdentity, OsRelease, Platform, Reason, ScanResult, ScanStatus
from .scanner import Refresh, Scanner, platform_mismatch

logger = logging.getLogger(__name__)

#: What decides which package lists ``apt-get update`` fetches, read from each image. /etc/apt whole
#: (sources.list[.d], trusted.gpg[.d], keyrings, apt.conf[.d], auth.conf[.d]) but its preferences,
#: which only choose among fetched versions and are read by each image's own probe.
APT_ROOT = "/etc/apt"
FINGERPRINT_PATHS: tuple[str, ...] = (APT_ROOT, "/etc/os-release", "/usr/share/keyrings", "/var/lib/dpkg/arch")
_IGNORED = ("/etc/apt/preferences", "/etc/apt/preferences.d")
#: What else decides apt's answer once the lists are in: the installed packages and their states, the
#: auto-installed marks, the machine ID (phased updates); with the preferences above and the whole
#: os-release, these make an image's *apt state* as its files show it. Images of one group with the
#: same apt state are probed once: each of the others is confirmed by a short probe of its own, whose
#: shell prints apt's state as apt sees it (its binaries, the files apt-config names, ischroot:
#: scanner.Scanner.confirm). That comparison decides; this hash only picks who is compared.
STATE_PATHS: tuple[str, ...] = ("/var/lib/dpkg/status", "/var/lib/apt/extended_states", "/etc/machine-id")
#: Environment variables apt reads (an image's ENV is the probe's environment too).
_APT_ENV = frozenset({"apt_config", "http_proxy", "https_proxy", "ftp_proxy", "no_proxy", "all_proxy"})
#: Links and signed-by keyrings followed outside the paths above, at most.
MAX_EXTRA_READS = 16
_SIGNED_BY = re.compile(r"(?:\[|\s)signed-by=([^\s\]]+)|^Signed-By:[ \t]*(\S.*)$", re.IGNORECASE | re.MULTILINE)


def default_jobs() -> int:
    """Parallel probes by default: one per CPU, at most 4 (each probe may use one CPU)."""
    return max(1, min(4, os_module.cpu_count() or 1))


@dataclass(frozen=True, slots=True)
class Fingerprint:
    """Identical keys mean identical ``apt-get update`` runs; identical keys and states, identical apt
    answers over those lists. ``os_release`` is the image's own."""

    key: str
    os_release: OsRelease | None
    state: str = ""


class FileReader(Protocol):
    """Reads files of a created, never started container (engine.ImageFiles)."""

    @property
    def env(self) -> tuple[str, ...]:
        """The image's environment."""

    def read(self, path: str) -> tuple[ImageFile, ...]:
        """The entries at ``path``: itself and, for a directory, everything under it."""


class FleetEngine(Protocol):
    """What a fleet scan needs from the engine, besides the scanner's probes."""

    def inspect_image(self, reference: str) -> ImageIdentity:
        """Identity of a local image; raises ImageMissing."""

    def platform(self) -> Platform:
        """The engine's platform."""

    def image_files(self, image_id: str, *, reference: str) -> AbstractContextManager[FileReader]:
        """A reader over the image's files (a created, never started container)."""

    def create_lists_volume(self, fingerprint: str, *, reference: str, deadline: datetime) -> str:
        """A new, empty, labelled volume for one group's lists."""

    def remove_volumes(self, names: Iterable[str]) -> list[str]:
        """Remove volumes; returns those removed."""

    def stop_probes(self) -> int:
        """Remove every running probe of this process and start no new one."""

    def allow_probes(self) -> None:
        """Undo :meth:`stop_probes`."""


class ScansLost(EngineUnavailable):
    """The engine stopped answering while these references were being scanned (none was stored)."""

    def __init__(self, message: str, references: Sequence[str]) -> None:
        super().__init__(message)
        self.references = tuple(references)

    def results(self, now: datetime) -> list[ScanResult]:
        """What to record for each lost scan: failed (never its last good state), step ``engine``."""
        return [ScanResult(ref, ScanStatus.FAILED, now, now, reason=Reason.CONTAINER_ERROR, step="engine",
                           detail=f"the engine stopped answering during the scan: {self}") for ref in self.references]


# -- fingerprints ------------------------------------------------------------------------------------

def _under(path: str, roots: Iterable[str]) -> bool:
    return any(path == root or path.startswith(root.rstrip("/") + "/") for root in roots)


def _link_target(entry: ImageFile) -> str:
    """Where a link points, as an absolute path inside the image."""
    target = entry.target
    if entry.kind == "hardlink":  # the archive names hard links relative to its own root
        return posixpath.normpath("/" + target)
    if target.startswith("/"):
        return posixpath.normpath(target)
    return posixpath.normpath(posixpath.join(posixpath.dirname(entry.path), target))


def signed_by_paths(text: str) -> list[str]:
    """Absolute keyring paths named by ``signed-by=`` (one-line sources) and ``Signed-By:`` (deb822);
    fingerprints and inline keys are not paths (an inline key is part of the sources file itself)."""
    paths = []
    for match in _SIGNED_BY.finditer(text):
        for value in re.split(r"[,\s]+", (match.group(1) or match.group(2) or "").strip()):
            if value.startswith("/"):
                paths.append(posixpath.normpath(value))
    return paths


def read_files(reader: FileReader, paths: Sequence[str] = FINGERPRINT_PATHS + STATE_PATHS) -> dict[str, ImageFile]:
    """Every entry under ``paths``, plus what their links and the sources' signed-by keyrings point
    at (up to :data:`MAX_EXTRA_READS` more reads; past that the fingerprint is refused)."""
    entries: dict[str, ImageFile] = {}
    read: list[str] = []

    def fetch(path: str) -> None:
        read.append(path)
        for entry in reader.read(path):
            entries.setdefault(entry.path, entry)

    for path in paths:
        fetch(path)
    extra = 0
    while True:
        wanted = [_link_target(e) for e in entries.values() if e.kind in ("link", "hardlink")]
        wanted += [p for e in list(entries.values()) if e.kind == "file" and _is_sources(e.path)
                   for p in signed_by_paths(e.data.decode("utf-8", errors="replace"))]
        todo = sorted({p for p in wanted if p not in entries and not _under(p, read)})
        if not todo:
            return entries
        for path in todo:
            extra += 1
            if extra > MAX_EXTRA_READS:
                raise _Unfingerprintable(f"more than {MAX_EXTRA_READS} links and keyrings to follow")
            fetch(path)


class _Unfingerprintable(Exception):
    """This image's apt sources cannot be pinned down; it is scanned on its own."""


#: apt configuration that reaches past the files read here: an #include, or a Dir:: path (sources,
#: keyrings, state, the root) that may point anywhere. Dir::Cache is allowed: official images' docker-clean
#: empties it, and the probe sets its own caches.
_REACHES_OUT = re.compile(r'^\s*#include\b|\bDir\s*(?:"|\{|::(?!Cache\b))', re.IGNORECASE | re.MULTILINE)


def reaches_outside(entries: dict[str, ImageFile], env: Iterable[str]) -> str | None:
    """Why apt in this image reads configuration that the fingerprint did not read (so two images with
    the same fingerprint might fetch other lists or answer differently), or None. Such an image is
    scanned on its own, like one without a twin."""
    if any(v.partition("=")[0] == "APT_CONFIG" for v in env):
        return "its ENV sets APT_CONFIG"
    for path, entry in sorted(entries.items()):
        if entry.kind == "file" and (path == "/etc/apt/apt.conf" or path.startswith("/etc/apt/apt.conf.d/")):
            if match := _REACHES_OUT.search(entry.data.decode("utf-8", errors="replace")):
                return f"{path} has {match.group(0).strip()!r}"
    return None


def _is_sources(path: str) -> bool:
    return path == "/etc/apt/sources.list" or (path.startswith("/etc/apt/sources.list.d/")
                                               and path.endswith((".list", ".sources")))


def _resolve(entries: dict[str, ImageFile], path: str) -> ImageFile | None:
    for _ in range(8):
        entry = entries.get(path)
        if entry is None or entry.kind not in ("link", "hardlink"):
            return entry
        path = _link_target(entry)
    return None


def os_release_of(entries: dict[str, ImageFile]) -> OsRelease | None:
    """/etc/os-release (or /usr/lib/os-release), links followed, as the probe reads it."""
    for path in ("/etc/os-release", "/usr/lib/os-release"):
        entry = _resolve(entries, path)
        if entry is not None and entry.kind == "file":
            return aptparse.parse_os_release(entry.data.decode("utf-8", errors="replace"))
    return None


def fingerprint(entries: dict[str, ImageFile], *, os: str, architecture: str, env: Iterable[str] = ()
                ) -> Fingerprint | None:
    """Hash what decides the lists ``apt-get update`` fetches; None when the image has no apt sources.

    Hashed: the platform, the release (ID, VERSION_ID, VERSION_CODENAME), the environment variables apt
    reads, and every entry read but the os-release files, apt's preferences and the :data:`STATE_PATHS`:
    path, kind, mode, owner, content or link target (not mtimes: two builds of the same files are the
    same sources). The state hashes the key, those three and the os-release files.
    """
    if not any(_is_sources(p) and e.kind in ("file", "link") for p, e in entries.items()):
        return None
    release = os_release_of(entries)
    state = hashlib.sha256(b"driftwatch-state/1\0")
    digest = hashlib.sha256(b"driftwatch-lists/1\0")
    digest.update(f"{(os or 'linux').lower()}/{normalize_architecture(architecture)}\0".encode())
    digest.update("\0".join((release.id, release.version_id or "", release.version_codename or "")
                            if release else ("",)).encode() + b"\0")
    for var in sorted(v for v in env if v.partition("=")[0].lower() in _APT_ENV):
        digest.update(f"env {var}\0".encode())
    for path in sorted(entries):
        e = entries[path]
        part = state if path in ("/etc/os-release", "/usr/lib/os-release") or _under(path, _IGNORED + STATE_PATHS) \
            else digest
        part.update(f"{path}\0{e.kind}\0{e.mode:o}\0{e.uid}\0{e.gid}\0{e.target}\0".encode())
        part.update(hashlib.sha256(e.data).digest())
    key = digest.hexdigest()
    state.update(key.encode())
    return Fingerprint(key, release, state.hexdigest())


def fingerprint_image(engine: FleetEngine, image: ImageIdentity) -> Fingerprint | None:
    """Read an image's apt configuration without running it and fingerprint it; None when it cannot
    be (no apt sources, too many links, the files could not be read). Raises EngineUnavailable."""
    try:
        with engine.image_files(image.image_id, reference=image.reference) as reader:
            entries = read_files(reader)
            env = reader.env
    except EngineUnavailable:
        raise
    except (DriftwatchError, _Unfingerprintable) as exc:
        logger.info("%s: apt sources not fingerprinted (%s); scanned on its own", image.reference, exc)
        return None
    if why := reaches_outside(entries, env):
        logger.info("%s: apt configuration reaches past the files read (%s); scanned on its own",
                    image.reference, why)
        return None
    return fingerprint(entries, os=image.os, architecture=image.architecture, env=env)


# -- the run -----------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class FleetProgress:
    """Where a fleet scan is: references done and not ok so far, and what the workers are doing."""

    total: int
    done: int
    failed: int
    running: tuple[str, ...]
    phase: str  # "reading apt sources" until every image is fingerprinted, then "scanning"


@dataclass
class _Probe:
    """The members of a group with one apt state: the first is probed (``reference``); the others wait
    for its result, then each is confirmed by a short probe of its own (or, when the first's scan was
    not OK, ``own``: each is scanned on its own)."""

    reference: str
    result: ScanResult | None = None
    signature: str | None = None
    own: bool = False
    waiting: list[tuple[str, ImageIdentity]] = field(default_factory=list)


@dataclass
class _Group:
    """Images whose fingerprints match, as they are found. ``state``: waiting (one member so far),
    refreshing, ready (the lists are in ``volume``), failed (each member fails as the refresh did),
    fallback (the refresh never ran apt-get update: each member alone), alone (no twin)."""

    key: str
    members: list[tuple[str, ImageIdentity, OsRelease | None]] = field(default_factory=list)
    state: str = "waiting"
    volume: str | None = None
    refresh: Refresh | None = None
    scanning: int = 0  # member scans submitted over the volume and not finished
    scanned: int = 0  # member scans finished over the volume
    confirmed: int = 0  # of those, results reused from a member with the same apt state
    refresher: ImageIdentity | None = None  # the member whose probe refreshes (or refreshed) the lists
    tried: dict[str, Refresh] = field(default_factory=dict)  # image ID -> its refresh, when it failed
    probes: dict[str, _Probe] = field(default_factory=dict)  # by apt state
    ready_at: float = 0.0  # time.monotonic() when the lists were ready

    @property
    def label(self) -> str:
        """For log lines: ``debian 12, 6 images``."""
        release = next((osr.label for _, _, osr in self.members if osr is not None), "unknown release")
        return f"{release}, {len(self.members)} image{'s' if len(self.members) != 1 else ''}"


@dataclass
class _Task:
    kind: str  # "inspect", "fingerprint", "refresh", "scan", "confirm"
    references: tuple[str, ...]
    group: _Group | None = None
    image: ImageIdentity | None = None
    state: str | None = None  # a group scan that probes for every member with this apt state


@dataclass
class Fleet:
    """Scans references with ``jobs`` probes at a time; ``share_lists`` refreshes once per group;
    ``share_probes`` (with ``share_lists``) probes once per apt state within a group."""

    scanner: Scanner
    engine: FleetEngine
    jobs: int = 1
    share_lists: bool = True
    share_probes: bool = True
    on_progress: Callable[[FleetProgress], None] | None = None
    poll: float = 0.25
    _running: dict[int, str] = field(default_factory=dict, init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    def scan(self, references: Iterable[str]) -> Generator[ScanResult, None, None]:
        """Yield one result per distinct reference, as each finishes (in no fixed order).

        Raises :class:`ScansLost` when the engine stops answering (the references whose scans were in
        progress are in it; finished ones were yielded). Close the generator to stop early.
        """
        refs = list(dict.fromkeys(references))
        run = _Run(self, refs)
        finished = False
        try:
            yield from run.execute()
            finished = True
        finally:
            run.close(interrupted=not finished)

    # Tracking what the workers do, for the progress line.
    @contextlib.contextmanager
    def _doing(self, what: str) -> Iterator[None]:
        ident = threading.get_ident()
        with self._lock:
            self._running[ident] = what
        try:
            yield
        finally:
            with self._lock:
                self._running.pop(ident, None)

    def _now_running(self) -> tuple[str, ...]:
        with self._lock:
            return tuple(self._running.values())


@contextlib.contextmanager
def _signals_held(*, again: bool) -> Iterator[None]:
    """Hold SIGINT and SIGTERM on the main thread while cleaning up; afterwards, when ``again`` (the
    cleanup was not itself caused by an interrupt), one that arrived meanwhile is raised as
    KeyboardInterrupt. Elsewhere than on the main thread, signals cannot be handled: nothing to do."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []
    held = (signal.SIGINT, signal.SIGTERM)
    previous = {sig: signal.getsignal(sig) for sig in held}
    for sig in held:
        signal.signal(sig, lambda signum, _frame: caught.append(signum))
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if caught and again:
        raise KeyboardInterrupt


def by_base_layer(images: Iterable[ImageIdentity]) -> list[ImageIdentity]:
    """Images in turns across their base layers (first one of each, then the second of each, ...), so
    the first image of every likely release is read early and its group's refresh starts early."""
    queues: dict[str, list[ImageIdentity]] = {}
    for image in images:
        queues.setdefault(image.base_layer or image.image_id, []).append(image)
    ordered = []
    for turn in range(max((len(q) for q in queues.values()), default=0)):
        ordered += [q[turn] for q in queues.values() if turn < len(q)]
    return ordered


#: Archive-API reads at a time: the engine mounts the image for each, and more in parallel buys nothing
#: (12 images: 4.2 s one at a time, 2.4 s two, 2.1 s four or eight, on this repository's engine).
READERS = 2


class _Run:
    """One call of :meth:`Fleet.scan`: the pools, the futures, the groups and their volumes.

    Images are fingerprinted (at most :data:`READERS` at a time, beside the probes) while the first
    refreshes and scans already run: a group's refresh starts as soon as its second image is
    fingerprinted, and an image fingerprinted later joins its group. Only when every image is
    fingerprinted is one without a twin known to be alone.
    """

    def __init__(self, fleet: Fleet, refs: list[str]) -> None:
        self.fleet, self.refs = fleet, refs
        self.scanner, self.engine = fleet.scanner, fleet.engine
        self.pool = ThreadPoolExecutor(max_workers=max(1, fleet.jobs), thread_name_prefix="driftwatch-scan")
        # Refreshes wait on the network most of the time: they run beside the --jobs probes, as many
        # at once as --jobs, so the probes of a group whose lists are in keep the CPUs busy meanwhile.
        self.refreshers = ThreadPoolExecutor(max_workers=max(1, fleet.jobs), thread_name_prefix="driftwatch-refresh")
        self.readers = ThreadPoolExecutor(max_workers=max(1, min(READERS, fleet.jobs)),
                                          thread_name_prefix="driftwatch-read")
        self.pending: dict[Future[Any], _Task] = {}
        self.groups: dict[str, _Group] = {}
        self.states: dict[str, str] = {}  # image ID -> apt state
        self.images: dict[str, ImageIdentity | None] = {}
        self.fingerprinting = 0  # fingerprint tasks not finished
        self.reading = 0  # distinct images fingerprinted in all
        self.unread: dict[str, ImageIdentity] = {}  # distinct images not fingerprinted yet, by ID
        self.began = time.monotonic()
        self.done = self.failed = 0
        self.phase = "scanning"
        self._last: FleetProgress | None = None

    # -- scheduling ----------------------------------------------------------------------------
    def submit(self, task: _Task, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        # A refresh is named by the image it runs in: its group may grow while it runs.
        label = task.references[0] + (" (refreshing its group's lists)" if task.kind == "refresh" else "")
        if task.kind == "scan":
            logger.info("scanning %s%s", label, " over shared lists" if kwargs.get("lists") else "")
        elif task.kind == "confirm":
            logger.info("confirming %s has the apt state of %s", label, args[2].reference)

        def run() -> Any:
            with self.fleet._doing(label):
                return fn(*args, **kwargs)

        pool = (self.readers if task.kind in ("inspect", "fingerprint") else
                self.refreshers if task.kind == "refresh" else self.pool)
        self.pending[pool.submit(run)] = task

    def scan_alone(self, ref: str) -> None:
        self.submit(_Task("scan", (ref,)), self.scanner.scan, ref, image=self.images.get(ref))

    def completed(self) -> Iterator[tuple[Any, _Task]]:
        """Results as tasks finish, successes of a batch before failures; progress between waits.
        Raises ScansLost when the engine went away, and any other task's error as is."""
        while self.pending:
            done, _ = wait(list(self.pending), timeout=self.fleet.poll, return_when=FIRST_COMPLETED)
            self.progress()
            batch = [(f, self.pending.pop(f)) for f in done]
            batch.sort(key=lambda item: item[0].cancelled() or item[0].exception() is not None)
            for future, task in batch:
                exc = future.exception()
                if isinstance(exc, EngineUnavailable):
                    raise self.lost(exc, task) from exc
                if exc is not None:
                    raise exc
                yield future.result(), task

    def progress(self) -> None:
        if self.fleet.on_progress is None:
            return
        now = FleetProgress(len(self.refs), self.done, self.failed, self.fleet._now_running(), self.phase)
        if now != self._last:
            self._last = now
            self.fleet.on_progress(now)

    def lost(self, exc: BaseException, task: _Task) -> ScansLost:
        """The engine went away: the scans in progress (not those still queued) are lost."""
        running = [t for f, t in self.pending.items() if f.running()]
        in_flight = [r for t in [task, *running] if t.kind in ("refresh", "scan", "confirm") for r in t.references]
        return ScansLost(str(exc), list(dict.fromkeys(in_flight)))

    # -- the run -------------------------------------------------------------------------------
    def execute(self) -> Iterator[ScanResult]:
        if self.fleet.share_lists and len(self.refs) >= 2:
            self.prepare()
        else:
            for ref in self.refs:
                self.scan_alone(ref)
        for result, task in self.completed():
            if task.kind == "fingerprint":
                assert task.image is not None
                yield from self.fingerprinted(task.image, result)
            elif task.kind == "refresh":
                assert task.group is not None
                yield from self.refreshed(task.group, result)
            elif task.kind == "confirm":
                yield from self.confirmed(task, result)
            elif task.group is not None:  # a member's scan over its group's lists
                scanned, signature = result
                if task.state is not None:
                    self.probed(task.group, task.state, scanned, signature)
                yield self.finished(scanned, task)
            else:
                yield self.finished(result, task)

    def prepare(self) -> None:
        """Inspect every reference (quick), then start fingerprinting each distinct image that can
        run here; the others are scanned on their own at once."""
        self.phase = "reading apt sources"
        for ref in self.refs:
            self.submit(_Task("inspect", (ref,)), self._inspect, ref)
        for image, task in self.completed():
            self.images[task.references[0]] = image
        platform = self.engine.platform()
        usable = [i for r in self.refs if (i := self.images[r]) is not None and not platform_mismatch(i, platform)]
        distinct = {i.image_id: i for i in usable} if len(usable) >= 2 else {}  # one image alone shares nothing
        self.reading = len(distinct)
        for ref in self.refs:
            image = self.images[ref]
            if image is None or image.image_id not in distinct:
                self.scan_alone(ref)
        self.unread = dict(distinct)
        for image in by_base_layer(distinct.values()):
            self.fingerprinting += 1
            self.submit(_Task("fingerprint", (image.reference,), image=image), fingerprint_image, self.engine, image)
        if not self.fingerprinting:
            self.phase = "scanning"

    def _inspect(self, ref: str) -> ImageIdentity | None:
        try:
            return self.engine.inspect_image(ref)
        except ImageMissing:
            return None  # its own scan reports it

    def fingerprinted(self, image: ImageIdentity, fp: Fingerprint | None) -> Iterator[ScanResult]:
        """One more image fingerprinted: it joins its group, whatever that group is doing now."""
        self.fingerprinting -= 1
        self.unread.pop(image.image_id, None)
        twins = [(r, i) for r in self.refs if (i := self.images[r]) is not None and i.image_id == image.image_id]
        if fp is None:
            for ref, _ in twins:
                self.scan_alone(ref)
        else:
            group = self.groups.setdefault(fp.key, _Group(fp.key))
            self.states[image.image_id] = fp.state
            joined = [(ref, identity, fp.os_release) for ref, identity in twins]
            group.members += joined
            if group.state == "waiting" and (len(group.members) >= 2 or self.expects_twin(image)):
                self.start_refresh(group)
            elif group.state != "waiting":
                yield from self.admit(group, joined)
        if self.fingerprinting == 0:
            self.phase = "scanning"
            logger.info("apt sources of %d image(s) read in %.1f s", self.reading, time.monotonic() - self.began)
            shared = [g for g in self.groups.values() if len(g.members) >= 2]
            if shared:
                logger.info("%d image(s) in %d group(s) share package lists: %s; %d scanned on their own",
                            sum(len(g.members) for g in shared), len(shared), "; ".join(g.label for g in shared),
                            len(self.refs) - sum(len(g.members) for g in shared))
            for group in self.groups.values():
                if group.state == "waiting":  # no twin after all
                    group.state = "alone"
                    for ref, _, _ in group.members:
                        self.scan_alone(ref)
                elif group.state == "ready" and group.scanning == 0:
                    self.release(group)

    def expects_twin(self, image: ImageIdentity) -> bool:
        """Whether an image not fingerprinted yet has this one's base layer, and so most likely its
        release: its group's refresh starts now rather than when that image is read. (If it has other
        sources after all, this image is scanned over lists refreshed for it alone: the same result.)"""
        return image.base_layer is not None and any(
            other.base_layer == image.base_layer for other in self.unread.values())

    def start_refresh(self, group: _Group) -> None:
        """Refresh the group's lists in its first member that has not tried yet."""
        deadline = datetime.now(timezone.utc) + timedelta(seconds=self.scanner.timeout * (len(self.refs) + 1) + 300)
        ref, image, _ = next(m for m in group.members if m[1].image_id not in group.tried)
        group.volume = self.engine.create_lists_volume(group.key, reference=ref, deadline=deadline)
        group.state, group.refresher = "refreshing", image
        self.submit(_Task("refresh", tuple(r for r, _, _ in group.members), group), self._refresh, image, group)

    def _refresh(self, image: ImageIdentity, group: _Group) -> Refresh:
        assert group.volume is not None
        started = time.monotonic()
        refresh = self.scanner.refresh(image, group.volume)
        logger.info("lists for %s refreshed by %s in %.1f s: %s", group.label, image.reference,
                    time.monotonic() - started, "ok" if refresh.lists is not None else "not usable")
        return refresh

    def refreshed(self, group: _Group, refresh: Refresh) -> Iterator[ScanResult]:
        group.refresh = refresh
        if refresh.lists is None and group.refresher is not None:
            group.tried[group.refresher.image_id] = refresh
            timed_out = refresh.output is not None and refresh.output.timed_out
            if len(group.tried) == 1 and not timed_out and any(
                    m[1].image_id not in group.tried for m in group.members):
                # What the fingerprint cannot see can break one image's refresh (no gpgv, a broken apt
                # method): before the group fails with it, one other member refreshes. A mirror that is
                # down fails that one too; a hang (timeout) is not waited out twice.
                logger.info("the refresh for %s in %s failed; refreshing in another of its images before "
                            "deciding for the group", group.label, group.refresher.reference)
                self.release(group)
                self.start_refresh(group)
                return
        if refresh.lists is not None:
            group.state, group.ready_at = "ready", time.monotonic()
        elif any(self.scanner.refresh_failure(refresh, ref, image, osr) is None for ref, image, osr in group.members):
            logger.info("the refresh for %s did not run apt-get update (%s); each image is scanned on its own",
                        group.label, refresh.detail or "see its own scan")
            group.state = "fallback"
        else:
            group.state = "failed"
        if group.state != "ready":
            self.release(group)
        yield from self.admit(group, list(group.members))

    def admit(self, group: _Group, members: list[tuple[str, ImageIdentity, OsRelease | None]]
              ) -> Iterator[ScanResult]:
        """Members whose group's refresh has finished: scan them over its lists, fail them as it
        failed, or scan them on their own."""
        refresh = group.refresh
        if group.state == "refreshing" or refresh is None:
            return
        for ref, image, osr in members:
            own = group.tried.get(image.image_id)
            if own is not None and own is not refresh:  # its own refresh failed, another's did not decide
                failure = self.scanner.refresh_failure(own, ref, image, osr)
                if failure is None:
                    self.scan_alone(ref)
                else:
                    yield self.finished(failure, None)
            elif group.state == "ready":
                self.scan_member(group, ref, image)
            elif group.state == "failed":
                failure = self.scanner.refresh_failure(refresh, ref, image, osr)
                assert failure is not None
                yield self.finished(failure, None)
            else:
                self.scan_alone(ref)

    def scan_member(self, group: _Group, ref: str, image: ImageIdentity) -> None:
        """Scan a member over its group's lists: the first of its apt state is probed; the others wait
        for that result and are confirmed (:meth:`Scanner.confirm`), or scanned when it was not OK."""
        key = self.states.get(image.image_id) if self.fleet.share_probes else None
        probe = group.probes.get(key) if key is not None else None
        if key is not None and probe is None:
            group.probes[key] = _Probe(ref)
            self.submit_scan(group, ref, image, state=key)
        elif probe is None or probe.own:
            self.submit_scan(group, ref, image)
        elif probe.result is None:
            probe.waiting.append((ref, image))
        else:
            self.submit_confirm(group, ref, image, probe)

    def submit_scan(self, group: _Group, ref: str, image: ImageIdentity, state: str | None = None) -> None:
        assert group.refresh is not None
        group.scanning += 1
        self.submit(_Task("scan", (ref,), group, image, state), self.scanner.probe, ref, image=image,
                    lists=group.refresh.lists)

    def submit_confirm(self, group: _Group, ref: str, image: ImageIdentity, probe: _Probe) -> None:
        assert probe.result is not None and probe.signature is not None
        group.scanning += 1
        self.submit(_Task("confirm", (ref,), group, image), self.scanner.confirm, ref, image, probe.result,
                    probe.signature)

    def probed(self, group: _Group, key: str, result: ScanResult, signature: str | None) -> None:
        """The first member of an apt state is scanned: confirm the others against it, or, when its
        scan was not OK, scan each of them (a timeout or a broken shell may be that image's alone)."""
        probe = group.probes[key]
        waiting, probe.waiting = probe.waiting, []
        if result.status is ScanStatus.OK and signature is not None:
            probe.result, probe.signature = result, signature
            for ref, image in waiting:
                self.submit_confirm(group, ref, image, probe)
        else:
            probe.own = True
            for ref, image in waiting:
                self.submit_scan(group, ref, image)

    def confirmed(self, task: _Task, result: ScanResult | None) -> Iterator[ScanResult]:
        group, image, ref = task.group, task.image, task.references[0]
        assert group is not None and image is not None
        if result is not None:
            group.confirmed += 1
            yield self.finished(result, task)
            return
        logger.info("%s: its own shell finds another apt state than its twin's; scanned on its own", ref)
        self.submit_scan(group, ref, image)
        group.scanning -= 1  # the confirmation is over; the scan just submitted keeps the lists

    def finished(self, result: ScanResult, task: _Task | None) -> ScanResult:
        self.done += 1
        self.failed += result.status is not ScanStatus.OK
        group = task.group if task is not None else None
        if group is not None:
            group.scanning -= 1
            group.scanned += 1
            if group.scanning == 0 and self.fingerprinting == 0:  # no member can join any more
                self.release(group)
        self.progress()
        return result

    def release(self, group: _Group) -> None:
        """Remove a group's volume once nothing will mount it again."""
        if group.volume is not None:
            volume, group.volume = group.volume, None
            self._remove([volume])
            if group.scanned:
                took = time.monotonic() - group.ready_at
                logger.info("%d image(s) of %s scanned over its shared lists in %.1f s after the refresh "
                            "(%.2f s per image; %d probed, %d confirmed to share a probed image's apt state)",
                            group.scanned, group.label, took, took / group.scanned, group.scanned - group.confirmed,
                            group.confirmed)

    def _remove(self, volumes: list[str]) -> None:
        try:
            left = set(volumes) - set(self.engine.remove_volumes(volumes))
        except DriftwatchError as exc:
            logger.warning("could not remove lists volume(s) %s (%s); `driftwatch cleanup` removes them",
                           ", ".join(volumes), exc)
            return
        if left:
            logger.warning("lists volume(s) %s still in use; `driftwatch cleanup` removes them", ", ".join(left))

    def close(self, *, interrupted: bool) -> None:
        """Stop and clean up: cancel what has not started, remove running probes, wait, remove volumes.
        A second Ctrl-C or SIGTERM meanwhile waits until that is done (it left the volumes behind)."""
        with _signals_held(again=not interrupted):
            self._close(interrupted=interrupted)

    def _close(self, *, interrupted: bool) -> None:
        try:
            if interrupted:
                for future in self.pending:
                    future.cancel()
                self.engine.stop_probes()
            self.readers.shutdown(wait=True, cancel_futures=True)
            self.refreshers.shutdown(wait=True, cancel_futures=True)
            self.pool.shutdown(wait=True, cancel_futures=True)
        finally:
            if interrupted:
                self.engine.stop_probes()  # anything a worker created while it was being stopped
                self.engine.allow_probes()
            volumes = [g.volume for g in self.groups.values() if g.volume is not None]
            for group in self.groups.values():
                group.volume = None
            if volumes:
                self._remove(volumes)
