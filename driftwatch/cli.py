"""The command line: parse options, build objects, call the library, render, map errors to exit codes.

The only module that prints or exits. Exit codes (README, "Exit codes"):
0 all fine, 1 over a threshold, 2 usage or config error, 3 a scan failed or was unsupported,
4 operational error (engine unreachable, store unusable).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import logging
import math
import os
import signal
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import click

from . import __version__, clock, policy
from .config import DockerRebuild, Settings, load
from .errors import ConfigError, DriftwatchError, LockHeld, StoreError
from .lock import RunLock
from .models import Assessment, RebuildResult, ScanResult, ScanStatus
from .report import DetailFormat, ReportFormat
from .store import Store, default_path, open_store

logger = logging.getLogger("driftwatch")

EXIT_OK, EXIT_BREACH, EXIT_USAGE, EXIT_SCAN_FAILED, EXIT_OPERATIONAL = 0, 1, 2, 3, 4
MAX_TIMEOUT = 86400.0  # a day: longer is a typo, and past ~1e9 s the deadline is no date at all


def _finite(value: float | None) -> float | None:
    """FloatRange lets nan through (nan compares false with both bounds)."""
    if value is not None and not math.isfinite(value):
        raise click.BadParameter(f"{value} is not a number of seconds")
    return value
CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


class DriftwatchGroup(click.Group):
    """Turns every DriftwatchError into one ``Error: ...`` line and its exit code."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            with _sigterm_as_interrupt():
                return super().invoke(ctx)
        except KeyboardInterrupt:  # Ctrl-C or SIGTERM in a command that does not say more itself
            if ctx.meta.get("driftwatch.debug"):
                raise
            click.echo("Error: interrupted; what finished is stored, nothing half-written is", err=True)
            ctx.exit(130)
        except DriftwatchError as exc:
            if ctx.meta.get("driftwatch.debug"):
                raise
            from .report.interface import safe

            click.echo(f"Error: {safe(exc)}", err=True)  # engine and apt words may carry escape sequences
            ctx.exit(exc.exit_code)


_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


def _setup_logging(verbose: int) -> None:
    level_name = os.environ.get("DRIFTWATCH_LOGLEVEL", "").strip().upper()
    level = {0: logging.WARNING, 1: logging.INFO}.get(verbose, logging.DEBUG)
    if level_name and level_name not in logging.getLevelNamesMapping():
        raise ConfigError(f"DRIFTWATCH_LOGLEVEL={level_name!r} is not a log level: use one of {', '.join(_LEVELS)}")
    if level_name:
        level = min(level, logging.getLevelNamesMapping()[level_name])
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    logger.handlers[:] = [handler]
    logger.setLevel(level)
    logger.propagate = False


def _store(ctx: click.Context, *, create: bool = True) -> Store:
    """The database; read-only commands pass ``create=False`` and never create one."""
    store = open_store(_db_path(ctx), create=create)
    ctx.call_on_close(store.close)
    return store


def _db_path(ctx: click.Context) -> Path:
    """The database's path, for every command that uses it. Only the default location's directory is
    created (by the store and the lock): a mistyped --db must not make directories anywhere."""
    db = ctx.obj["db"]
    if db is None:
        return default_path()
    if not db.parent.is_dir():
        raise StoreError(f"no directory {db.parent} for the database {db}: create it, or check --db / DRIFTWATCH_DB")
    return Path(db)


def _engine(ctx: click.Context) -> Any:
    """The Docker engine, its probes labelled with this database so crash clean-up stays in scope."""
    from .engine import DockerEngine

    scope = hashlib.sha256(str(_db_path(ctx).resolve()).encode()).hexdigest()[:16]
    return DockerEngine(scope=scope)


def _lock_path(ctx: click.Context) -> Path:
    return _db_path(ctx).with_name(_db_path(ctx).name + ".lock")


def _lock(ctx: click.Context, command: str, wait: float | None = None) -> RunLock:
    lock = RunLock(_lock_path(ctx), wait=wait, command=command)
    ctx.with_resource(lock)
    return lock


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM stops like Ctrl-C: probe containers removed, nothing half-written, lock released."""
    def handler(signum: int, frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _settings(ctx: click.Context) -> Settings:
    return ctx.obj["settings"]  # type: ignore[no-any-return]


def _assess(store: Store, settings: Settings, references: list[str] | None = None) -> list[Assessment]:
    return policy.assess(store.latest(references), settings, clock.now())


def report_format_option(default: str = "table") -> Any:
    return click.option("--format", "fmt", type=click.Choice([f.value for f in ReportFormat]), default=default,
                        envvar="DRIFTWATCH_FORMAT", show_default=True, help="Output format.")


def _default_jobs() -> int:
    from .fleet import default_jobs

    return default_jobs()


jobs_option = click.option(
    "--jobs", "-j", type=click.IntRange(1, 32), default=None, envvar="DRIFTWATCH_JOBS", metavar="N",
    help="Probes run at the same time; with shared lists, up to N refreshes of package lists run beside "
         "them (they mostly wait on the network). [default: the number of CPUs, at most 4]")
share_lists_option = click.option(
    "--share-lists/--no-share-lists", default=True, show_default=True,
    help="Refresh the package lists once per group of images with identical apt sources, and scan the "
         "group with them (--no-share-lists: every image refreshes its own and runs its own probe).")
share_probes_option = click.option(
    "--share-probes/--no-share-probes", default=True, show_default=True,
    help="With shared lists, probe once per group of images whose apt state is identical too (dpkg "
         "status, pins, machine ID, apt's binaries, ischroot): the others get that probe's answer once a "
         "short probe of their own shell shows the same state (--no-share-probes: every image is probed).")


def stderr_columns() -> int:
    """The width of the terminal the progress line is drawn on: stderr's, not stdout's (stdout is
    often a file: ``scan --format json > out.json``). COLUMNS wins, as in shutil; 100 when unknown."""
    try:
        if (columns := int(os.environ.get("COLUMNS", "0"))) > 0:
            return columns
    except ValueError:
        pass
    try:
        return os.get_terminal_size(sys.stderr.fileno()).columns or 100
    except (AttributeError, OSError, ValueError):
        return 100


class _Progress:
    """Scan progress on stderr: on a terminal, one line rewritten in place (images done, failures,
    what runs now) under the finished scans' lines; otherwise only the finished scans' lines."""

    def __init__(self, *, tty: bool | None = None, lines: bool = True) -> None:
        self.tty = sys.stderr.isatty() if tty is None else tty
        self.lines = lines  # print a line per finished scan
        self.status = ""

    def update(self, progress: Any) -> None:
        """A FleetProgress from the fleet (on this thread)."""
        if not self.tty:
            return
        if progress.done == progress.total and not progress.running:
            self.finish()
            return
        from .report.interface import safe

        running = ", ".join(safe(r) for r in progress.running[:2])
        if len(progress.running) > 2:
            running += f" (+{len(progress.running) - 2})"
        text = f"[{progress.done}/{progress.total}] {progress.failed} failed; {progress.phase}"
        self._draw(text + (f": {running}" if running else ""))

    def result(self, line: str) -> None:
        """A finished scan's line."""
        if not self.lines:
            return
        if self.tty and self.status:
            click.echo("\r\x1b[K" + line + "\n" + self.status, nl=False, err=True, color=True)
        else:
            click.echo(line, err=True)

    def _draw(self, text: str) -> None:
        width = max(20, stderr_columns() - 1)
        self.status = text if len(text) <= width else text[: width - 1] + "\u2026"
        click.echo("\r\x1b[K" + self.status, nl=False, err=True, color=True)

    def finish(self) -> None:
        """Clear the progress line."""
        if self.tty and self.status:
            click.echo("\r\x1b[K", nl=False, err=True, color=True)
            self.status = ""


detail_format_option = click.option(
    "--format", "fmt", type=click.Choice([f.value for f in DetailFormat]), default="table", show_default=True,
    help="Output format.",
)


@click.group(cls=DriftwatchGroup, context_settings=CONTEXT_SETTINGS)
@click.option("--db", type=click.Path(dir_okay=False, path_type=Path), envvar="DRIFTWATCH_DB",
              help=f"SQLite database file. [default: {default_path()}]")
@click.option("--config", "config_path", type=click.Path(dir_okay=False, path_type=Path),
              envvar="DRIFTWATCH_CONFIG", help="TOML configuration. [default: ./driftwatch.toml when present]")
@click.option("-v", "--verbose", count=True, help="More log lines on stderr (-vv for debug).")
@click.option("--debug", is_flag=True, help="Show tracebacks instead of one-line errors.")
@click.version_option(__version__, prog_name="driftwatch")
@click.pass_context
def main(ctx: click.Context, db: Path | None, config_path: Path | None, verbose: int, debug: bool) -> None:
    """Measure how far Docker images have drifted behind their distro's security updates.

    \b
    Example:
        driftwatch scan myorg/api:latest debian:12
        driftwatch report
        driftwatch check
    """
    ctx.ensure_object(dict)
    ctx.meta["driftwatch.debug"] = debug
    _setup_logging(verbose)
    ctx.obj["db"] = db
    try:
        ctx.obj["settings"] = load(config_path)
    except ConfigError as exc:
        if debug:
            raise
        click.echo(f"Error: {exc}", err=True)
        ctx.exit(exc.exit_code)


def _describe(result: ScanResult) -> str:
    """One line for the terminal; apt's words in the detail are shown with control characters as '?'."""
    from .report.interface import safe

    if result.status is ScanStatus.OK:
        shared = f" (same apt state as {safe(result.probe_of)})" if result.probe_of else ""
        return f"ok, {result.pending_total} pending, {result.pending_security} security{shared}"
    reason = result.reason.value if result.reason else "unknown"
    return safe(f"{result.status.value} ({reason}): {result.detail or ''}".rstrip(": "))


def _safe_ref(reference: str) -> str:
    from .report.interface import safe

    return safe(reference)


@main.command()
@click.argument("images", nargs=-1)
@click.option("--all", "all_local", is_flag=True, help="Scan every tagged local image.")
@click.option("--timeout", type=click.FloatRange(min=1, max=MAX_TIMEOUT), default=None, envvar="DRIFTWATCH_TIMEOUT",
              callback=lambda _ctx, _param, value: _finite(value),
              help="Seconds before a scan container is killed. [default: 600]")
@click.option("--network", default=None, envvar="DRIFTWATCH_NETWORK",
              help="Network of the scan container: bridge, host (proxies, loopback mirrors) or a network name. "
                   "[default: bridge]")
@jobs_option
@share_lists_option
@share_probes_option
@report_format_option()
@click.pass_context
def scan(ctx: click.Context, images: tuple[str, ...], all_local: bool, timeout: float | None,
         network: str | None, jobs: int | None, share_lists: bool, share_probes: bool, fmt: str) -> None:
    """Scan local IMAGES (or the configured ones) for pending apt updates and record the results.

    Each image runs `apt-get update` and `apt list --upgradable` in a throwaway container (entrypoint
    and user overridden, C locale). Nothing is pulled. A scan that could not refresh its package
    lists is recorded as failed, never as clean. With no IMAGES, scans the images of the config file;
    --all scans every tagged local image. Exit 3 when any scan failed or was unsupported.

    Up to --jobs probes run at once, and up to --jobs refreshes of shared package lists beside them
    (so --jobs 1 may run two containers). Images whose apt sources are identical (read from the image
    files, without running them) share one refresh of the package lists, mounted read-only into
    each image's probe. Within a group, images whose apt state is identical too (dpkg status, pins,
    machine ID, apt's binaries, ischroot: as after an application layer on a shared base) are
    probed once; each of the others gets that answer once a short probe of its own shell shows the
    same state. Ctrl-C and SIGTERM remove every running probe; finished scans are stored.

    \b
    Example:
        driftwatch scan driftwatch/debian:12 myorg/api:latest
        driftwatch scan --jobs 4 --all
        driftwatch scan --network host --timeout 300 myorg/worker:1.4
        driftwatch --config driftwatch.toml scan
    """
    from .fleet import Fleet, ScansLost
    from .scanner import DEFAULT_TIMEOUT, Scanner

    settings = _settings(ctx)
    if images and all_local:
        raise click.UsageError("give IMAGES or --all, not both")
    if not images and not all_local and not settings.images:
        raise click.UsageError("no IMAGES given and no [[images]] in the config; give IMAGES, --all or --config")
    store = _store(ctx)
    _lock(ctx, "scan")
    engine = _engine(ctx)
    if all_local:
        targets = engine.local_tags()
    elif images:
        targets = list(dict.fromkeys(images))
    else:
        targets = settings.select(engine.local_tags() if settings.has_patterns else [])
    if not targets:
        click.echo("No images to scan.", err=True)
        ctx.exit(EXIT_OK)
    scanner = Scanner(engine, timeout=timeout or settings.scan.timeout or DEFAULT_TIMEOUT,
                      network=network or settings.scan.network or "bridge", clock=clock.now,
                      security_origins=settings.scan.security_origins)
    progress = _Progress()
    fleet = Fleet(scanner, engine, jobs=jobs or _default_jobs(), share_lists=share_lists,
                  share_probes=share_probes, on_progress=progress.update)
    results = []
    try:
        with _sigterm_as_interrupt(), contextlib.closing(fleet.scan(targets)) as scans:
            for result in scans:  # stored here, on this thread, as each finishes
                store.save_scan(result)
                results.append(result)
                progress.result(f"{_safe_ref(result.reference)}: {_describe(result)}")
    except ScansLost as exc:
        progress.finish()
        for lost in exc.results(clock.now()):  # the finished scans are stored already
            try:
                store.save_scan(lost)
            except StoreError as store_exc:
                logger.warning("could not record the interrupted scan of %s: %s", lost.reference, store_exc)
        raise
    except KeyboardInterrupt:
        progress.finish()
        click.echo("Error: interrupted; finished scans are stored, interrupted ones are not", err=True)
        ctx.exit(130)
    progress.finish()
    rows = _assess(store, settings, targets)
    history = {r: store.history(r) for r in targets} if fmt == ReportFormat.HTML.value else {}
    click.echo(ReportFormat(fmt).to_formatter().report(rows, history), nl=False)
    bad = sorted((r for r in results if r.status is not ScanStatus.OK), key=lambda r: targets.index(r.reference))
    if bad:
        click.echo(f"{len(bad)} of {len(results)} scan(s) not ok: " + ", ".join(_safe_ref(r.reference) for r in bad),
                   err=True)
        ctx.exit(EXIT_SCAN_FAILED)


@main.command()
@report_format_option()
@click.pass_context
def report(ctx: click.Context, fmt: str) -> None:
    """Show every scanned image from its latest scan, stalest first, with ages and verdicts.

    Failed and unsupported scans come first (their drift is unknown), then images by pending
    security updates, then by all pending updates. The HTML format is one self-contained file with
    a chart per image of pending updates over time.

    \b
    Example:
        driftwatch report
        driftwatch report --format json | jq '.images[] | select(.pending_security > 0)'
        driftwatch report --format html > drift.html
    """
    store = _store(ctx, create=False)
    rows = _assess(store, _settings(ctx))
    history = {r.summary.reference: store.history(r.summary.reference) for r in rows} \
        if fmt == ReportFormat.HTML.value else {}
    text = ReportFormat(fmt).to_formatter().report(rows, history)
    dead = store.dead_letters()
    if fmt == ReportFormat.JSON.value:
        from .report.json import dump

        text = dump({**json.loads(text), "dead_letters": len(dead)})
    elif fmt == ReportFormat.TABLE.value and dead:
        from .report.interface import safe

        text += safe(f"{len(dead)} alert(s) dead-lettered: " + ", ".join(
            f"{d.kind} alert for {d.reference} to {d.target} ({d.last_error or 'no error recorded'})"
            for d in dead)) + "\n"
    click.echo(text, nl=False)


@main.command()
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True,
              help="Output format.")
@click.pass_context
def check(ctx: click.Context, fmt: str) -> None:
    """Evaluate the thresholds on each image's latest scan; exit 0 pass, 1 breach, 3 undecided.

    Evaluates the configured images (references and patterns over recorded references), or every
    recorded reference when the config names none. A failed or missing latest scan is never passing.

    \b
    Example:
        driftwatch check
        driftwatch --config ci.toml check --format json
    """
    from .report.interface import breach_text, flat
    from .report.json import dump

    settings = _settings(ctx)
    if not (path := _db_path(ctx)).exists():  # a gate must not pass because its --db was mistyped
        raise StoreError(f"no database at {path}: nothing was scanned into it (check --db / DRIFTWATCH_DB)")
    store = _store(ctx, create=False)
    recorded = store.references()
    references = settings.select(recorded) if settings.images else recorded
    assessed = _assess(store, settings, references)
    by_ref = {r.summary.reference: r for r in assessed}
    now = clock.now()
    # Undecided first (never scanned), then the report's stalest-first order.
    verdicts = [policy.evaluate(ref, None, settings.thresholds_for(ref), now) for ref in references
                if ref not in by_ref] + [r.verdict for r in assessed]
    code = policy.exit_code(verdicts)
    if fmt == "json":
        images = [flat(by_ref[v.reference]) if v.reference in by_ref else
                  {"reference": v.reference, "verdict": v.state.value, "verdict_note": v.note, "breaches": []}
                  for v in verdicts]
        click.echo(dump({"version": 1, "exit_code": code, "images": images}), nl=False)
    else:
        for v in verdicts:
            row = by_ref.get(v.reference)
            text = breach_text(row) if row else (v.note or "")
            click.echo(f"{v.state.value.upper():9} {v.reference}" + (f": {text}" if text else ""))
        if not verdicts:
            click.echo("No images to check: scan some first, or configure [[images]].", err=True)
    ctx.exit(code)


@main.command()
@click.argument("image")
@detail_format_option
@click.pass_context
def show(ctx: click.Context, image: str, fmt: str) -> None:
    """List the pending updates of IMAGE's latest scan, security first.

    \b
    Example:
        driftwatch show driftwatch/debian:12
        driftwatch show --format json myorg/api:latest
    """
    scan_id, result = _store(ctx, create=False).latest_scan(image)
    click.echo(DetailFormat(fmt).to_formatter().updates(scan_id, result), nl=False)


@main.command()
@click.argument("image")
@detail_format_option
@click.pass_context
def history(ctx: click.Context, image: str, fmt: str) -> None:
    """Every recorded scan of IMAGE, oldest first: pending security and total updates over time.

    \b
    Example:
        driftwatch history myorg/api:latest
        driftwatch history --format json myorg/api:latest
    """
    points = _store(ctx, create=False).history(image)
    click.echo(DetailFormat(fmt).to_formatter().history(image, points), nl=False)


def _post_webhook(url: str, body: Mapping[str, Any], headers: Mapping[str, str], method: str) -> tuple[bool, str]:
    from .notify.http import deliver, redact

    delivery = deliver(url, body, headers=headers, method=method)
    if delivery.delivered:
        return True, f"CI trigger accepted by {redact(url)} (HTTP {delivery.status})"
    return False, delivery.error or "CI trigger not delivered"


@main.command()
@click.argument("images", nargs=-1)
@click.option("--breached", is_flag=True, help="Rebuild every configured image whose verdict is breach or eol.")
@click.option("--dry-run", is_flag=True, help="Show what would be rebuilt and why; change nothing.")
@click.option("--force", is_flag=True, help="Ignore the cooldown.")
@click.pass_context
def rebuild(ctx: click.Context, images: tuple[str, ...], breached: bool, dry_run: bool, force: bool) -> None:
    """Rebuild IMAGES (or every breached image) as configured, re-scan, and record the outcome.

    Docker rebuilds run `docker build` (pull and no-cache by default) through the SDK, move the tags
    only after the build succeeded, re-scan the new image and record effective / ineffective /
    failed with the drift before and after. Webhook rebuilds ask CI. A cooldown per image stops
    a rebuild that did not help from running every night. Exit 0 when every rebuild was effective
    or triggered, 1 when one was ineffective, 4 when one failed.

    \b
    Example:
        driftwatch rebuild --breached --dry-run
        driftwatch rebuild myorg/api:latest
    """
    from .report.interface import breach_text

    settings = _settings(ctx)
    if bool(images) == breached:
        raise click.UsageError("give IMAGES or --breached (one of them)")
    store = _store(ctx)
    rows = {r.summary.reference: r for r in _assess(store, settings)}
    if breached:
        targets = [ref for ref, r in rows.items() if r.verdict.state.value in ("breach", "eol")
                   and settings.rebuild_for(ref) is not None]
    else:
        targets = list(dict.fromkeys(images))
    engine = None
    if not dry_run:
        _lock(ctx, "rebuild")
        if any(isinstance(settings.rebuild_for(t), DockerRebuild) for t in targets):
            engine = _engine(ctx)
    from .rebuild import Rebuilder
    from .scanner import DEFAULT_TIMEOUT, Scanner

    scanner = Scanner(engine, timeout=settings.scan.timeout or DEFAULT_TIMEOUT,  # type: ignore[arg-type]
                      network=settings.scan.network or "bridge", clock=clock.now,
                      security_origins=settings.scan.security_origins)
    rebuilder = Rebuilder(settings, store, engine, scanner.scan, _post_webhook, clock.now)
    plans = [rebuilder.plan(t, (breach_text(rows[t]) if t in rows and breach_text(rows[t]) else "requested"),
                            force=force) for t in targets]
    for plan in plans:
        kind = "docker build" if isinstance(plan.spec, DockerRebuild) else "CI webhook"
        state = f"skip: {plan.skip}" if plan.skip else ("would rebuild" if dry_run else "rebuilding")
        click.echo(f"{plan.reference}: {state} ({kind}; why: {plan.why})", err=True)
    if not plans:
        click.echo("Nothing to rebuild.", err=True)
    if dry_run or not plans:
        return
    records = rebuilder.run(plans, {r: rows[r].summary for r in rows})
    for rec in records:
        ids = " -> ".join((i or "-").removeprefix("sha256:")[:12] for i in (rec.old_image_id, rec.new_image_id))
        click.echo(f"{rec.reference}: {rec.outcome.value} ({ids}): {rec.detail}")
        if rec.outcome is RebuildResult.FAILED and rec.log_tail:
            click.echo("  " + "\n  ".join(rec.log_tail.splitlines()[-10:]), err=True)
    outcomes = {r.outcome for r in records}
    if RebuildResult.FAILED in outcomes:
        ctx.exit(EXIT_OPERATIONAL)
    if RebuildResult.INEFFECTIVE in outcomes:
        ctx.exit(EXIT_BREACH)


@main.command("run")
@click.option("--quiet", "-q", is_flag=True, help="Print nothing unless something needs a person (for cron mail).")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON summary on stdout.")
@click.option("--wait", type=click.FloatRange(min=0), default=None, metavar="SECONDS",
              help="Wait this long for another run's lock instead of exiting.")
@click.option("--metrics", "metrics_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              envvar="DRIFTWATCH_METRICS", help="Write a Prometheus textfile-collector file here.")
@click.option("--no-rebuild", is_flag=True, help="Evaluate but never rebuild.")
@click.option("--no-notify", is_flag=True, help="Never send alerts.")
@jobs_option
@share_lists_option
@share_probes_option
@click.pass_context
def run_(ctx: click.Context, quiet: bool, as_json: bool, wait: float | None, metrics_path: Path | None,
         no_rebuild: bool, no_notify: bool, jobs: int | None, share_lists: bool, share_probes: bool) -> None:
    """The nightly job: scan the configured images, evaluate, rebuild, re-scan, alert, write metrics.

    Safe under cron: one run at a time per database (a second one says who holds the lock, or
    waits with --wait); SIGTERM and Ctrl-C remove running probe containers and store no half scan;
    the next run after a crash removes the probe containers it left. Exit 0 all within policy,
    1 breaches, 3 a scan failed or an image could not be decided, 4 a rebuild or an alert failed.

    \b
    Example:
        driftwatch --config /etc/driftwatch.toml run --quiet --metrics /var/lib/node_exporter/driftwatch.prom
        driftwatch run --json
    """
    from .fleet import Fleet
    from .nightly import Nightly
    from .scanner import DEFAULT_TIMEOUT, Scanner

    settings = _settings(ctx)
    if not settings.images:
        raise ConfigError("driftwatch run needs [[images]] in the configuration (see README, Configuration)")
    if metrics_path is not None and not (metrics_path.parent.is_dir() and os.access(metrics_path.parent, os.W_OK)):
        # Found before the night's work, not after it.
        raise ConfigError(f"--metrics {metrics_path}: the directory {metrics_path.parent} does not exist "
                          "or is not writable")
    store = _store(ctx)
    _lock(ctx, "run", wait)
    engine = _engine(ctx)
    scanner = Scanner(engine, timeout=settings.scan.timeout or DEFAULT_TIMEOUT,
                      network=settings.scan.network or "bridge", clock=clock.now,
                      security_origins=settings.scan.security_origins)
    progress = _Progress(lines=False)  # a terminal gets the progress line; cron gets the summary only
    fleet = Fleet(scanner, engine, jobs=jobs or _default_jobs(), share_lists=share_lists,
                  share_probes=share_probes, on_progress=progress.update)
    nightly = Nightly(settings, store, engine, scanner.scan, clock.now, _post_webhook, scan_all=fleet.scan)
    try:
        with _sigterm_as_interrupt():
            summary = nightly.run(rebuild=not no_rebuild, notify=not no_notify, metrics_path=metrics_path)
    except KeyboardInterrupt:
        progress.finish()
        click.echo("Error: interrupted; finished scans are stored, interrupted ones are not", err=True)
        ctx.exit(130)
    progress.finish()
    if as_json:
        click.echo(json.dumps(summary.as_dict(), indent=2))
    elif not quiet or summary.needs_a_person:
        from .report.interface import breach_text

        for scan_result in summary.scans:
            if scan_result.status is not ScanStatus.OK or not quiet:
                click.echo(f"{scan_result.reference}: {_describe(scan_result)}")
        for row in summary.rows:
            if row.verdict.state.value != "ok":
                click.echo(f"{row.verdict.state.value.upper():9} {row.summary.reference}: {breach_text(row)}")
        for rec in summary.rebuilds:
            click.echo(f"rebuild {rec.reference}: {rec.outcome.value}: {rec.detail}")
        for error in summary.alert_errors:
            click.echo(f"alert: {error}")
        if summary.leftovers_removed:
            click.echo(f"removed {summary.leftovers_removed} probe container(s) left by an earlier run")
        if summary.volumes_removed:
            click.echo(f"removed {summary.volumes_removed} package-lists volume(s) left by an earlier run")
    ctx.exit(summary.exit_code)


@main.group("notify")
def notify_group() -> None:
    """Chat alerts to the [[notify]] targets: a test message, or the alerts that are due now.

    Alerts are sent on changes only (newly breached, worsened, recovered, scan failed, end of life,
    and an optional reminder), written to the database's outbox before they are sent, and retried
    until delivered or dead-lettered. Webhook URLs come from the environment variables the targets
    name, and are never shown: only their host.

    \b
    Example:
        SLACK_WEBHOOK_URL=https://hooks.slack.com/services/... driftwatch notify test ops-slack
        driftwatch notify send
        driftwatch notify dead
        driftwatch notify requeue --all
    """


def _notify_settings(ctx: click.Context) -> Settings:
    settings = _settings(ctx)
    if not settings.notify:
        raise ConfigError("no [[notify]] targets are configured (see README, Notifications)")
    return settings


@notify_group.command("test")
@click.argument("target", required=False)
@click.pass_context
def notify_test(ctx: click.Context, target: str | None) -> None:
    """Send a test alert to TARGET (a [[notify]] name), or to every target, and print each result.

    Test alerts are not stored in the outbox and not retried on a later run; transient failures
    (timeouts, 5xx, 429) are retried a few times right away. Exit 0 when every test alert was
    delivered, 4 otherwise.

    \b
    Example:
        driftwatch notify test
        driftwatch --config /etc/driftwatch.toml notify test ops-slack
    """
    from .alerts import send_test

    settings = _notify_settings(ctx)
    results = send_test(settings, (target,) if target else (), clock.now())
    for result in results:
        click.echo(f"{result.target}: {result.detail}" if result.delivered else
                   f"{result.target}: failed: {result.detail}")
    if not all(r.delivered for r in results):
        ctx.exit(EXIT_OPERATIONAL)


@notify_group.command("dead")
@click.pass_context
def notify_dead(ctx: click.Context) -> None:
    """List the dead-lettered alerts: given up on after their target's max_attempts, oldest first.

    Each line: its ID, what and for whom, the target, the attempts, when it died and its last
    (redacted) error. `driftwatch notify requeue` queues them again.
    """
    from .report.interface import safe

    dead = _store(ctx, create=False).dead_letters()
    for d in dead:
        click.echo(safe(f"#{d.id} {d.kind} alert for {d.reference} to {d.target}: {d.attempts} attempt(s), "
                        f"dead since {d.dead_at.isoformat(timespec='seconds') if d.dead_at else '?'}: "
                        f"{d.last_error or 'no error recorded'}"))
    if not dead:
        click.echo("no dead-lettered alerts")


@notify_group.command("requeue")
@click.argument("ids", nargs=-1, type=click.IntRange(min=1), metavar="[ID]...")
@click.option("--all", "everything", is_flag=True, help="Requeue every dead-lettered alert.")
@click.pass_context
def notify_requeue(ctx: click.Context, ids: tuple[int, ...], everything: bool) -> None:
    """Queue dead-lettered alerts (by ID, from `driftwatch notify dead`, or --all) again, with a new
    set of attempts: the next `driftwatch notify send` or `driftwatch run` delivers them.

    Fix the cause first (the webhook variable, the target's URL). All or nothing: an ID that is not
    a dead letter is an error (exit 2) and nothing is requeued.

    \b
    Example:
        driftwatch notify requeue 12 14
        driftwatch notify requeue --all && driftwatch notify send
    """
    if ids and everything:
        raise click.UsageError("give alert IDs or --all, not both")
    if not ids and not everything:
        raise click.UsageError("name the alerts to requeue (IDs from `driftwatch notify dead`) or give --all")
    store = _store(ctx, create=False)
    _lock(ctx, "notify requeue")
    requeued = store.requeue(None if everything else ids)
    click.echo(f"requeued {len(requeued)} alert(s)" + (": " + ", ".join(f"#{d.id}" for d in requeued)
                                                         if requeued else "") +
               ("; `driftwatch notify send` or the next `driftwatch run` delivers them" if requeued else ""))


@notify_group.command("send")
@click.pass_context
def notify_send(ctx: click.Context) -> None:
    """Evaluate each image's latest scan, queue the alerts that are due, and deliver the outbox.

    For cron setups without `driftwatch run`: it evaluates the images `check` evaluates, queues an
    alert for each change since the target's last alert, then delivers every undelivered alert,
    including those left by earlier runs. Prints a one-line summary (and any errors) on stderr.
    Exit 0 when nothing went wrong, 4 when an alert could not be delivered or was dead-lettered,
    or a target's URL variable is unset.

    \b
    Example:
        driftwatch notify send
        driftwatch --config /etc/driftwatch.toml notify send    # in cron, after `driftwatch scan`
    """
    from .alerts import notify

    settings = _notify_settings(ctx)
    store = _store(ctx)
    _lock(ctx, "notify send")
    recorded = store.references()
    references = settings.select(recorded) if settings.images else recorded
    now = clock.now()
    rows = policy.assess(store.latest(references), settings, now)
    outcome = notify(store, settings, rows, now)
    click.echo(outcome.summary, err=True)
    for error in outcome.errors:
        click.echo(f"notify: {error}", err=True)
    ctx.exit(EXIT_OK if outcome.ok else EXIT_OPERATIONAL)


@main.command()
@click.argument("dockerfile", default="Dockerfile", type=click.Path(dir_okay=False, allow_dash=True))
@click.option("--target", metavar="NAME", help="Lint the image of this stage, as `docker build --target`. "
              "[default: the last stage]")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True,
              help="Output format.")
@click.pass_context
def lint(ctx: click.Context, dockerfile: str, target: str | None, fmt: str) -> None:
    """Check a Dockerfile for steps that let packages drift; exit 0 clean, 1 findings, 2 unreadable.

    Flags a package upgrade that sits above COPY/ADD of the build context (its layer stays cached for
    months), a final image that never upgrades, apt lists left in a layer, and `apt-get update` alone
    in a RUN. Each finding names its line and the remedy. DOCKERFILE `-` reads standard input.

    \b
    Example:
        driftwatch lint
        driftwatch lint --target app docker/app.Dockerfile
        driftwatch lint --format json - < Dockerfile
    """
    from . import lint as linter
    from .report.json import dump

    if dockerfile == "-":
        raw = sys.stdin.buffer.read()
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise ConfigError(f"standard input is not UTF-8 text (byte {exc.start}): not a Dockerfile") from exc
        findings = linter.lint(text, target=target)
    else:
        findings = linter.lint_file(dockerfile, target=target)
    code = EXIT_BREACH if any(f.severity in ("warning", "error") for f in findings) else EXIT_OK
    if fmt == "json":
        click.echo(dump({"version": 1, "dockerfile": dockerfile, "target": target, "exit_code": code,
                         "findings": [dataclasses.asdict(f) for f in findings]}), nl=False)
    else:
        for f in findings:
            click.echo(f"{dockerfile}:{f.line}: {f.severity}: {f.rule} (stage {f.stage}): {f.message}")
            click.echo(f"    remedy: {f.remedy}")
        counts = {s: sum(f.severity == s for f in findings) for s in ("error", "warning", "info")}
        summary = ", ".join(f"{n} {s}{'s' if n != 1 else ''}" for s, n in counts.items() if n)
        click.echo(f"{dockerfile}: {summary or 'no findings'}", err=True)
    ctx.exit(code)


@main.command()
@click.option("--dry-run", is_flag=True, help="Only list what would be removed.")
@click.option("--all", "all_scopes", is_flag=True, help="Probes of every database, not only this one's (--db).")
@click.pass_context
def cleanup(ctx: click.Context, dry_run: bool, all_scopes: bool) -> None:
    """Remove probe containers (and their anonymous volumes) and package-lists volumes left behind by
    crashed or killed runs.

    Probes are found by their label `io.driftwatch.probe`, never by name, and only those of this
    database (--db) unless --all. A probe still running before its scan's timeout ran out may belong
    to a scan in progress and is kept; past that deadline it is removed. A shared package-lists
    volume is kept until its run's deadline, and while a container uses it. When no driftwatch
    process holds this database's lock, its own probes and volumes are removed at once, deadline or
    not (a killed run's). Prints one line per probe and volume. Exit 0, or 4 when the engine cannot
    be reached.

    \b
    Example:
        driftwatch cleanup --dry-run
        driftwatch cleanup
        driftwatch --db /var/lib/driftwatch/prod.db cleanup --all
    """
    from datetime import datetime, timedelta, timezone

    from .report.interface import safe

    engine = _engine(ctx)
    grace = timedelta(seconds=30)  # the scan kills its probe at the deadline; allow for a slow engine
    now = datetime.now(timezone.utc)  # the wall clock, as the deadline label (not DRIFTWATCH_NOW)
    # Every scan of this database holds its lock: when the lock is free, no scan of it is running, and
    # what it left (a killed run's probes and lists volumes) goes now, not at its deadline. Another
    # database's (--all) keep their deadlines. A database never used has no lock file: none is made.
    idle = False
    if _lock_path(ctx).exists():
        try:
            _lock(ctx, "cleanup")
            idle = True
        except LockHeld:
            pass

    def orphaned(scope: str) -> bool:
        return idle and scope == engine.scope

    doomed = []
    for probe in engine.find_probes(all_scopes=all_scopes):
        what = f"{probe.id[:12]} ({safe(probe.reference or '?')}, {probe.state}"
        what += f", created {probe.created.isoformat(timespec='seconds')})" if probe.created else ")"
        live = probe.state in ("running", "restarting") and probe.deadline is not None and now < probe.deadline + grace
        if live and not orphaned(probe.scope):
            click.echo(f"kept {what}: a scan may still be using it until {probe.deadline.isoformat()}")
            continue
        doomed.append((probe.id, what))
    doomed_volumes = []
    for volume in engine.find_volumes(all_scopes=all_scopes):
        what = f"volume {volume.name} ({safe(volume.reference or '?')}"
        what += f", created {volume.created.isoformat(timespec='seconds')})" if volume.created else ")"
        if not orphaned(volume.scope) and volume.deadline is not None and now < volume.deadline + grace:
            click.echo(f"kept {what}: a scan may still be using it until {volume.deadline.isoformat()}")
            continue
        doomed_volumes.append((volume.name, what))
    if dry_run:
        for _, what in doomed + doomed_volumes:
            click.echo(f"would remove {what}")
        click.echo(f"{len(doomed)} probe container(s) would be removed.", err=True)
        if doomed_volumes:
            click.echo(f"{len(doomed_volumes)} package-lists volume(s) would be removed.", err=True)
        return
    removed = set(engine.remove_probes(cid for cid, _ in doomed))
    for cid, what in doomed:
        if cid in removed:
            click.echo(f"removed {what}")
    gone = set(engine.remove_volumes(name for name, _ in doomed_volumes))  # probes first: they may mount them
    for name, what in doomed_volumes:
        click.echo(f"removed {what}" if name in gone else f"kept {what}: in use")
    click.echo(f"Removed {len(removed)} probe container(s)." if removed else "No probe containers left behind.",
               err=True)
    if doomed_volumes:
        click.echo(f"Removed {len(gone)} package-lists volume(s).", err=True)
