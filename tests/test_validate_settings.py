"""`kehoach validate` with settings given: read without pydantic-settings, honoured, and
a malformed one refused as every other command refuses it (engine.settings_fields)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from engine.config import load_settings
from engine.settings_fields import ConfigError, SettingsFields, read_given

ROOT = Path(__file__).parents[1]
EXAMPLES = ROOT / "plan_definitions" / "examples"
REGISTRY = EXAMPLES / "registry_cao_bang_2026.yaml"
CALENDAR = ROOT / "plan_definitions" / "calendar_vn.yaml"
PLAN_FILE = EXAMPLES / "cao_bang_dau_tu_cong_2026.yaml"
# the plan's first monthly deadline 5 days after its effective date (tests/test_plan_time.py)
CLOSE = "hạn đầu tiên (2026-04: 20/04/2026) chỉ cách ngày kế hoạch có hiệu lực (15/04/2026) 5 ngày"
# variables a deployment sets that validate does not read
UNRELATED = {
    "KEHOACH_DATABASE_URL": "sqlite:////nonexistent/x.sqlite",
    "KEHOACH_SMTP_HOST": "mail.example",
}


def _plan(folder: Path) -> Path:
    text = PLAN_FILE.read_text(encoding="utf-8")
    for before, after in [
        ("effective_date: 2026-03-26", "effective_date: 2026-04-15"),
        ("date: 2026-04-10", "date: 2026-04-30"),
    ]:
        assert before in text, before
        text = text.replace(before, after, 1)
    path = folder / "plan.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def _kehoach(args: list[str], given: dict[str, str], cwd: Path) -> tuple[int, str, list[str]]:
    """(exit code, stderr, the top-level modules imported) of `kehoach ARGS` in a process
    whose only KEHOACH_ variables are ``given``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEHOACH_")}
    env.update(given, PYTHONPATH=str(ROOT))
    code = (
        "import json, sys; from cli import main; "
        f"rc = main({args!r}); "
        "print('MODULES', json.dumps(sorted({m.split('.')[0] for m in sys.modules}))); "
        "sys.exit(rc)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=cwd, env=env
    )
    modules = result.stdout.rpartition("MODULES ")[2]
    return result.returncode, result.stderr, json.loads(modules) if modules else []


def _validate(given: dict[str, str], cwd: Path, plan: Path) -> tuple[int, str, list[str]]:
    return _kehoach(["validate", str(REGISTRY), str(CALENDAR), str(plan)], given, cwd)


def test_validate_reads_given_settings_without_pydantic_settings(tmp_path: Path) -> None:
    plan = _plan(tmp_path)
    rc, err, modules = _validate({}, tmp_path, plan)
    assert rc == 0 and err.count(CLOSE) == 1, err
    assert "pydantic_settings" not in modules
    # a threshold of 3 days: quiet; of 10: the warning names 10
    rc, err, modules = _validate(
        {**UNRELATED, "KEHOACH_FIRST_DEADLINE_WARN_DAYS": "3"}, tmp_path, plan
    )
    assert (rc, err) == (0, "")
    assert "pydantic_settings" not in modules
    rc, err, modules = _validate(
        {**UNRELATED, "KEHOACH_FIRST_DEADLINE_WARN_DAYS": "10"}, tmp_path, plan
    )
    assert rc == 0 and err.count(CLOSE) == 1 and "KEHOACH_FIRST_DEADLINE_WARN_DAYS = 10" in err, err
    assert "pydantic_settings" not in modules


def test_validate_reads_kehoach_toml_without_pydantic_settings(tmp_path: Path) -> None:
    plan = _plan(tmp_path)
    (tmp_path / "kehoach.toml").write_text(
        'smtp_host = "mail.example"\nfirst_deadline_warn_days = 3\n', encoding="utf-8"
    )
    rc, err, modules = _validate({}, tmp_path, plan)
    assert (rc, err) == (0, "")
    assert "pydantic_settings" not in modules
    # the variable wins over the file, as in every command
    rc, err, modules = _validate({"KEHOACH_FIRST_DEADLINE_WARN_DAYS": "6"}, tmp_path, plan)
    assert rc == 0 and "KEHOACH_FIRST_DEADLINE_WARN_DAYS = 6" in err, err
    assert "pydantic_settings" not in modules


def test_a_malformed_setting_is_refused_by_validate_as_by_every_command(tmp_path: Path) -> None:
    """The threshold validate reads and a setting it does not read: the same Vietnamese
    message (exit 2) from validate as from `kehoach plans` (pydantic-settings)."""
    plan = _plan(tmp_path)
    expected = {
        "KEHOACH_FIRST_DEADLINE_WARN_DAYS": (
            "mười",
            "kehoach: KEHOACH_FIRST_DEADLINE_WARN_DAYS='mười' không phải số nguyên; ghi một số "
            "nguyên như 7, hoặc bỏ đi để dùng giá trị mặc định\n",
        ),
        "KEHOACH_SMTP_PORT": (
            "hai mươi lăm",
            "kehoach: KEHOACH_SMTP_PORT='hai mươi lăm' không phải số nguyên; ghi một số nguyên "
            "như 8025, hoặc bỏ đi để dùng giá trị mặc định\n",
        ),
        "KEHOACH_PORTAL_THREADS": (
            "0",
            "kehoach: KEHOACH_PORTAL_THREADS='0' nằm ngoài khoảng cho phép; ghi số nguyên từ "
            "1 đến 256, hoặc bỏ đi để dùng mặc định 4\n",
        ),
    }
    for name, (value, message) in expected.items():
        given = {**UNRELATED, name: value, "KEHOACH_HOME": str(tmp_path)}
        rc, err, modules = _validate(given, tmp_path, plan)
        assert (rc, err) == (2, message)
        assert "pydantic_settings" not in modules
        assert _kehoach(["plans"], given, tmp_path)[:2] == (2, message)
    # the English reason stays for the developer
    given = {"KEHOACH_SMTP_PORT": "x", "KEHOACH_DEBUG": "1"}
    rc, err, _ = _validate(given, tmp_path, plan)
    assert rc == 2 and "kehoach: debug: KEHOACH_SMTP_PORT: Input should be a valid integer" in err


def test_a_bad_configuration_file_is_refused_by_validate_as_by_every_command(
    tmp_path: Path,
) -> None:
    plan = _plan(tmp_path)
    toml = tmp_path / "kehoach.toml"
    for text, message in [
        (
            "first_deadline_warn_days = 3\nsmtp_prot = 25\n",
            f"kehoach: {toml}: không có thiết lập nào tên smtp_prot (smtp_prot: có phải "
            "smtp_port?); các thiết lập và tên của chúng ở bảng thiết lập trong README.md\n",
        ),
        (
            "first_deadline_warn_days = \n",
            f"kehoach: {toml}:1:28: tệp cấu hình không phải TOML (UTF-8) hợp lệ; mỗi dòng một "
            'thiết lập, ví dụ smtp_host = "mail.example" hoặc smtp_port = 587\n',
        ),
        (
            'first_deadline_warn_days = "bảy"\n',
            f"kehoach: {toml}: first_deadline_warn_days='bảy' không phải số nguyên; ghi một số "
            "nguyên như 7, hoặc bỏ đi để dùng giá trị mặc định\n",
        ),
    ]:
        toml.write_text(text, encoding="utf-8")
        given = {"KEHOACH_CONFIG": str(toml), "KEHOACH_HOME": str(tmp_path)}
        assert _validate(given, tmp_path, plan)[:2] == (2, message)
        assert _kehoach(["plans"], given, tmp_path)[:2] == (2, message)


def _outcome(environ: dict[str, str]) -> tuple[str, object]:
    """What the fast path and engine.config make of ``environ``: (kind, value or message)."""
    results = []
    for read in (lambda: read_given(environ, SettingsFields), lambda: load_settings(environ)):
        try:
            results.append(("ok", read().model_dump()))
        except ConfigError as exc:
            results.append(("refused", str(exc)))
    assert results[0] == results[1], results
    return results[0]


VALUES = st.one_of(
    st.integers(min_value=-(10**20), max_value=10**20).map(str),
    st.text(st.characters(blacklist_characters="\x00"), max_size=12),  # none in a variable
    st.sampled_from(["7", " 10 ", "1_0", "10.0", "1e1", "+3", "-0", "TLS", "true", "any", "9-5"]),
)
NAMES = st.sampled_from(
    [
        "first_deadline_warn_days",
        "portal_threads",
        "smtp_port",
        "smtp_timeout",
        "smtp_security",
        "mail_hours",
        "demo",
        "home",
        "smtp_host",
    ]
)


@settings(max_examples=150, deadline=None, derandomize=True)
@given(name=NAMES, value=VALUES)
def test_the_fast_path_and_engine_config_agree_on_a_variable(name: str, value: str) -> None:
    _outcome({f"KEHOACH_{name.upper()}": value})


@settings(max_examples=100, deadline=None, derandomize=True)
@given(
    name=NAMES,
    value=st.one_of(
        st.integers(min_value=-(2**63), max_value=2**63 - 1),
        st.text(max_size=12),
        st.booleans(),
        st.floats(allow_nan=False, allow_infinity=False),
    ),
)
def test_the_fast_path_and_engine_config_agree_on_the_file(name: str, value: object) -> None:
    with tempfile.TemporaryDirectory() as folder:
        toml = Path(folder) / "kehoach.toml"
        # JSON's numbers and strings are TOML's too; true and false are both's
        written = json.dumps(value)
        toml.write_text(f"{name} = {written}\n", encoding="utf-8")
        _outcome({"KEHOACH_CONFIG": str(toml)})
