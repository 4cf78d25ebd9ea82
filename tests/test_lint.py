"""driftwatch.lint: the Dockerfile parser, the shell command detection, and the four rules.

Fixture tests read fixtures/dockerfiles/ and assert the exact (rule, line, stage) of every finding.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from driftwatch.errors import ConfigError
from driftwatch.lint import (
    RULE_LISTS_NOT_CLEANED,
    RULE_NO_UPGRADE,
    RULE_UPDATE_ALONE,
    RULE_UPGRADE_BEFORE_CHANGES,
    Finding,
    PackageAction,
    argv_steps,
    lint,
    lint_file,
    package_steps,
    parse,
    run_steps,
)

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "dockerfiles"

UPDATE, UPGRADE, INSTALL = PackageAction.UPDATE, PackageAction.UPGRADE, PackageAction.INSTALL
CLEAN, CACHE = PackageAction.CLEAN_LISTS, PackageAction.CLEAN_CACHE


def dockerfile(name: str) -> Path:
    """A fixture Dockerfile; fails loudly when it is missing."""
    path = FIXTURES / name
    assert path.is_file(), f"missing fixture {path}"
    return path


def found(findings: list[Finding]) -> list[tuple[str, int, str]]:
    """The part of each finding the tests pin exactly."""
    return [(f.rule, f.line, f.stage) for f in findings]


def lint_text(text: str, target: str | None = None) -> list[tuple[str, int, str]]:
    """Lint inline text; the leading newline of a triple-quoted string is dropped."""
    return found(lint(text.removeprefix("\n"), target=target))


# --- the fixtures ------------------------------------------------------------------------------


def test_upgrade_then_copy() -> None:
    assert found(lint_file(dockerfile("upgrade-then-copy.Dockerfile"))) == [
        (RULE_UPGRADE_BEFORE_CHANGES, 4, "0")]


def test_copy_then_upgrade_is_clean() -> None:
    assert lint_file(dockerfile("copy-then-upgrade.Dockerfile")) == []


def test_no_upgrade() -> None:
    assert found(lint_file(dockerfile("no-upgrade.Dockerfile"))) == [(RULE_NO_UPGRADE, 1, "0")]


def test_multistage_final_upgrade_is_clean_for_the_final_stage() -> None:
    assert lint_file(dockerfile("multistage-final-upgrade.Dockerfile")) == []
    assert lint_file(dockerfile("multistage-final-upgrade.Dockerfile"), target="final") == []


def test_multistage_final_upgrade_target_app_never_upgrades() -> None:
    findings = lint_file(dockerfile("multistage-final-upgrade.Dockerfile"), target="app")
    assert found(findings) == [(RULE_NO_UPGRADE, 2, "app")]
    assert "FROM app AS final" in findings[0].remedy


def test_lists_not_cleaned() -> None:
    findings = lint_file(dockerfile("lists-not-cleaned.Dockerfile"))
    assert found(findings) == [(RULE_LISTS_NOT_CLEANED, 5, "0")]
    assert "`apt-get clean` empties /var/cache/apt/archives, not the lists" in findings[0].message


def test_update_alone() -> None:
    # The update-alone RUN is not also "lists not cleaned": cleaning there would break line 3's install.
    assert found(lint_file(dockerfile("update-alone.Dockerfile"))) == [
        (RULE_NO_UPGRADE, 1, "0"), (RULE_UPDATE_ALONE, 2, "0")]


def test_heredoc() -> None:
    # Line 3's `RUN <<EOF` body is the script; `COPY <<EOF` reads no context; line 14's
    # `cat <<'EOF' > file` body is data, so it is not an upgrade after the COPY at line 12.
    assert found(lint_file(dockerfile("heredoc.Dockerfile"))) == [
        (RULE_LISTS_NOT_CLEANED, 3, "0"), (RULE_UPGRADE_BEFORE_CHANGES, 3, "0")]


def test_escape_backtick() -> None:
    # Line 5 ends in a literal backslash; the RUN starts on line 6 and continues with backticks.
    findings = lint_file(dockerfile("escape-backtick.Dockerfile"))
    assert found(findings) == [(RULE_UPGRADE_BEFORE_CHANGES, 6, "0")]
    assert "COPY at line 11" in findings[0].message


def test_every_fixture_is_listed_in_the_readme() -> None:
    readme = dockerfile("README.md").read_text()
    for path in FIXTURES.glob("*.Dockerfile"):
        assert f"`{path.name}`" in readme


# --- command detection -------------------------------------------------------------------------

# `echo "apt-get upgrade"` and other mentions inside strings are deliberately *not* commands:
# only command words count (nested `sh -c` scripts and shell heredocs are analysed as scripts).
COMMANDS = [
    ("apt-get update", [UPDATE]),
    ("apt update && apt upgrade -y", [UPDATE, UPGRADE]),
    ("apt-get -y dist-upgrade", [UPGRADE]),
    ("apt full-upgrade -y", [UPGRADE]),
    ("DEBIAN_FRONTEND=noninteractive apt-get -qq -y upgrade", [UPGRADE]),
    ("export DEBIAN_FRONTEND=noninteractive; apt-get update", [UPDATE]),
    ("apt-get -o Acquire::Retries=3 update", [UPDATE]),
    ("apt-get -oAcquire::Retries=3 --option=APT::Get::Assume-Yes=true upgrade", [UPGRADE]),
    ("apt-get -t bookworm-backports install -y foo", [INSTALL]),
    ("apt-get install -y --no-install-recommends curl", [INSTALL]),
    ("sudo apt-get update && sudo -E apt-get upgrade -y", [UPDATE, UPGRADE]),
    ("sudo -u root -- env DEBIAN_FRONTEND=noninteractive /usr/bin/apt-get -y upgrade", [UPGRADE]),
    ("apt-get update; apt-get -y upgrade || true", [UPDATE, UPGRADE]),
    ("apt-get update\napt-get upgrade -y", [UPDATE, UPGRADE]),
    ("apt-get update 2>&1 | tee /tmp/log && apt-get -y upgrade >/dev/null", [UPDATE, UPGRADE]),
    ("set -eux; if true; then apt-get update; fi", [UPDATE]),
    ("for p in a b; do apt-get install -y $p; done", [INSTALL]),
    ("xargs -r apt-get install -y < /tmp/packages.txt", [INSTALL]),
    ("apt-get update && \\\n    apt-get install -y foo", [UPDATE, INSTALL]),
    ("sh -c 'apt-get update && apt-get -y upgrade'", [UPDATE, UPGRADE]),
    ('bash -euo pipefail -c "apt-get update && apt-get -y upgrade"', [UPDATE, UPGRADE]),
    ("bash <<EOF\napt-get update\napt-get -y upgrade\nEOF\n", [UPDATE, UPGRADE]),
    ("rm -rf /var/lib/apt/lists/*", [CLEAN]),
    ("rm -rf /var/lib/apt/lists", [CLEAN]),
    ('rm -rf -- "/var/lib/apt/lists/"*', [CLEAN]),
    ("apt-get distclean", [CLEAN]),
    ("apt-get clean", [CACHE]),
    ("apk upgrade --no-cache", [UPGRADE]),
    ("dnf -y upgrade && dnf clean all", [UPGRADE]),
    ("yum update -y", [UPGRADE]),
    ("zypper --non-interactive up", [UPGRADE]),
    # negatives
    ("pip install --upgrade pip", []),
    ("python3 -m pip install -U --upgrade-strategy eager -r requirements.txt", []),
    ("npm update && gem update --system", []),
    ('echo "apt-get upgrade"', []),
    ("echo apt-get upgrade", []),
    ("# apt-get upgrade", []),
    ("apt-get -s upgrade", []),
    ("apt-get upgrade --simulate", []),
    ("apt-get -d dist-upgrade", []),
    ("apt list --upgradable", []),
    ("apt-get update-notifier", []),
    ("command -v apt-get", []),
    ("rm -rf /var/cache/apt/archives/*.deb", []),
    ("apk update && apk add --no-cache curl", []),
    ("cat <<EOF > /etc/cron.daily/upgrade\napt-get update && apt-get -y upgrade\nEOF\n", []),
    ("bash ./scripts/install.sh", []),
]


@pytest.mark.parametrize(("script", "actions"), COMMANDS, ids=[c[0][:50] for c in COMMANDS])
def test_package_steps(script: str, actions: list[PackageAction]) -> None:
    assert [s.action for s in package_steps(script)] == actions


def test_package_steps_keep_the_command_without_wrappers() -> None:
    steps = package_steps("sudo DEBIAN_FRONTEND=noninteractive apt-get -y upgrade > /dev/null")
    assert [s.command for s in steps] == ["apt-get -y upgrade"]


def test_argv_steps_exec_form() -> None:
    assert [s.action for s in argv_steps(["apt-get", "update"])] == [UPDATE]
    assert [s.action for s in argv_steps(["/bin/sh", "-c", "apt-get update && apt-get -y upgrade"])] == [
        UPDATE, UPGRADE]
    assert argv_steps(["echo", "apt-get upgrade"]) == ()


# --- the parser --------------------------------------------------------------------------------


def test_continuations_comments_and_empty_lines_keep_start_lines() -> None:
    df = parse("FROM debian:12\nrun apt-get update \\\n# a comment inside\n\n  && apt-get -y upgrade\nCOPY . /x\n")
    (stage,) = df.stages
    assert [(i.keyword, i.line) for i in stage.instructions] == [("RUN", 2), ("COPY", 6)]
    assert stage.instructions[0].args == "apt-get update   && apt-get -y upgrade"


def test_crlf_and_bom() -> None:
    df = parse("\ufeffFROM debian:12\r\nRUN apt-get update \\\r\n && apt-get -y upgrade\r\n")
    assert [s.action for s in run_steps(df.stages[0].instructions[0])] == [UPDATE, UPGRADE]


def test_escape_directive_changes_the_continuation_character() -> None:
    df = parse("# escape=`\nFROM debian:12\nRUN echo C:\\\nRUN apt-get update `\n && apt-get -y upgrade\n")
    runs = df.stages[0].instructions
    assert df.escape == "`"
    assert [(i.line, i.args) for i in runs] == [(3, "echo C:\\"), (4, "apt-get update  && apt-get -y upgrade")]


def test_directives_only_at_the_top() -> None:
    assert parse("# syntax=docker/dockerfile:1\n# escape=`\nFROM x\n").escape == "`"
    assert parse("# a comment\n# escape=`\nFROM x\n").escape == "\\"
    assert parse("# unknown=1\n# escape=`\nFROM x\n").escape == "\\"
    assert parse("\n# escape=`\nFROM x\n").escape == "\\"


@pytest.mark.parametrize("text", ["# escape=x\nFROM a\n", "# escape=`\n# escape=\\\nFROM a\n", "RUN true\n", ""])
def test_parser_rejects_what_buildkit_rejects(text: str) -> None:
    with pytest.raises(ConfigError):
        parse(text)


def test_json_form_run() -> None:
    (run,) = parse('FROM a\nRUN ["apt-get", "update"]\n').stages[0].instructions
    assert run.json_args == ("apt-get", "update")
    assert [s.action for s in run_steps(run)] == [UPDATE]


def test_heredoc_chomp_and_several_heredocs() -> None:
    text = "FROM a\nRUN <<-EOT\n\tapt-get update\n\tapt-get -y upgrade\n\tEOT\nCOPY <<A <<B /dst/\na\nA\nb\nB\nRUN true\n"
    first, copy, last = parse(text).stages[0].instructions
    assert [s.action for s in run_steps(first)] == [UPDATE, UPGRADE]
    assert [h.name for h in copy.heredocs] == ["A", "B"]
    assert (last.keyword, last.line) == ("RUN", 11)


def test_heredoc_with_a_non_shell_shebang_is_not_a_shell_script() -> None:
    (run,) = parse("FROM a\nRUN <<EOF\n#!/usr/bin/env python3\nprint('apt-get upgrade')\nEOF\n").stages[0].instructions
    assert run_steps(run) == ()
    (run,) = parse("FROM a\nRUN <<EOF\n#!/bin/bash -e\napt-get -y upgrade\nEOF\n").stages[0].instructions
    assert [s.action for s in run_steps(run)] == [UPGRADE]


def test_unterminated_heredoc() -> None:
    with pytest.raises(ConfigError, match="line 2: unterminated heredoc <<EOF"):
        parse("FROM a\nRUN <<EOF\napt-get update\n")


def test_stages_names_and_arg_expansion() -> None:
    df = parse("ARG BASE=debian:12\nARG APP=App\nFROM ${BASE} AS Build\nFROM --platform=$BUILDPLATFORM build\n")
    assert [(s.index, s.name, s.base, s.line, s.label) for s in df.stages] == [
        (0, "build", "debian:12", 3, "build"), (1, None, "build", 4, "1")]


# --- the rules ---------------------------------------------------------------------------------


def test_copy_from_a_stage_that_reads_the_context_is_a_changing_step() -> None:
    text = """
FROM golang:1.22 AS build
COPY . /src
RUN go build -o /out/app /src
FROM debian:12-slim AS app
RUN apt-get update && apt-get -y upgrade && rm -rf /var/lib/apt/lists/*
COPY --from=build /out/app /usr/local/bin/app
"""
    assert lint_text(text) == [(RULE_UPGRADE_BEFORE_CHANGES, 5, "app")]
    assert lint_text(text.replace("--from=build", "--from=0")) == [(RULE_UPGRADE_BEFORE_CHANGES, 5, "app")]


def test_copy_from_an_image_or_a_context_free_stage_is_not_a_changing_step() -> None:
    text = """
FROM alpine AS tools
RUN wget -O /jq https://example.org/jq
FROM debian:12-slim
RUN apt-get update && apt-get -y upgrade && rm -rf /var/lib/apt/lists/*
COPY --from=tools /jq /usr/local/bin/jq
COPY --from=busybox:1.36 /bin/busybox /bin/busybox
ADD https://example.org/ca.pem /etc/ssl/certs/
COPY <<EOF /etc/motd
hello
EOF
"""
    assert lint_text(text) == []


def test_bind_mount_of_the_context_is_a_changing_step() -> None:
    text = """
FROM debian:12
RUN apt-get update && apt-get -y upgrade && rm -rf /var/lib/apt/lists/*
RUN --mount=type=bind,target=/src make -C /src install
"""
    assert lint_text(text) == [(RULE_UPGRADE_BEFORE_CHANGES, 2, "0")]
    assert lint_text(text.replace("type=bind,", "type=cache,")) == []


def test_install_after_update_refreshes_but_only_a_full_upgrade_counts_as_upgrading() -> None:
    text = """
FROM python:3.12-slim AS app
RUN apt-get update && apt-get install -y --no-install-recommends libpq5 && rm -rf /var/lib/apt/lists/*
COPY . /app
"""
    findings = lint(text.removeprefix("\n"))
    assert found(findings) == [(RULE_NO_UPGRADE, 1, "app"), (RULE_UPGRADE_BEFORE_CHANGES, 2, "app")]
    assert "line 2 only installs named packages" in findings[0].message
    assert "`apt-get install -y --no-install-recommends libpq5`" in findings[1].message


def test_an_upgrade_after_the_last_change_covers_earlier_refreshes() -> None:
    text = """
FROM debian:12 AS base
RUN apt-get update && apt-get install -y curl && rm -rf /var/lib/apt/lists/*
COPY . /app
FROM base
RUN apt-get update && apt-get -y upgrade && rm -rf /var/lib/apt/lists/*
"""
    assert lint_text(text) == []
    assert lint_text(text, target="base") == [(RULE_NO_UPGRADE, 1, "base"), (RULE_UPGRADE_BEFORE_CHANGES, 2, "base")]


def test_final_chain_follows_from_stage_through_arg() -> None:
    text = """
ARG RUNTIME=runtime
FROM debian:12 AS runtime
RUN apt-get update && apt-get -y upgrade && rm -rf /var/lib/apt/lists/*
FROM debian:12 AS unused
COPY . /x
FROM ${RUNTIME} AS release
COPY . /app
"""
    assert lint_text(text) == [(RULE_UPGRADE_BEFORE_CHANGES, 3, "runtime")]


def test_list_rules_scope() -> None:
    # update-without-install: every stage; apt-lists-not-cleaned: only the final image's chain.
    text = """
FROM debian:12 AS build
RUN apt-get update
RUN apt-get update && apt-get install -y gcc
FROM debian:12
COPY . /app
RUN apt-get update && apt-get -y upgrade
"""
    assert lint_text(text) == [(RULE_UPDATE_ALONE, 2, "build"), (RULE_LISTS_NOT_CLEANED, 6, "1")]


def test_lists_cleaned_before_the_update_do_not_count() -> None:
    text = "FROM debian:12\nRUN rm -rf /var/lib/apt/lists/* && apt-get update && apt-get -y upgrade\n"
    assert lint_text(text) == [(RULE_LISTS_NOT_CLEANED, 2, "0")]


@pytest.mark.parametrize("target", ["/var/lib/apt/lists", "/var/lib/apt", "/var/lib/apt/"])
def test_lists_on_a_cache_mount_are_not_in_the_layer(target: str) -> None:
    text = f"""
FROM debian:12
RUN --mount=type=cache,target=/var/cache/apt,sharing=locked --mount=type=cache,target={target} \\
    apt-get update && apt-get -y upgrade
"""
    assert lint_text(text) == []


def test_scratch_and_non_apt_upgrades_are_not_no_upgrade() -> None:
    assert lint_text("FROM scratch\nCOPY app /app\n") == []
    assert lint_text("FROM alpine:3.20\nCOPY . /app\nRUN apk upgrade --no-cache\n") == []


def test_unknown_target() -> None:
    with pytest.raises(ConfigError, match="target stage 'nope' could not be found"):
        lint("FROM a AS app\n", target="nope")


def test_findings_are_sorted_frozen_and_complete() -> None:
    findings = lint_file(dockerfile("update-alone.Dockerfile"))
    assert findings == sorted(findings, key=lambda f: (f.line, f.rule))
    assert {f.severity for f in findings} == {"warning", "error"}
    assert all(f.message and f.remedy for f in findings)
    with pytest.raises(dataclasses.FrozenInstanceError):
        findings[0].line = 3  # type: ignore[misc]


def test_upgrade_message_names_the_line_and_remedies() -> None:
    (finding,) = lint_file(dockerfile("upgrade-then-copy.Dockerfile"))
    assert finding.severity == "warning"
    assert "line 4 (`apt-get -y upgrade`)" in finding.message and "COPY at line 10" in finding.message
    assert "FROM app AS final" in finding.remedy and "--pull --no-cache" in finding.remedy


def test_lint_file_errors_are_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read Dockerfile") as info:
        lint_file(tmp_path / "missing")
    assert info.value.exit_code == 2
    binary = tmp_path / "Dockerfile"
    binary.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(ConfigError, match="cannot read Dockerfile"):
        lint_file(binary)
