"""The command line through CliRunner, on real database files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from driftwatch.cli import main
from driftwatch.report import OutputFormat
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


def run(*args: str, env: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(main, list(args), catch_exceptions=False, env=env)


def test_report_table(db: Path) -> None:
    result = run("--db", str(db), "report")
    assert result.exit_code == 0
    lines = result.output.splitlines()
    assert lines[0].split() == ["REFERENCE", "IMAGE", "ID", "OS", "STATUS", "SECURITY", "PENDING", "SCANNED"]
    assert lines[1].split()[:4] == ["gone:1", "-", "-", "failed"]
    assert lines[2].split()[:6] == ["app:1", "111111111111", "debian", "12", "ok", "1"]
    assert lines[3].split()[:7] == ["quiet:1", "111111111111", "debian", "12", "ok", "0", "0"]


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
                                 "held": False, "kept_back": True, "phased": False}


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


def test_scan_needs_an_image() -> None:
    result = CliRunner().invoke(main, ["scan"])
    assert result.exit_code == 2 and "Missing argument 'IMAGES...'" in result.output


def test_every_format_has_a_formatter() -> None:
    for choice in OutputFormat:
        assert choice.to_formatter() is not None


def test_every_command_has_help_and_is_in_readme() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for name, command in main.commands.items():
        assert command.help and "Example:" in command.help, name
        assert f"driftwatch {name}" in readme, f"`driftwatch {name}` is not documented in README.md"
