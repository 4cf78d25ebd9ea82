"""The only module that talks to Docker. Everything it returns is a driftwatch model; everything it
raises is a driftwatch error.

Scans never pull: the image is inspected first and a missing one is reported, not fetched.
The throwaway container is driven step by step (create, start, wait with a timeout, read stdout and
stderr separately, remove in ``finally``) so both streams, the exit code and clean-up are ours.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterator, Mapping
from datetime import datetime, timezone
from typing import Protocol

import docker
import docker.errors
import requests.exceptions

from .errors import EngineError, EngineUnavailable, ImageMissing
from .models import ImageIdentity, RunOutput

logger = logging.getLogger(__name__)

PROBE_LABEL = "io.driftwatch.probe"
#: Cap on what a probe may print, per stream; the rest is dropped and the output marked truncated.
OUTPUT_CAP = 16 * 1024 * 1024


class ProbeStartError(Exception):
    """The container could not start its command (e.g. no /bin/sh). Carries the engine's words."""


class Engine(Protocol):
    """What the scanner needs from a container engine."""

    def inspect_image(self, reference: str) -> ImageIdentity:
        """Identity of a local image; raises ImageMissing."""

    def run_probe(
        self, image_id: str, script: str, *, timeout: float, network: str, env: Mapping[str, str], reference: str
    ) -> RunOutput:
        """Run ``/bin/sh -c script`` as root in a throwaway container; raises ProbeStartError."""


_ENGINE_TIME = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)?$")


def parse_engine_time(text: str | None) -> datetime | None:
    """Engine timestamps carry nanoseconds (``2026-12-03T16:33:10.123456789Z``); keep microseconds."""
    match = _ENGINE_TIME.match(text or "")
    if match is None or match.group(1).startswith("0001-"):
        return None
    whole, frac, zone = match.groups()
    stamp = datetime.fromisoformat(f"{whole}.{(frac or '0')[:6].ljust(6, '0')}{'+00:00' if zone in (None, 'Z') else zone}")
    return stamp.astimezone(timezone.utc)


class DockerEngine:
    """Engine backed by the Docker SDK, configured from the environment (DOCKER_HOST...)."""

    def __init__(self, client: docker.DockerClient | None = None) -> None:
        host = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
        try:
            self.client = client or docker.from_env(timeout=60)
            self.client.ping()
        except docker.errors.DockerException as exc:
            raise EngineUnavailable(
                f"no Docker engine answers at {host} ({_short(exc)}); start one (scripts/engine.sh up) "
                "or point DOCKER_HOST at one, e.g. DOCKER_HOST=unix:///run/docker.sock"
            ) from exc
        except requests.exceptions.RequestException as exc:
            raise EngineUnavailable(f"no Docker engine answers at {host}: {_short(exc)}") from exc
        self.host = host

    # -- images ---------------------------------------------------------------------------------
    def inspect_image(self, reference: str) -> ImageIdentity:
        """Inspect a local image. Never pulls."""
        try:
            image = self.client.images.get(reference)
        except docker.errors.ImageNotFound as exc:
            raise ImageMissing(f"image {reference!r} is not present in the local engine (driftwatch never pulls)") from exc
        except docker.errors.APIError as exc:
            if exc.status_code in (400, 404):
                raise ImageMissing(f"image {reference!r}: {exc.explanation or exc}") from exc
            raise EngineError(f"inspecting {reference!r} failed: {_short(exc)}") from exc
        except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
            raise EngineUnavailable(f"engine at {self.host} stopped answering: {_short(exc)}") from exc
        attrs = image.attrs
        return ImageIdentity(
            reference=reference,
            image_id=attrs["Id"],
            repo_tags=tuple(attrs.get("RepoTags") or ()),
            repo_digests=tuple(attrs.get("RepoDigests") or ()),
            created=parse_engine_time(attrs.get("Created")),
            os=attrs.get("Os") or "",
            architecture=attrs.get("Architecture") or "",
        )

    # -- probe containers ---------------------------------------------------------------------
    def run_probe(
        self, image_id: str, script: str, *, timeout: float, network: str, env: Mapping[str, str], reference: str
    ) -> RunOutput:
        """Run the script in a throwaway container that is always removed."""
        logger.debug("probe %s (%s): network=%s timeout=%ss", reference, image_id, network, timeout)
        container = None
        try:
            container = self.client.containers.create(
                image_id,
                entrypoint=["/bin/sh", "-c"],
                command=[script],
                user="0:0",
                environment=dict(env),
                labels={PROBE_LABEL: "1", "io.driftwatch.reference": reference[:200]},
                network_mode=network,
                working_dir="/",
                detach=True,
                tty=False,
                stdin_open=False,
            )
            try:
                container.start()
            except docker.errors.APIError as exc:
                raise ProbeStartError(str(exc.explanation or exc)) from exc
            timed_out = False
            try:
                status = container.wait(timeout=timeout)
                exit_code: int | None = int(status.get("StatusCode", -1))
            except (requests.exceptions.ReadTimeout, requests.exceptions.ConnectionError):
                logger.debug("probe %s timed out after %ss; killing", reference, timeout)
                timed_out, exit_code = True, None
                _quietly(container.kill)
            stdout, cut_out = _capped(container.logs(stdout=True, stderr=False, stream=True))
            stderr, cut_err = _capped(container.logs(stdout=False, stderr=True, stream=True))
            logger.debug("probe %s exit=%s stdout=%dB stderr=%dB", reference, exit_code, len(stdout), len(stderr))
            return RunOutput(exit_code, stdout, stderr, timed_out=timed_out, truncated=cut_out or cut_err)
        except docker.errors.ImageNotFound as exc:
            raise ImageMissing(f"image {reference!r} disappeared before its scan ran") from exc
        except docker.errors.APIError as exc:
            raise EngineError(f"probe container for {reference!r} failed: {_short(exc)}") from exc
        except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
            raise EngineUnavailable(f"engine at {self.host} stopped answering: {_short(exc)}") from exc
        finally:
            if container is not None:
                _quietly(lambda: container.remove(force=True))

    def leftover_probes(self) -> list[str]:
        """IDs of probe containers still present (from a crashed run)."""
        return [c.id for c in self.client.containers.list(all=True, filters={"label": PROBE_LABEL})]


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


def _quietly(action: object) -> None:
    try:
        action()  # type: ignore[operator]
    except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
        logger.debug("clean-up step failed: %s", exc)


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[-1] if text else type(exc).__name__
