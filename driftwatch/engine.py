"""The only module that talks to Docker. Everything it returns is a driftwatch model; everything it
raises is a driftwatch error.

Scans never pull: the image is inspected first and a missing one is reported, not fetched.
The throwaway container is driven step by step (create, start, wait with a timeout, read stdout and
stderr separately, remove in ``finally``) so both streams, the exit code and clean-up are ours.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import posixpath
import re
import tarfile
import threading
import uuid
from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Protocol

import docker
import docker.errors
import docker.models.images
import requests.exceptions
import urllib3.exceptions
from docker.types import LogConfig, Mount

from .errors import DriftwatchError, EngineError, EngineUnavailable, ImageMissing
from .layers import AptLayer, find_apt_layer
from .models import (
    BuildOutcome,
    HistoryEntry,
    ImageFile,
    ImageIdentity,
    Platform,
    ProbeContainer,
    ProbeVolume,
    RunOutput,
)

logger = logging.getLogger(__name__)

PROBE_LABEL = "io.driftwatch.probe"
RUN_LABEL = "io.driftwatch.run"  # which driftwatch process created the probe
SCOPE_LABEL = "io.driftwatch.scope"  # which database the probe's results were for
#: Cap on what a probe may print, per stream; the rest is dropped and the output marked truncated.
OUTPUT_CAP = 16 * 1024 * 1024
DEADLINE_LABEL = "io.driftwatch.deadline"  # when the probe's scan timeout runs out (ISO 8601, UTC)
LISTS_LABEL = "io.driftwatch.lists"  # on a shared package-lists volume: the fingerprint of its apt sources
REFERENCE_LABEL = "io.driftwatch.reference"
MiB = 1024 * 1024
#: Where apt keeps its package lists; a shared lists volume is mounted here instead of the tmpfs.
LISTS_DIR = "/var/lib/apt/lists"
#: Cap on what one image may send through the archive API for its fingerprint (apt's config, keys,
#: dpkg's status: 86 KB in Ubuntu 24.04's base image, a few MB with a desktop's worth of packages).
FILES_CAP = 32 * MiB

# -- the least-privilege probe (README, "The probe container") --------------------------------------
#: Where apt may write; everything else in the probe is read-only, so a scan changes nothing. Found by
#: removing each mount from scans of driftwatch/debian:12, driftwatch/ubuntu:24.04, the drift fixture
#: and images that keep apt's binary caches (no docker-clean). Required: /var/lib/apt/lists (nothing is
#: fetched without it) and /tmp (apt passes its config to gpgv through a temporary file: without it
#: every Release "is not signed"). Kept: /var/cache/apt (the probe script keeps apt's binary cache
#: there, 39 MiB on Debian 12, 57 MiB on Ubuntu 24.04, so its apt commands share it; without the mount
#: apt builds the cache in memory for each, and an image with a stale pkgcache.bin gets "W: Problem
#: unlinking the file ... Read-only file system") and /var/tmp (for a TMPDIR pointing there). Not
#: needed: /var/log/apt, /var/lib/dpkg (update and list never lock dpkg; the upgrade listing runs with
#: Debug::NoLocking).
#: Path -> (size in bytes, or None for the memory limit; mode). tmpfs pages count against the memory
#: limit, the real bound: the lists are 84 MiB on Debian 12, 200 MiB on Ubuntu 24.04 (main, universe...).
PROBE_TMPFS: Mapping[str, tuple[int | None, str]] = {
    "/var/lib/apt/lists": (None, "0755"),
    "/var/cache/apt": (None, "0755"),
    "/tmp": (64 * MiB, "1777"),
    "/var/tmp": (16 * MiB, "1777"),
}
#: The only capabilities the probe keeps (all others dropped), found by removing each from the set
#: and scanning the images above with no-new-privileges on (apt's drop is setresuid(), not a setuid
#: binary, so no-new-privileges does not hinder it):
#:   SETUID, SETGID  apt's privilege drop to _apt (setgroups/setresgid/setresuid); without either
#:                   `apt-get update` stops at once: "E: setgroups 65534 failed" / "seteuid 42 failed".
#:   CHOWN           hands lists/partial to _apt; without it apt warns and downloads as root, unsandboxed.
#:   DAC_OVERRIDE    root reads and renames what _apt downloaded into the 0700 partial directory;
#:                   without it (and with CHOWN) every fetch fails "rename failed, Permission denied".
#:   FOWNER          chmod of files and directories now owned by _apt; without it apt warns on every file.
#: SETUID and SETGID alone do scan, but then apt's download methods run as root and each scan carries
#: the "unsandboxed" warnings; the five keep apt's own _apt sandbox and a warning-free scan.
PROBE_CAPABILITIES: tuple[str, ...] = ("CHOWN", "DAC_OVERRIDE", "FOWNER", "SETGID", "SETUID")
DEFAULT_PIDS_LIMIT = 256
#: Measured peaks (tmpfs included): 172 MiB on Debian 12, 330 MiB on Ubuntu 24.04; an image that keeps
#: pkgcache.bin, or adds an architecture, needs more. Past the limit the kernel kills the probe and
#: the scan fails (never ok).
DEFAULT_MEMORY_LIMIT = 1024 * MiB
DEFAULT_CPUS = 1.0
#: Connections kept to the engine; the CLI caps --jobs below it.
MAX_CONNECTIONS = 40
_TMPFS_FLAGS = "rw,nosuid,nodev,noexec"


class ProbeStartError(Exception):
    """The container could not start its command (e.g. no /bin/sh). Carries the engine's words."""


class ProbesStopped(EngineError):
    """The run is being interrupted (:meth:`DockerEngine.stop_probes`): no new probe may run."""


class Engine(Protocol):
    """What the scanner needs from a container engine."""

    def inspect_image(self, reference: str) -> ImageIdentity:
        """Identity of a local image; raises ImageMissing."""

    def run_probe(
        self, image_id: str, script: str, *, timeout: float, network: str, env: Mapping[str, str], reference: str,
        lists_volume: str | None = None, lists_writable: bool = False,
    ) -> RunOutput:
        """Run ``/bin/sh -c script`` as root in a throwaway container; raises ProbeStartError.
        ``lists_volume``: a shared package-lists volume mounted at :data:`LISTS_DIR` (read-only unless
        ``lists_writable``) instead of the lists tmpfs."""

    def platform(self) -> Platform:
        """The OS and architecture the engine runs natively, and what it can emulate."""


_ENGINE_TIME = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)?$")


def parse_engine_time(text: str | None) -> datetime | None:
    """Engine timestamps carry nanoseconds (``2026-12-03T16:33:10.123456789Z``); keep microseconds."""
    match = _ENGINE_TIME.match(text or "")
    if match is None or match.group(1).startswith("0001-"):
        return None
    whole, frac, zone = match.groups()
    offset = "+00:00" if zone in (None, "Z") else zone
    stamp = datetime.fromisoformat(f"{whole}.{(frac or '0')[:6].ljust(6, '0')}{offset}")
    return stamp.astimezone(timezone.utc)


# Docker's reference grammar (distribution/reference): [domain[:port]/]path[:tag][@digest], and IDs.
_ALNUM = r"[a-z0-9]+"
_PATH_COMPONENT = rf"{_ALNUM}(?:(?:[._]|__|-+){_ALNUM})*"
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN = rf"(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|\[[0-9a-fA-F:]+\])(?::[0-9]+)?"
_REFERENCE = re.compile(
    rf"(?:{_DOMAIN}/)?{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*"  # name
    r"(?::[\w][\w.-]{0,127})?"  # tag
    r"(?:@[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,})?",  # digest
    re.ASCII,
)


def reference_problem(reference: str) -> str | None:
    """Why ``reference`` is not a valid image reference or ID, or None when it is one.

    Checked before the engine sees it: a malformed reference is the user's mistake, not the engine's,
    and docker-py would put it into a URL path as is (``x/../y`` inspects the image ``y``).
    """
    if not reference:
        return "the image reference is empty"
    if len(reference) > 512:
        return f"the image reference is {len(reference)} characters long"
    if _REFERENCE.fullmatch(reference) is None:
        return ("not a valid image reference (expected [registry/]name[:tag][@digest], name in lower case, "
                "no spaces)")
    head, slash, last = reference.split("@", 1)[0].rpartition("/")
    if len(head + slash + last.split(":", 1)[0]) > 255:
        return "the repository name is longer than 255 characters"
    return None


#: uname -m and QEMU names -> Go architecture names (the image config's spelling).
_ARCHITECTURES = {"x86_64": "amd64", "x86-64": "amd64", "aarch64": "arm64", "armv7l": "arm", "armv6l": "arm",
                  "armhf": "arm", "armel": "arm", "i386": "386", "i686": "386", "ppc64el": "ppc64le",
                  "mips64el": "mips64le", "mipsel": "mipsle", "loongarch64": "loong64"}


def normalize_architecture(name: str) -> str:
    """``x86_64`` -> ``amd64``, ``aarch64`` -> ``arm64``...; Go names pass unchanged."""
    lowered = name.strip().lower()
    return _ARCHITECTURES.get(lowered, lowered)


def emulated_architectures(binfmt_dir: Path) -> frozenset[str] | None:
    """Architectures with an enabled QEMU handler in binfmt_misc; None when binfmt_misc is not mounted."""
    if not (binfmt_dir / "status").is_file():
        return None
    found = set()
    for entry in binfmt_dir.iterdir():
        if entry.name in ("status", "register") or not entry.name.startswith("qemu-"):
            continue
        try:
            enabled = entry.read_text().splitlines()[:1] == ["enabled"]
        except OSError:
            continue
        if enabled:
            found.add(normalize_architecture(entry.name.removeprefix("qemu-")))
    return frozenset(found)


def split_reference(reference: str) -> tuple[str, str]:
    """``registry:5000/repo:tag`` -> (``registry:5000/repo``, ``tag``); no tag means ``latest``."""
    repo, colon, tag = reference.rpartition(":")
    if not colon or "/" in tag:
        return reference, "latest"
    return repo, tag


class DockerEngine:
    """Engine backed by the Docker SDK, configured from the environment (DOCKER_HOST...)."""

    def __init__(self, client: docker.DockerClient | None = None, *, scope: str | None = None,
                 pids_limit: int = DEFAULT_PIDS_LIMIT, mem_limit: int = DEFAULT_MEMORY_LIMIT,
                 cpus: float = DEFAULT_CPUS, binfmt_dir: Path = Path("/proc/sys/fs/binfmt_misc")) -> None:
        """``scope`` labels this process's probes (the CLI uses the database), so clean-up after a
        crash only ever touches probes of the same scope. ``pids_limit``, ``mem_limit`` (bytes) and
        ``cpus`` bound every probe container. ``binfmt_dir`` is where a local engine's emulators are
        registered (read for :meth:`platform`)."""
        if pids_limit < 16 or mem_limit < 64 * MiB or cpus <= 0:
            raise ValueError("probe limits too small: pids_limit >= 16, mem_limit >= 64 MiB, cpus > 0")
        self.pids_limit, self.mem_limit, self.cpus = pids_limit, mem_limit, cpus
        self.binfmt_dir = binfmt_dir
        self._platform: Platform | None = None
        host = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
        try:
            # One connection per concurrent probe (--jobs): docker-py's default pool holds 10.
            self.client = client or docker.from_env(timeout=60, max_pool_size=MAX_CONNECTIONS)
            self.client.ping()
        except docker.errors.DockerException as exc:
            raise EngineUnavailable(
                f"no Docker engine answers at {host} ({_short(exc)}); start one "
                "(in a driftwatch checkout: scripts/engine.sh up) "
                "or point DOCKER_HOST at one, e.g. DOCKER_HOST=unix:///run/docker.sock"
            ) from exc
        except requests.exceptions.RequestException as exc:
            raise EngineUnavailable(f"no Docker engine answers at {host}: {_short(exc)}") from exc
        self.host = host
        self.run_id = uuid.uuid4().hex[:12]
        self.scope = scope
        # Containers of this process that exist now (probes, fingerprint readers), for stop_probes().
        self._guard = threading.Lock()
        self._live: dict[str, docker.models.containers.Container] = {}
        self._stopped = False

    # -- images ---------------------------------------------------------------------------------
    def inspect_image(self, reference: str) -> ImageIdentity:
        """Inspect a local image. Never pulls. A malformed reference is ImageMissing, with the reason."""
        if problem := reference_problem(reference):
            raise ImageMissing(f"image {reference!r}: {problem}")
        try:
            image = self.client.images.get(reference)
        except docker.errors.ImageNotFound as exc:
            raise ImageMissing(f"image {reference!r} is not present in the local engine "
                               "(driftwatch never pulls)") from exc
        except docker.errors.APIError as exc:
            if exc.status_code in (400, 404):
                raise ImageMissing(f"image {reference!r}: {exc.explanation or exc}") from exc
            raise EngineError(f"inspecting {reference!r} failed: {_short(exc)}") from exc
        except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
            raise EngineUnavailable(f"engine at {self.host} stopped answering: {_short(exc)}") from exc
        attrs = image.attrs
        layer = self._apt_layer(image, reference)
        return ImageIdentity(
            reference=reference,
            image_id=attrs["Id"],
            repo_tags=tuple(attrs.get("RepoTags") or ()),
            repo_digests=tuple(attrs.get("RepoDigests") or ()),
            created=parse_engine_time(attrs.get("Created")),
            os=attrs.get("Os") or "",
            architecture=attrs.get("Architecture") or "",
            history_known=layer is not None,
            apt_layer_created=layer.created if layer else None,
            apt_layer_command=layer.command if layer else None,
            base_layer=next(iter((attrs.get("RootFS") or {}).get("Layers") or ()), None),
        )

    def platform(self) -> Platform:
        """The engine's native platform (``client.info()``, normalised: x86_64 -> amd64, aarch64 -> arm64)
        and, for an engine on this machine's Unix socket, the architectures binfmt_misc emulates."""
        if self._platform is None:
            try:
                info = self.client.info()
            except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
                raise EngineUnavailable(f"engine at {self.host} stopped answering: {_short(exc)}") from exc
            local = self.host.startswith("unix://")
            self._platform = Platform(
                os=str(info.get("OSType") or "linux").lower(),
                architecture=normalize_architecture(str(info.get("Architecture") or "")),
                emulated=emulated_architectures(self.binfmt_dir) if local else None,
            )
            logger.debug("engine platform %s, emulates %s", self._platform, self._platform.emulated)
        return self._platform

    def _apt_layer(self, image: docker.models.images.Image, reference: str) -> AptLayer | None:
        """The layer that last refreshed packages; None when the history cannot be read."""
        try:
            raw = image.history()
        except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
            logger.warning("history of %s unavailable: %s", reference, _short(exc))
            return None
        entries = [
            HistoryEntry(datetime.fromtimestamp(h["Created"], timezone.utc) if h.get("Created") else None,
                         h.get("CreatedBy") or "")
            for h in raw
        ]
        return find_apt_layer(entries)

    def local_tags(self) -> list[str]:
        """Every tagged local image reference (``repo:tag``)."""
        try:
            images = self.client.images.list()
        except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
            raise EngineUnavailable(f"engine at {self.host} stopped answering: {_short(exc)}") from exc
        return sorted({t for img in images for t in (img.attrs.get("RepoTags") or ()) if t != "<none>:<none>"})

    def build(
        self, context: Path, *, tag: str | None = None, dockerfile: str | None = None, pull: bool = False,
        no_cache: bool = False, target: str | None = None, buildargs: Mapping[str, str] | None = None,
        labels: Mapping[str, str] | None = None, network: str | None = None, log_lines: int = 40,
    ) -> BuildOutcome:
        """`docker build` through the SDK. A failed build is an outcome, not an exception."""
        logger.debug("build %s tag=%s pull=%s no_cache=%s target=%s", context, tag, pull, no_cache, target)
        try:
            image, log = self.client.images.build(
                path=str(context), tag=tag, dockerfile=dockerfile, pull=pull, nocache=no_cache, target=target,
                buildargs=dict(buildargs or {}), labels=dict(labels or {}), network_mode=network, rm=True,
                forcerm=True,
            )
        except docker.errors.BuildError as exc:
            return BuildOutcome(None, _log_tail(exc.build_log, log_lines), str(exc.msg).strip())
        except docker.errors.APIError as exc:
            return BuildOutcome(None, "", str(exc.explanation or exc).strip())
        except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
            raise EngineUnavailable(f"engine at {self.host} stopped answering: {_short(exc)}") from exc
        return BuildOutcome(image.id, _log_tail(log, log_lines))

    def tag(self, image_id: str, references: Iterable[str]) -> None:
        """Point each ``repo:tag`` reference at the image (only ever called after a successful build)."""
        try:
            image = self.client.images.get(image_id)
            for ref in references:
                repo, tag = split_reference(ref)
                image.tag(repo, tag)
        except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
            raise EngineError(f"tagging {image_id[:19]} failed: {_short(exc)}") from exc

    def remove_image(self, reference: str) -> None:
        """Remove an image (forced; children and running containers permitting)."""
        try:
            self.client.images.remove(reference, force=True)
        except docker.errors.ImageNotFound:
            pass
        except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
            raise EngineError(f"removing {reference!r} failed: {_short(exc)}") from exc

    # -- probe containers ---------------------------------------------------------------------
    def run_probe(
        self, image_id: str, script: str, *, timeout: float, network: str, env: Mapping[str, str], reference: str,
        lists_volume: str | None = None, lists_writable: bool = False,
    ) -> RunOutput:
        """Run the script in a throwaway, least-privilege container that is always removed.

        Read-only root filesystem with tmpfs only at :data:`PROBE_TMPFS`, every capability dropped but
        :data:`PROBE_CAPABILITIES`, no-new-privileges, limits on processes, memory and CPU, the log
        capped on the engine's disk and each stream capped here at :data:`OUTPUT_CAP`, and a hard
        timeout after which the container is killed. Anonymous volumes (an image's VOLUME) go with it.

        ``lists_volume`` replaces the tmpfs at :data:`LISTS_DIR` with a shared package-lists volume
        (:meth:`create_lists_volume`), read-only unless ``lists_writable`` (the one refresh that fills
        it). It is mounted without copying the image's own lists in: it starts as empty as the tmpfs.
        Raises :class:`ProbesStopped` once :meth:`stop_probes` was called.
        """
        logger.debug("probe %s (%s): network=%s timeout=%ss lists=%s%s", reference, image_id, network, timeout,
                     lists_volume or "tmpfs", " (rw)" if lists_volume and lists_writable else "")
        container = None
        deadline = datetime.now(timezone.utc) + timedelta(seconds=timeout)
        tmpfs = self._tmpfs()
        mounts = []
        if lists_volume is not None:
            del tmpfs[LISTS_DIR]
            mounts.append(Mount(LISTS_DIR, lists_volume, type="volume", read_only=not lists_writable, no_copy=True))
        try:
            self._check_running()
            container = self.client.containers.create(
                image_id,
                entrypoint=["/bin/sh", "-c"],
                command=[script],
                user="0:0",
                environment=dict(env),
                labels=self._labels(reference, deadline),
                network_mode=network,
                working_dir="/",
                detach=True,
                tty=False,
                stdin_open=False,
                read_only=True,
                tmpfs=tmpfs,
                mounts=mounts,
                cap_drop=["ALL"],
                cap_add=list(PROBE_CAPABILITIES),
                security_opt=["no-new-privileges"],
                pids_limit=self.pids_limit,
                mem_limit=self.mem_limit,
                memswap_limit=self.mem_limit,  # no swap: the limit is the limit
                nano_cpus=int(self.cpus * 1e9),
                # The engine keeps the log on its disk: bound it too (JSON lines cost ~2x the text).
                log_config=LogConfig(type="json-file", config={"max-size": f"{4 * OUTPUT_CAP // MiB}m",
                                                               "max-file": "2"}),
            )
            self._register(container)
            try:
                container.start()
            except docker.errors.APIError as exc:
                raise ProbeStartError(str(exc.explanation or exc)) from exc
            timed_out = False
            try:
                status = container.wait(timeout=timeout)
                exit_code: int | None = int(status.get("StatusCode", -1))
            except requests.exceptions.RequestException as exc:
                if not _is_read_timeout(exc):
                    raise  # the engine went away while the probe ran: not a timeout
                logger.debug("probe %s timed out after %ss; killing", reference, timeout)
                timed_out, exit_code = True, None
                _quietly(container.kill)
            container.reload()
            oom_killed = bool(container.attrs.get("State", {}).get("OOMKilled"))
            stdout, cut_out = _capped(container.logs(stdout=True, stderr=False, stream=True))
            stderr, cut_err = _capped(container.logs(stdout=False, stderr=True, stream=True))
            logger.debug("probe %s exit=%s oom=%s stdout=%dB stderr=%dB", reference, exit_code, oom_killed,
                         len(stdout), len(stderr))
            return RunOutput(exit_code, stdout, stderr, timed_out=timed_out, truncated=cut_out or cut_err,
                             oom_killed=oom_killed)
        except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
            raise self._translate(exc, reference, "probe container for", "disappeared before its scan ran") from exc
        finally:
            self._discard(container)

    def _translate(self, exc: Exception, reference: str, doing: str, vanished: str) -> DriftwatchError:
        """One translation of docker-py's errors for container work on an image."""
        if isinstance(exc, docker.errors.ImageNotFound):
            return ImageMissing(f"image {reference!r} {vanished}")
        if isinstance(exc, docker.errors.APIError):
            return EngineError(f"{doing} {reference!r} failed: {_short(exc)}")
        return EngineUnavailable(f"engine at {self.host} stopped answering: {_short(exc)}")

    def _discard(self, container: Any) -> None:
        """Remove a container this process created, with its anonymous volumes; never raises."""
        if container is not None:
            self._unregister(container)
            _quietly(lambda: container.remove(force=True, v=True))

    def _labels(self, reference: str, deadline: datetime) -> dict[str, str]:
        """The labels that let clean-up find what this process creates, and decide when it is stale."""
        return {PROBE_LABEL: "1", RUN_LABEL: self.run_id, SCOPE_LABEL: self.scope or "",
                DEADLINE_LABEL: deadline.isoformat(timespec="seconds"), REFERENCE_LABEL: reference[:200]}

    def _check_running(self) -> None:
        if self._stopped:
            raise ProbesStopped("the scan was interrupted; no new probe is started")

    def _register(self, container: docker.models.containers.Container) -> None:
        """Track a container of this process; remove it at once when the run is being stopped."""
        with self._guard:
            if not self._stopped:
                self._live[container.id] = container
                return
        raise ProbesStopped("the scan was interrupted; no new probe is started")  # the caller's finally removes it

    def _unregister(self, container: docker.models.containers.Container) -> None:
        with self._guard:
            self._live.pop(container.id, None)

    def stop_probes(self) -> int:
        """Interrupt this process's scans: no new probe or reader container starts, and every one that
        exists is force-removed now (its waiting scan then ends). Returns how many were removed.
        Thread-safe; :meth:`allow_probes` undoes the block."""
        with self._guard:
            self._stopped = True
            live = list(self._live.values())
        for container in live:
            _quietly(lambda c=container: c.remove(force=True, v=True))  # type: ignore[misc]
        if live:
            logger.debug("stopped %d running probe(s)", len(live))
        return len(live)

    def allow_probes(self) -> None:
        """Let probes run again after :meth:`stop_probes` (once its scans have all ended)."""
        with self._guard:
            self._stopped = False

    # -- reading an image's files without running it --------------------------------------------
    @contextlib.contextmanager
    def image_files(self, image_id: str, *, reference: str, cap: int = FILES_CAP) -> Iterator[ImageFiles]:
        """Read files of an image through the archive API of a created, never started container
        (labelled like a probe, removed on exit). Raises ImageMissing, EngineError, EngineUnavailable."""
        container = None
        deadline = datetime.now(timezone.utc) + timedelta(seconds=120)
        try:
            self._check_running()
            container = self.client.containers.create(
                image_id, entrypoint=["/bin/sh", "-c"], command=["exit 0"], user="0:0", network_mode="none",
                labels=self._labels(reference, deadline), detach=True,
            )
            self._register(container)
            yield ImageFiles(container, self.host, reference, cap)
        except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
            raise self._translate(exc, reference, "reading files of", "disappeared before its files were read") from exc
        finally:
            self._discard(container)

    # -- shared package-lists volumes -----------------------------------------------------------
    def create_lists_volume(self, fingerprint: str, *, reference: str, deadline: datetime) -> str:
        """A new, empty volume for one group's package lists, labelled like a probe (so `driftwatch
        cleanup` finds it after a crash) with ``deadline``: by when the run that uses it has ended."""
        self._check_running()
        name = f"driftwatch-lists-{self.run_id}-{fingerprint[:12]}"
        try:
            self.client.volumes.create(name=name, driver="local", labels={
                **self._labels(reference, deadline), LISTS_LABEL: fingerprint[:64]})
        except docker.errors.APIError as exc:
            raise EngineError(f"creating the lists volume {name} failed: {_short(exc)}") from exc
        except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
            raise EngineUnavailable(f"engine at {self.host} stopped answering: {_short(exc)}") from exc
        logger.debug("created lists volume %s for %s", name, reference)
        return name

    def remove_volumes(self, names: Iterable[str]) -> list[str]:
        """Remove driftwatch volumes; one still mounted by a container is kept. Returns those removed."""
        removed = []
        for name in names:
            try:
                self.client.volumes.get(name).remove(force=False)
                removed.append(name)
            except docker.errors.NotFound:
                continue
            except docker.errors.APIError as exc:
                if exc.status_code == 409:  # in use
                    logger.debug("volume %s is in use; kept", name)
                    continue
                raise EngineError(f"removing volume {name} failed: {_short(exc)}") from exc
            except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
                raise EngineUnavailable(f"engine at {self.host} stopped answering: {_short(exc)}") from exc
        return removed

    def find_volumes(self, *, all_scopes: bool = False, this_run: bool = False) -> list[ProbeVolume]:
        """driftwatch's volumes by label: this process's (``this_run``), this engine's scope, or every
        scope (``all_scopes``, or when the engine has none). Oldest first."""
        if this_run:
            label = f"{RUN_LABEL}={self.run_id}"
        else:
            label = f"{SCOPE_LABEL}={self.scope}" if self.scope and not all_scopes else PROBE_LABEL
        try:
            found = self.client.volumes.list(filters={"label": label})
        except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
            raise EngineUnavailable(f"engine at {self.host} stopped answering: {_short(exc)}") from exc
        volumes = []
        for v in found:
            labels = v.attrs.get("Labels") or {}
            if PROBE_LABEL not in labels:
                continue
            try:
                deadline: datetime | None = datetime.fromisoformat(labels.get(DEADLINE_LABEL) or "")
            except ValueError:
                deadline = None
            volumes.append(ProbeVolume(name=v.name, reference=labels.get(REFERENCE_LABEL, ""),
                                       created=parse_engine_time(v.attrs.get("CreatedAt")), deadline=deadline,
                                       run_id=labels.get(RUN_LABEL, ""), scope=labels.get(SCOPE_LABEL, "")))
        return sorted(volumes, key=lambda p: (p.created or datetime.min.replace(tzinfo=timezone.utc), p.name))

    def _tmpfs(self) -> dict[str, str]:
        """The probe's tmpfs mounts with their options (sizes default to the memory limit)."""
        return {path: f"{_TMPFS_FLAGS},size={size or self.mem_limit},mode={mode}"
                for path, (size, mode) in PROBE_TMPFS.items()}

    def find_probes(self, *, all_scopes: bool = False) -> list[ProbeContainer]:
        """Probe containers found by label (never by name): this engine's scope, or every scope when
        ``all_scopes`` or when the engine has none. Oldest first."""
        label = f"{SCOPE_LABEL}={self.scope}" if self.scope and not all_scopes else PROBE_LABEL
        try:
            found = self.client.containers.list(all=True, filters={"label": label}, ignore_removed=True)
        except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
            raise EngineUnavailable(f"engine at {self.host} stopped answering: {_short(exc)}") from exc
        probes = []
        for c in found:
            labels = c.attrs.get("Config", {}).get("Labels") or {}
            if PROBE_LABEL not in labels:
                continue
            try:
                deadline: datetime | None = datetime.fromisoformat(labels.get(DEADLINE_LABEL) or "")
            except ValueError:
                deadline = None
            probes.append(ProbeContainer(
                id=c.id, reference=labels.get(REFERENCE_LABEL, ""),
                state=str(c.attrs.get("State", {}).get("Status") or c.status),
                created=parse_engine_time(c.attrs.get("Created")), deadline=deadline, run_id=labels.get(RUN_LABEL, ""),
                scope=labels.get(SCOPE_LABEL, ""),
            ))
        return sorted(probes, key=lambda p: (p.created or datetime.min.replace(tzinfo=timezone.utc), p.id))

    def remove_probes(self, ids: Iterable[str]) -> list[str]:
        """Force-remove probe containers (found by label, e.g. left by a crashed run); returns removed IDs."""
        removed = []
        for cid in ids:
            try:
                self.client.containers.get(cid).remove(force=True, v=True)  # v: its anonymous volumes too
                removed.append(cid)
            except docker.errors.NotFound:
                continue
            except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
                raise EngineError(f"removing probe container {cid[:12]} failed: {_short(exc)}") from exc
        return removed

    def leftover_probes(self, *, this_run: bool = True) -> list[str]:
        """IDs of probe containers still present: this process's, or (``this_run=False``) any run's
        of the same scope (every scope when this engine has none)."""
        if this_run:
            label = f"{RUN_LABEL}={self.run_id}"
        else:
            label = f"{SCOPE_LABEL}={self.scope}" if self.scope else PROBE_LABEL
        return [c.id for c in self.client.containers.list(all=True, sparse=True, filters={"label": label})]


class ImageFiles:
    """Reads paths of a created (never started) container through the archive API, within a byte cap.

    ``read(path)`` returns the entry at ``path`` and, for a directory, everything under it; a path that
    does not exist gives ``()``. A link is returned as a link (the caller decides whether to follow).
    """

    def __init__(self, container: docker.models.containers.Container, host: str, reference: str, cap: int) -> None:
        self._container, self._host, self._reference = container, host, reference
        self._left = cap
        self.cap = cap

    @property
    def env(self) -> tuple[str, ...]:
        """The image's environment (``NAME=value``), as the container would start with it."""
        return tuple((self._container.attrs.get("Config") or {}).get("Env") or ())

    def read(self, path: str) -> tuple[ImageFile, ...]:
        """The entries at ``path`` (absolute): files with their content, directories, links."""
        try:
            chunks, _stat = self._container.get_archive(path)
            buf = bytearray()
            for chunk in chunks:
                buf += chunk
                if len(buf) > self._left:
                    raise EngineError(f"the files of {self._reference!r} to fingerprint exceed {self.cap} bytes")
        except docker.errors.NotFound:
            return ()
        except docker.errors.APIError as exc:
            raise EngineError(f"reading {path} in {self._reference!r} failed: {_short(exc)}") from exc
        except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
            raise EngineUnavailable(f"engine at {self._host} stopped answering: {_short(exc)}") from exc
        self._left -= len(buf)
        return _tar_entries(bytes(buf), posixpath.dirname(path.rstrip("/")) or "/")


def _tar_entries(data: bytes, parent: str) -> tuple[ImageFile, ...]:
    """The entries of an archive-API tar stream, with absolute paths (members are relative to ``parent``)."""
    entries = []
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tar:
            for member in tar:
                path = posixpath.normpath(posixpath.join(parent, member.name))
                if member.isfile():
                    extracted = tar.extractfile(member)
                    content = extracted.read() if extracted is not None else b""
                    kind, target = "file", ""
                elif member.isdir():
                    content, kind, target = b"", "dir", ""
                elif member.issym() or member.islnk():
                    content, kind, target = b"", "link" if member.issym() else "hardlink", member.linkname
                else:
                    content, kind, target = b"", "other", ""
                entries.append(ImageFile(path, kind, member.mode & 0o7777, member.uid, member.gid, content, target))
    except tarfile.TarError as exc:
        raise EngineError(f"the engine sent an unreadable archive: {exc}") from exc
    return tuple(entries)


def _is_read_timeout(exc: BaseException) -> bool:
    """docker-py over a Unix socket reports a read timeout as ConnectionError(ReadTimeoutError)."""
    if isinstance(exc, requests.exceptions.ReadTimeout):
        return True
    return any(isinstance(arg, urllib3.exceptions.ReadTimeoutError)
               or isinstance(getattr(arg, "reason", None), urllib3.exceptions.ReadTimeoutError)
               for arg in getattr(exc, "args", ()))


def _capped(chunks: Iterator[bytes]) -> tuple[str, bool]:
    buf = bytearray()
    truncated = False
    for chunk in chunks:
        room = OUTPUT_CAP - len(buf)
        if room <= 0:
            truncated = True
            continue  # drain, so the stream closes
        buf += chunk[:room]
        truncated = truncated or len(chunk) > room
    return buf.decode("utf-8", errors="replace"), truncated


def _log_tail(log: Iterable[Mapping[str, Any]], lines: int) -> str:
    text = "".join(str(chunk.get("stream") or chunk.get("error") or "") for chunk in log)
    return "\n".join([line for line in text.splitlines() if line.strip()][-lines:])


def _quietly(action: object) -> None:
    try:
        action()  # type: ignore[operator]
    except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
        logger.debug("clean-up step failed: %s", exc)


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[-1] if text else type(exc).__name__
