"""The command line: parse options, build objects, call the library, render, map errors to exit codes.

The only module that prints or exits. Exit codes (README, "Exit codes"):
0 all fine, 1 over a threshold, 2 usage or config error, 3 a scan failed or was unsupported,
4 operational error (engine unreachable, store unusable).
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import Any

import click

from . import __version__
from .errors import DriftwatchError
from .models import ScanResult, ScanStatus
from .report import OutputFormat
from .store import Store, default_path, open_store

logger = logging.getLogger("driftwatch")

EXIT_OK, EXIT_BREACH, EXIT_USAGE, EXIT_SCAN_FAILED, EXIT_OPERATIONAL = 0, 1, 2, 3, 4
CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


class DriftwatchGroup(click.Group):
    """Turns every DriftwatchError into one ``Error: ...`` line and its exit code."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except DriftwatchError as exc:
            if ctx.meta.get("driftwatch.debug"):
                raise
            click.echo(f"Error: {exc}", err=True)
            ctx.exit(exc.exit_code)


def _setup_logging(verbose: int) -> None:
    level_name = os.environ.get("DRIFTWATCH_LOGLEVEL", "").upper()
    level = {0: logging.WARNING, 1: logging.INFO}.get(verbose, logging.DEBUG)
    if level_name in logging.getLevelNamesMapping():
        level = min(level, logging.getLevelNamesMapping()[level_name])
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    logger.handlers[:] = [handler]
    logger.setLevel(level)
    logger.propagate = False


def _store(ctx: click.Context) -> Store:
    store = open_store(ctx.obj["db"])
    ctx.call_on_close(store.close)
    return store


format_option = click.option(
    "--format", "fmt", type=click.Choice([f.value for f in OutputFormat]), default="table",
    envvar="DRIFTWATCH_FORMAT", show_default=True, help="Output format.",
)


@click.group(cls=DriftwatchGroup, context_settings=CONTEXT_SETTINGS)
@click.option("--db", type=click.Path(dir_okay=False, path_type=Path), envvar="DRIFTWATCH_DB",
              help=f"SQLite database file. [default: {default_path()}]")
@click.option("-v", "--verbose", count=True, help="More log lines on stderr (-vv for debug).")
@click.option("--debug", is_flag=True, help="Show tracebacks instead of one-line errors.")
@click.version_option(__version__, prog_name="driftwatch")
@click.pass_context
def main(ctx: click.Context, db: Path | None, verbose: int, debug: bool) -> None:
    """Measure how far Docker images have drifted behind their distro's security updates.

    \b
    Example:
        driftwatch scan myorg/api:latest debian:12
        driftwatch report
    """
    _setup_logging(verbose)
    ctx.ensure_object(dict)
    ctx.obj["db"] = db
    ctx.meta["driftwatch.debug"] = debug


def _describe(result: ScanResult) -> str:
    if result.status is ScanStatus.OK:
        return f"ok, {result.pending_total} pending, {result.pending_security} security"
    reason = result.reason.value if result.reason else "unknown"
    return f"{result.status.value} ({reason}): {result.detail or ''}".rstrip(": ")


@main.command()
@click.argument("images", nargs=-1, required=True)
@click.option("--timeout", type=click.FloatRange(min=1), default=600, envvar="DRIFTWATCH_TIMEOUT",
              show_default=True, help="Seconds before a scan container is killed.")
@click.option("--network", default="bridge", envvar="DRIFTWATCH_NETWORK", show_default=True,
              help="Network of the scan container: bridge, host (proxies, loopback mirrors) or a network name.")
@format_option
@click.pass_context
def scan(ctx: click.Context, images: tuple[str, ...], timeout: float, network: str, fmt: str) -> None:
    """Scan local IMAGES for pending apt updates and record the results.

    Each image runs `apt-get update` and `apt list --upgradable` in a throwaway container (entrypoint
    and user overridden, C locale). Nothing is pulled. A scan that could not refresh its package
    lists is recorded as failed, never as clean. Exit 3 when any scan failed or was unsupported.

    \b
    Example:
        driftwatch scan driftwatch/debian:12 myorg/api:latest
        driftwatch scan --network host --timeout 300 myorg/worker:1.4
    """
    from .engine import DockerEngine
    from .scanner import Scanner

    store = _store(ctx)
    scanner = Scanner(DockerEngine(), timeout=timeout, network=network)
    results = []
    for reference in dict.fromkeys(images):
        logger.info("scanning %s", reference)
        result = scanner.scan(reference)
        store.save_scan(result)
        results.append(result)
        click.echo(f"{reference}: {_describe(result)}", err=True)
    scanned = set(images)
    rows = [row for row in store.latest() if row.reference in scanned]
    click.echo(OutputFormat(fmt).to_formatter().report(rows), nl=False)
    bad = [r for r in results if r.status is not ScanStatus.OK]
    if bad:
        click.echo(f"{len(bad)} of {len(results)} scan(s) not ok: " + ", ".join(r.reference for r in bad), err=True)
        ctx.exit(EXIT_SCAN_FAILED)


@main.command()
@format_option
@click.pass_context
def report(ctx: click.Context, fmt: str) -> None:
    """Show every scanned image from its latest scan, stalest first.

    Failed and unsupported scans come first (their drift is unknown), then images by pending
    security updates, then by all pending updates.

    \b
    Example:
        driftwatch report
        driftwatch report --format json | jq '.images[] | select(.pending_security > 0)'
    """
    click.echo(OutputFormat(fmt).to_formatter().report(_store(ctx).latest()), nl=False)


@main.command()
@click.argument("image")
@format_option
@click.pass_context
def show(ctx: click.Context, image: str, fmt: str) -> None:
    """List the pending updates of IMAGE's latest scan, security first.

    \b
    Example:
        driftwatch show driftwatch/debian:12
        driftwatch show --format json myorg/api:latest
    """
    scan_id, result = _store(ctx).latest_scan(image)
    click.echo(OutputFormat(fmt).to_formatter().updates(scan_id, result), nl=False)
