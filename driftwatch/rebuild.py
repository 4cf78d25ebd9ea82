"""Rebuild an image whose drift breached a threshold, and prove whether it worked.

Docker rebuilds build without a tag, re-tag only after the build succeeded (a failed build never
moves a tag), re-scan the new image and record the outcome: effective, ineffective (with the reason
in plain words) or failed (with the tail of the build log). Webhook rebuilds ask CI to do it; the
next scan tells whether it worked. A cooldown stops a rebuild that did not help from running every
night. No docker or requests import here: the engine and notify.http do that.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

from .config import DockerRebuild, RebuildSpec, Settings, WebhookRebuild
from .errors import ConfigError
from .models import BuildOutcome, ImageSummary, RebuildRecord, RebuildResult, ScanResult, ScanStatus
from .store import Store

logger = logging.getLogger(__name__)

REMEDIES = ("put the upgrade step last (`RUN apt-get update && apt-get -y upgrade && rm -rf /var/lib/apt/lists/*`) "
            "so code changes invalidate it, or add a final stage that upgrades packages and build `--target` "
            "the earlier stage during development")


class Builder(Protocol):
    """What rebuilds need from the engine."""

    def build(self, context: Path, *, tag: str | None = None, dockerfile: str | None = None, pull: bool = False,
              no_cache: bool = False, target: str | None = None, buildargs: Mapping[str, str] | None = None,
              labels: Mapping[str, str] | None = None, network: str | None = None,
              log_lines: int = 40) -> BuildOutcome:
        """`docker build`."""

    def tag(self, image_id: str, references: Sequence[str]) -> None:
        """Move tags to the image."""


@dataclass(frozen=True, slots=True)
class Plan:
    """A rebuild that would run (or is skipped, with why)."""

    reference: str
    spec: RebuildSpec
    why: str
    skip: str | None = None


def base_images(dockerfile: Path, build_args: Mapping[str, str] | None = None) -> list[str]:
    """The images named by FROM lines that are not earlier stages (what ``--pull`` fetches), with
    ``ARG`` defaults and build args expanded (``FROM ${BASE}`` names the real image)."""
    stages: set[str] = set()
    bases: list[str] = []
    args: dict[str, str] = {}
    try:
        text = dockerfile.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return []
    for line in text.splitlines():
        arg = re.match(r"^\s*ARG\s+([A-Za-z_][A-Za-z0-9_]*)(?:=(\S*))?", line, re.IGNORECASE)
        if arg and not bases and not stages:
            args[arg.group(1)] = (arg.group(2) or "").strip("\"'")
            continue
        match = re.match(r"^\s*FROM\s+(?:--\S+\s+)*(\S+)(?:\s+AS\s+(\S+))?", line, re.IGNORECASE)
        if match:
            values = {**args, **(build_args or {})}
            image = re.sub(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?", lambda m, v=values: v.get(m.group(1), m.group(0)),
                           match.group(1))
            alias = match.group(2)
            if image.lower() not in stages and image != "scratch" and image not in bases:
                bases.append(image)
            if alias:
                stages.add(alias.lower())
    return bases


def explain_ineffective(after: ScanResult, before: ImageSummary | None, limit: int) -> str:
    """Why a rebuild did not bring security drift within the limit, in plain words."""
    image = after.image
    held = [u.package for u in after.updates if u.security and (u.held or u.kept_back or u.phased)]
    if image is not None and image.history_known and image.apt_layer_command is None:
        return ("the Dockerfile has no package upgrade step, so a rebuild only reinstalls what the base image "
                f"has; only a newer base image can help. Remedies: {REMEDIES}")
    if held:
        return (f"{len(held)} security update(s) are held, kept back or phased ({', '.join(sorted(held)[:5])}); "
                "an upgrade step does not install them: review apt-mark holds and dependencies")
    return (f"{after.pending_security} security update(s) still pending after the rebuild (limit {limit}): the "
            "upgrade step may run in an earlier stage than the final image, or the mirror may lag; "
            f"{REMEDIES}")


@dataclass
class Rebuilder:
    """Plans and runs rebuilds. ``scan`` re-scans a reference; ``post`` delivers webhook triggers."""

    settings: Settings
    store: Store
    builder: Builder | None
    scan: Callable[[str], ScanResult]
    post: Callable[[str, Mapping[str, Any], Mapping[str, str], str], tuple[bool, str]] | None
    clock: Callable[[], datetime]
    environ: Mapping[str, str] = field(default_factory=lambda: os.environ)

    def plan(self, reference: str, why: str, *, force: bool = False) -> Plan:
        """What would happen for one reference; raises ConfigError when it has no rebuild settings."""
        spec = self.settings.rebuild_for(reference)
        if spec is None:
            raise ConfigError(f"{reference}: no rebuild configured; add an [images.rebuild] table for it")
        if force:
            return Plan(reference, spec, why)
        last = next(iter(self.store.rebuilds(reference, limit=1)), None)
        cooldown = timedelta(hours=self.settings.rebuild.cooldown_hours)
        if last is not None and self.clock() < last.finished_at + cooldown:
            until = (last.finished_at + cooldown).strftime("%Y-%m-%d %H:%M UTC")
            return Plan(reference, spec, why, skip=f"cooling down until {until} (last rebuild {last.outcome.value})")
        return Plan(reference, spec, why)

    def run(self, plans: Sequence[Plan], before: Mapping[str, ImageSummary]) -> list[RebuildRecord]:
        """Run the plans that are not skipped: builds in parallel (max_concurrent), then re-scans in order."""
        todo = [p for p in plans if p.skip is None]
        started = {p.reference: self.clock() for p in todo}
        docker_plans = [p for p in todo if isinstance(p.spec, DockerRebuild)]
        with ThreadPoolExecutor(max_workers=self.settings.rebuild.max_concurrent) as pool:
            builds = dict(zip([p.reference for p in docker_plans], pool.map(self._build, docker_plans), strict=True))
        records = []
        for plan in todo:
            prior = before.get(plan.reference)
            if isinstance(plan.spec, DockerRebuild):
                record = self._finish_docker(plan, plan.spec, builds[plan.reference], prior, started[plan.reference])
            else:
                record = self._trigger(plan, plan.spec, prior, started[plan.reference])
            self.store.save_rebuild(record)
            records.append(record)
        return records

    # -- docker ------------------------------------------------------------------------------------
    def _build(self, plan: Plan) -> BuildOutcome:
        spec = plan.spec
        assert isinstance(spec, DockerRebuild)
        if self.builder is None:
            return BuildOutcome(None, "", "no Docker engine to build with")
        dockerfile = spec.context / (spec.dockerfile or "Dockerfile")
        if not spec.context.is_dir():
            return BuildOutcome(None, "", f"the build context {spec.context} is not a directory")
        if not dockerfile.is_file():
            return BuildOutcome(None, "", f"no Dockerfile at {dockerfile}")
        logger.info("rebuilding %s from %s (pull=%s, no_cache=%s)", plan.reference, spec.context, spec.pull,
                    spec.no_cache)
        outcome = self.builder.build(spec.context, dockerfile=spec.dockerfile, pull=spec.pull, no_cache=spec.no_cache,
                                     target=spec.target, buildargs=spec.build_args, network=spec.network,
                                     labels={"io.driftwatch.rebuild-of": plan.reference[:200]})
        if outcome.error and spec.pull and _looks_like_pull_failure(outcome.error):
            bases = base_images(dockerfile, spec.build_args)
            named = ", ".join(bases) or "the base image"
            return BuildOutcome(None, outcome.log_tail, f"pulling {named} failed: {outcome.error} "
                                                      "(no registry reachable? set pull = false for local bases)")
        return outcome

    def _finish_docker(self, plan: Plan, spec: DockerRebuild, built: BuildOutcome, prior: ImageSummary | None,
                       started: datetime) -> RebuildRecord:
        base = dict(reference=plan.reference, trigger="docker", why=plan.why, requested_at=started,
                    old_image_id=prior.image_id if prior else None,
                    before_security=prior.pending_security if prior else None,
                    before_total=prior.pending_total if prior else None)
        if built.image_id is None:
            return RebuildRecord(**base, finished_at=self.clock(), outcome=RebuildResult.FAILED,  # type: ignore[arg-type]
                                 detail=f"build failed: {built.error}", log_tail=built.log_tail)
        assert self.builder is not None
        self.builder.tag(built.image_id, spec.tags or (plan.reference,))
        after = self.scan(plan.reference)
        self.store.save_scan(after)
        limit = self.settings.thresholds_for(plan.reference).max_security_pending or 0
        if after.status is not ScanStatus.OK:
            outcome, detail = RebuildResult.INEFFECTIVE, f"the re-scan did not succeed: {after.reason} {after.detail}"
        elif (after.actionable or (0, 0))[0] <= limit:  # held and phased are not the rebuild's to fix
            outcome, detail = RebuildResult.EFFECTIVE, (
                f"security updates pending {_n(prior.pending_security if prior else None)} -> {after.pending_security} "
                f"(limit {limit})")
        else:
            outcome, detail = RebuildResult.INEFFECTIVE, explain_ineffective(after, prior, limit)
        return RebuildRecord(**base, finished_at=self.clock(), outcome=outcome, detail=detail,  # type: ignore[arg-type]
                             new_image_id=after.image.image_id if after.image else built.image_id,
                             after_security=after.pending_security, after_total=after.pending_total,
                             log_tail=built.log_tail)

    # -- webhook -----------------------------------------------------------------------------------
    def _trigger(self, plan: Plan, spec: WebhookRebuild, prior: ImageSummary | None,
                 started: datetime) -> RebuildRecord:
        base = dict(reference=plan.reference, trigger="webhook", why=plan.why, requested_at=started,
                    old_image_id=prior.image_id if prior else None,
                    before_security=prior.pending_security if prior else None,
                    before_total=prior.pending_total if prior else None)
        url = self.environ.get(spec.url_env)
        token = self.environ.get(spec.token_env) if spec.token_env else None
        if not url or (spec.token_env and not token):
            missing = spec.url_env if not url else spec.token_env
            return RebuildRecord(**base, finished_at=self.clock(), outcome=RebuildResult.FAILED,  # type: ignore[arg-type]
                                 detail=f"environment variable {missing} is not set")
        values = {"image": plan.reference, "reason": plan.why, "image_id": (prior.image_id if prior else None) or "",
                  "pending_security": "" if prior is None or prior.pending_security is None
                  else str(prior.pending_security), "token": token or ""}
        body = render_body(spec.body, values) if spec.body else {k: v for k, v in values.items() if k != "token"}
        headers = {spec.token_header: f"{spec.token_prefix}{token}"} if token and spec.token_header else {}
        assert self.post is not None
        delivered, message = self.post(url, body, headers, spec.method)
        return RebuildRecord(**base, finished_at=self.clock(),  # type: ignore[arg-type]
                             outcome=RebuildResult.TRIGGERED if delivered else RebuildResult.FAILED,
                             detail=message)


def render_body(template: Any, values: Mapping[str, str]) -> Any:
    """Replace ``{image}``, ``{reason}``, ``{image_id}``, ``{pending_security}`` and ``{token}`` in
    every string of a configured body (tables and arrays included)."""
    if isinstance(template, str):
        for key, value in values.items():
            template = template.replace("{" + key + "}", value)
        return template
    if isinstance(template, Mapping):
        return {k: render_body(v, values) for k, v in template.items()}
    if isinstance(template, list):
        return [render_body(v, values) for v in template]
    return template


def _n(value: int | None) -> str:
    return "?" if value is None else str(value)


def _looks_like_pull_failure(error: str) -> bool:
    return bool(re.search(r"pull access denied|registry|no such host|dial tcp|lookup |manifest unknown|"
                          r"failed to resolve|repository does not exist", error, re.IGNORECASE))
