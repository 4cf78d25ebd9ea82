"""driftwatch.toml: which images to watch and their thresholds. Read with tomllib, validated here.

    [defaults]
    max_security_pending = 0        # like check_apt: any pending security update is a breach
    max_security_age_days = 7

    [[images]]
    reference = "myorg/api:latest"
    max_security_pending = 3

    [[images]]
    pattern = "myorg/*"             # fnmatch over local tags (scan) and recorded references (check)

Unknown keys, wrong types and bad patterns raise ConfigError naming the key (and a suggestion).
"""

from __future__ import annotations

import difflib
import fnmatch
import re
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from .classify import OriginPatternError, compile_patterns
from .errors import ConfigError
from .notify.interface import AlertKind, TargetType

DEFAULT_PATH = Path("driftwatch.toml")


@dataclass(frozen=True, slots=True)
class Thresholds:
    """Limits; None means no limit. A value equal to the limit passes; above it breaches."""

    max_security_pending: int | None = None
    max_total_pending: int | None = None
    max_security_age_days: float | None = None
    max_apt_layer_age_days: float | None = None


#: Used where the config says nothing: check_apt's rule (any security update pending is critical).
BUILTIN_DEFAULTS = Thresholds(max_security_pending=0)
THRESHOLD_KEYS = tuple(f.name for f in fields(Thresholds))


@dataclass(frozen=True, slots=True)
class DockerRebuild:
    """``[images.rebuild] type = "docker"``: `docker build` through the SDK, then re-tag and re-scan."""

    context: Path
    dockerfile: str | None = None
    target: str | None = None
    build_args: Mapping[str, str] = field(default_factory=dict)
    tags: tuple[str, ...] = ()  # empty: the image's own reference
    pull: bool = True
    no_cache: bool = True
    network: str | None = None  # build network mode, e.g. "host" for a mirror on loopback


@dataclass(frozen=True, slots=True)
class WebhookRebuild:
    """``[images.rebuild] type = "webhook"``: ask CI to rebuild. Secrets come from the environment."""

    url_env: str
    token_env: str | None = None
    method: str = "POST"
    token_header: str = "Authorization"
    token_prefix: str = "Bearer "
    body: Mapping[str, Any] = field(default_factory=dict)


RebuildSpec = DockerRebuild | WebhookRebuild


@dataclass(frozen=True, slots=True)
class RebuildSettings:
    """``[rebuild]``: guard rails for every rebuild."""

    cooldown_hours: float = 24.0
    max_concurrent: int = 1


@dataclass(frozen=True, slots=True)
class ImageRule:
    """One ``[[images]]`` table: an exact reference or a glob pattern, with its overrides."""

    reference: str | None
    pattern: str | None
    overrides: Mapping[str, Any] = field(default_factory=dict)
    rebuild: RebuildSpec | None = None

    def matches(self, reference: str) -> bool:
        """Does this rule cover the reference?"""
        if self.reference is not None:
            return reference == self.reference
        return fnmatch.fnmatchcase(reference, self.pattern or "")


@dataclass(frozen=True, slots=True)
class ScanSettings:
    """``[scan]``: defaults for the scan command; CLI flags and env vars win."""

    timeout: float | None = None
    network: str | None = None
    security_origins: tuple[str, ...] = ()  # unattended-upgrades Origins-Pattern syntax, for mirrors


#: Every kind of alert a target can subscribe to; ``test`` alerts go to any target that is asked.
ALERT_KINDS = tuple(k.value for k in AlertKind if k is not AlertKind.TEST)
TARGET_TYPES = tuple(t.value for t in TargetType)


@dataclass(frozen=True, slots=True)
class NotifyTarget:
    """One ``[[notify]]`` table: a chat webhook, which images and which kinds of alert it wants.

    ``url_env`` is the *name* of the environment variable that holds the webhook URL: the URL is a
    credential and never lives in the file (nor in the database, logs or errors).
    """

    name: str
    type: str  # a TargetType value
    url_env: str
    images: tuple[str, ...] = ("*",)  # fnmatch patterns over image references
    kinds: tuple[str, ...] = ALERT_KINDS
    reminder_hours: float | None = None  # None: no reminders while a breach persists
    max_attempts: int = 10  # HTTP requests per alert, over all runs, before it is dead-lettered

    def covers(self, reference: str) -> bool:
        """Does this target want alerts about the reference?"""
        return any(fnmatch.fnmatchcase(reference, p) for p in self.images)

    def wants(self, kind: str) -> bool:
        """Does this target want alerts of this kind? (``test`` always.)"""
        return kind == AlertKind.TEST.value or kind in self.kinds


@dataclass(frozen=True, slots=True)
class Settings:
    """The whole configuration."""

    defaults: Thresholds = BUILTIN_DEFAULTS
    images: tuple[ImageRule, ...] = ()
    scan: ScanSettings = ScanSettings()
    rebuild: RebuildSettings = RebuildSettings()
    path: Path | None = None
    notify: tuple[NotifyTarget, ...] = ()

    def rule_for(self, reference: str) -> ImageRule | None:
        """The first exact rule for the reference, else the first matching pattern."""
        exact = [r for r in self.images if r.reference is not None and r.matches(reference)]
        pattern = [r for r in self.images if r.pattern is not None and r.matches(reference)]
        return next(iter(exact or pattern), None)

    def thresholds_for(self, reference: str) -> Thresholds:
        """Defaults, overridden by the rule for the reference."""
        rule = self.rule_for(reference)
        return replace(self.defaults, **rule.overrides) if rule else self.defaults

    def rebuild_for(self, reference: str) -> RebuildSpec | None:
        """How to rebuild the reference, when configured."""
        rule = self.rule_for(reference)
        return rule.rebuild if rule else None

    def select(self, candidates: Iterable[str]) -> list[str]:
        """Configured references plus candidates matched by a pattern, in a stable order."""
        chosen = {r.reference: None for r in self.images if r.reference is not None}
        for name in sorted(set(candidates)):
            if any(r.pattern is not None and r.matches(name) for r in self.images):
                chosen.setdefault(name, None)
        return list(chosen)

    def notify_target(self, name: str) -> NotifyTarget:
        """The ``[[notify]]`` target called ``name``; ConfigError (with a suggestion) when none is."""
        for target in self.notify:
            if target.name == name:
                return target
        names = [t.name for t in self.notify]
        close = difflib.get_close_matches(name, names, n=1)
        hint = f"; did you mean {close[0]}?" if close else (
            f"; configured: {', '.join(names)}" if names else "; no [[notify]] targets are configured")
        raise ConfigError(f"no notify target named {name!r}{hint}")

    @property
    def has_patterns(self) -> bool:
        """True when some rule needs the list of local tags to resolve."""
        return any(r.pattern is not None for r in self.images)


# A reference is [registry/]path[:tag][@digest]; a pattern may add glob characters.
_PATTERN_CHARS = re.compile(r"^[A-Za-z0-9._/:@\-*?\[\]!]+$")


def _fail(where: str, key: str, message: str) -> ConfigError:
    return ConfigError(f"{where}: {key}: {message}")


def _unknown(where: str, key: str, known: Iterable[str]) -> ConfigError:
    close = difflib.get_close_matches(key, list(known), n=1)
    hint = f"; did you mean {close[0]}?" if close else f"; known keys: {', '.join(sorted(known))}"
    return _fail(where, key, f"unknown key{hint}")


def _threshold(where: str, key: str, value: Any) -> int | float:
    integral = key in ("max_security_pending", "max_total_pending")
    ok_types = (int,) if integral else (int, float)
    if isinstance(value, bool) or not isinstance(value, ok_types):
        kind = "a whole number" if integral else "a number of days"
        raise _fail(where, key, f"must be {kind}, got {type(value).__name__} {value!r}")
    if value < 0:
        raise _fail(where, key, f"must not be negative, got {value!r}")
    return value


def _thresholds(where: str, table: Mapping[str, Any], allowed: Iterable[str]) -> dict[str, Any]:
    allowed = set(allowed)
    out: dict[str, Any] = {}
    for key, value in table.items():
        if key not in allowed:
            raise _unknown(where, key, allowed)
        if key in THRESHOLD_KEYS:
            out[key] = _threshold(where, key, value)
    return out


def _string(where: str, key: str, value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise _fail(where, key, f"must be a non-empty string, got {value!r}")
    return value


_DOCKER_KEYS = ("type", "context", "dockerfile", "target", "build_args", "tags", "pull", "no_cache", "network")
_WEBHOOK_KEYS = ("type", "url_env", "token_env", "method", "token_header", "token_prefix", "body")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _bool(where: str, key: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise _fail(where, key, f"must be true or false, got {value!r}")
    return value


def _rebuild(where: str, table: Any, base: Path) -> RebuildSpec:
    if not isinstance(table, dict):
        raise ConfigError(f"{where}: must be a table ([images.rebuild])")
    kind = table.get("type")
    if kind not in ("docker", "webhook"):
        raise _fail(where, "type", f"must be \"docker\" or \"webhook\", got {kind!r}")
    allowed = _DOCKER_KEYS if kind == "docker" else _WEBHOOK_KEYS
    for key in table:
        if key not in allowed:
            raise _unknown(where, key, allowed)
    if kind == "webhook":
        for key in ("url_env", "token_env"):
            if key in table and not (isinstance(table[key], str) and _ENV_NAME.match(table[key])):
                # The value is not echoed: it may be the secret itself, pasted by mistake.
                raise _fail(where, key, "must name an environment variable, e.g. API_REBUILD_URL "
                                        "(secrets never live in the file)")
        if "url_env" not in table:
            raise _fail(where, "url_env", "is required: the name of the variable that holds the URL")
        body = table.get("body", {})
        if not isinstance(body, dict):
            raise _fail(where, "body", "must be a table")
        method = _string(where, "method", table.get("method", "POST")).upper()
        if method not in ("POST", "PUT"):
            raise _fail(where, "method", f"must be POST or PUT, got {method!r}")
        return WebhookRebuild(table["url_env"], table.get("token_env"), method,
                              _text(where, "token_header", table.get("token_header", "Authorization")),
                              _text(where, "token_prefix", table.get("token_prefix", "Bearer ")), body)
    if "context" not in table:
        raise _fail(where, "context", "is required: the build context directory")
    context = Path(_string(where, "context", table["context"]))
    args = table.get("build_args", {})
    if not isinstance(args, dict) or not all(isinstance(v, str) for v in args.values()):
        raise _fail(where, "build_args", "must be a table of strings")
    tags = table.get("tags", [])
    if not isinstance(tags, list) or not all(isinstance(t, str) and _PATTERN_CHARS.match(t) for t in tags):
        raise _fail(where, "tags", "must be a list of image references")
    return DockerRebuild(
        context=context if context.is_absolute() else base / context,
        dockerfile=_string(where, "dockerfile", table["dockerfile"]) if "dockerfile" in table else None,
        target=_string(where, "target", table["target"]) if "target" in table else None,
        build_args=dict(args), tags=tuple(tags),
        pull=_bool(where, "pull", table.get("pull", True)),
        no_cache=_bool(where, "no_cache", table.get("no_cache", True)),
        network=_string(where, "network", table["network"]) if "network" in table else None,
    )


def _rebuild_settings(where: str, table: Any) -> RebuildSettings:
    if not isinstance(table, dict):
        raise ConfigError(f"{where}: must be a table")
    for key in table:
        if key not in ("cooldown_hours", "max_concurrent"):
            raise _unknown(where, key, ("cooldown_hours", "max_concurrent"))
    cooldown = table.get("cooldown_hours", 24.0)
    if isinstance(cooldown, bool) or not isinstance(cooldown, (int, float)) or cooldown < 0:
        raise _fail(where, "cooldown_hours", f"must be a number of hours >= 0, got {cooldown!r}")
    jobs = table.get("max_concurrent", 1)
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise _fail(where, "max_concurrent", f"must be a whole number >= 1, got {jobs!r}")
    return RebuildSettings(float(cooldown), jobs)


def _text(where: str, key: str, value: Any) -> str:
    if not isinstance(value, str):
        raise _fail(where, key, f"must be a string, got {value!r}")
    return value


def _image_rule(where: str, table: Any, base: Path) -> ImageRule:
    if not isinstance(table, dict):
        raise ConfigError(f"{where}: must be a table ([[images]])")
    rebuild = _rebuild(f"{where}.rebuild", table["rebuild"], base) if "rebuild" in table else None
    overrides = _thresholds(where, table, (*THRESHOLD_KEYS, "reference", "pattern", "rebuild"))
    has_ref, has_pat = "reference" in table, "pattern" in table
    if has_ref == has_pat:
        raise ConfigError(f"{where}: needs exactly one of reference or pattern")
    if has_ref:
        ref = _string(where, "reference", table["reference"])
        if any(c in ref for c in "*?[") or not _PATTERN_CHARS.match(ref):
            raise _fail(where, "reference", f"{ref!r} is not an image reference (use pattern = ... for globs)")
        return ImageRule(ref, None, overrides, rebuild)
    pattern = _string(where, "pattern", table["pattern"])
    if not _PATTERN_CHARS.match(pattern) or pattern.count("[") != pattern.count("]"):
        raise _fail(where, "pattern", f"{pattern!r} is not a valid glob over image references")
    return ImageRule(None, pattern, overrides, rebuild)


def _scan_settings(where: str, table: Any) -> ScanSettings:
    if not isinstance(table, dict):
        raise ConfigError(f"{where}: must be a table")
    known = ("timeout", "network", "security_origins")
    for key in table:
        if key not in known:
            raise _unknown(where, key, known)
    timeout = table.get("timeout")
    if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, (int, float))
                                or not 1 <= timeout <= 86400):  # (nan is not in any range)
        raise _fail(where, "timeout", f"must be a number of seconds from 1 to 86400, got {timeout!r}")
    network = _string(where, "network", table["network"]) if "network" in table else None
    origins = table.get("security_origins", [])
    if not isinstance(origins, list) or not all(isinstance(o, str) for o in origins):
        raise _fail(where, "security_origins",
                    "must be a list of origin patterns such as \"o=Debian,l=Debian-Security\"")
    try:
        compile_patterns(origins)
    except OriginPatternError as exc:
        raise _fail(where, "security_origins", str(exc)) from exc
    return ScanSettings(float(timeout) if timeout is not None else None, network, tuple(origins))


_NOTIFY_KEYS = ("name", "type", "url_env", "images", "kinds", "reminder_hours", "max_attempts")


def _strings(where: str, key: str, value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not value or not all(isinstance(v, str) and v.strip() for v in value):
        raise _fail(where, key, f"must be a non-empty list of strings, got {value!r}")
    return tuple(value)


def _notify_target(where: str, table: Any) -> NotifyTarget:
    if not isinstance(table, dict):
        raise ConfigError(f"{where}: must be a table ([[notify]])")
    for key in table:
        if key not in _NOTIFY_KEYS:
            raise _unknown(where, key, _NOTIFY_KEYS)
    for key in ("name", "type", "url_env"):
        if key not in table:
            raise _fail(where, key, "is required")
    name = _string(where, "name", table["name"])
    kind = table["type"]
    if kind not in TARGET_TYPES:
        close = difflib.get_close_matches(str(kind), TARGET_TYPES, n=1)
        hint = f"; did you mean {close[0]}?" if close else f"; one of {', '.join(TARGET_TYPES)}"
        raise _fail(where, "type", f"unknown type {kind!r}{hint}")
    url_env = table["url_env"]
    if not isinstance(url_env, str) or not _ENV_NAME.match(url_env):
        # Never echo the value: whoever got this wrong may have pasted the webhook URL itself.
        raise _fail(where, "url_env", "must be the NAME of an environment variable that holds the webhook URL, "
                                      "e.g. \"SLACK_WEBHOOK_URL\" (secrets never live in the file)")
    images = _strings(where, "images", table["images"]) if "images" in table else ("*",)
    for pattern in images:
        if not _PATTERN_CHARS.match(pattern) or pattern.count("[") != pattern.count("]"):
            raise _fail(where, "images", f"{pattern!r} is not a valid glob over image references")
    kinds = _strings(where, "kinds", table["kinds"]) if "kinds" in table else ALERT_KINDS
    for alert_kind in kinds:
        if alert_kind not in ALERT_KINDS:
            close = difflib.get_close_matches(alert_kind, ALERT_KINDS, n=1)
            hint = f"; did you mean {close[0]}?" if close else f"; one of {', '.join(ALERT_KINDS)}"
            raise _fail(where, "kinds", f"unknown kind {alert_kind!r}{hint}")
    hours = table.get("reminder_hours")
    if hours is not None and (isinstance(hours, bool) or not isinstance(hours, (int, float)) or not hours > 0):
        raise _fail(where, "reminder_hours", f"must be a number of hours > 0, got {hours!r}")
    attempts = table.get("max_attempts", 10)
    if isinstance(attempts, bool) or not isinstance(attempts, int) or attempts < 1:
        raise _fail(where, "max_attempts", f"must be a whole number >= 1, got {attempts!r}")
    return NotifyTarget(name, kind, url_env, images, tuple(dict.fromkeys(kinds)),
                        float(hours) if hours is not None else None, attempts)


def _notify_targets(where: str, value: Any) -> tuple[NotifyTarget, ...]:
    if not isinstance(value, list):
        raise ConfigError(f"{where}: must be an array of tables ([[notify]])")
    targets = tuple(_notify_target(f"{where}[{i}]", t) for i, t in enumerate(value))
    seen: set[str] = set()
    for i, target in enumerate(targets):
        if target.name in seen:
            raise _fail(f"{where}[{i}]", "name", f"{target.name!r} is used by another [[notify]] target; "
                                                  "names must be unique")
        seen.add(target.name)
    return targets


TOP_LEVEL = ("defaults", "images", "scan", "rebuild", "notify")


def parse(data: Mapping[str, Any], path: Path | None = None) -> Settings:
    """Validate a parsed TOML document."""
    name = str(path) if path else "config"
    for key in data:
        if key not in TOP_LEVEL:
            raise _unknown(name, key, TOP_LEVEL)
    defaults_table = data.get("defaults", {})
    if not isinstance(defaults_table, dict):
        raise ConfigError(f"{name}: defaults: must be a table ([defaults])")
    defaults = replace(BUILTIN_DEFAULTS, **_thresholds(f"{name}: defaults", defaults_table, THRESHOLD_KEYS))
    images_list = data.get("images", [])
    if not isinstance(images_list, list):
        raise ConfigError(f"{name}: images: must be an array of tables ([[images]])")
    base = path.parent if path else Path.cwd()
    images = tuple(_image_rule(f"{name}: images[{i}]", t, base) for i, t in enumerate(images_list))
    scan = _scan_settings(f"{name}: scan", data["scan"]) if "scan" in data else ScanSettings()
    rebuild = _rebuild_settings(f"{name}: rebuild", data["rebuild"]) if "rebuild" in data else RebuildSettings()
    notify = _notify_targets(f"{name}: notify", data["notify"]) if "notify" in data else ()
    return Settings(defaults, images, scan, rebuild, path, notify=notify)


def load(path: Path | None) -> Settings:
    """Load ``path``; with None, ``./driftwatch.toml`` when present, else the built-in defaults."""
    explicit = path is not None
    path = path or DEFAULT_PATH
    if not path.exists():
        if explicit:
            raise ConfigError(f"config file {path} does not exist")
        return Settings()
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot be read: {exc}") from exc
    return parse(data, path)
