"""Scan one image: run the probe script through the engine, parse, and decide its one status.

The rule that matters most: a scan whose ``apt-get update`` did not refresh every list is FAILED,
never OK with zero updates (cases C06, C07, C20). No docker import here.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from typing import Any

from . import aptparse, classify, releases
from .engine import LISTS_DIR, OUTPUT_CAP, Engine, ProbeStartError, normalize_architecture
from .errors import ImageMissing
from .models import ImageIdentity, OsRelease, Platform, Reason, RunOutput, ScanResult, ScanStatus

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
# After the refresh, apt keeps its binary cache at its default path ($C): Docker images usually
# disable it (/etc/apt/apt.conf.d/docker-clean), which made every apt command re-read all lists
# (1.5-3 s each). /var/cache/apt is a probe tmpfs bounded by the memory limit, as for images that
# keep the cache; not /tmp, whose 64 MiB a 60 MB Ubuntu cache would fill (apt then fails: ENOSPC).
# The held, kept-back and phased lists come from `apt-get upgrade --print-uris`: the same resolver
# run and the same lists as `apt-get -s upgrade`, without simulating the install (a second dependency
# cache and the ordering): 0.8 s instead of 1.5 s on Debian 12, 1.3 s instead of 3.1 s on Ubuntu 24.04,
# byte-identical lists on both. It downloads nothing, checks no free space and takes no lock
# (Debug::NoLocking); it only creates /var/cache/apt/archives/partial in the probe's tmpfs.
# That upgrade run and the policy steps (origin metadata for classify.py) run only when something is
# upgradable: with nothing upgradable nothing can be kept back or phased, and an up-to-date image
# skips the costliest step (0.8 s Debian, 1.3 s Ubuntu). The package names come from the list
# step's own output (NAME:ARCH, never evaluated by the shell).
# `apt-get update` fetches no Translation files (Acquire::Languages=none): they carry descriptions
# only, which nothing here reads, and they are a third of the download (Debian 12: 5.4 -> 3.9 s,
# Ubuntu 24.04: 10.5 -> 7.7 s for a cold refresh here).
# The head's state step prints what apt's answer depends on beyond the lists, as this image's own shell
# and apt see it: apt's version, where and what its binaries are, checksums of the files apt reads its
# state from (the paths apt-config gives: dpkg status, extended_states, preferences[.d]) and of the
# machine ID (phasing), apt's whole configuration as apt-config dumps it (APT_CONFIG, #include),
# dpkg's journal, ischroot's answer and SOURCE_DATE_EPOCH (with either, apt applies no phasing).
# Two images that print the same head over the same lists get the same answer (fleet.py's shared
# probes compare it). md5sum is a fingerprint here, not a defence: the lists fingerprint already
# trusts the image that refreshes.
# The script is three parts: the head (os-release, tools, state), the refresh, and the listing. A scan
# with shared lists (fleet.py) runs the head and the listing over lists another probe refreshed;
# that refresh probe runs the head and the refresh, whose `apt-get update` writes apt's source cache
# into the lists.
_HEAD = r"""
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
tools() {{
  for t in apt-get apt dpkg apk dnf microdnf yum zypper; do command -v "$t" >/dev/null 2>&1 && echo "$t"; done; true
}}
step os-release osrel
step tools tools
if ! command -v apt-get >/dev/null 2>&1; then printf '\n%s end\n' "$N"; exit 0; fi
aptstate() {{
  apt-get --version | head -n 1; for t in apt apt-cache apt-mark sed; do command -v "$t"; done
  md5sum $(for t in apt apt-get apt-cache apt-mark; do command -v "$t"; done) 2>&1
  eval "$(apt-config shell S Dir::State::status/f E Dir::State::extended_states/f P Dir::Etc::preferences/f \
    D Dir::Etc::preferencesparts/d)"
  md5sum "$S" "$E" "$P" "$D"* /etc/machine-id 2>&1; apt-config dump | md5sum
  ls -A /var/lib/dpkg/updates; ischroot; echo "ischroot $?"; echo "SOURCE_DATE_EPOCH=${{SOURCE_DATE_EPOCH-unset}}"; true
}}
step state aptstate
"""
# `apt-get update` ends by building apt's caches; told where (in the probe's cache tmpfs), it writes
# them there, so the listing that follows reads that cache instead of building its own: `apt list
# --upgradable` 0.74 -> 0.32 s on Debian 12, 1.59 -> 0.60 s on Ubuntu 24.04 (one CPU), the update no
# slower. A group's refresh writes the source cache into its lists volume the same way: the file
# `apt-cache gencaches` wrote (byte-identical on Ubuntu 24.04), without a second parse of every list
# (0.56 / 0.92 s saved).
_UPDATE = r"""C="-o Dir::Cache::pkgcache=/var/cache/apt/pkgcache.bin"
step update apt-get update -o APT::Update::Error-Mode=any -o Acquire::Languages=none $C{srccache_option}
if [ "$rc" != 0 ]; then printf '\n%s end\n' "$N"; exit 0; fi
"""
# apt's source cache depends only on the lists and the sources: built once per group into the
# volume, read here through a link in the probe's own cache tmpfs. apt checks that cache against
# this image's configuration and lists; when it does not match, apt rebuilds it in the tmpfs
# (replacing the link) rather than failing on the read-only volume, so the results stay the same.
_SHARED = r"""C="-o Dir::Cache::pkgcache=/var/cache/apt/pkgcache.bin"
S=/var/cache/apt/srcpkgcache.bin
if [ -f {lists}/{srccache} ] && ln -s {lists}/{srccache} "$S" 2>/dev/null; then
  C="$C -o Dir::Cache::srcpkgcache=$S"
fi
"""
# The end of a refresh probe, and of a probe that checks an image has the same apt state as one
# already scanned (fleet.py: the head only, no apt run, no lists).
_END = r"""printf '\n%s end\n' "$N"
rm -rf "$T"
"""
_LIST = r"""step list apt list --upgradable $C
cp "$T/out" "$T/list" 2>/dev/null || : >"$T/list"
step holds apt-mark showhold $C
names=$(sed -n 's|^\([^/ ]*\)/[^ ]* [^ ]* \([^ ]*\) \[upgradable from: [^]]*\]$|\1:\2|p' "$T/list" 2>/dev/null)
if [ -n "$names" ]; then
  step sim apt-get --print-uris -o Debug::NoLocking=1 upgrade $C
  step policy-files apt-cache policy $C
  set -f
  step policy apt-cache policy $names $C
  set +f
fi
printf '\n%s end\n' "$N"
rm -rf "$T"
"""


@dataclass(frozen=True, slots=True)
class Step:
    """One framed step of the probe's output."""

    stdout: str = ""
    stderr: str = ""
    rc: int | None = None


#: apt's source cache, built by a group's refresh into its lists volume (fleet.py).
SRCPKGCACHE = "driftwatch-srcpkgcache.bin"


def build_script(nonce: str, *, shared_lists: bool = False) -> str:
    """The probe script with its section nonce. ``shared_lists``: the lists were refreshed by another
    probe into a volume mounted read-only at /var/lib/apt/lists; skip ``apt-get update``."""
    middle = _SHARED.format(lists=LISTS_DIR, srccache=SRCPKGCACHE) if shared_lists else _UPDATE
    return (_HEAD + middle + _LIST).format(nonce=nonce, srccache_option="")


def build_confirm_script(nonce: str) -> str:
    """The head alone: os-release, tools and apt's state, to compare with a scanned image's (fleet.py)."""
    return (_HEAD + _END).format(nonce=nonce)


def build_refresh_script(nonce: str) -> str:
    """A group's one refresh: the scan's own head and ``apt-get update``, which also writes apt's source
    cache into the lists."""
    return (_HEAD + _UPDATE + _END).format(
        nonce=nonce, srccache_option=f" -o Dir::Cache::srcpkgcache={LISTS_DIR}/{SRCPKGCACHE}")


def head_signature(steps: dict[str, Step]) -> str | None:
    """The head steps' output (os-release, tools, apt state), for comparing two images; None when any
    of them is missing or failed."""
    head = [steps.get(name) for name in ("os-release", "tools", "state")]
    if any(step is None or step.rc != 0 for step in head):
        return None
    return "\0".join(step.stdout for step in head if step is not None)


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


@dataclass(frozen=True, slots=True)
class SharedLists:
    """Package lists that one refresh probe fetched for a group of images, in a volume (fleet.py).
    ``update`` is that refresh's ``apt-get update`` step, judged for each image as its own would be."""

    volume: str
    update: Step


@dataclass(frozen=True, slots=True)
class Refresh:
    """What a group's refresh probe did. ``lists`` when every list was refreshed; otherwise
    :meth:`Scanner.refresh_failure` says how each image of the group failed, or (``None``) that the
    refresh says nothing about the group (it never reached ``apt-get update``: no shell, no apt,
    the container did not start), and each image is scanned on its own."""

    lists: SharedLists | None
    output: RunOutput | None
    nonce: str
    started: datetime
    finished: datetime
    detail: str | None = None  # why the refresh did not run (a start error)


def _tail(text: str, lines: int = STDERR_TAIL_LINES) -> str | None:
    kept = [line for line in text.splitlines() if line.strip()][-lines:]
    return "\n".join(kept) or None


@dataclass
class Scanner:
    """Scans images through an Engine. ``clock`` and ``nonce`` are injectable for tests.

    ``security_origins``: extra security origins in unattended-upgrades ``Origins-Pattern`` syntax
    (e.g. ``o=Corp,l=Corp-Security`` for a mirror that rewrites labels), added to the built-in rules
    of :mod:`driftwatch.classify`; empty means the built-in rules alone. Invalid patterns raise
    :class:`driftwatch.classify.OriginPatternError` here, before any scan runs.
    """

    engine: Engine
    timeout: float = DEFAULT_TIMEOUT
    network: str = "bridge"
    clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc)
    nonce: Callable[[], str] = lambda: "@@driftwatch-" + secrets.token_hex(8)
    security_origins: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        classify.compile_patterns(self.security_origins)

    def scan(self, reference: str, *, image: ImageIdentity | None = None,
             lists: SharedLists | None = None) -> ScanResult:
        """Scan one reference. Per-image trouble is a result; only engine-wide trouble raises.

        ``image``: the reference already inspected (fleet.py), so the scan is of that very image.
        ``lists``: package lists refreshed for this image's group (:meth:`refresh`): mounted
        read-only, and the image runs no ``apt-get update`` of its own.
        """
        return self.probe(reference, image=image, lists=lists)[0]

    def probe(self, reference: str, *, image: ImageIdentity | None = None,
              lists: SharedLists | None = None) -> tuple[ScanResult, str | None]:
        """:meth:`scan`, with the image's head signature (its os-release, tools and apt state as its
        own shell printed them) when the scan is OK: :meth:`confirm` compares another image's with it."""
        started = self.clock()
        if image is None:
            try:
                image = self.engine.inspect_image(reference)
            except ImageMissing as exc:
                return ScanResult(reference, ScanStatus.FAILED, started, self.clock(),
                                  reason=Reason.IMAGE_MISSING, detail=str(exc), step="inspect"), None
        if mismatch := platform_mismatch(image, self.engine.platform()):
            return ScanResult(reference, ScanStatus.UNSUPPORTED, started, self.clock(), image=image,
                              reason=Reason.WRONG_ARCHITECTURE, detail=mismatch, step="platform"), None
        nonce = self.nonce()
        shared: dict[str, Any] = {"lists_volume": lists.volume} if lists is not None else {}
        # Over shared lists the probe downloads nothing: no network at all (and no veth and bridge
        # setup for the engine: 0.44 -> 0.37 s a container here).
        network = "none" if lists is not None else self.network
        try:
            output = self.engine.run_probe(image.image_id, build_script(nonce, shared_lists=lists is not None),
                                           timeout=self.timeout, network=network, env=PROBE_ENV,
                                           reference=reference, **shared)
        except ProbeStartError as exc:
            return self._start_failed(reference, image, started, str(exc)), None
        except ImageMissing as exc:
            return ScanResult(reference, ScanStatus.FAILED, started, self.clock(), image=image,
                              reason=Reason.IMAGE_MISSING, detail=str(exc), step="inspect"), None
        result = interpret(reference, image, output, nonce, started, self.clock(),
                           security_origins=self.security_origins,
                           shared_update=lists.update if lists is not None else None)
        ok = result.status is ScanStatus.OK
        return result, head_signature(split_sections(output.stdout, nonce)[0]) if ok else None

    def confirm(self, reference: str, image: ImageIdentity, model: ScanResult, signature: str) -> ScanResult | None:
        """``model``'s result for ``image``, when the image's own shell prints the same head signature
        (os-release, tools, apt version, checksums of apt's binaries and of the files apt reads its state
        from, dpkg's journal, ischroot) as the image ``model`` scanned; the caller found their apt
        inputs alike from the image files (fleet.py), and this decides. None when anything differs or the short
        probe did not run cleanly: then the image needs a scan of its own. No network, no lists."""
        started = self.clock()
        nonce = self.nonce()
        try:
            output = self.engine.run_probe(image.image_id, build_confirm_script(nonce), timeout=self.timeout,
                                           network="none", env=PROBE_ENV, reference=reference)
        except (ProbeStartError, ImageMissing):
            return None  # its own scan says why
        if output.timed_out or output.oom_killed or output.truncated or output.exit_code != 0:
            return None
        steps, ended = split_sections(output.stdout, nonce)
        if not ended or head_signature(steps) != signature:
            return None
        return replace(model, reference=reference, image=image, started_at=started, finished_at=self.clock(),
                       probe_of=model.reference)

    def refresh(self, image: ImageIdentity, volume: str) -> Refresh:
        """Refresh a group's package lists once, into ``volume``, in one of its images (``image``):
        the scan's own ``apt-get update`` with the same failure rules, writing apt's source cache too."""
        started = self.clock()
        nonce = self.nonce()
        try:
            output = self.engine.run_probe(image.image_id, build_refresh_script(nonce), timeout=self.timeout,
                                           network=self.network, env=PROBE_ENV, reference=image.reference,
                                           lists_volume=volume, lists_writable=True)
        except (ProbeStartError, ImageMissing) as exc:
            return Refresh(None, None, nonce, started, self.clock(), detail=str(exc))
        finished = self.clock()
        steps, _ = split_sections(output.stdout, nonce)
        update = steps.get("update")
        if update is not None and update.rc is not None and not output.truncated:
            os_release = aptparse.parse_os_release(steps["os-release"].stdout) if "os-release" in steps else None
            info = releases.lookup(os_release)
            eol = info is not None and info.is_eol(finished.date())
            if aptparse.assess_update(update.stdout, update.stderr, update.rc, eol=eol).ok:
                return Refresh(SharedLists(volume, update), output, nonce, started, finished)
        return Refresh(None, output, nonce, started, finished)

    def refresh_failure(self, refresh: Refresh, reference: str, image: ImageIdentity,
                        os_release: OsRelease | None = None) -> ScanResult | None:
        """How a failed refresh fails one image of its group: exactly as that image's own refresh would
        have (reason, detail, step, exit code, output tail). None when the refresh did not get as far as
        ``apt-get update`` (no shell, no apt, the container did not start, an exec format error):
        that says nothing about the other images, and each is scanned on its own. ``os_release``: the
        image's own (its group shares the release, not necessarily every field)."""
        output = refresh.output
        if refresh.lists is not None or output is None:
            return None
        steps, _ = split_sections(output.stdout, refresh.nonce)
        tools = steps["tools"].stdout.split() if "tools" in steps else []
        if "update" not in steps and not ("apt-get" in tools and (output.timed_out or output.oom_killed
                                                                 or output.truncated)):
            return None
        result = interpret(reference, image, output, refresh.nonce, refresh.started, refresh.finished,
                           security_origins=self.security_origins)
        return replace(result, os_release=os_release) if os_release is not None else result

    def _start_failed(self, reference: str, image: ImageIdentity, started: datetime, message: str) -> ScanResult:
        finished = self.clock()
        if "no such file or directory" in message or "executable file not found" in message:
            return ScanResult(reference, ScanStatus.UNSUPPORTED, started, finished, image=image,
                              reason=Reason.NO_SHELL_OR_PACKAGE_MANAGER,
                              detail="no shell: /bin/sh cannot be run in this image", step="start",
                              stderr_tail=_tail(message))
        return ScanResult(reference, ScanStatus.FAILED, started, finished, image=image,
                          reason=Reason.CONTAINER_ERROR,
                          detail=message.strip().splitlines()[-1] if message.strip() else "container did not start",
                          step="start", stderr_tail=_tail(message))


#: Architectures an engine runs without emulation besides its own (when the CPU allows: tried, not refused).
_COMPATIBLE = {"amd64": {"386"}, "arm64": {"arm"}}


def platform_mismatch(image: ImageIdentity, engine: Platform) -> str | None:
    """Why the engine cannot run the image, or None when it can (or might: emulation unknown).

    An unknown image or engine architecture is not a mismatch; the probe is tried, and an
    ``exec format error`` from it is judged in :func:`interpret`.
    """
    image_os, arch = (image.os or "").lower(), normalize_architecture(image.architecture or "")
    if image_os and engine.os and image_os != engine.os:
        return f"the image is for {image_os}/{arch or '?'}; the engine runs {engine} containers"
    if not arch or not engine.architecture or arch == engine.architecture:
        return None
    if engine.emulated is None or arch in engine.emulated or arch in _COMPATIBLE.get(engine.architecture, ()):
        return None
    return (f"the image is built for {image_os or 'linux'}/{arch}; the engine runs {engine} and has no "
            f"emulator for {arch} (binfmt_misc/QEMU): scan it on a {arch} engine")


def interpret(
    reference: str, image: ImageIdentity, output: RunOutput, nonce: str, started: datetime, finished: datetime,
    *, security_origins: tuple[str, ...] = (), shared_update: Step | None = None,
) -> ScanResult:
    """Turn the probe's raw output into exactly one status. Pure: tests feed it captured output.

    Every result whose release is known and past its end of life carries ``release_eol`` (an OK
    scan with zero updates included: a frozen archive looks perfectly fresh). ``shared_update``:
    the ``apt-get update`` step of the group refresh whose lists this probe read (it ran none).
    """
    steps, ended = split_sections(output.stdout, nonce)
    os_release = aptparse.parse_os_release(steps["os-release"].stdout) if "os-release" in steps else None
    info = releases.lookup(os_release)
    eol = info is not None and info.is_eol(finished.date())
    release_eol = info.eol if info is not None and eol else None

    def result(status: ScanStatus, reason: Reason | None, detail: str | None, step: str | None,
               exit_code: int | None = None, stderr: str = "", **kw: object) -> ScanResult:
        return ScanResult(reference, status, started, finished, image=image, os_release=os_release,
                          reason=reason, detail=detail, step=step, exit_code=exit_code,
                          stderr_tail=_tail(stderr), release_eol=release_eol, **kw)  # type: ignore[arg-type]

    if output.timed_out:
        return result(ScanStatus.FAILED, Reason.TIMEOUT, "the scan did not finish before its timeout and was killed",
                      _last_step(steps), stderr=output.stderr)
    if output.oom_killed:
        return result(ScanStatus.FAILED, Reason.CONTAINER_ERROR, "the probe ran out of memory and was killed "
                      "(raise the probe's memory limit)", _last_step(steps), output.exit_code, output.stderr)
    if output.truncated:  # an inventory read in part is no inventory
        return result(ScanStatus.FAILED, Reason.CONTAINER_ERROR, f"output exceeded {OUTPUT_CAP} bytes",
                      _last_step(steps), output.exit_code)
    if "tools" not in steps and "exec format error" in output.stderr:
        arch = f"{image.os or 'linux'}/{image.architecture}" if image.architecture else "another architecture"
        return result(ScanStatus.UNSUPPORTED, Reason.WRONG_ARCHITECTURE,
                      f"the image is built for {arch} and its /bin/sh cannot run on this engine "
                      "(exec format error: no emulator)", "start", output.exit_code, output.stderr)
    if "tools" not in steps:
        detail = f"the probe script did not run (exit {output.exit_code})"
        return result(ScanStatus.FAILED, Reason.CONTAINER_ERROR, detail, "start", output.exit_code, output.stderr)
    tools = steps["tools"].stdout.split()
    if "apt-get" not in tools:
        others = [t for t in tools if t not in ("apt", "dpkg")]
        found = f"; found {', '.join(others)}" if others else "; no package manager found"
        detail = "no apt-get in this image" + found
        return result(ScanStatus.UNSUPPORTED, Reason.NO_SHELL_OR_PACKAGE_MANAGER, detail, "tools")

    update = shared_update if shared_update is not None else steps.get("update")
    if update is None:
        return result(ScanStatus.FAILED, Reason.CONTAINER_ERROR, "apt-get update did not run to completion",
                      "update", output.exit_code, output.stderr)
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
    if not any(line.startswith("Listing...") for line in listing.stdout.splitlines()):
        # apt list always says "Listing..." first: without it, whatever ran as `apt` was not apt, and
        # its silence is no inventory (a stub `apt` that exits 0 would read as zero updates).
        return result(ScanStatus.FAILED, Reason.PARSE_ERROR, "`apt list` printed no 'Listing...' line: "
                      "what ran as apt is not apt", "list", listing.rc, listing.stdout + listing.stderr)
    holds = aptparse.parse_holds(steps["holds"].stdout) if "holds" in steps else frozenset()
    sim = steps.get("sim")
    simulation = aptparse.parse_simulation(sim.stdout) if sim is not None and sim.rc == 0 else None
    warnings = outcome.warnings + (("apt-get upgrade --print-uris failed; kept-back and phased flags unknown",)
                                   if simulation is None and parsed.updates else ())
    annotated = aptparse.annotate(parsed.updates, holds, simulation)
    rules = classify.SecurityRules.build(security_origins, os_release)
    updates, notes = classify.classify_updates(annotated, files_text=_ok_stdout(steps.get("policy-files")),
                                               policy_text=_ok_stdout(steps.get("policy")), rules=rules)
    return result(ScanStatus.OK, None, None, None, 0, warnings=warnings + notes, updates=updates)


def _ok_stdout(step: Step | None) -> str | None:
    """A step's stdout when it ran and exited 0, else None."""
    return step.stdout if step is not None and step.rc == 0 else None


def _last_step(steps: dict[str, Step]) -> str | None:
    return list(steps)[-1] if steps else "start"
