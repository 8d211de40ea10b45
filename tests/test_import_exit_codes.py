"""`kehoach import`'s exit codes follow the README's table: 0 ok; 1 a user error (a file
that is not a readable plan, a missing file, a draft that cannot be written; `--diff`:
the draft differs in a main part); 2 wrong usage; 3 invalid definition files (the
registry or a change set, problems located); 4 a registry id that is not loaded.
Each path is run through the command's entry point, as the shell runs it."""

from __future__ import annotations

import pytest

from cli.main import main
from tests.import_docs import ROOT

SEED = ROOT / "plan_definitions" / "sources" / "000_c128544cc2c3a018.txt"
REGISTRY = ROOT / "plan_definitions" / "registry_cao_bang.yaml"


def _run(capsys, *args: str) -> tuple[int, str]:
    code = main(["import", *args])
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return code, err


def test_0_a_plan_imported(tmp_path, capsys):
    code, err = _run(capsys, str(SEED), "--registry", str(REGISTRY), "-o", str(tmp_path / "d.yaml"))
    assert code == 0 and "Đã ghi" in err


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (b"", "tệp trống"),
        (bytes(range(256)) * 4, "tệp nhị phân"),
        ("Chào anh,\nHẹn gặp lại.\n".encode(), "không nhận ra một kế hoạch"),
    ],
)
def test_1_a_file_that_is_not_a_readable_plan(tmp_path, capsys, content, words):
    (tmp_path / "x.txt").write_bytes(content)
    code, err = _run(capsys, str(tmp_path / "x.txt"))
    assert code == 1 and err.startswith(f"kehoach: {tmp_path / 'x.txt'}") and words in err


def test_1_a_missing_file_and_an_unwritable_draft(tmp_path, capsys):
    code, err = _run(capsys, str(tmp_path / "khong-co.txt"))
    assert code == 1 and "không có tệp này" in err
    code, err = _run(capsys, str(SEED), "-o", str(tmp_path / "khong-co" / "d.yaml"))
    assert code == 1 and "không ghi được tệp" in err


def test_2_wrong_usage(capsys):
    with pytest.raises(SystemExit) as exited:
        main(["import", str(SEED), "--khong-co-tuy-chon"])
    assert exited.value.code == 2
    code, err = _run(capsys, str(SEED), "--changes", str(REGISTRY))
    assert code == 2 and "--changes cần --registry" in err


def test_3_an_invalid_registry_file(tmp_path, capsys):
    broken = tmp_path / "danh-ba.yaml"
    broken.write_text("kind: registry\nid: sai\nunits:\n  - id: a\n", encoding="utf-8")
    code, err = _run(capsys, str(SEED), "--registry", str(broken))
    assert code == 3 and f"{broken}:4:" in err and "không lưu gì" in err


def test_4_a_registry_id_that_is_not_loaded(tmp_path, capsys):
    store = f"sqlite:///{tmp_path / 'chua-co.sqlite'}"
    code = main(["--database-url", store, "import", str(SEED), "--registry", "khong-co"])
    err = capsys.readouterr().err
    assert code == 4 and "chưa nạp danh bạ 'khong-co'" in err
