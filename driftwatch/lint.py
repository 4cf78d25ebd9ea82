"""Pure: lint a Dockerfile for the ways Docker's layer cache lets an image's packages drift.

A ``RUN apt-get update && apt-get -y upgrade`` layer is reused for as long as the lines above it do
not change. When it sits above a ``COPY . .``, every code change rebuilds what follows the COPY and
never the upgrade, so an image "rebuilt every day" carries months-old packages. The rules:

``upgrade-before-changing-steps`` (warning)
    In the final image's stage chain, a package refresh (``apt-get upgrade``/``dist-upgrade``/
    ``full-upgrade``, or ``apt-get install`` after ``apt-get update`` in the same RUN) is followed by a
    step that reads the build context (``COPY``/``ADD`` of context files, ``COPY --from`` a stage that
    reads the context, ``RUN --mount=type=bind`` of the context), and no full upgrade follows that step.
``no-upgrade-step`` (warning)
    The final image's stage chain never runs a full upgrade, so its packages are as old as its base
    image. Chains rooted at ``scratch`` are skipped (no package database).
``apt-lists-not-cleaned`` (warning)
    A RUN of the final image's chain runs ``apt-get update`` and does not remove
    ``/var/lib/apt/lists`` after it in the same RUN (``rm`` or ``apt-get distclean``), and no cache,
    tmpfs or bind mount covers that directory.
``update-without-install`` (error, any stage)
    A RUN runs ``apt-get update`` with no install or upgrade after it: a later install layer uses the
    cached, stale lists. Such a RUN is not also reported as ``apt-lists-not-cleaned``: cleaning the
    lists there would break the later install, the remedy is to combine the two.

Only *command words* count: ``echo "apt-get upgrade"`` is not an upgrade, while ``sh -c '...'``,
``bash <<EOF`` bodies, ``sudo``/``env``/``xargs`` wrappers and ``VAR=value`` prefixes are looked
through. A heredoc that is data (``cat <<EOF > file``, a ``#!/usr/bin/python3`` script) is not run.
Full upgrades of apk, dnf/yum/microdnf and zypper count as upgrades too, so that ``no-upgrade-step``
does not misfire on non-Debian images; the list rules are about apt only.

The parser follows BuildKit's: parser directives (``# escape=```), comments, continuation lines with
the escape character (comment and empty lines inside a continuation are skipped), case-insensitive
instructions, JSON (exec) and shell forms, heredocs on RUN/COPY/ADD, and stages (``FROM x AS name``,
``FROM name``, ``COPY --from=name|index``, global ``ARG`` defaults in ``FROM``). Unnamed stages are
named by their index (``"0"``), as ``COPY --from=0`` does. Findings carry the line where their
instruction starts.
"""

from __future__ import annotations

import json
import posixpath
import re
import shlex
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Literal

from .errors import ConfigError

Severity = Literal["warning", "error", "info"]

RULE_UPGRADE_BEFORE_CHANGES = "upgrade-before-changing-steps"
RULE_NO_UPGRADE = "no-upgrade-step"
RULE_LISTS_NOT_CLEANED = "apt-lists-not-cleaned"
RULE_UPDATE_ALONE = "update-without-install"

APT_LISTS = "/var/lib/apt/lists"
UPGRADE_RUN = "RUN apt-get update && apt-get -y upgrade && rm -rf /var/lib/apt/lists/*"


@dataclass(frozen=True, slots=True)
class Finding:
    """One problem: which rule, the line its instruction starts on, the stage, why, and the fix."""

    rule: str
    line: int
    stage: str
    message: str
    remedy: str
    severity: Severity


# --------------------------------------------------------------------------------------------------
# Dockerfile parsing
# --------------------------------------------------------------------------------------------------

_DIRECTIVE = re.compile(r"^#\s*([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.+?)\s*$")
_KNOWN_DIRECTIVES = frozenset({"syntax", "escape", "check"})
_HEREDOC_WORD = re.compile(r"^(\d*)<<(-?)([^<]*)$")
_HEREDOC_INSTRUCTIONS = frozenset({"RUN", "COPY", "ADD"})
_VARIABLE = re.compile(r"\$(?:\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-+])([^}]*))?\}|([A-Za-z_][A-Za-z0-9_]*))")


@dataclass(frozen=True, slots=True)
class Heredoc:
    """An inline document: its terminator, its raw body (newline-terminated lines), ``<<-``."""

    name: str
    content: str
    chomp: bool

    def body(self) -> str:
        """The body as the shell sees it (leading tabs removed for ``<<-``)."""
        return re.sub(r"(?m)^\t+", "", self.content) if self.chomp else self.content


@dataclass(frozen=True, slots=True)
class Instruction:
    """One instruction: upper-case keyword, start line, leading ``--flags``, the rest, heredocs."""

    keyword: str
    line: int
    flags: tuple[str, ...]
    args: str
    heredocs: tuple[Heredoc, ...] = ()

    @property
    def json_args(self) -> tuple[str, ...] | None:
        """The exec-form argument list (``RUN ["apt-get", "update"]``), or None for shell form."""
        text = self.args.strip()
        if not text.startswith("["):
            return None
        try:
            value = json.loads(text)
        except ValueError:
            return None
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return tuple(value)
        return None

    def flag_values(self, name: str) -> list[str]:
        """The values of every ``--name=value`` flag, unquoted, in order."""
        values = []
        for flag in self.flags:
            key, _, value = flag[2:].partition("=")
            if key.lower() == name:
                values.append(_unquote(value))
        return values


@dataclass(frozen=True, slots=True)
class Stage:
    """A build stage: index, lower-case name (or None), base reference after ARG expansion."""

    index: int
    name: str | None
    base: str
    line: int
    instructions: tuple[Instruction, ...]

    @property
    def label(self) -> str:
        """The name the stage is referred to by: its name, else its index."""
        return self.name if self.name is not None else str(self.index)


@dataclass(frozen=True, slots=True)
class Dockerfile:
    """A parsed Dockerfile: escape character, global ARG defaults, stages in order."""

    escape: str
    args: Mapping[str, str] = field(default_factory=dict)
    stages: tuple[Stage, ...] = ()


def parse(text: str) -> Dockerfile:
    """Parse Dockerfile text; ConfigError on what BuildKit rejects too (bad directive, no FROM)."""
    lines = [line.removesuffix("\r") for line in text.removeprefix("\ufeff").split("\n")]
    escape = _read_directives(lines)
    return _build_stages(list(_instructions(lines, escape)), escape)


def _read_directives(lines: Sequence[str]) -> str:
    """The escape character set by the parser directives at the top of the file."""
    escape, seen = "\\", set()
    for number, line in enumerate(lines, 1):
        match = _DIRECTIVE.match(line.lstrip())
        if not match or match.group(1).lower() not in _KNOWN_DIRECTIVES:
            break
        key, value = match.group(1).lower(), match.group(2)
        if key in seen:
            raise ConfigError(f"line {number}: only one {key} parser directive can be used")
        seen.add(key)
        if key == "escape":
            if value not in ("\\", "`"):
                raise ConfigError(f"line {number}: invalid escape token {value!r}: use ` or \\")
            escape = value
    return escape


def _instructions(lines: Sequence[str], escape: str) -> Iterator[Instruction]:
    """Join continuation lines into instructions and attach the heredoc bodies that follow them."""
    e = re.escape(escape)
    continuation = re.compile(rf"([^{e}]){e}[ \t]*$|^{e}[ \t]*$")
    i = 0
    while i < len(lines):
        start, first = i + 1, lines[i].lstrip()
        i += 1
        if first.startswith("#"):
            continue
        text, ended = _trim_continuation(first, continuation)
        if ended and not text:
            continue
        while not ended and i < len(lines):
            line = lines[i]
            i += 1
            if line.lstrip().startswith("#") or not line.strip():
                continue
            part, ended = _trim_continuation(line, continuation)
            text += part
        instruction, i = _instruction(text, start, lines, i)
        yield instruction


def _trim_continuation(line: str, continuation: re.Pattern[str]) -> tuple[str, bool]:
    """Strip a trailing escape character; True when the instruction ends on this line."""
    if continuation.search(line):
        return continuation.sub(r"\1", line), False
    return line, True


def _instruction(text: str, start: int, lines: Sequence[str], i: int) -> tuple[Instruction, int]:
    """Build one instruction from its joined text; read its heredoc bodies from ``lines[i:]``."""
    keyword, _, rest = re.sub(r"\s+", " ", text.strip(), count=1).partition(" ")
    keyword = keyword.upper()
    flags, rest = _take_flags(rest.strip())
    heredocs: list[Heredoc] = []
    probe = Instruction(keyword, start, flags, rest)
    if keyword in _HEREDOC_INSTRUCTIONS and probe.json_args is None:
        for word in _raw_words(text):
            parsed = _heredoc_word(word)
            if parsed is not None:
                content, i = _heredoc_body(lines, i, parsed[0], parsed[1], start)
                heredocs.append(Heredoc(parsed[0], content, parsed[1]))
    return Instruction(keyword, start, flags, rest, tuple(heredocs)), i


def _take_flags(rest: str) -> tuple[tuple[str, ...], str]:
    """Split leading ``--name=value`` builder flags off the arguments."""
    flags = []
    while rest.startswith("--"):
        words = _raw_words(rest)
        word = words[0]
        rest = rest[len(word):].lstrip()
        if word == "--":
            break
        flags.append(word)
    return tuple(flags), rest


def _raw_words(text: str) -> list[str]:
    """Split on unquoted whitespace, keeping quotes and backslash escapes as written."""
    words: list[str] = []
    current: list[str] = []
    quote: str | None = None
    i = 0
    while i < len(text):
        c = text[i]
        if c == "\\" and quote != "'" and i + 1 < len(text):
            current.append(text[i:i + 2])
            i += 2
            continue
        if quote is None and c.isspace():
            if current:
                words.append("".join(current))
                current = []
        else:
            current.append(c)
            if quote is None and c in "'\"":
                quote = c
            elif c == quote:
                quote = None
        i += 1
    if current:
        words.append("".join(current))
    return words


def _unquote(word: str) -> str:
    """Remove shell quoting from one word (best effort: malformed quoting is kept as written)."""
    try:
        parts = shlex.split(word, posix=True)
    except ValueError:
        return word
    return parts[0] if len(parts) == 1 else word


def _heredoc_word(word: str) -> tuple[str, bool] | None:
    """``<<EOF``, ``<<-"EOF"``, ``2<<EOF``: the terminator and whether tabs are stripped."""
    match = _HEREDOC_WORD.match(word)
    if not match or not match.group(3) or len(_raw_words(match.group(3))) != 1:
        return None
    return _unquote(match.group(3)), match.group(2) == "-"


def _heredoc_body(lines: Sequence[str], i: int, name: str, chomp: bool, start: int) -> tuple[str, int]:
    """Read body lines from ``lines[i:]`` up to the terminator line; return body and next index."""
    body: list[str] = []
    while i < len(lines):
        line = lines[i]
        i += 1
        if (line.lstrip("\t") if chomp else line) == name:
            return "".join(body), i
        body.append(line + "\n")
    raise ConfigError(f"line {start}: unterminated heredoc <<{name}")


def _build_stages(instructions: Sequence[Instruction], escape: str) -> Dockerfile:
    """Group instructions into stages; global ARGs (before the first FROM) feed FROM expansion."""
    meta_args: dict[str, str] = {}
    stages: list[Stage] = []
    current: tuple[int, str | None, str, int] | None = None
    body: list[Instruction] = []
    for inst in instructions:
        if inst.keyword == "FROM":
            if current is not None:
                stages.append(Stage(*current, tuple(body)))
            base, name = _parse_from(inst.args, meta_args)
            current, body = (len(stages), name, base, inst.line), []
        elif current is not None:
            body.append(inst)
        elif inst.keyword == "ARG":
            meta_args.update(_parse_arg(inst.args))
    if current is None:
        raise ConfigError("no FROM instruction: not a Dockerfile")
    stages.append(Stage(*current, tuple(body)))
    return Dockerfile(escape, meta_args, tuple(stages))


def _parse_from(args: str, meta_args: Mapping[str, str]) -> tuple[str, str | None]:
    """``[--platform=x] image [AS name]`` -> (expanded image, lower-case name or None)."""
    words = [w for w in _raw_words(args) if not w.startswith("--")]
    base = _expand(_unquote(words[0]), meta_args) if words else ""
    name = words[2].lower() if len(words) >= 3 and words[1].lower() == "as" else None
    return base, name


def _parse_arg(args: str) -> dict[str, str]:
    """``ARG A=1 B`` -> {"A": "1"} (an ARG without a default stays unset)."""
    values = {}
    for word in _raw_words(args):
        key, sep, value = word.partition("=")
        if sep:
            values[key] = _unquote(value) if value else ""
    return values


def _expand(text: str, variables: Mapping[str, str]) -> str:
    """Expand ``$X``, ``${X}``, ``${X:-d}``, ``${X-d}``, ``${X:+a}``, ``${X+a}``; unset is empty."""

    def substitute(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(4)
        op, word = match.group(2), match.group(3) or ""
        value, is_set = variables.get(name, ""), name in variables
        if op == ":-":
            return value or word
        if op == "-":
            return value if is_set else word
        if op == ":+":
            return word if value else ""
        if op == "+":
            return word if is_set else ""
        return value

    return _VARIABLE.sub(substitute, text)


# --------------------------------------------------------------------------------------------------
# Shell command analysis
# --------------------------------------------------------------------------------------------------


class PackageAction(Enum):
    """What a command does to the package state, as far as these rules care."""

    UPDATE = "update"  # apt-get update: fetch the lists
    UPGRADE = "upgrade"  # a full upgrade (apt upgrade/dist-upgrade/full-upgrade, apk/dnf/yum/zypper)
    INSTALL = "install"  # apt-get install/reinstall/build-dep/satisfy
    CLEAN_LISTS = "clean-lists"  # rm of /var/lib/apt/lists, apt-get distclean
    CLEAN_CACHE = "clean-cache"  # apt-get clean/autoclean: the .deb cache, *not* the lists


@dataclass(frozen=True, slots=True)
class PackageStep:
    """One command that matters, with the command as written (wrappers removed)."""

    action: PackageAction
    command: str


_SHELLS = frozenset({"sh", "bash", "dash", "ash", "zsh", "ksh", "mksh"})
_RESERVED = frozenset({"!", "{", "}", "if", "then", "else", "elif", "do", "while", "until", "fi", "done", "esac"})
_HEADERS = frozenset({"for", "case", "select", "function"})
_ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*\+?=")
# Wrappers that run their operand as a command, with the options of theirs that take an argument.
_WRAPPERS: dict[str, frozenset[str]] = {
    "sudo": frozenset({"-u", "-g", "-C", "-h", "-p", "-U", "-r", "-t", "-D", "-R", "-T", "--user", "--group",
                       "--close-from", "--host", "--prompt", "--other-user", "--role", "--type", "--chdir",
                       "--chroot", "--command-timeout"}),
    "env": frozenset({"-u", "--unset", "-C", "--chdir"}),
    "xargs": frozenset({"-a", "-d", "-E", "-I", "-L", "-n", "-P", "-s", "--arg-file", "--delimiter",
                        "--max-lines", "--max-args", "--max-procs", "--max-chars", "--process-slot-var"}),
    "nice": frozenset({"-n", "--adjustment"}),
    "time": frozenset({"-f", "-o", "--format", "--output"}),
    "stdbuf": frozenset({"-i", "-o", "-e"}),
    "timeout": frozenset({"-s", "-k", "--signal", "--kill-after"}),
    "exec": frozenset({"-a"}),
    "command": frozenset(),
    "nohup": frozenset(),
    "eatmydata": frozenset(),
    "busybox": frozenset(),
}
_APT_ARG_OPTIONS = frozenset({"--option", "--config-file", "--target-release", "--default-release",
                              "--host-architecture"})
_APT_NO_CHANGE = frozenset({"-s", "-d", "--simulate", "--just-print", "--dry-run", "--recon", "--no-act",
                            "--download-only", "--print-uris"})
_APT_ACTIONS = {
    "update": PackageAction.UPDATE,
    "upgrade": PackageAction.UPGRADE, "dist-upgrade": PackageAction.UPGRADE,
    "full-upgrade": PackageAction.UPGRADE,
    "install": PackageAction.INSTALL, "reinstall": PackageAction.INSTALL, "build-dep": PackageAction.INSTALL,
    "satisfy": PackageAction.INSTALL,
    "distclean": PackageAction.CLEAN_LISTS, "dist-clean": PackageAction.CLEAN_LISTS,
    "clean": PackageAction.CLEAN_CACHE, "autoclean": PackageAction.CLEAN_CACHE,
}
# Other package managers: (options that take an argument, subcommands that upgrade everything).
_RPM_STYLE = (frozenset({"-c", "--config", "-x", "--exclude", "--releasever", "--installroot", "-d", "-e",
                         "-R", "--setopt", "--enablerepo", "--disablerepo", "--repo"}),
              frozenset({"upgrade", "update", "distro-sync", "upgrade-minimal", "update-minimal"}))
_OTHER_MANAGERS: dict[str, tuple[frozenset[str], frozenset[str]]] = {
    "apk": (frozenset({"-X", "--repository", "-p", "--root", "--arch", "--cache-dir", "--keys-dir",
                       "--repositories-file"}), frozenset({"upgrade"})),
    "dnf": _RPM_STYLE, "yum": _RPM_STYLE, "microdnf": _RPM_STYLE, "tdnf": _RPM_STYLE,
    "zypper": (frozenset({"-c", "--config", "-R", "--root", "--userdata"}),
               frozenset({"update", "up", "dist-upgrade", "dup", "patch"})),
}
_LISTS_PATH = re.compile(r"^/var/lib/apt/lists(?:/.*)?$")
_MAX_DEPTH = 8


def package_steps(script: str) -> tuple[PackageStep, ...]:
    """The package-relevant commands of a POSIX shell script, in order."""
    return tuple(_script_steps(script, 0))


def argv_steps(argv: Sequence[str]) -> tuple[PackageStep, ...]:
    """The package-relevant commands of one exec-form command (``RUN ["apt-get", "update"]``)."""
    return tuple(_command_steps(list(argv), None, 0))


def run_steps(inst: Instruction) -> tuple[PackageStep, ...]:
    """The package-relevant commands a RUN instruction executes (JSON form, shell form, heredocs)."""
    argv = inst.json_args
    if argv is not None:
        return argv_steps(argv)
    return package_steps(_run_script(inst))


def _run_script(inst: Instruction) -> str:
    """The shell script BuildKit runs for a shell-form RUN.

    ``RUN <<EOF`` runs the body itself (unless a non-shell shebang makes it another program's
    script); otherwise the heredocs are put back under the command line and the shell gets it all.
    """
    if not inst.heredocs:
        return inst.args
    if _heredoc_word(inst.args.strip()) is not None:
        body = inst.heredocs[0].body()
        return "" if body.startswith("#!") and not _is_shell_shebang(body) else body
    return inst.args + "".join("\n" + doc.content + doc.name for doc in inst.heredocs)


def _is_shell_shebang(body: str) -> bool:
    """``#!/bin/sh -e``, ``#!/usr/bin/env bash``: is the interpreter a POSIX-style shell?"""
    words = body[2:].split("\n", 1)[0].split()
    if words and posixpath.basename(words[0]) == "env":
        words = [w for w in words[1:] if not w.startswith("-")]
    return bool(words) and posixpath.basename(words[0]) in _SHELLS


def _script_steps(script: str, depth: int) -> Iterator[PackageStep]:
    """Lex a script into simple commands and classify each."""
    if depth > _MAX_DEPTH:
        return
    for command in _ShellLexer(script).commands():
        yield from _command_steps(command.words, "".join(command.stdin) or None, depth)


def _command_steps(words: list[str], stdin: str | None, depth: int) -> Iterator[PackageStep]:
    """Classify one simple command, looking through wrappers and nested shells."""
    argv = _strip_prefixes(words)
    if not argv:
        return
    name = posixpath.basename(argv[0])
    text = " ".join(argv)
    if name in _SHELLS:
        yield from _shell_steps(argv, stdin, depth)
    elif name in ("apt-get", "apt"):
        action = _apt_action(argv[1:])
        if action is not None:
            yield PackageStep(action, text)
    elif name == "rm":
        if any(_LISTS_PATH.match(arg.rstrip("/") or "/") for arg in argv[1:] if not arg.startswith("-")):
            yield PackageStep(PackageAction.CLEAN_LISTS, text)
    elif name in _OTHER_MANAGERS:
        takes_arg, upgrades = _OTHER_MANAGERS[name]
        if _first_operand(argv[1:], takes_arg) in upgrades:
            yield PackageStep(PackageAction.UPGRADE, text)


def _strip_prefixes(words: Sequence[str]) -> list[str]:
    """Drop reserved words, ``VAR=value`` assignments and wrappers (``sudo -E``, ``env``, ``xargs -r``)."""
    i = 0
    while i < len(words):
        word = words[i]
        base = posixpath.basename(word)
        if word in _HEADERS:
            return []
        if word in _RESERVED or _ASSIGNMENT.match(word):
            i += 1
        elif base == "command" and i + 1 < len(words) and words[i + 1] in ("-v", "-V"):
            return []
        elif base in _WRAPPERS:
            i = _skip_options(words, i + 1, _WRAPPERS[base]) + (1 if base == "timeout" else 0)
        else:
            break
    return list(words[i:])


def _skip_options(words: Sequence[str], i: int, takes_arg: frozenset[str]) -> int:
    """Index of the first operand at or after ``i``."""
    while i < len(words):
        word = words[i]
        if word == "--":
            return i + 1
        if not word.startswith("-") or word == "-":
            return i
        i += 2 if word in takes_arg else 1
    return i


def _first_operand(args: Sequence[str], takes_arg: frozenset[str]) -> str | None:
    """The first non-option word (the subcommand), skipping options and their arguments."""
    i = _skip_options(args, 0, takes_arg)
    return args[i] if i < len(args) else None


def _shell_steps(argv: Sequence[str], stdin: str | None, depth: int) -> Iterator[PackageStep]:
    """``sh -c SCRIPT``, ``bash -euo pipefail -c SCRIPT``, ``bash <<EOF``: analyse the script."""
    i, has_c, reads_stdin = 1, False, False
    while i < len(argv):
        word = argv[i]
        if word in ("--", "-"):
            i += 1
            break
        if len(word) < 2 or word[0] not in "-+":
            break
        if not word.startswith("--"):
            has_c = has_c or (word[0] == "-" and "c" in word[1:])
            reads_stdin = reads_stdin or "s" in word[1:]
            i += 1 if "o" in word[1:] or "O" in word[1:] else 0  # -o OPTION takes the next word
        i += 1
    if has_c:
        if i < len(argv):
            yield from _script_steps(argv[i], depth + 1)
    elif (reads_stdin or i >= len(argv)) and stdin:
        yield from _script_steps(stdin, depth + 1)


def _apt_action(args: Sequence[str]) -> PackageAction | None:
    """What ``apt-get ARGS`` / ``apt ARGS`` does; simulations and download-only change nothing."""
    subcommand, options, i = None, set(), 0
    while i < len(args):
        word = args[i]
        if word.startswith("--"):
            key = word.partition("=")[0]
            options.add(key)
            i += 2 if key in _APT_ARG_OPTIONS and "=" not in word else 1
        elif word.startswith("-") and len(word) > 1:
            if word[1] in "octa":  # -o X=Y, -c FILE, -t RELEASE, -a ARCH (or attached: -oX=Y)
                i += 2 if len(word) == 2 else 1
                continue
            options.update("-" + letter for letter in word[1:])
            i += 1
        else:
            subcommand = subcommand or word
            i += 1
    action = _APT_ACTIONS.get(subcommand or "")
    if action in (PackageAction.UPGRADE, PackageAction.INSTALL) and options & _APT_NO_CHANGE:
        return None
    return action


class _Command:
    """A simple command being built by the lexer: its words and any heredoc fed to its stdin."""

    __slots__ = ("stdin", "words")

    def __init__(self) -> None:
        self.words: list[str] = []
        self.stdin: list[str] = []


class _ShellLexer:
    """Split a POSIX shell script into simple commands.

    Handles quoting, backslash-newline, comments, ``&& || ; | & ( )`` and newlines as separators,
    redirections (their targets are not words; ``2>&1`` included) and heredocs (the body becomes
    the command's stdin). ``$(...)``, ``${...}`` and backquotes are kept as opaque word text.
    """

    _REDIRECTS = ("<<<", "<<-", "&>>", "<<", ">>", "<&", ">&", "<>", ">|", "&>", "<", ">")
    _OPERATORS = ("&&", "||", ";;", ";&", "|&", "&", "|", ";", "(", ")")

    def __init__(self, script: str) -> None:
        self.s, self.i = script, 0
        self.done: list[_Command] = []
        self.current = _Command()
        self.word: list[str] | None = None
        self.quoted = False
        self.redirect: str | None = None
        self.heredocs: list[tuple[str, bool, _Command]] = []

    def commands(self) -> list[_Command]:
        """Run the lexer over the whole script."""
        while self.i < len(self.s):
            self._step()
        self._end_command()
        self._read_heredocs()
        return [c for c in self.done if c.words]

    def _step(self) -> None:
        """Consume one token's worth of input."""
        s, i = self.s, self.i
        c = s[i]
        nxt = s[i + 1] if i + 1 < len(s) else ""
        if c == "\n":
            self._end_command()
            self.i += 1
            self._read_heredocs()
        elif c in " \t\r":
            self._end_word()
            self.i += 1
        elif c == "#" and self.word is None:
            end = s.find("\n", i)
            self.i = len(s) if end < 0 else end
        elif c == "'":
            end = s.find("'", i + 1)
            end = len(s) if end < 0 else end
            self._append(s[i + 1:end], quoted=True)
            self.i = end + 1
        elif c == '"':
            self._double_quoted()
        elif c == "\\":
            if nxt != "\n":
                self._append(nxt or "\\", quoted=True)
            self.i += 2
        elif c == "$" and nxt == "'":
            self.i += 1  # $'...' ANSI-C quoting: close enough to '...'
        elif (c == "$" and nxt in ("(", "{")) or (c in "<>" and nxt == "("):
            end = _balanced_end(s, i + 1)
            self._append(s[i:end])
            self.i = end
        elif c == "`":
            end = _backquote_end(s, i)
            self._append(s[i:end])
            self.i = end
        elif c in "<>&|;()":
            self._operator()
        else:
            self._append(c)
            self.i += 1

    def _append(self, text: str, quoted: bool = False) -> None:
        """Add text to the current word, starting one if needed."""
        if self.word is None:
            self.word = []
        self.word.append(text)
        self.quoted = self.quoted or quoted

    def _double_quoted(self) -> None:
        """Consume a double-quoted string starting at ``self.i``."""
        s, i = self.s, self.i + 1
        self._append("", quoted=True)
        while i < len(s) and s[i] != '"':
            c = s[i]
            if c == "\\" and i + 1 < len(s) and s[i + 1] in '$`"\\\n':
                self._append("" if s[i + 1] == "\n" else s[i + 1])
                i += 2
            elif c == "$" and i + 1 < len(s) and s[i + 1] in "({":
                end = _balanced_end(s, i + 1)
                self._append(s[i:end])
                i = end
            elif c == "`":
                end = _backquote_end(s, i)
                self._append(s[i:end])
                i = end
            else:
                self._append(c)
                i += 1
        self.i = i + 1

    def _operator(self) -> None:
        """A redirection (its target word is dropped) or a command separator."""
        for op in self._REDIRECTS:
            if self.s.startswith(op, self.i):
                if self.word is not None and not self.quoted and "".join(self.word).isdigit():
                    self.word, self.quoted = None, False  # an IO number: 2>file
                else:
                    self._end_word()
                self.redirect = op
                self.i += len(op)
                return
        op = next(o for o in self._OPERATORS if self.s.startswith(o, self.i))
        self._end_command()
        self.i += len(op)

    def _end_word(self) -> None:
        """Finish the current word: a redirection target, a heredoc delimiter or a command word."""
        if self.word is None:
            return
        text, self.word, self.quoted = "".join(self.word), None, False
        op, self.redirect = self.redirect, None
        if op in ("<<", "<<-"):
            self.heredocs.append((text, op == "<<-", self.current))
        elif op == "<<<":
            self.current.stdin.append(text + "\n")
        elif op is None:
            self.current.words.append(text)

    def _end_command(self) -> None:
        """Finish the current simple command."""
        self._end_word()
        self.redirect = None
        self.done.append(self.current)
        self.current = _Command()

    def _read_heredocs(self) -> None:
        """After a newline: read the bodies of the heredocs announced on the line before."""
        for delimiter, strip_tabs, command in self.heredocs:
            while self.i < len(self.s):
                end = self.s.find("\n", self.i)
                end = len(self.s) if end < 0 else end
                line = self.s[self.i:end]
                self.i = end + 1
                if strip_tabs:
                    line = line.lstrip("\t")
                if line == delimiter:
                    break
                command.stdin.append(line + "\n")
        self.heredocs = []


def _balanced_end(s: str, i: int) -> int:
    """Index just past the bracket matching the ``(`` or ``{`` at ``i`` (quotes respected)."""
    open_char = s[i]
    close_char = ")" if open_char == "(" else "}"
    depth = 0
    while i < len(s):
        c = s[i]
        if c == "\\":
            i += 2
            continue
        if c in "'\"":
            end = s.find(c, i + 1)
            i = len(s) if end < 0 else end + 1
            continue
        depth += (c == open_char) - (c == close_char)
        i += 1
        if depth == 0:
            return i
    return len(s)


def _backquote_end(s: str, i: int) -> int:
    """Index just past the backquote closing the one at ``i``."""
    i += 1
    while i < len(s) and s[i] != "`":
        i += 2 if s[i] == "\\" else 1
    return min(i + 1, len(s))


# --------------------------------------------------------------------------------------------------
# Stages and the build context
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Mount:
    """A ``RUN --mount``: type (default bind), target, and ``from=`` (None: the build context)."""

    type: str
    target: str
    source_from: str | None


def _mounts(inst: Instruction) -> list[_Mount]:
    """Parse the ``--mount=k=v,k=v`` flags of a RUN."""
    mounts = []
    for value in inst.flag_values("mount"):
        fields: dict[str, str] = {}
        for part in value.split(","):
            key, _, val = part.partition("=")
            fields[key.strip().lower()] = val.strip()
        target = fields.get("target") or fields.get("dst") or fields.get("destination") or ""
        mounts.append(_Mount(fields.get("type", "bind"), posixpath.normpath(target or "."), fields.get("from")))
    return mounts


def _find_stage(df: Dockerfile, ref: str, before: int, by_index: bool) -> Stage | None:
    """The earlier stage ``ref`` names (``FROM name``; ``COPY --from=name|index``), if any."""
    ref = _expand(ref, df.args).lower()
    for stage in reversed(df.stages[:before]):
        if stage.name == ref:
            return stage
    if by_index and ref.isdigit() and int(ref) < before:
        return df.stages[int(ref)]
    return None


def _parent(df: Dockerfile, stage: Stage) -> Stage | None:
    """The stage this one is built ``FROM``, when it is a stage and not an image."""
    return _find_stage(df, stage.base, stage.index, by_index=False)


def _chain(df: Dockerfile, final: Stage) -> list[Stage]:
    """The stages whose layers make up ``final``'s image, root first."""
    chain = [final]
    while (parent := _parent(df, chain[-1])) is not None and parent not in chain:
        chain.append(parent)
    return chain[::-1]


def _final_stage(df: Dockerfile, target: str | None) -> Stage:
    """The stage that is built: ``target`` when given, else the last one."""
    if target is None:
        return df.stages[-1]
    for stage in df.stages:
        if stage.name == target.lower():
            return stage
    names = ", ".join(s.name for s in df.stages if s.name) or "none"
    raise ConfigError(f"target stage {target!r} could not be found (named stages: {names})")


class _Context:
    """Which instructions read the build context, directly or through a stage they copy from."""

    def __init__(self, df: Dockerfile) -> None:
        self.df = df
        self.memo: dict[int, bool] = {}

    def stage_reads(self, stage: Stage) -> bool:
        """Does anything in this stage, or in the stage it is built from, read the context?"""
        if stage.index not in self.memo:
            self.memo[stage.index] = False  # guards against cycles
            parent = _parent(self.df, stage)
            self.memo[stage.index] = (parent is not None and self.stage_reads(parent)) or any(
                self.reads(stage, inst) for inst in stage.instructions)
        return self.memo[stage.index]

    def reads(self, stage: Stage, inst: Instruction) -> bool:
        """Does this instruction's cache key depend on the build context?"""
        if inst.keyword in ("COPY", "ADD"):
            source = inst.flag_values("from")
            if source:
                return self._from_reads(stage, source[-1])
            return any(_is_context_source(src) for src in _copy_sources(inst))
        if inst.keyword == "RUN":
            return any(self._from_reads(stage, m.source_from) if m.source_from else True
                       for m in _mounts(inst) if m.type == "bind")
        return False

    def _from_reads(self, stage: Stage, ref: str) -> bool:
        """``--from=ref``: a stage that reads the context (an external image never does)."""
        source = _find_stage(self.df, ref, stage.index, by_index=True)
        return source is not None and self.stage_reads(source)


def _copy_sources(inst: Instruction) -> list[str]:
    """The source operands of a COPY/ADD (heredoc sources excluded)."""
    words = list(inst.json_args or [_unquote(w) for w in _raw_words(inst.args)])
    return [w for w in words[:-1] if _heredoc_word(w) is None]


def _is_context_source(source: str) -> bool:
    """A COPY/ADD source read from the build context (not a URL or git remote)."""
    return not re.match(r"^(?:https?|git|ssh)://|^git@", source)


# --------------------------------------------------------------------------------------------------
# Rules
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Step:
    """An instruction of the final image's chain, classified for the ordering rules."""

    stage: Stage
    inst: Instruction
    packages: tuple[PackageStep, ...]
    reads_context: bool

    @property
    def upgrades(self) -> bool:
        """Runs a full upgrade."""
        return any(p.action is PackageAction.UPGRADE for p in self.packages)

    @property
    def refreshes(self) -> bool:
        """Upgrades, or installs from lists updated earlier in the same RUN."""
        actions = [p.action for p in self.packages]
        if PackageAction.UPGRADE in actions:
            return True
        return PackageAction.UPDATE in actions and PackageAction.INSTALL in actions[actions.index(
            PackageAction.UPDATE):]


def lint(text: str, *, target: str | None = None) -> list[Finding]:
    """Lint Dockerfile text for the stage ``target`` (default: the last stage); sorted by line."""
    df = parse(text)
    final = _final_stage(df, target)
    chain = _chain(df, final)
    context = _Context(df)
    steps = [_Step(stage, inst, run_steps(inst) if inst.keyword == "RUN" else (), context.reads(stage, inst))
             for stage in chain for inst in stage.instructions]
    findings = [*_upgrade_order(steps, final), *_no_upgrade(steps, chain, final), *_apt_lists(df, chain)]
    return sorted(findings, key=lambda f: (f.line, f.rule))


def lint_file(path: str | Path, *, target: str | None = None) -> list[Finding]:
    """Read a Dockerfile and lint it; an unreadable file is a ConfigError (exit code 2)."""
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ConfigError(f"cannot read Dockerfile {str(path)!r}: {reason}") from exc
    return lint(text, target=target)


def _upgrade_order(steps: Sequence[_Step], final: Stage) -> Iterator[Finding]:
    """Rule 1: a refresh followed by a context-reading step that no full upgrade follows."""
    for i, step in enumerate(steps):
        if not step.refreshes or step.reads_context:
            continue
        j = next((j for j in range(i + 1, len(steps)) if steps[j].reads_context), None)
        if j is None or any(s.upgrades for s in steps[j:]):
            continue
        change = steps[j]
        what = "package upgrade" if step.upgrades else "package install from freshly updated lists"
        yield Finding(
            RULE_UPGRADE_BEFORE_CHANGES, step.inst.line, step.stage.label,
            f"the {what} at line {step.inst.line} ({_summary(step)}) sits above the {change.inst.keyword} "
            f"at line {change.inst.line}, which changes with the build context: the package layer stays "
            "cached as long as the lines above it do not change, so it ages for months while code "
            "changes rebuild only the steps below it",
            _final_stage_remedy(final, "Move the upgrade step below the last COPY/ADD"),
            "warning")


def _no_upgrade(steps: Sequence[_Step], chain: Sequence[Stage], final: Stage) -> Iterator[Finding]:
    """Rule 2: the final image's chain never runs a full upgrade (and is not FROM scratch)."""
    root = chain[0].base
    if root.lower() == "scratch" or any(s.upgrades for s in steps):
        return
    installs = [s.inst.line for s in steps if s.refreshes]
    note = (f" (line {', '.join(map(str, installs))} only installs named packages)" if installs else "")
    yield Finding(
        RULE_NO_UPGRADE, final.line, final.label,
        f"the image of stage {final.label} never upgrades its packages{note}: they are only as fresh "
        f"as the base image {root or '(unknown)'}",
        _final_stage_remedy(final, f"Add `{UPGRADE_RUN}` as the last step",
                            "or rely on `docker build --pull` of a base image that is rebuilt often"),
        "warning")


def _apt_lists(df: Dockerfile, chain: Sequence[Stage]) -> Iterator[Finding]:
    """Rules 3 and 4, per RUN that runs ``apt-get update``."""
    for stage in df.stages:
        for inst in stage.instructions:
            if inst.keyword != "RUN":
                continue
            actions = [p.action for p in run_steps(inst)]
            if PackageAction.UPDATE not in actions:
                continue
            first, last = actions.index(PackageAction.UPDATE), len(actions) - 1 - actions[::-1].index(
                PackageAction.UPDATE)
            if not {PackageAction.INSTALL, PackageAction.UPGRADE} & set(actions[first:]):
                yield _update_alone(stage, inst)
            elif stage in chain and PackageAction.CLEAN_LISTS not in actions[last:] and not _lists_mounted(inst):
                yield _lists_not_cleaned(stage, inst, PackageAction.CLEAN_CACHE in actions[last:])


def _update_alone(stage: Stage, inst: Instruction) -> Finding:
    """Rule 4's finding."""
    return Finding(
        RULE_UPDATE_ALONE, inst.line, stage.label,
        "`apt-get update` runs without an install or upgrade in the same RUN: Docker caches this layer, "
        "so a later `apt-get install` layer uses its stale lists (old versions, or 404 errors once the "
        "mirror has moved on)",
        "Combine update and install/upgrade in one RUN: `RUN apt-get update && apt-get install -y PACKAGE "
        "&& rm -rf /var/lib/apt/lists/*`",
        "error")


def _lists_not_cleaned(stage: Stage, inst: Instruction, cleans_cache: bool) -> Finding:
    """Rule 3's finding."""
    note = " (`apt-get clean` empties /var/cache/apt/archives, not the lists)" if cleans_cache else ""
    return Finding(
        RULE_LISTS_NOT_CLEANED, inst.line, stage.label,
        f"`apt-get update` leaves the package lists in {APT_LISTS} in this layer{note}: they add size and go "
        "stale inside the image",
        "End the same RUN with `&& rm -rf /var/lib/apt/lists/*` (or keep the lists out of the layer with "
        "`RUN --mount=type=cache,target=/var/lib/apt/lists ...`)",
        "warning")


def _lists_mounted(inst: Instruction) -> bool:
    """A cache, tmpfs or bind mount covers /var/lib/apt/lists, so the lists never reach the layer."""
    covering = {APT_LISTS, "/var/lib/apt", "/var/lib", "/var"}
    return any(m.type in ("cache", "tmpfs", "bind") and m.target in covering for m in _mounts(inst))


def _final_stage_remedy(final: Stage, first: str, *more: str) -> str:
    """The shared remedy text: the step last, a final upgrade stage, a scheduled rebuild (, more)."""
    name = final.name or "app"
    rename = "" if final.name else f" (name the stage first: `FROM {final.base} AS app`)"
    return "; ".join([
        first,
        (f"or add a final stage `FROM {name} AS final` + `{UPGRADE_RUN}`{rename} and let developers build "
         f"`--target {name}`"),
        "or rebuild on a schedule with `docker build --pull --no-cache`",
        *more])


def _summary(step: _Step) -> str:
    """The command that makes a step a refresh (its upgrade, else its install), shortened."""
    wanted = PackageAction.UPGRADE if step.upgrades else PackageAction.INSTALL
    text = next(p.command for p in step.packages if p.action is wanted)
    return f"`{text}`" if len(text) <= 60 else f"`{text[:57]}...`"
