"""The command line through CliRunner, on real database files."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from driftwatch.cli import main
from driftwatch.report import DetailFormat, ReportFormat
from driftwatch.store import open_store
from tests.test_store import failed_scan, ok_scan

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "cli.db"
    store = open_store(path)
    store.save_scan(ok_scan("app:1"))
    store.save_scan(ok_scan("quiet:1", updates=()))
    store.save_scan(failed_scan("gone:1"))
    store.close()
    return path


NOW = "2026-12-04T03:00:05+00:00"  # three days after the fixture scans finished


def run(*args: str, env: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(main, list(args), catch_exceptions=False, env={"DRIFTWATCH_NOW": NOW, **(env or {})})


def test_report_table(db: Path) -> None:
    result = run("--db", str(db), "report")
    assert result.exit_code == 0
    lines = result.output.splitlines()
    assert lines[0].split() == ["REFERENCE", "IMAGE", "ID", "OS", "STATUS", "VERDICT", "SECURITY", "PENDING", "SEC",
                                "AGE", "(d)", "APT", "LAYER", "(d)", "SCANNED"]
    assert lines[1].split()[:7] == ["gone:1", "-", "-", "failed", "(image_missing)", "failed", "-"]
    assert lines[2].split()[:9] == ["app:1", "111111111111", "debian", "12", "ok", "breach", "1", "2", "3.0"]
    assert lines[3].split()[:9] == ["quiet:1", "111111111111", "debian", "12", "ok", "ok", "0", "0", "-"]
    assert lines[5:] == ["  gone:1: latest scan failed: image_missing", "  app:1: max_security_pending 1 > 0"]


def test_report_json_is_documented_shape(db: Path) -> None:
    result = run("--db", str(db), "report", "--format", "json")
    assert result.exit_code == 0
    doc = json.loads(result.output)
    assert doc["version"] == 1
    assert [i["reference"] for i in doc["images"]] == ["gone:1", "app:1", "quiet:1"]
    app = doc["images"][1]
    assert {k: app[k] for k in ("image_id", "os", "status", "reason", "pending_security", "pending_total",
                                "scanned_at")} == {
        "image_id": "sha256:" + "11" * 32, "os": "debian 12", "status": "ok", "reason": None,
        "pending_security": 1, "pending_total": 2, "scanned_at": "2026-12-01T03:00:05+00:00"}
    assert doc["images"][0]["reason"] == "image_missing" and doc["images"][0]["pending_total"] is None


def test_show_table_and_json(db: Path) -> None:
    table = run("--db", str(db), "show", "app:1")
    assert table.exit_code == 0
    assert table.output.splitlines()[0] == (
        "app:1 (111111111111, debian 12) scanned 2026-12-01 03:00 UTC: ok, 2 pending, 1 security")
    assert table.output.splitlines()[2].split() == [
        "S", "libssl3", "amd64", "3.0.11-1~deb12u1", "->", "3.0.15-1~deb12u1", "bookworm-security"]
    doc = json.loads(run("--db", str(db), "show", "--format", "json", "app:1").output)
    assert doc["updates"][1] == {"package": "tzdata", "arch": "all", "installed": "2024a-0+deb12u1",
                                 "candidate": "2025b-0+deb12u1", "suites": ["bookworm-updates"], "security": False,
                                 "held": False, "kept_back": True, "phased": False, "masked_security": False,
                                 "esm": False, "security_origin": None, "why": ""}


def test_show_says_whose_probe_answered_and_the_scan_warnings(tmp_path: Path) -> None:
    import dataclasses

    path = tmp_path / "w.db"
    store = open_store(path)
    store.save_scan(dataclasses.replace(ok_scan("app-b:1"), probe_of="app:1",
                                        warnings=("origin metadata unavailable (apt-cache policy failed)",)))
    store.close()
    lines = run("--db", str(path), "show", "app-b:1").output.splitlines()
    assert lines[0].endswith("ok, 2 pending, 1 security (same apt state as app:1: its probe's answer)")
    assert lines[1] == "  warning: origin metadata unavailable (apt-cache policy failed)"
    doc = json.loads(run("--db", str(path), "show", "--format", "json", "app-b:1").output)
    assert (doc["probe_of"], doc["warnings"]) == ("app:1", ["origin metadata unavailable (apt-cache policy failed)"])


def test_show_failed_scan_says_why(db: Path) -> None:
    result = run("--db", str(db), "show", "gone:1")
    assert result.exit_code == 0
    assert result.output == "gone:1 (-, unknown OS) scanned 2026-12-01 03:00 UTC: failed (image_missing)\n  not present\n"


def test_show_unknown_image_is_one_line_exit_2(db: Path) -> None:
    result = run("--db", str(db), "show", "nope:9")
    assert result.exit_code == 2
    assert result.output == f"Error: no scan of 'nope:9' is recorded in {db}; run: driftwatch scan nope:9\n"


def test_empty_report(tmp_path: Path) -> None:
    result = run("--db", str(tmp_path / "new.db"), "report")
    assert (result.exit_code, result.output) == (0, "No scans recorded yet. Run: driftwatch scan IMAGE\n")


def test_db_from_environment(db: Path) -> None:
    result = run("report", "--format", "json", env={"DRIFTWATCH_DB": str(db)})
    assert len(json.loads(result.output)["images"]) == 3


def test_corrupt_database_is_one_line_exit_4(tmp_path: Path) -> None:
    bad = tmp_path / "bad.db"
    bad.write_bytes(b"\x00garbage" * 512)
    result = run("--db", str(bad), "report")
    assert result.exit_code == 4
    assert result.output.startswith(f"Error: cannot use {bad} as driftwatch's database: ")
    assert result.output.count("\n") == 1 and "Traceback" not in result.output
    assert bad.read_bytes() == b"\x00garbage" * 512


def test_no_engine_is_one_line_exit_4(tmp_path: Path) -> None:
    sock = tmp_path / "no-engine.sock"
    result = run("--db", str(tmp_path / "x.db"), "scan", "debian:12", env={"DOCKER_HOST": f"unix://{sock}"})
    assert result.exit_code == 4
    assert result.output.startswith(f"Error: no Docker engine answers at unix://{sock}")
    assert "DOCKER_HOST" in result.output and result.output.count("\n") == 1


def test_scan_needs_images_or_config(tmp_path: Path) -> None:
    result = run("--db", str(tmp_path / "x.db"), "scan")
    assert result.exit_code == 2
    assert result.output.endswith("Error: no IMAGES given and no [[images]] in the config; give IMAGES, --all or --config\n")


def test_every_format_has_a_formatter() -> None:
    for choice in ReportFormat:
        assert hasattr(choice.to_formatter(), "report")
    for detail in DetailFormat:
        formatter = detail.to_formatter()
        assert hasattr(formatter, "updates") and hasattr(formatter, "history")


def test_every_command_has_help_and_is_in_readme() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for name, command in main.commands.items():
        assert command.help and "Example:" in command.help, name
        assert re.search(rf"driftwatch {name}\b", readme), f"`driftwatch {name}` is not documented in README.md"


def test_check_exit_codes_and_breach_lines(db: Path, tmp_path: Path) -> None:
    result = run("--db", str(db), "check")
    assert result.exit_code == 3  # gone:1's latest scan failed: undecided outranks breach
    assert result.output.splitlines() == [
        "FAILED    gone:1: latest scan failed: image_missing",
        "BREACH    app:1: max_security_pending 1 > 0",
        "OK        quiet:1",
    ]
    cfg = tmp_path / "only-app.toml"
    cfg.write_text('[defaults]\nmax_security_pending = 1\nmax_security_age_days = 2\n\n[[images]]\nreference = "app:1"\n')
    result = run("--db", str(db), "--config", str(cfg), "check")
    assert (result.exit_code, result.output) == (1, "BREACH    app:1: max_security_age_days 3.0 > 2\n")
    cfg.write_text('[defaults]\nmax_security_pending = 1\n\n[[images]]\nreference = "app:1"\n')
    assert run("--db", str(db), "--config", str(cfg), "check").exit_code == 0


def test_check_json_and_unscanned(db: Path, tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text('[[images]]\nreference = "never:1"\n\n[[images]]\npattern = "qu*"\n')
    result = run("--db", str(db), "--config", str(cfg), "check", "--format", "json")
    assert result.exit_code == 3
    doc = json.loads(result.output)
    assert doc["exit_code"] == 3
    assert [(i["reference"], i["verdict"]) for i in doc["images"]] == [("never:1", "unscanned"), ("quiet:1", "ok")]


def test_config_error_names_the_key_exit_2(db: Path, tmp_path: Path) -> None:
    cfg = tmp_path / "bad.toml"
    cfg.write_text("[defaults]\nmax_security_pendng = 1\n")
    result = run("--db", str(db), "--config", str(cfg), "check")
    assert result.exit_code == 2
    assert result.output == f"Error: {cfg}: defaults: max_security_pendng: unknown key; did you mean max_security_pending?\n"


def test_history_table(db: Path) -> None:
    result = run("--db", str(db), "history", "app:1")
    assert result.exit_code == 0
    assert result.output.splitlines()[1].split() == ["2026-12-01", "03:00", "UTC", "111111111111", "ok", "1", "2"]
    assert run("--db", str(db), "history", "zzz").exit_code == 2


def test_report_html_to_stdout(db: Path) -> None:
    result = run("--db", str(db), "report", "--format", "html")
    assert result.exit_code == 0 and result.output.startswith("<!DOCTYPE html>")
    assert result.output.count('<svg class="chart"') == 3


def test_rebuild_of_unconfigured_image_is_one_line_exit_2(tmp_path: Path) -> None:
    result = run("--db", str(tmp_path / "x.db"), "rebuild", "nothing:1")
    assert result.exit_code == 2
    assert result.output == "Error: nothing:1: no rebuild configured; add an [images.rebuild] table for it\n"


def test_run_while_another_holds_the_lock_says_who(db: Path, tmp_path: Path) -> None:
    from driftwatch.lock import RunLock

    cfg = tmp_path / "c.toml"
    cfg.write_text('[[images]]\nreference = "app:1"\n')
    with RunLock(db.with_name(db.name + ".lock"), command="run"):
        result = run("--db", str(db), "--config", str(cfg), "run")
    assert result.exit_code == 4
    assert result.output.startswith(f"Error: another driftwatch run holds {db}.lock: pid {os.getpid()} on ")
    assert result.output.count("\n") == 1


def test_run_needs_configured_images(db: Path) -> None:
    result = run("--db", str(db), "run")
    assert (result.exit_code, result.output) == (
        2, "Error: driftwatch run needs [[images]] in the configuration (see README, Configuration)\n")


def test_lint_own_dockerfile_is_clean_and_fixture_is_flagged() -> None:
    clean = run("lint", str(ROOT / "Dockerfile"))
    assert clean.exit_code == 0 and clean.output == f"{ROOT / 'Dockerfile'}: no findings\n"
    fixture = ROOT / "fixtures" / "dockerfiles" / "upgrade-then-copy.Dockerfile"
    flagged = run("lint", "--format", "json", str(fixture))
    assert flagged.exit_code == 1
    doc = json.loads(flagged.output)
    assert [(f["rule"], f["line"]) for f in doc["findings"]] == [("upgrade-before-changing-steps", 4)]
    missing = run("lint", "/nonexistent/Dockerfile")
    assert missing.exit_code == 2 and missing.output.startswith("Error: ")


def test_read_only_commands_never_create_a_database(tmp_path: Path) -> None:
    typo = tmp_path / "typo.db"
    for args, code in ((["report"], 0), (["show", "x:1"], 2), (["history", "x:1"], 2),
                       (["report", "--format", "json"], 0)):
        result = run("--db", str(typo), *args)
        assert result.exit_code == code, result.output
    assert list(tmp_path.iterdir()) == []


def test_check_on_a_missing_database_fails_rather_than_passing(tmp_path: Path) -> None:
    """A CI gate whose --db is mistyped must not pass with "No images to check" (exit 0)."""
    typo = tmp_path / "typo.db"
    result = run("--db", str(typo), "check")
    assert result.exit_code == 4
    assert result.output == (f"Error: no database at {typo}: nothing was scanned into it "
                             "(check --db / DRIFTWATCH_DB)\n")
    assert not typo.exists()


def test_an_explicit_db_in_a_missing_directory_is_refused_and_creates_nothing(tmp_path: Path) -> None:
    typo = tmp_path / "no-such-dir" / "typo.db"
    for args in (["scan", "x:1"], ["report"], ["check"], ["history", "x:1"], ["cleanup"]):
        result = run("--db", str(typo), *args)
        assert result.exit_code == 4, (args, result.output)
        assert result.output == (f"Error: no directory {typo.parent} for the database {typo}: create it, "
                                 "or check --db / DRIFTWATCH_DB\n")
    # A command that never opens the database is not stopped by it (make demo lints first).
    lint = run("--db", str(typo), "lint", str(ROOT / "Dockerfile"))
    assert lint.exit_code == 0 and lint.output == f"{ROOT / 'Dockerfile'}: no findings\n"
    assert list(tmp_path.iterdir()) == []


def test_an_unknown_log_level_is_one_line_exit_2() -> None:
    result = CliRunner().invoke(main, ["report"], env={"DRIFTWATCH_LOGLEVEL": "loud"})
    assert result.exit_code == 2
    assert result.output == ("Error: DRIFTWATCH_LOGLEVEL='LOUD' is not a log level: use one of DEBUG, INFO, "
                             "WARNING, ERROR, CRITICAL\n")


def test_lint_of_binary_stdin_is_one_line_exit_2() -> None:
    result = CliRunner().invoke(main, ["lint", "-"], input=b"\xff\xfeFROM x\n", catch_exceptions=False)
    assert result.exit_code == 2
    assert result.output == "Error: standard input is not UTF-8 text (byte 0): not a Dockerfile\n"


def test_run_checks_the_metrics_path_before_any_work(db: Path, tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text('[[images]]\nreference = "app:1"\n')
    result = run("--db", str(db), "--config", str(cfg), "run", "--metrics", str(tmp_path / "nodir" / "m.prom"))
    assert result.exit_code == 2
    assert result.output == (f"Error: --metrics {tmp_path / 'nodir' / 'm.prom'}: the directory {tmp_path / 'nodir'} "
                             "does not exist or is not writable\n")


@pytest.mark.parametrize("sig", ["SIGINT", "SIGTERM"])
def test_a_signal_while_the_modules_load_is_one_line_and_exit_130(sig: str) -> None:
    """The console script installs its own SIGINT and SIGTERM handlers before importing the CLI (docker
    and requests take about half a second to load): no import traceback (Ctrl-C), no exit 143 (TERM)."""
    import subprocess
    import sys

    code = ("import os, signal, time\n"
            "from driftwatch import entry\n"
            f"signal.signal(signal.{sig}, entry._interrupted)  # as entry.main does first\n"
            f"os.kill(os.getpid(), signal.{sig})\n"
            "time.sleep(5)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30)
    assert (done.returncode, done.stderr) == (130, "Error: interrupted\n")


def test_the_console_script_is_the_entry_module() -> None:
    import tomllib
    from pathlib import Path

    pyproject = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text())
    assert pyproject["project"]["scripts"] == {"driftwatch": "driftwatch.entry:main"}
