"""driftwatch's parallel, shared-lists scan against the naive loop, on the same images in one run.

    python3 benchmarks/scan_speed.py                 # both fleets, 6 images per release
    python3 benchmarks/scan_speed.py --fleet distinct --per-release 3 --jobs 4

Needs a Docker engine and the base images `driftwatch/debian:12` and `driftwatch/ubuntu:24.04`
(`scripts/base-images.sh`), and the live Debian and Ubuntu archives. Nothing is pulled.

Two fleets of PER_RELEASE images from each base, labelled `io.driftwatch.test=1` and removed at the end
whatever happens:

- distinct: each image installs a package of its own (a tiny .deb built with dpkg-deb in the build),
  so no two images have the same dpkg status and every image gets a full probe of its own;
- shared: each image adds a file only (an application layer), so the images of a release share their
  apt state, and driftwatch probes one and confirms the others with a short probe each.

For each fleet:
1. Times driftwatch: `driftwatch scan --jobs N` over all of its images, as a child process on a
   temporary database, with its peak memory (ru_maxrss of the child, from os.wait4).
2. Per release, times driftwatch on 1 image and on all PER_RELEASE images of that release: the
   difference divided by PER_RELEASE - 1 is the cost of each further image of a release whose lists
   are refreshed (with -v, driftwatch logs its refresh time, printed too).
Then times the naive loop on the distinct fleet: `docker run --rm --entrypoint sh IMAGE -c 'apt-get
update && apt list --upgradable'`, one image after another (its cost is the download: the same for
either fleet).

driftwatch runs first, so any cache between here and the archives is warmed by driftwatch, not for it.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RELEASES = {"debian 12": "driftwatch/debian:12", "ubuntu 24.04": "driftwatch/ubuntu:24.04"}
NAIVE = "apt-get update && apt list --upgradable"
TEST_LABEL = "io.driftwatch.test=1"


@dataclass
class Run:
    """One driftwatch child process."""

    seconds: float
    max_rss_mb: float
    exit_code: int
    stderr: str


def docker(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["docker", *args], input=stdin, capture_output=True, text=True, check=False)


#: A layer that installs a package of the image's own: a distinct dpkg status for each image.
OWN_PACKAGE = ("RUN mkdir -p /tmp/p/DEBIAN && printf 'Package: bench-app-{n}\\nVersion: 1.0\\nArchitecture: all\\n"
               "Maintainer: bench <bench@example.org>\\nDescription: benchmark app {n}\\n' > /tmp/p/DEBIAN/control "
               "&& dpkg-deb -b /tmp/p /tmp/p.deb >/dev/null && dpkg -i /tmp/p.deb >/dev/null "
               "&& rm -rf /tmp/p /tmp/p.deb\n")
FLEETS = {"distinct": OWN_PACKAGE, "shared": "RUN echo {n} > /driftwatch-bench\n"}


def build(base: str, tag: str, n: int, fleet: str) -> None:
    dockerfile = f"FROM {base}\n" + FLEETS[fleet].format(n=n)
    done = docker("build", "-q", "--label", TEST_LABEL, "-t", tag, "-", stdin=dockerfile)
    if done.returncode != 0:
        raise SystemExit(f"building {tag} failed: {done.stderr.strip()}")


def driftwatch(db: Path, images: list[str], jobs: int | None) -> Run:
    """`driftwatch -v scan --jobs N IMAGES` as a child process: wall time and peak RSS."""
    args = [sys.executable, "-m", "driftwatch", "-v", "--db", str(db), "scan", "--format", "json"]
    args += ["--jobs", str(jobs)] if jobs else []
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        began = time.perf_counter()
        proc = subprocess.Popen([*args, *images], stdout=out, stderr=err, env=env, cwd=ROOT)
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - began
        proc.returncode = os.waitstatus_to_exitcode(status)
        err.seek(0)
        return Run(seconds, usage.ru_maxrss / 1024, proc.returncode, err.read())


def naive(images: list[str]) -> list[float]:
    times = []
    for image in images:
        began = time.perf_counter()
        done = subprocess.run(["docker", "run", "--rm", "--entrypoint", "sh", image, "-c", NAIVE],
                              capture_output=True, text=True, check=False)
        times.append(time.perf_counter() - began)
        if done.returncode != 0:
            raise SystemExit(f"the naive loop failed on {image}: {done.stderr.strip()[-300:]}")
    return times


def refresh_times(stderr: str) -> list[str]:
    """driftwatch's -v lines about its refreshes: 'lists for debian 12, 6 images refreshed by ... in 5.1 s'."""
    return [m.group(1) for m in re.finditer(r"lists for (.+? refreshed by .+? in [\d.]+ s)", stderr)]


def shared_times(stderr: str) -> list[str]:
    """driftwatch's -v lines on the scans over shared lists: '6 image(s) of debian 12, 6 images scanned over
    its shared lists in 7.1 s after the refresh (1.18 s per image; 6 probed, 0 confirmed ...)'."""
    return re.findall(r"\d+ image\(s\) of .+? scanned over its shared lists in .+? per image[^)]*\)", stderr)


def measure(name: str, built: dict[str, list[str]], jobs: int | None, tmp: Path
            ) -> tuple[Run, dict[str, tuple[Run, Run]]]:
    """driftwatch on the whole fleet, then per release on 1 image and on all of them."""
    everything = [t for tags in built.values() for t in tags]
    full = driftwatch(tmp / f"{name}-all.db", everything, jobs)
    if full.exit_code not in (0, 1):
        raise SystemExit(f"driftwatch scan exited {full.exit_code}:\n{full.stderr[-2000:]}")
    per_release = {}
    for release, tags in built.items():
        one = driftwatch(tmp / f"{name}-{release.split()[0]}-1.db", tags[:1], jobs)
        many = driftwatch(tmp / f"{name}-{release.split()[0]}-n.db", tags, jobs)
        per_release[release] = (one, many)
    return full, per_release


def report(name: str, built: dict[str, list[str]], full: Run, per_release: dict[str, tuple[Run, Run]],
           total_naive: float, n: int) -> float:
    everything = [t for tags in built.values() for t in tags]
    print()
    what = ("each image has a dpkg status of its own" if name == "distinct"
            else "the images of a release share their apt state")
    print(f"== fleet '{name}' ({what})")
    print(f"driftwatch scan, {len(everything)} images: {full.seconds:.1f} s (peak memory {full.max_rss_mb:.0f} MB)")
    for line in re.findall(r"apt sources of \d+ image\(s\) read in [\d.]+ s", full.stderr):
        print(f"  {line}")
    for line in refresh_times(full.stderr):
        print(f"  lists for {line}")
    for line in shared_times(full.stderr):
        print(f"  {line}")
    ratio = total_naive / full.seconds
    print(f"ratio against the naive loop: {ratio:.1f}x faster (target >= 5x: {'met' if ratio >= 5 else 'MISSED'})")
    print(f"per release, driftwatch on 1 image, then on all {n}:")
    for release, (one, many) in per_release.items():
        further = (many.seconds - one.seconds) / (n - 1)
        print(f"  {release}: 1 image {one.seconds:.1f} s, {n} images {many.seconds:.1f} s -> "
              f"{further:.2f} s per further image (target <= 1.0 s: {'met' if further <= 1.0 else 'MISSED'})")
        for line in refresh_times(many.stderr):
            print(f"    lists for {line}")
        for line in shared_times(many.stderr):
            print(f"    {line}")
    return max([full.max_rss_mb] + [r.max_rss_mb for pair in per_release.values() for r in pair])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--per-release", type=int, default=6, help="images built from each base (default 6)")
    parser.add_argument("--jobs", type=int, default=None, help="driftwatch --jobs (default: driftwatch's own)")
    parser.add_argument("--fleet", choices=["distinct", "shared", "both"], default="both",
                        help="which fleet(s) to measure (default both); the naive loop runs on the first")
    opts = parser.parse_args()
    n = opts.per_release
    if n < 2:
        raise SystemExit("--per-release must be at least 2")
    for base in RELEASES.values():
        if docker("image", "inspect", base).returncode != 0:
            raise SystemExit(f"{base} is missing: run scripts/base-images.sh")
    fleets = ["distinct", "shared"] if opts.fleet == "both" else [opts.fleet]
    run_id = uuid.uuid4().hex[:8]
    built: dict[str, dict[str, list[str]]] = {f: {name: [] for name in RELEASES} for f in fleets}
    cpus = os.cpu_count() or 1
    print(f"engine: Docker {docker('version', '--format', '{{.Server.Version}}').stdout.strip()}, {cpus} CPUs; "
          f"driftwatch --jobs {opts.jobs or 'default (' + str(min(4, cpus)) + ')'}")
    try:
        began = time.perf_counter()
        for fleet in fleets:
            for name, base in RELEASES.items():
                for i in range(n):
                    tag = f"driftwatch-bench/{fleet}-{name.split()[0]}-{i}:{run_id}"
                    build(base, tag, i, fleet)
                    built[fleet][name].append(tag)
        print(f"built {sum(len(t) for f in built.values() for t in f.values())} images ({n} per release and fleet) "
              f"in {time.perf_counter() - began:.1f} s")

        with tempfile.TemporaryDirectory() as tmp:
            results = {fleet: measure(fleet, built[fleet], opts.jobs, Path(tmp)) for fleet in fleets}
        first = [t for tags in built[fleets[0]].values() for t in tags]
        loop = naive(first)

        total_naive = sum(loop)
        print()
        print(f"naive loop, {len(first)} images of fleet '{fleets[0]}' one after another: {total_naive:.1f} s")
        for name, tags in built[fleets[0]].items():
            own = [t for img, t in zip(first, loop, strict=True) if img in tags]
            print(f"  {name}: {sum(own) / len(own):.1f} s per image (min {min(own):.1f}, max {max(own):.1f})")
        peak = max(report(fleet, built[fleet], *results[fleet], total_naive, n) for fleet in fleets)
        print()
        print(f"peak memory of the driftwatch process (ru_maxrss), all runs: {peak:.0f} MB "
              f"(target < 150 MB: {'met' if peak < 150 else 'MISSED'})")
    finally:
        tags = [t for f in built.values() for ts in f.values() for t in ts]
        if tags:
            docker("rmi", "-f", *tags)


if __name__ == "__main__":
    main()
