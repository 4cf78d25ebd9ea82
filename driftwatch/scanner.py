"""Scan one image: run the probe script through the engine, parse, and decide its one status.

The rule that matters most: a scan whose ``apt-get update`` did not refresh every list is FAILED,
never OK with zero updates (cases C06, C07, C20). No docker import here.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone

from . import aptparse, releases
from .engine import Engine, ProbeStartError
from .errors import ImageMissing
from .models import ImageIdentity, Reason, RunOutput, ScanResult, ScanStatus

logger = logging.getLogger(__name__)

#: The probe's environment: C locale so apt's text is the one we parse (C02), no prompts.
PROBE_ENV = {
    "LANG": "C",
    "LC_ALL": "C",
    "LANGUAGE": "",
    "DEBIAN_FRONTEND": "noninteractive",
}
DEFAULT_TIMEOUT = 600.0
STDERR_TAIL_LINES = 20

# One shell script, POSIX sh. Each step's stdout, stderr and exit status go to stdout framed by
# header lines carrying a per-scan nonce, so nothing an image prints can forge a section.
_SCRIPT = r"""
N='{nonce}'
T=/tmp/.driftwatch.$$
mkdir -p "$T" 2>/dev/null || T=/var/tmp
step() {{
  name=$1; shift
  "$@" >"$T/out" 2>"$T/err"
  rc=$?
  printf '\n%s %s stdout\n' "$N" "$name"; cat "$T/out"
  printf '\n%s %s stderr\n' "$N" "$name"; cat "$T/err"
  printf '\n%s %s rc\n%s\n' "$N" "$name" "$rc"
  return $rc
}}
osrel() {{ cat /etc/os-release 2>/dev/null || cat /usr/lib/os-release; }}
tools() {{ for t in apt-get apt dpkg apk dnf microdnf yum zypper; do command -v "$t" >/dev/null 2>&1 && echo "$t"; done; true; }}
step os-release osrel
step tools tools
if ! command -v apt-get >/dev/null 2>&1; then printf '\n%s end\n' "$N"; exit 0; fi
step update apt-get update -o APT::Update::Error-Mode=any
if [ "$rc" != 0 ]; then printf '\n%s end\n' "$N"; exit 0; fi
step list apt list --upgradable
step holds apt-mark showhold
step sim apt-get -s -o Debug::NoLocking=1 upgrade
printf '\n%s end\n' "$N"
rm -rf "$T"
"""


@dataclass(frozen=True, slots=True)
class Step:
    """One framed step of the probe's output."""

    stdout: str = ""
    stderr: str = ""
    rc: int | None = None


def build_script(nonce: str) -> str:
    """The probe script with its section nonce."""
    return _SCRIPT.format(nonce=nonce)


def split_sections(stdout: str, nonce: str) -> tuple[dict[str, Step], bool]:
    """Split framed probe output into steps; the bool says whether the script reached its end."""
    parts: dict[str, dict[str, list[str]]] = {}
    current: list[str] | None = None
    ended = False
    for line in stdout.split("\n"):
        if line.startswith(nonce + " "):
            words = line[len(nonce) + 1 :].split(" ")
            if words == ["end"]:
                ended, current = True, None
            elif len(words) == 2:
                current = parts.setdefault(words[0], {}).setdefault(words[1], [])
            continue
        if current is not None:
            current.append(line)
    steps = {}
    for name, streams in parts.items():
        text = {k: "\n".join(v[:-1] if v and v[-1] == "" else v) for k, v in streams.items()}
        rc_text = text.get("rc", "").strip()
        steps[name] = Step(
            stdout=_with_newline(text.get("stdout", "")),
            stderr=_with_newline(text.get("stderr", "")),
            rc=int(rc_text) if rc_text.lstrip("-").isdigit() else None,
        )
    return steps, ended


def _with_newline(text: str) -> str:
    return text + "\n" if text else ""


def _tail(text: str, lines: int = STDERR_TAIL_LINES) -> str | None:
    kept = [line for line in text.splitlines() if line.strip()][-lines:]
    return "\n".join(kept) or None


@dataclass
class Scanner:
    """Scans images through an Engine. ``clock`` and ``nonce`` are injectable for tests."""

    engine: Engine
    timeout: float = DEFAULT_TIMEOUT
    network: str = "bridge"
    clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc)
    nonce: Callable[[], str] = lambda: "@@driftwatch-" + secrets.token_hex(8)

    def scan(self, reference: str) -> ScanResult:
        """Scan one reference. Per-image trouble is a result; only engine-wide trouble raises."""
        started = self.clock()
        try:
            image = self.engine.inspect_image(reference)
        except ImageMissing as exc:
            return ScanResult(reference, ScanStatus.FAILED, started, self.clock(),
                              reason=Reason.IMAGE_MISSING, detail=str(exc), step="inspect")
        nonce = self.nonce()
        try:
            output = self.engine.run_probe(image.image_id, build_script(nonce), timeout=self.timeout,
                                           network=self.network, env=PROBE_ENV, reference=reference)
        except ProbeStartError as exc:
            return self._start_failed(reference, image, started, str(exc))
        except ImageMissing as exc:
            return ScanResult(reference, ScanStatus.FAILED, started, self.clock(), image=image,
                              reason=Reason.IMAGE_MISSING, detail=str(exc), step="inspect")
        return interpret(reference, image, output, nonce, started, self.clock())

    def _start_failed(self, reference: str, image: ImageIdentity, started: datetime, message: str) -> ScanResult:
        finished = self.clock()
        if "no such file or directory" in message or "executable file not found" in message:
            return ScanResult(reference, ScanStatus.UNSUPPORTED, started, finished, image=image,
                              reason=Reason.NO_SHELL_OR_PACKAGE_MANAGER,
                              detail="no shell: /bin/sh cannot be run in this image", step="start",
                              stderr_tail=_tail(message))
        return ScanResult(reference, ScanStatus.FAILED, started, finished, image=image,
                          reason=Reason.CONTAINER_ERROR, detail=message.strip().splitlines()[-1] if message.strip() else "container did not start",
                          step="start", stderr_tail=_tail(message))


def interpret(
    reference: str, image: ImageIdentity, output: RunOutput, nonce: str, started: datetime, finished: datetime
) -> ScanResult:
    """Turn the probe's raw output into exactly one status. Pure: tests feed it captured output."""
    steps, ended = split_sections(output.stdout, nonce)
    os_release = aptparse.parse_os_release(steps["os-release"].stdout) if "os-release" in steps else None

    def result(status: ScanStatus, reason: Reason | None, detail: str | None, step: str | None,
               exit_code: int | None = None, stderr: str = "", **kw: object) -> ScanResult:
        return ScanResult(reference, status, started, finished, image=image, os_release=os_release,
                          reason=reason, detail=detail, step=step, exit_code=exit_code,
                          stderr_tail=_tail(stderr), **kw)  # type: ignore[arg-type]

    if output.timed_out:
        return result(ScanStatus.FAILED, Reason.TIMEOUT, "the scan did not finish before its timeout and was killed",
                      _last_step(steps), stderr=output.stderr)
    if "tools" not in steps:
        detail = f"the probe script did not run (exit {output.exit_code})"
        return result(ScanStatus.FAILED, Reason.CONTAINER_ERROR, detail, "start", output.exit_code, output.stderr)
    tools = steps["tools"].stdout.split()
    if "apt-get" not in tools:
        others = [t for t in tools if t not in ("apt", "dpkg")]
        detail = "no apt-get in this image" + (f"; found {', '.join(others)}" if others else "; no package manager found")
        return result(ScanStatus.UNSUPPORTED, Reason.NO_SHELL_OR_PACKAGE_MANAGER, detail, "tools")

    update = steps.get("update")
    if update is None:
        return result(ScanStatus.FAILED, Reason.CONTAINER_ERROR, "apt-get update did not run to completion",
                      "update", output.exit_code, output.stderr)
    info = releases.lookup(os_release)
    eol = info is not None and info.is_eol(finished.date())
    outcome = aptparse.assess_update(update.stdout, update.stderr, update.rc, eol=eol)
    if not outcome.ok:
        return result(ScanStatus.FAILED, outcome.reason, outcome.detail, "update", update.rc,
                      update.stdout + update.stderr, warnings=outcome.warnings)

    listing = steps.get("list")
    if listing is None or not ended:
        return result(ScanStatus.FAILED, Reason.CONTAINER_ERROR, "the probe stopped before apt list finished",
                      "list", output.exit_code, output.stderr)
    parsed = aptparse.parse_upgradable(listing.stdout)
    if listing.rc != 0 or parsed.errors:
        detail = (parsed.errors or (f"apt list exited {listing.rc}",))[0]
        return result(ScanStatus.FAILED, Reason.LIST_FAILED, detail, "list", listing.rc, listing.stderr)
    if parsed.unparsed:
        detail = f"{len(parsed.unparsed)} line(s) not in the C-locale format, first: {parsed.unparsed[0]!r}"
        return result(ScanStatus.FAILED, Reason.PARSE_ERROR, detail, "list", listing.rc, listing.stdout)
    holds = aptparse.parse_holds(steps["holds"].stdout) if "holds" in steps else frozenset()
    sim = steps.get("sim")
    simulation = aptparse.parse_simulation(sim.stdout) if sim is not None and sim.rc == 0 else None
    warnings = outcome.warnings + (("apt-get -s upgrade failed; kept-back and phased flags unknown",)
                                   if simulation is None else ())
    updates = aptparse.annotate(parsed.updates, holds, simulation)
    return result(ScanStatus.OK, None, None, None, 0, warnings=warnings, updates=updates)


def _last_step(steps: dict[str, Step]) -> str | None:
    return list(steps)[-1] if steps else "start"
