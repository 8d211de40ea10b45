"""An example of each construct (docs/PLAN_FORMAT.md), in the style of real plans.

Each is the YAML of that model alone; tests/test_plan_format.py validates every one
against its model, so an example cannot drift from the schema.  Units, numbers and
names are the sample data of ``plan_definitions/``.
"""

from __future__ import annotations

EXAMPLES: dict[str, str] = {
    "Plan": """
kind: plan
id: cao-bang-so-khcn-nhiem-vu-2026
registry: cao-bang-2026
as_of: 2026-02-10
start_year: 2026
end_year: 2026
document:
  type: KH
  number: 12/KH-SKHCN
  date: 2026-02-10
  issuer: Sở Khoa học và Công nghệ tỉnh Cao Bằng
  issuer_unit: so-khcn-cao-bang
  summary: Triển khai nhiệm vụ chuyển đổi số của Sở năm 2026
  signer: {name: Hoàng Văn Mẫu, title: GIÁM ĐỐC}
assignments:
  - id: nhiem-vu-cua-so
    section: II.1
    heading: Sở Khoa học và Công nghệ
    to: {unit: so-khcn-cao-bang}
    tasks:
      - id: nen-tang-du-lieu
        text: Hoàn thành nền tảng tích hợp, chia sẻ dữ liệu của tỉnh (LGSP).
        due: hoàn thành trong quý IV năm 2026
""",
    "PlanDocument": """
type: KH
number: 134/KH-UBND
date: 2022-10-21
place: Hạ Lang
issuer: Ủy ban nhân dân huyện Hạ Lang
issuer_unit: ubnd-huyen-ha-lang
parent_body: null
summary: Thực hiện Kế hoạch số 2720/KH-UBND về công tác phòng cháy, chữa cháy
short_name: Kế hoạch PCCC
signer: {name: Nông Văn Mẫu, title: PHÓ CHỦ TỊCH, authority: KT., on_behalf_of: CHỦ TỊCH}
""",
    "Signer": """
name: Hà Văn Mẫu
title: PHÓ CHỦ TỊCH
authority: KT.
on_behalf_of: CHỦ TỊCH
""",
    "BasisItem": """
id: luat-giao-dich-dien-tu
type: Luật
number: 20/2023/QH15
date: 2023-06-22
issuer: Quốc hội
title: Luật Giao dịch điện tử
role: grounds          # "Căn cứ Luật …": issued under it, not implementing it
""",
    "Assignment": """
id: cong-an-huyen
section: II.1
heading: Công an huyện
to: {unit: ca-huyen-ha-lang}
role: consolidation_point
supporting: [{unit: phong-vhtt-ha-lang}]
tasks:
  - id: tham-muu-tong-hop
    text: Chủ trì, tham mưu UBND huyện tổ chức thực hiện Kế hoạch; tổng hợp, báo cáo.
""",
    "Target": """
group: xa-phuong-cao-bang     # or: unit: so-tai-chinh-cao-bang
""",
    "TaskItem": """
id: so-hoa-ho-so
text: Số hóa hồ sơ, kết quả giải quyết thủ tục hành chính còn hiệu lực.
lead: {unit: so-noi-vu-cao-bang}          # chủ trì: narrower than the heading
supporting: [{unit: so-khcn-cao-bang}]    # phối hợp: told, may contribute
due: Tháng 8/2026                         # tracked: due 31/8/2026
""",
    "TaskDue": """
phrase: trước ngày 30/6/2026   # exclusive by its words: the last day is 29/6
policy: next_working_day
""",
    "Progress": """
day: 15
month: 12
phrase: trước ngày 15/12 hằng năm
policy: next_working_day
""",
    "Completion": """
by: report
to: ubnd-tinh-cao-bang        # default: the plan's issuer
review: true
reminders: [10, 3]
""",
    "TaskTable": """
id: phu-luc-nhiem-vu
title: Phụ lục. Danh mục nhiệm vụ thực hiện chuyển đổi số giai đoạn 2024 - 2030
section: Phụ lục
rows:
  - id: quy-che-so
    number: "2"
    text: Ban hành quy chế quản lý, vận hành các hệ thống thông tin của Bộ.
    lead: {unit: van-phong-bo-khcn}
    supporting: [{unit: ttcntt-bo-khcn}]
    due: Quý IV năm 2024
""",
    "TaskRow": """
id: csdl-khcn
number: "1"
text: Xây dựng, vận hành cơ sở dữ liệu quốc gia về khoa học và công nghệ.
lead: {unit: cuc-cds-bo-khcn}
supporting: [{unit: ttcntt-bo-khcn}, {unit: vu-khtc-bo-khcn}]
due:
  phrase: 2024 - 2025
  progress: {day: 15, month: 12, phrase: trước ngày 15/12 hằng năm}
""",
    "Deliverable": """
id: bao-cao-thang
kind: report
title: Báo cáo tình hình giải ngân vốn đầu tư công hằng tháng
section: III.1
from_assignments: [cac-so-chu-dau-tu, ubnd-cac-xa-phuong]
routing: {to: so-tai-chinh-cao-bang}
frequency: monthly
deadline: {rule: monthly, day: 20, phrase: trước ngày 20 hằng tháng, policy: next_working_day}
template: bao-cao-giai-ngan-thang
reminders: [5, 2]
""",
    "Routing": """
to: ubnd-huyen-ha-lang
via: ca-huyen-ha-lang        # "qua Công an huyện"
""",
    "FixedDate": """
rule: fixed
date: 2026-04-10
phrase: trước ngày 10/4/2026
policy: next_working_day
""",
    "YearlyDate": """
rule: yearly
day: 10
month: 9
phrase: trước ngày 10/9 hằng năm
policy: next_working_day
""",
    "MonthlyDate": """
rule: monthly
day: 20
phrase: trước ngày 20 hằng tháng
policy: next_working_day
""",
    "PeriodEnd": """
rule: quarter_end
offset_days: 5
phrase: trong 05 ngày kể từ ngày kết thúc quý
""",
    "AfterActivation": """
rule: after_activation
days: 15
phrase: trong vòng 15 ngày kể từ ngày Kế hoạch được ban hành
""",
    "EscalationPolicy": """
to: [head, parent]
""",
    "OnRequest": """
rule: on_request
days: 3
phrase: trong 03 ngày kể từ hạn báo cáo đột xuất của các đơn vị
""",
    "CutoffPeriod": """
period: year
start_day: 15
start_month: 12
end_day: 14
end_month: 12
phrase: số liệu tính từ ngày 15/12 năm trước đến ngày 14/12 năm báo cáo
""",
    "Consolidation": """
id: tong-hop-nam
consolidates: bao-cao-nam
by: ca-huyen-ha-lang
routing: {to: ubnd-tinh-cao-bang, via: ca-tinh-cao-bang}
deadline: {rule: yearly, day: 25, month: 9, phrase: trước ngày 25/9 hằng năm}
on_behalf_of: ubnd-huyen-ha-lang
upward: {plan: cao-bang-2720-2022, deliverable: bao-cao-cap-huyen}
""",
    "Upward": """
plan: cao-bang-2720-2022
deliverable: bao-cao-cap-huyen
""",
    "Event": """
id: thang-an-toan-pccc
title: Tháng cao điểm an toàn phòng cháy, chữa cháy
month: 10
""",
    "Duty": """
id: tap-huan-pccc
text: Tập huấn nghiệp vụ phòng cháy, chữa cháy cho lực lượng dân phòng.
who: {group: ubnd-cac-xa-thi-tran}
frequency: yearly
target: 100% đội dân phòng được tập huấn
""",
    "ReportTemplate": """
id: bao-cao-cds-6-thang
title: Kết quả thực hiện nhiệm vụ chuyển đổi số
fields:
  - {id: so-buoi-tuyen-truyen, label: Số buổi tuyên truyền, type: integer, min: 0, aggregate: sum}
""",
    "TemplateField": """
id: so-vu-chay
label: Số vụ cháy xảy ra trên địa bàn
short_label: Vụ cháy
type: integer
min: 0
aggregate: sum
applies_to: {groups: [ubnd-cac-xa-thi-tran]}
""",
    "AppliesTo": """
groups: [ubnd-cac-xa-thi-tran]
assignments: [mttq-doan-the-huyen]
""",
    "Recipient": """
name: UBND tỉnh (để b/c)
purpose: report
units: [ubnd-tinh-cao-bang]
""",
    "ContentSection": """
id: kinh-phi
section: IV
title: Kinh phí thực hiện
role: funding
text: Kinh phí thực hiện Kế hoạch được bố trí trong dự toán năm 2026 của Sở.
amounts:
  - {label: Nâng cấp nền tảng LGSP, amount: 1250000000, unit: dong, source: ngân sách tỉnh}
""",
    "Amount": """
label: Tập huấn kỹ năng số cho cán bộ xã
amount: 2.5
unit: billion
source: ngân sách tỉnh
""",
    "Group": """
id: xa-phuong-cao-bang
name: Ủy ban nhân dân các xã, phường tỉnh Cao Bằng
parents: [ubnd-tinh-cao-bang]
kinds: [commune-committee, ward-committee]
""",
    "Registry": """
kind: registry
id: cao-bang-2026
name: Tỉnh Cao Bằng sau sắp xếp năm 2025
units:
  - {id: ubnd-tinh-cao-bang, name: Ủy ban nhân dân tỉnh Cao Bằng, kind: people-committee, level: province}
""",
    "Unit": """
id: ubnd-xa-ly-quoc-2025
name: Ủy ban nhân dân xã Lý Quốc
kind: commune-committee
level: commune
parent: ubnd-tinh-cao-bang
emails: [ubnd.xalyquoc@caobang.example]
valid_from: 2025-07-01
sample: true
""",
    "Person": """
name: Nông Thị Mẫu
title: Trưởng phòng Chuyển đổi số
email: chuyendoiso.skhcn@caobang.example
""",
    "CalendarOverrides": """
kind: calendar
id: vn
holidays:
  - {date: 2026-09-01, name: Nghỉ bù Quốc khánh (theo thông báo)}
""",
    "CalendarDay": """
date: 2026-09-01
name: Nghỉ bù Quốc khánh (theo thông báo)
""",
}
