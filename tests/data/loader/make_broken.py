"""Regenerate broken/*.yaml: one file per kind of mistake, each from a valid base.

Each case replaces one snippet of a base file; the character ``⟦`` in the
replacement marks where the error must point.  The generator writes that position
into the file's first line (``# expect: LINE:COL: substring``), so the expectation
comes from where a person would look, not from the loader's output.

    python tests/data/loader/make_broken.py
"""

from __future__ import annotations

from pathlib import Path

HERE = Path(__file__).parent
MARK = "⟦"

# (file stem, base, old snippet, new snippet with the mark, expected substring)
CASES: list[tuple[str, str, str, str, str]] = [
    # --- YAML syntax and shape
    (
        "syntax_bad_indent",
        "plan",
        "  type: KH\n  number:",
        "  type: KH\n ⟦number:",
        "lỗi cú pháp YAML",
    ),
    ("syntax_tab", "plan", "  type: KH", "⟦\ttype: KH", "lỗi cú pháp YAML"),
    (
        "syntax_duplicate_key",
        "plan",
        "  place: Huyện thử\n",
        "  place: Huyện thử\n  ⟦place: Lần nữa\n",
        "khóa 'place' bị lặp",
    ),
    (
        "syntax_unclosed_quote",
        "plan",
        "  summary: Kế hoạch thử nghiệm",
        '  summary: ⟦"Kế hoạch thử nghiệm',
        "lỗi cú pháp YAML",
    ),
    ("kind_unknown", "plan", "kind: plan", "kind: ⟦plann", "có phải ý bạn là 'plan'"),
    ("kind_missing", "plan", "kind: plan\nid:", "⟦id:", "thiếu khóa 'kind'"),
    # --- schema
    (
        "field_unknown_typo",
        "plan",
        "assignments:\n",
        "⟦asignments:\n",
        "có phải ý bạn là 'assignments'",
    ),
    (
        "field_missing_summary",
        "plan",
        "  summary: Kế hoạch thử nghiệm\n",
        "",
        "thiếu trường bắt buộc 'summary'",
    ),
    (
        "id_not_slug",
        "plan",
        "  - id: cong-an-huyen",
        "  - id: ⟦Cong_An_Huyen",
        "không phải là mã (id) hợp lệ",
    ),
    (
        "number_malformed",
        "plan",
        "  number: 12/KH-UBND",
        "  number: ⟦KH so 12",
        "không phải là số, ký hiệu văn bản",
    ),
    ("date_invalid", "plan", "  date: 2022-11-01", "  date: ⟦2022-13-01", "không phải là một ngày"),
    (
        "rule_unknown",
        "plan",
        "{rule: yearly, day: 10",
        "{rule: ⟦yearli, day: 10",
        "không phải là một rule đã biết",
    ),
    (
        "rule_impossible_day",
        "plan",
        "day: 10, month: 9, policy",
        "day: 31, month: 2, policy",
        "không phải là một ngày trong năm",
    ),
    (
        "policy_unknown",
        "plan",
        "month: 9, policy: next_working_day}\n    template",
        "month: 9, policy: ⟦next_day}\n    template",
        "policy",
    ),
    (
        "choice_without_choices",
        "plan",
        "{id: danh-gia, label: Đánh giá, type: text}",
        "⟦{id: danh-gia, label: Đánh giá, type: choice}",
        "cần 'choices'",
    ),
    (
        "sum_of_text",
        "plan",
        "{id: danh-gia, label: Đánh giá, type: text}",
        "⟦{id: danh-gia, label: Đánh giá, type: text, aggregate: sum}",
        "cần một trường số",
    ),
    ("report_without_template", "plan", "    template: mau-bao-cao\n", "", "cần 'template'"),
    (
        "target_unit_and_group",
        "plan",
        "to: {unit: ca-huyen}",
        "to: ⟦{unit: ca-huyen, group: cac-xa}",
        "đúng một trong hai: 'unit' hoặc 'group'",
    ),
    (
        "tasks_not_a_list",
        "plan",
        "    tasks:\n      - {id: ca-1, text: Tuyên truyền}",
        "    tasks: ⟦Tuyên truyền",
        "tasks",
    ),
    (
        "registry_email_invalid",
        "registry",
        "emails: [ubnd.tinh@tinh.example]",
        "emails: [⟦ubnd.tinh at tinh]",
        "không phải là địa chỉ email",
    ),
    (
        "registry_dates_reversed",
        "registry",
        "    valid_from: 2020-01-01",
        "    valid_from: 2020-01-01\n    valid_to: 2019-12-31",
        "trước valid_from",
    ),
    # --- domain
    (
        "unit_unknown",
        "plan",
        "to: {unit: ca-huyen}\n    role",
        "to: {unit: ⟦ca-huyn}\n    role",
        "không có đơn vị 'ca-huyn'",
    ),
    (
        "unit_not_valid_on_date",
        "plan",
        "as_of: 2022-11-01",
        "as_of: 2025-06-01",
        "không còn hiệu lực vào ngày của kế hoạch",
    ),
    (
        "assignment_duplicate_id",
        "plan",
        "  - id: cac-xa\n    section: II.2",
        "  - id: ⟦cong-an-huyen\n    section: II.2",
        "bị dùng hai lần",
    ),
    (
        "task_duplicate_id",
        "plan",
        "{id: xa-1, text: Rà soát}",
        "{id: ⟦ca-1, text: Rà soát}",
        "mã nhiệm vụ 'ca-1' bị dùng hai lần",
    ),
    (
        "group_unknown",
        "plan",
        "    to: {group: cac-xa}\n    tasks",
        "    to: {group: ⟦cac-phuong}\n    tasks",
        "không có nhóm 'cac-phuong'",
    ),
    (
        "group_empty",
        "plan",
        "as_of: 2022-11-01\n",
        "as_of: 2022-11-01\ngroups:\n  - id: ⟦xa-moi\n    name: Các xã mới\n    parents: [ubnd-tinh]\n    kinds: [commune-committee]\n",
        "không gồm đơn vị nào còn hiệu lực",
    ),
    (
        "deadline_after_consolidation",
        "plan",
        "{rule: yearly, day: 10, month: 9,",
        "⟦{rule: yearly, day: 30, month: 9,",
        "trùng hoặc sau hạn tổng hợp",
    ),
    (
        "consolidator_receives_nothing",
        "plan",
        "    by: ca-huyen",
        "    by: ⟦phong-vhtt",
        "không nhận báo cáo 'bao-cao-nam'",
    ),
    (
        "template_unknown",
        "plan",
        "    template: mau-bao-cao\n",
        "    template: ⟦mau-khac\n",
        "không có mẫu báo cáo 'mau-khac'",
    ),
    (
        "template_field_unknown",
        "plan",
        "    measured_by: ty-le",
        "    measured_by: ⟦ty-le-dat",
        "không mẫu báo cáo nào có trường 'ty-le-dat'",
    ),
    (
        "registry_unknown",
        "plan",
        "registry: test-tinh",
        "registry: ⟦tinh-khac",
        "chưa có danh mục đơn vị 'tinh-khac'",
    ),
    (
        "consolidates_unknown",
        "plan",
        "    consolidates: bao-cao-nam",
        "    consolidates: ⟦bao-cao-quy",
        "không có sản phẩm 'bao-cao-quy'",
    ),
    (
        "consolidates_sub_plan",
        "plan",
        "    consolidates: bao-cao-nam",
        "    consolidates: ⟦ke-hoach-cu-the",
        "không phải báo cáo",
    ),
    (
        "yearly_rule_for_once",
        "plan",
        "    frequency: yearly\n",
        "",
        "lặp lại nhưng tần suất là 'once'",
    ),
    (
        "basis_implements_unknown",
        "plan",
        "    implements: [kl-02]",
        "    implements: [⟦ct-47]",
        "không có căn cứ 'ct-47'",
    ),
    (
        "registry_duplicate_unit",
        "registry",
        "  - id: xa-b\n",
        "  - id: ⟦xa-a\n",
        "mã đơn vị 'xa-a' bị dùng hai lần",
    ),
    (
        "registry_parent_cycle",
        "registry",
        "    level: province\n    emails",
        "    level: province\n    parent: ⟦ubnd-huyen\n    emails",
        "vòng lặp cấp trên",
    ),
    (
        "registry_level_below_parent",
        "registry",
        "    kind: people-committee\n    level: district\n    parent: ubnd-tinh\n",
        "    kind: people-committee\n    level: ⟦central\n    parent: ubnd-tinh\n",
        "cấp trên phải cùng cấp hoặc cao hơn",
    ),
    (
        "registry_successor_unknown",
        "registry",
        "successors: [ca-tinh]",
        "successors: [⟦ca-tinh-moi]",
        "không có đơn vị 'ca-tinh-moi'",
    ),
    (
        "registry_parent_unknown",
        "registry",
        "    parent: ca-tinh\n",
        "    parent: ⟦ca-tinh-cu\n",
        "không có đơn vị 'ca-tinh-cu'",
    ),
]

# Cases whose mark cannot be placed by text: (stem, expected line:col, substring, bytes)
SPECIAL: list[tuple[str, str, str, bytes]] = [
    (
        "encoding_latin1",
        "3:1",
        "không phải UTF-8",
        "kind: plan\nid: x\nsummary: K\xe9 ho\xe1ch\n".encode("latin-1"),
    ),
    ("empty_file", "1:1", "tệp trống", b"# nothing but a comment\n"),
    (
        "shape_list_document",
        "1:1",
        "tài liệu phải là một mục có khóa 'kind'",
        b"- kind: plan\n- id: x\n",
    ),
]


def _position(text: str) -> tuple[int, int]:
    index = text.index(MARK)
    line = text.count("\n", 0, index) + 1
    column = index - (text.rfind("\n", 0, index) + 1) + 1
    return line, column


def build() -> list[Path]:
    bases = {
        "plan": (HERE / "base_plan.yaml").read_text(encoding="utf-8"),
        "registry": (HERE / "base_registry.yaml").read_text(encoding="utf-8"),
    }
    out = HERE / "broken"
    out.mkdir(exist_ok=True)
    written = []
    for stem, base, old, new, expected in CASES:
        text = bases[base]
        if text.count(old) != 1:
            raise SystemExit(f"{stem}: the snippet must occur once in the {base} base")
        body = text.replace(old, new)
        header = f"# expect: {{pos}}: {expected}\n# base: base_{base}.yaml\n"
        if MARK in body:
            line, column = _position(header + body)
            body = body.replace(MARK, "")
        else:
            line, column = 0, 0  # no single place: any location in this file will do
        pos = f"{line}:{column}" if line else "any"
        path = out / f"{stem}.yaml"
        path.write_text(header.format(pos=pos) + body, encoding="utf-8")
        written.append(path)
    for stem, pos, expected, raw in SPECIAL:
        path = out / f"{stem}.yaml"
        # the expectation lives in a side file: the content itself is the mistake
        path.write_bytes(raw)
        (out / f"{stem}.expect").write_text(f"# expect: {pos}: {expected}\n", encoding="utf-8")
        written.append(path)
    return written


if __name__ == "__main__":
    print(f"wrote {len(build())} files")
