"""Property-based tests of ``aptparse.parse_upgradable`` (hypothesis).

Three properties, on text no fixture thought of: the parser never crashes; it never invents an
update (every field of every update is in one input line, verbatim); and generated valid lines in the
C-locale format ``name/suites version arch [upgradable from: installed]`` round-trip exactly.
"""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from driftwatch.aptparse import is_security_suite, parse_upgradable

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Debian policy 5.6.1 (package names) and 5.6.12 (versions), narrowed to what apt prints. Built from
# character sets rather than regexes: st.from_regex is an order of magnitude slower here.
LOWER_DIGITS = "abcdefghijklmnopqrstuvwxyz0123456789"
VERSION_CHARS = LOWER_DIGITS + "ABCDEFGHIJKLMNOPQRSTUVWXYZ.+~"


def _joined(*parts: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.tuples(*parts).map("".join)


names = _joined(st.sampled_from(LOWER_DIGITS), st.text(LOWER_DIGITS + "+.-", min_size=1, max_size=40))
versions = _joined(
    st.sampled_from(["", "1:", "2:", "10:"]), st.sampled_from("0123456789"), st.text(VERSION_CHARS, max_size=20),
    st.one_of(st.just(""), _joined(st.just("-"), st.text(VERSION_CHARS, min_size=1, max_size=12))),
)
arches = st.sampled_from(["amd64", "arm64", "all", "i386", "armhf", "ppc64el", "s390x", "riscv64"])
suites = st.lists(
    _joined(st.sampled_from("abcdefghijklmnopqrstuvwxyz"), st.text(LOWER_DIGITS + "-", max_size=24))
    | st.sampled_from(["bookworm-security", "noble-security", "noble-infra-security", "jammy-updates", "now"]),
    min_size=1, max_size=4)


@st.composite
def valid_entries(draw: st.DrawFn) -> tuple[str, tuple[str, ...], str, str, str]:
    """(package, suites, candidate, arch, installed)."""
    return draw(names), tuple(draw(suites)), draw(versions), draw(arches), draw(versions)


def line_of(entry: tuple[str, tuple[str, ...], str, str, str]) -> str:
    package, suite_list, candidate, arch, installed = entry
    return f"{package}/{','.join(suite_list)} {candidate} {arch} [upgradable from: {installed}]"


# Text that looks like apt's: its own punctuation, control characters, non-ASCII, escape sequences.
aptish = st.text(alphabet=st.sampled_from(list("ab01/ ,.:-+~[]\t\r\x1b\x07\x00\u00e9\ufffd\u2028\x85")) |
                 st.characters(), max_size=120)
any_lines = st.lists(st.one_of(aptish, valid_entries().map(line_of), st.sampled_from([
    "Listing...", "Listing... Done", "WARNING: apt does not have a stable CLI interface. Use with caution in scripts.",
    "E: Could not open lock file", "W: something", "N: note", ""])), max_size=12)


@SETTINGS
@given(st.text())
def test_never_crashes_on_any_text(text: str) -> None:
    result = parse_upgradable(text)
    assert len(result.updates) + len(result.unparsed) + len(result.ignored) + len(result.errors) <= len(
        text.splitlines())


@SETTINGS
@given(any_lines)
def test_never_crashes_on_aptish_lines(lines: list[str]) -> None:
    parse_upgradable("\n".join(lines))


@SETTINGS
@given(any_lines)
def test_never_invents_an_update(lines: list[str]) -> None:
    text = "\n".join(lines)
    source = text.splitlines()
    for update in parse_upgradable(text).updates:
        tail = f" {update.candidate} {update.arch} [upgradable from: {update.installed}]"
        assert any(line.startswith(update.package + "/") and tail in line
                   and all(suite in line for suite in update.suites) for line in source), update


@SETTINGS
@given(st.lists(valid_entries(), max_size=20), st.booleans(), st.booleans())
def test_valid_lines_round_trip(entries: list[tuple[str, tuple[str, ...], str, str, str]], header: bool,
                                warning: bool) -> None:
    lines = [line_of(e) for e in entries]
    if header:
        lines.insert(0, "Listing...")
    if warning:
        lines.insert(0, "WARNING: apt does not have a stable CLI interface. Use with caution in scripts.")
    result = parse_upgradable("\n".join(lines) + "\n")
    assert result.unparsed == () and result.errors == ()
    got = [(u.package, u.suites, u.candidate, u.arch, u.installed, u.security) for u in result.updates]
    want = [(p, tuple(dict.fromkeys(s)), c, a, i, any(is_security_suite(x) for x in s)) for p, s, c, a, i in entries]
    assert got == want
