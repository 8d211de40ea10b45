"""The command line as an administrator uses it: exit codes, messages, no tracebacks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from cli import main

ROOT = Path(__file__).parents[1]
DATA = ROOT / "tests" / "data" / "loader"
PLAN, REGISTRY = DATA / "base_plan.yaml", DATA / "base_registry.yaml"


@pytest.fixture
def db(tmp_path: Path) -> list[str]:
    return ["--database-url", f"sqlite:///{tmp_path / 'cli.sqlite'}"]


def test_validate_ok(capsys):
    assert main(["validate", str(PLAN), str(REGISTRY)]) == 0
    assert "ok" in capsys.readouterr().out


def test_missing_file_is_a_user_error(capsys):
    assert main(["validate", "nope.yaml"]) == 1
    err = capsys.readouterr().err
    assert "nope.yaml: không có tệp này" in err and "Traceback" not in err


def test_usage_error_exit_code():
    with pytest.raises(SystemExit) as exit_info:
        main(["calendar"])
    assert exit_info.value.code == 2


def test_load_then_plans_then_show_from_the_store(db, capsys):
    assert main([*db, "load", str(PLAN), str(REGISTRY)]) == 0
    out = capsys.readouterr().out
    assert "ke-hoach-thu" in out and "phiên bản mới" in out
    assert main([*db, "load", str(PLAN), str(REGISTRY)]) == 0
    assert "không đổi" in capsys.readouterr().out
    assert main([*db, "plans"]) == 0
    listing = capsys.readouterr().out
    assert "ke-hoach-thu" in listing and "12/KH-UBND" in listing
    assert main([*db, "show", "ke-hoach-thu"]) == 0
    tree = capsys.readouterr().out
    assert "UBND các xã" in tree and "Ủy ban nhân dân xã A" in tree


def test_unknown_plan_is_not_found(db, capsys):
    assert main([*db, "show", "khong-co"]) == 4
    err = capsys.readouterr().err
    assert "not in the store" in err and "kehoach load" in err


def test_invalid_load_stores_nothing(db, tmp_path: Path, capsys):
    broken = tmp_path / "plan.yaml"
    broken.write_text(
        PLAN.read_text(encoding="utf-8").replace("by: ca-huyen", "by: xa-a"), encoding="utf-8"
    )
    assert main([*db, "load", str(broken), str(REGISTRY)]) == 3
    assert "không lưu gì" in capsys.readouterr().err
    assert main([*db, "plans"]) == 0
    assert "Chưa nạp kế hoạch nào" in capsys.readouterr().out


def test_schema_is_json_schema_for_every_kind(tmp_path: Path):
    target = tmp_path / "schema.json"
    assert main(["schema", "-o", str(target)]) == 0
    schema = json.loads(target.read_text(encoding="utf-8"))
    assert schema["discriminator"]["propertyName"] == "kind"
    assert {"Plan", "Registry", "CalendarOverrides"} <= set(schema["$defs"])


def test_calendar_shows_moved_deadline_with_reason(capsys):
    assert main(["calendar", str(PLAN), "--year", "2027"]) == 0
    out = capsys.readouterr().out
    assert "10/9/2027" in out
    assert "25/9/2027 → Thứ Hai 27/9/2027" in out
    assert "lý do: 25/9/2027 là Thứ Bảy" in out


# What `kehoach validate` must not import (each costs its start-up time; engine/cli
# import them inside the functions that need them): the holiday package is read from
# engine/vn_holidays.json, pydantic-settings only when a setting is given.
NOT_FOR_VALIDATE = ("prefect", "sqlalchemy", "fastapi", "aiosmtplib", "jinja2", "docx", "holidays")


def _validate_in_a_process(env: dict[str, str], *files: Path) -> tuple[str, str, list[str]]:
    """(stdout, stderr, the top-level modules it imported) of `kehoach validate`."""
    code = (
        "import json, sys; from cli import main; "
        f"rc = main(['validate', *{[str(f) for f in files]!r}]); "
        "print('MODULES', json.dumps(sorted({m.split('.')[0] for m in sys.modules}))); "
        "sys.exit(rc)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, env=env
    )
    assert result.returncode == 0, result.stderr
    out, _, modules = result.stdout.rpartition("MODULES ")
    return out, result.stderr, json.loads(modules)


def test_validate_does_not_import_the_heavy_packages():
    env = {**os.environ, "KEHOACH_DATABASE_URL": "sqlite:////nonexistent/x.sqlite"}
    _out, _err, modules = _validate_in_a_process(env, PLAN, REGISTRY)
    assert [m for m in NOT_FOR_VALIDATE if m in modules] == []


def test_validate_with_no_setting_given_does_not_import_pydantic_settings():
    """No kehoach.toml, no KEHOACH_ variable: every setting is its default and the
    output is the same as with the default written out (engine.config_given); given, it
    is read without pydantic-settings too (tests/test_validate_settings.py)."""
    assert not (ROOT / "kehoach.toml").exists()
    bare = {k: v for k, v in os.environ.items() if not k.startswith("KEHOACH_")}
    seed = sorted((ROOT / "plan_definitions").glob("*.yaml"))
    out, err, modules = _validate_in_a_process(bare, *seed)
    assert [m for m in (*NOT_FOR_VALIDATE, "pydantic_settings") if m in modules] == []
    assert out.count("ok  ") == len(seed)
    given = {**bare, "KEHOACH_FIRST_DEADLINE_WARN_DAYS": "7"}
    out_given, err_given, modules_given = _validate_in_a_process(given, *seed)
    assert "pydantic_settings" not in modules_given  # read by engine.settings_fields
    assert (out_given, err_given) == (out, err)


def test_committed_schema_matches_the_models(tmp_path: Path):
    """plan_definitions/kehoach.schema.json (for editors) is regenerated with the models."""
    fresh = tmp_path / "schema.json"
    assert main(["schema", "-o", str(fresh)]) == 0
    committed = ROOT / "plan_definitions" / "kehoach.schema.json"
    assert json.loads(committed.read_text(encoding="utf-8")) == json.loads(
        fresh.read_text(encoding="utf-8")
    ), "run: kehoach schema -o plan_definitions/kehoach.schema.json"


def test_activate_from_the_command_line(db, capsys):
    """kehoach activate: cycles, obligations and queued assignments, once."""
    assert main([*db, "load", str(PLAN), str(REGISTRY)]) == 0
    capsys.readouterr()
    assert main([*db, "activate", "ke-hoach-thu", "--year", "2027", "--at", "2027-01-04"]) == 0
    first = capsys.readouterr().out
    assert first.startswith("ke-hoach-thu v1: ") and "kỳ" in first and "2027" in first
    created = int(first.split(": ", 1)[1].split(" nghĩa vụ mới")[0])
    assert created > 0
    assert main([*db, "activate", "ke-hoach-thu", "--year", "2027", "--at", "4/1/2027"]) == 0
    again = capsys.readouterr().out
    assert f"0 nghĩa vụ mới, {created} đã có" in again and "0 email giao nhiệm vụ" in again
    assert main([*db, "activate", "khong-co"]) == 4
    assert "khong-co" in capsys.readouterr().err


def test_in_chunks_takes_a_failed_chunk_one_by_one():
    from engine.batches import in_chunks

    calls: list[list[int]] = []

    def take(chunk: list[int]) -> list[int]:
        calls.append(chunk)
        if 13 in chunk:
            raise ValueError("row 13 is broken")
        return chunk

    done, failed = in_chunks(list(range(1, 26)), take, sqlite=False, chunk=10)
    assert done == [i for i in range(1, 26) if i != 13]
    assert failed == {13: "ValueError: row 13 is broken"}
    assert calls[:2] == [list(range(1, 11)), list(range(11, 21))]
    assert calls[2:12] == [[i] for i in range(11, 21)] and calls[12] == list(range(21, 26))
    assert in_chunks([13], take, sqlite=False) == ([], {13: "ValueError: row 13 is broken"})


def test_a_setting_that_is_not_a_number_is_named(tmp_path, capsys, monkeypatch):
    """A malformed numeric setting is the user's mistake (exit 2), not an internal error."""
    from engine import config

    monkeypatch.setenv("KEHOACH_HOME", str(tmp_path))
    monkeypatch.delenv("KEHOACH_DATABASE_URL", raising=False)
    monkeypatch.setenv("KEHOACH_INTAKE_BATCH_SECONDS", "mười")
    config.settings.cache_clear()
    try:
        assert main(["plans"]) == 2
    finally:
        config.settings.cache_clear()
    err = capsys.readouterr().err
    assert "KEHOACH_INTAKE_BATCH_SECONDS='mười' không phải số; ghi một số như 10.0" in err
    assert "lỗi nội bộ" not in err and "Traceback" not in err


def test_a_misspelt_mode_or_a_bad_file_value_is_named(tmp_path, capsys, monkeypatch):
    """An SMTP security mode that is not one of the three, and a word for a number in the
    configuration file, are named where they were written (exit 2), not a traceback."""
    from engine import config

    monkeypatch.setenv("KEHOACH_HOME", str(tmp_path))
    monkeypatch.delenv("KEHOACH_DATABASE_URL", raising=False)
    monkeypatch.setenv("KEHOACH_SMTP_SECURITY", "tsl")
    config.settings.cache_clear()
    try:
        assert main(["plans"]) == 2
        err = capsys.readouterr().err
        assert "KEHOACH_SMTP_SECURITY='tsl' không phải một trong none, starttls, tls" in err
        assert "Traceback" not in err
        monkeypatch.delenv("KEHOACH_SMTP_SECURITY")
        toml = tmp_path / "kehoach.toml"
        toml.write_text('smtp_port = "hai mươi lăm"\n', encoding="utf-8")
        monkeypatch.setenv("KEHOACH_CONFIG", str(toml))
        config.settings.cache_clear()
        assert main(["plans"]) == 2
        err = capsys.readouterr().err
        assert f"{toml}: smtp_port='hai mươi lăm' không phải số nguyên" in err
    finally:
        config.settings.cache_clear()


def test_settings_from_the_environment_and_the_file(tmp_path):
    """The environment wins over the file, the file over the defaults; a mode in any case."""
    from engine.config import ConfigError, Settings, load_settings

    assert load_settings({}) == Settings()
    toml = tmp_path / "kehoach.toml"
    toml.write_text('smtp_port = 2525\nsmtp_host = "mail.example"\n', encoding="utf-8")
    conf = load_settings(
        {"KEHOACH_CONFIG": str(toml), "KEHOACH_SMTP_PORT": "587", "KEHOACH_SMTP_SECURITY": "TLS"}
    )
    assert (conf.smtp_host, conf.smtp_port, conf.smtp_security) == ("mail.example", 587, "tls")
    toml.write_text("smtp_prot = 25\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="không có thiết lập nào tên smtp_prot"):
        load_settings({"KEHOACH_CONFIG": str(toml)})


def test_simulate_with_its_dates_swapped_says_so_in_vietnamese(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("KEHOACH_HOME", str(tmp_path))
    monkeypatch.setenv("KEHOACH_DATABASE_URL", f"sqlite:///{tmp_path / 'cli.sqlite'}")
    args = ["simulate", "ha-lang-pccc-2022", "--from", "2023-12-31", "--until", "2023-01-01"]
    assert main(args) == 1
    err = capsys.readouterr().err
    assert "--until 2023-01-01 trước --from 2023-12-31: hãy đổi chỗ hai ngày" in err
    assert "swap" not in err and "Traceback" not in err
