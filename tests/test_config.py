"""driftwatch.toml: parsing, rule precedence, and errors that name the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from driftwatch import config
from driftwatch.config import BUILTIN_DEFAULTS, Thresholds
from driftwatch.errors import ConfigError

EXAMPLE = """
[defaults]
max_security_pending = 0
max_security_age_days = 7

[[images]]
reference = "myorg/api:latest"
max_security_pending = 3

[[images]]
pattern = "myorg/*"
max_apt_layer_age_days = 30.5

[scan]
timeout = 300
network = "host"
"""


def test_example_file(tmp_path: Path) -> None:
    path = tmp_path / "driftwatch.toml"
    path.write_text(EXAMPLE)
    s = config.load(path)
    assert s.thresholds_for("myorg/api:latest") == Thresholds(3, None, 7, None)  # exact rule wins
    assert s.thresholds_for("myorg/worker:2") == Thresholds(0, None, 7, 30.5)
    assert s.thresholds_for("other:1") == Thresholds(0, None, 7, None)
    assert s.select(["other:1", "myorg/worker:2", "myorg/api:latest"]) == ["myorg/api:latest", "myorg/worker:2"]
    assert (s.scan.timeout, s.scan.network) == (300.0, "host")


def test_no_file_means_builtin_defaults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert config.load(None).defaults == BUILTIN_DEFAULTS == Thresholds(max_security_pending=0)
    with pytest.raises(ConfigError, match="config file .*missing.toml does not exist"):
        config.load(tmp_path / "missing.toml")


@pytest.mark.parametrize(("doc", "message"), [
    ({"defualts": {}}, "config: defualts: unknown key; did you mean defaults?"),
    ({"defaults": {"max_security_pendng": 1}},
     "config: defaults: max_security_pendng: unknown key; did you mean max_security_pending?"),
    ({"defaults": {"max_security_pending": "3"}},
     "config: defaults: max_security_pending: must be a whole number, got str '3'"),
    ({"defaults": {"max_security_pending": 1.5}},
     "config: defaults: max_security_pending: must be a whole number, got float 1.5"),
    ({"defaults": {"max_security_age_days": True}},
     "config: defaults: max_security_age_days: must be a number of days, got bool True"),
    ({"defaults": {"max_total_pending": -1}}, "config: defaults: max_total_pending: must not be negative, got -1"),
    ({"images": [{"reference": "a:1", "pattern": "a*"}]}, "config: images[0]: needs exactly one of reference or pattern"),
    ({"images": [{"max_total_pending": 1}]}, "config: images[0]: needs exactly one of reference or pattern"),
    ({"images": [{"pattern": "myorg/[ab"}]}, "config: images[0]: pattern: 'myorg/[ab' is not a valid glob over image references"),
    ({"images": [{"pattern": "my org/*"}]}, "config: images[0]: pattern: 'my org/*' is not a valid glob over image references"),
    ({"images": [{"reference": "myorg/*"}]},
     "config: images[0]: reference: 'myorg/*' is not an image reference (use pattern = ... for globs)"),
    ({"images": [{"reference": "a:1", "max_securty_age_days": 1}]},
     "config: images[0]: max_securty_age_days: unknown key; did you mean max_security_age_days?"),
    ({"images": {"reference": "a"}}, "config: images: must be an array of tables ([[images]])"),
    ({"scan": {"timeout": 0}}, "config: scan: timeout: must be a number of seconds from 1 to 86400, got 0"),
    ({"scan": {"timeout": float("nan")}}, "config: scan: timeout: must be a number of seconds from 1 to 86400, got nan"),
    ({"scan": {"timeout": float("inf")}}, "config: scan: timeout: must be a number of seconds from 1 to 86400, got inf"),
    ({"scan": {"netwrok": "host"}}, "config: scan: netwrok: unknown key; did you mean network?"),
])
def test_errors_name_the_key(doc: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError) as err:
        config.parse(doc)
    assert str(err.value) == message


def test_invalid_toml_is_one_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text("[defaults\nmax = 1\n")
    with pytest.raises(ConfigError, match=r"bad.toml: not valid TOML: "):
        config.load(path)


NOTIFY_EXAMPLE = """
[[notify]]
name = "ops-slack"
type = "slack"
url_env = "SLACK_WEBHOOK_URL"

[[notify]]
name = "api-team"
type = "teams"
url_env = "TEAMS_WEBHOOK_URL"
images = ["myorg/api:*", "myorg/worker:*"]
kinds = ["breach", "recovered"]
reminder_hours = 72
max_attempts = 20
"""


def test_notify_targets(tmp_path: Path) -> None:
    path = tmp_path / "driftwatch.toml"
    path.write_text(NOTIFY_EXAMPLE)
    s = config.load(path)
    slack, teams = s.notify
    assert slack == config.NotifyTarget("ops-slack", "slack", "SLACK_WEBHOOK_URL")
    assert (slack.images, slack.kinds, slack.reminder_hours, slack.max_attempts) == (
        ("*",), ("breach", "worsened", "reminder", "recovered", "failed", "eol"), None, 10)
    assert teams == config.NotifyTarget("api-team", "teams", "TEAMS_WEBHOOK_URL", ("myorg/api:*", "myorg/worker:*"),
                                        ("breach", "recovered"), 72.0, 20)
    assert teams.covers("myorg/api:latest") and not teams.covers("other:1") and slack.covers("other:1")
    assert teams.wants("breach") and not teams.wants("worsened") and teams.wants("test")
    assert s.notify_target("api-team") is teams
    with pytest.raises(ConfigError, match=r"^no notify target named 'ops-slak'; did you mean ops-slack\?$"):
        s.notify_target("ops-slak")


HOOK = {"name": "ops", "type": "slack", "url_env": "HOOK"}


@pytest.mark.parametrize(("table", "message"), [
    ({**HOOK, "type": "slak"}, "config: notify[0]: type: unknown type 'slak'; did you mean slack?"),
    ({**HOOK, "type": "irc"},
     "config: notify[0]: type: unknown type 'irc'; one of slack, teams, discord, mattermost, googlechat, generic"),
    ({**HOOK, "url": "https://hooks.slack.com/x"}, "config: notify[0]: url: unknown key; did you mean url_env?"),
    ({"name": "ops", "type": "slack"}, "config: notify[0]: url_env: is required"),
    ({"type": "slack", "url_env": "HOOK"}, "config: notify[0]: name: is required"),
    ({**HOOK, "name": " "}, "config: notify[0]: name: must be a non-empty string, got ' '"),
    ({**HOOK, "kinds": ["breach", "worsen"]}, "config: notify[0]: kinds: unknown kind 'worsen'; did you mean worsened?"),
    ({**HOOK, "kinds": []}, "config: notify[0]: kinds: must be a non-empty list of strings, got []"),
    ({**HOOK, "images": "myorg/*"}, "config: notify[0]: images: must be a non-empty list of strings, got 'myorg/*'"),
    ({**HOOK, "images": ["my org/*"]}, "config: notify[0]: images: 'my org/*' is not a valid glob over image references"),
    ({**HOOK, "reminder_hours": 0}, "config: notify[0]: reminder_hours: must be a number of hours > 0, got 0"),
    ({**HOOK, "max_attempts": 0}, "config: notify[0]: max_attempts: must be a whole number >= 1, got 0"),
    ({**HOOK, "max_attempts": 2.5}, "config: notify[0]: max_attempts: must be a whole number >= 1, got 2.5"),
])
def test_notify_errors_name_the_key(table: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError) as err:
        config.parse({"notify": [table]})
    assert str(err.value) == message


def test_notify_url_env_must_be_a_variable_name_and_is_never_echoed() -> None:
    secret = "https://hooks.slack.com/services/T000/B000/XXXXSECRET"
    with pytest.raises(ConfigError) as err:
        config.parse({"notify": [{**HOOK, "url_env": secret}]})
    assert str(err.value) == (
        'config: notify[0]: url_env: must be the NAME of an environment variable that holds the webhook URL, '
        'e.g. "SLACK_WEBHOOK_URL" (secrets never live in the file)')
    assert "XXXXSECRET" not in str(err.value)


def test_notify_names_are_unique_and_notify_is_an_array() -> None:
    with pytest.raises(ConfigError, match=r"^config: notify\[1\]: name: 'ops' is used by another \[\[notify\]\] "
                                          r"target; names must be unique$"):
        config.parse({"notify": [HOOK, {**HOOK, "type": "discord"}]})
    with pytest.raises(ConfigError, match=r"^config: notify: must be an array of tables \(\[\[notify\]\]\)$"):
        config.parse({"notify": HOOK})
    assert config.parse({}).notify == ()


def test_rebuild_tables() -> None:
    s = config.parse({"images": [
        {"reference": "a:1", "rebuild": {"type": "docker", "context": "/srv/a", "target": "final", "pull": False,
                                         "build_args": {"X": "1"}, "tags": ["a:1", "a:latest"], "network": "host"}},
        {"reference": "b:1", "rebuild": {"type": "webhook", "url_env": "B_URL", "token_env": "B_TOKEN",
                                         "body": {"ref": "main"}}},
    ], "rebuild": {"cooldown_hours": 6, "max_concurrent": 2}})
    a, b = s.rebuild_for("a:1"), s.rebuild_for("b:1")
    assert isinstance(a, config.DockerRebuild) and a.context == Path("/srv/a") and a.pull is False
    assert (a.target, dict(a.build_args), a.tags, a.no_cache, a.network) == ("final", {"X": "1"}, ("a:1", "a:latest"),
                                                                            True, "host")
    assert isinstance(b, config.WebhookRebuild) and (b.url_env, b.token_env, b.method) == ("B_URL", "B_TOKEN", "POST")
    assert (s.rebuild.cooldown_hours, s.rebuild.max_concurrent) == (6.0, 2)
    assert s.rebuild_for("c:1") is None


@pytest.mark.parametrize(("rebuild", "message"), [
    ({"type": "dokcer"}, "config: images[0].rebuild: type: must be \"docker\" or \"webhook\", got 'dokcer'"),
    ({"type": "docker"}, "config: images[0].rebuild: context: is required: the build context directory"),
    ({"type": "docker", "context": ".", "no_cahce": True},
     "config: images[0].rebuild: no_cahce: unknown key; did you mean no_cache?"),
    ({"type": "docker", "context": ".", "pull": "yes"}, "config: images[0].rebuild: pull: must be true or false, got 'yes'"),
    ({"type": "webhook"}, "config: images[0].rebuild: url_env: is required: the name of the variable that holds the URL"),
    ({"type": "webhook", "url_env": "https://hooks.example/T0/SECRET"},
     "config: images[0].rebuild: url_env: must name an environment variable, e.g. API_REBUILD_URL "
     "(secrets never live in the file)"),
])
def test_rebuild_errors_name_the_key_and_never_echo_secrets(rebuild: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError) as err:
        config.parse({"images": [{"reference": "a:1", "rebuild": rebuild}]})
    assert str(err.value) == message
    assert "SECRET" not in str(err.value)


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "1e12"])
def test_a_timeout_that_is_no_number_of_seconds_is_a_usage_error(value: str) -> None:
    from click.testing import CliRunner

    from driftwatch.cli import main

    result = CliRunner().invoke(main, ["scan", "--timeout", value, "x:1"])
    assert result.exit_code == 2 and "Invalid value for '--timeout'" in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
