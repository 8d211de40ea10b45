"""Every command's arguments.  Each command names its function as ``module:function``;
:func:`cli.main.main` imports that module only when the command runs."""

from __future__ import annotations

import argparse
import datetime as dt
import os
from collections.abc import Callable
from typing import Any

from cli.argparse_vi import VietnameseParser

Setup = Callable[[argparse.ArgumentParser], None]


def day_arg(text: str) -> dt.date:
    """A day on the command line: 2027-09-12 or, as written in Vietnamese, 12/9/2027."""
    raw = text.strip()
    try:
        if "/" in raw:
            day, month, year = (int(part) for part in raw.split("/"))
            return dt.date(year, month, day)
        return dt.date.fromisoformat(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"'{text}' không phải là ngày: viết YYYY-MM-DD hoặc d/m/yyyy"
        ) from None


class CommandParser(VietnameseParser):
    """A command's parser whose arguments may be added when it is first used.

    ``setup`` runs before the command's arguments are parsed or its help is printed,
    so arguments whose choices come from a heavier module (the outbox states, from
    engine.states, which imports SQLAlchemy) cost the other commands nothing.
    """

    def __init__(self, *args: Any, setup: Setup | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._setup = setup

    def _ready(self) -> None:
        setup, self._setup = self._setup, None
        if setup is not None:
            setup(self)

    def parse_known_args(self, *args: Any, **kwargs: Any):
        self._ready()
        return super().parse_known_args(*args, **kwargs)

    def format_usage(self) -> str:
        self._ready()
        return super().format_usage()

    def format_help(self) -> str:
        self._ready()
        return super().format_help()


def build_parser() -> argparse.ArgumentParser:
    parser = VietnameseParser(
        prog="kehoach",
        description="Kế hoạch của cơ quan nhà nước viết bằng YAML, chạy bằng Prefect: giao "
        "nhiệm vụ, nhắc hạn, nhận báo cáo, tổng hợp.",
        epilog="Mã thoát: 0 thành công, 1 lỗi người dùng (audit --verify: nhật ký không còn nguyên vẹn), 2 sai cách dùng, 3 tệp định nghĩa "
        "không hợp lệ, 4 không tìm thấy, 5 có việc của đơn vị đã không còn mà không ai nhận, 70 lỗi nội bộ.",
    )
    parser.add_argument(
        "--database-url",
        help="URL SQLAlchemy của cơ sở dữ liệu (mặc định: $KEHOACH_DATABASE_URL "
        "hoặc var/kehoach.sqlite)",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=CommandParser)
    _definitions(sub)
    _activate_and_status(sub)
    _mail(sub)
    _prefect(sub)
    _review_and_closing(sub)
    _request(sub)
    _report(sub)
    _audit(sub)
    _add(
        sub,
        "doctor",
        "kiểm tra cấu hình từ đầu đến cuối (cơ sở dữ liệu, Prefect, worker, SMTP, khóa ký)",
        "cli.doctor:cmd_doctor",
    )
    _add(
        sub,
        "import",
        "chuyển văn bản kế hoạch (.txt, .docx, .pdf) thành bản nháp YAML có ghi chú cần kiểm tra",
        "cli.importer:cmd_import",
        setup=_import_setup,
    )
    _registry(sub)
    return parser


def _import_setup(p: argparse.ArgumentParser) -> None:
    from cli.importer import setup

    setup(p)


def _request(sub: Any) -> None:
    p = _add(
        sub,
        "request",
        "yêu cầu một báo cáo đột xuất (báo cáo frequency: on_request): tạo một kỳ mới",
        "cli.request:cmd_request",
    )
    p.add_argument("plan", metavar="PLAN", help="mã kế hoạch")
    p.add_argument("deliverable", metavar="DELIVERABLE", help="mã báo cáo theo yêu cầu")
    p.add_argument(
        "--due",
        required=True,
        type=day_arg,
        metavar="DATE",
        help="hạn gửi, YYYY-MM-DD hoặc d/m/yyyy",
    )
    who = p.add_mutually_exclusive_group()
    who.add_argument(
        "--units",
        nargs="+",
        metavar="UNIT",
        help="chỉ các đơn vị này (mã, cách nhau bởi dấu cách hoặc phẩy)",
    )
    who.add_argument("--group", metavar="GROUP", help="chỉ các đơn vị của nhóm này")
    p.add_argument("--reason", required=True, help="nội dung, lý do yêu cầu (gửi kèm thư)")
    p.add_argument("--by", help="người yêu cầu (ghi vào nhật ký kiểm tra)")


def _registry(sub: Any) -> None:
    """registry apply, registry history (cli.registry)."""
    p = _add(
        sub,
        "registry",
        "thay đổi danh bạ đơn vị theo ngày (sáp nhập, giải thể, đổi tên) và xem lịch sử",
        "cli.registry:cmd_registry_history",
    )
    actions = p.add_subparsers(dest="registry_command", metavar="ACTION", required=True)
    a = actions.add_parser(
        "apply",
        help="áp dụng tệp thay đổi danh bạ (kind: registry-change), tất cả hoặc không gì",
        description="áp dụng tệp thay đổi danh bạ (kind: registry-change), tất cả hoặc không gì",
    )
    a.set_defaults(func="cli.registry:cmd_registry_apply")
    a.add_argument("files", nargs="+", metavar="CHANGE", help="tệp YAML hoặc thư mục")
    a.add_argument("--at", type=day_arg, metavar="DATE", help="ngày áp dụng (mặc định: hôm nay)")
    h = actions.add_parser(
        "history",
        help="các phiên bản của một đơn vị: tên, cấp trên, email theo thời gian, đơn vị kế thừa",
        description="các phiên bản của một đơn vị: tên, cấp trên, email theo thời gian",
    )
    h.set_defaults(func="cli.registry:cmd_registry_history")
    h.add_argument("unit", metavar="UNIT", help="mã đơn vị, ví dụ ca-huyen-ha-lang")
    h.add_argument("--registry", metavar="ID", help="mã danh bạ (mặc định: mọi danh bạ đã nạp)")


def _add(
    sub: Any, name: str, help_text: str, func: str, setup: Setup | None = None
) -> argparse.ArgumentParser:
    command: argparse.ArgumentParser = sub.add_parser(
        name, help=help_text, description=help_text, setup=setup
    )
    command.set_defaults(func=func)
    return command


def _definitions(sub: Any) -> None:
    """validate, load, plans, show, schema, calendar (cli.definitions)."""
    p = _add(
        sub,
        "validate",
        "kiểm tra tệp định nghĩa (danh bạ đơn vị, kế hoạch, lịch)",
        "cli.definitions:cmd_validate",
    )
    p.add_argument("files", nargs="+", metavar="FILE", help="tệp YAML hoặc thư mục")
    p = _add(
        sub,
        "load",
        "kiểm tra và lưu tệp định nghĩa thành phiên bản mới",
        "cli.definitions:cmd_load",
    )
    p.add_argument("files", nargs="+", metavar="FILE", help="tệp YAML hoặc thư mục")
    p.add_argument(
        "--confirm",
        action="store_true",
        help="lưu cả phiên bản kế hoạch bỏ bớt phần giao việc, sản phẩm, đơn vị hay trường",
    )
    p.add_argument(
        "--apply-to-running",
        action="store_true",
        help="chuyển các kỳ đang chạy sang phiên bản mới (mặc định: giữ phiên bản cũ)",
    )
    _add(sub, "plans", "liệt kê các kế hoạch đã lưu và phiên bản", "cli.definitions:cmd_plans")
    p = _add(sub, "show", "in kế hoạch dạng cây dễ đọc", "cli.definitions:cmd_show")
    p.add_argument("plan", metavar="PLAN", help="mã kế hoạch đã lưu, hoặc tệp YAML")
    p = _add(sub, "schema", "in JSON Schema của tệp định nghĩa YAML", "cli.definitions:cmd_schema")
    p.add_argument("-o", "--output", help="ghi ra tệp này thay vì màn hình")
    p.add_argument(
        "--markdown",
        action="store_true",
        help="tài liệu định dạng kế hoạch (docs/PLAN_FORMAT.md) thay vì JSON Schema",
    )
    p = _add(
        sub,
        "calendar",
        "in mọi hạn và sự kiện trong một năm",
        "cli.definitions:cmd_calendar",
    )
    p.add_argument("plan", metavar="PLAN", help="mã kế hoạch đã lưu, hoặc tệp YAML")
    p.add_argument("--year", type=int, default=dt.date.today().year, help="năm (mặc định: năm nay)")


def _activate_and_status(sub: Any) -> None:
    p = _add(
        sub,
        "activate",
        "tạo các kỳ và nghĩa vụ của kế hoạch đã nạp, xếp hàng email giao nhiệm vụ",
        "cli.running:cmd_activate",
    )
    p.add_argument("plan", metavar="PLAN", help="mã kế hoạch")
    p.add_argument(
        "--year",
        dest="years",
        type=int,
        action="append",
        metavar="YEAR",
        help="năm của kỳ (lặp lại được; mặc định: năm nay theo giờ Việt Nam)",
    )
    p.add_argument("--at", type=day_arg, metavar="DATE", help="ngày kích hoạt (mặc định: bây giờ)")
    p = _add(
        sub,
        "status",
        "bảng bốn trạng thái các nghĩa vụ của một kế hoạch",
        "cli.running:cmd_status",
    )
    p.add_argument("plan", metavar="PLAN", help="mã kế hoạch")
    p.add_argument("--cycle", metavar="KEY", help="mã kỳ, ví dụ 2027 (mặc định: mọi kỳ)")
    p.add_argument("--no-color", action="store_true", help="chữ thường, không tô màu")
    p.add_argument(
        "--at",
        type=day_arg,
        metavar="DATE",
        help="tình hình tính đến hết ngày này, YYYY-MM-DD hoặc d/m/yyyy: việc xảy ra sau "
        "ngày đó không tính (mặc định: hôm nay, hoặc KEHOACH_NOW)",
    )
    p.add_argument(
        "--wide",
        action="store_true",
        help="bảng đầy đủ: mọi cột, không cắt tên (rộng hơn 100 cột)",
    )


def _outbox_arguments(p: argparse.ArgumentParser) -> None:
    from engine.states import OutboxStatus

    p.add_argument(
        "--status",
        choices=[status.value for status in OutboxStatus],
        help="chỉ thư ở trạng thái này: "
        + ", ".join(f"{status.value} = {status.label.lower()}" for status in OutboxStatus),
    )
    p.add_argument("--kind", metavar="KIND", help="chỉ loại thư này (assignment, reminder, …)")
    p.add_argument("--limit", type=int, default=50, help="N thư mới nhất (mặc định 50)")


def _mail(sub: Any) -> None:
    _add(
        sub,
        "outbox",
        "liệt kê thư chờ gửi, đã gửi và gửi không được",
        "cli.mail:cmd_outbox",
        setup=_outbox_arguments,
    )
    p = _add(sub, "dispatch", "gửi các thư đến giờ gửi", "cli.mail:cmd_dispatch")
    p.add_argument("--limit", type=int, help="gửi nhiều nhất N thư")
    p.add_argument("--now", help="giờ ảo, ISO 8601 (mặc định: giờ thật)")


def _prefect(sub: Any) -> None:
    """deploy, simulate, demo (cli.prefect) and portal (cli.portal)."""
    p = _add(
        sub,
        "deploy",
        "tạo hoặc cập nhật các deployment Prefect của kế hoạch",
        "cli.prefect:cmd_deploy",
    )
    p.add_argument("plan", metavar="PLAN", help="mã kế hoạch, hoặc 'all' cho mọi kế hoạch")
    p = _add(
        sub, "simulate", "chạy các flow của kế hoạch theo đồng hồ ảo", "cli.prefect:cmd_simulate"
    )
    p.add_argument("plan", metavar="PLAN", help="mã kế hoạch")
    p.add_argument(
        "--from", dest="start", required=True, type=day_arg, metavar="DATE", help="từ ngày"
    )
    p.add_argument(
        "--until", dest="until", required=True, type=day_arg, metavar="DATE", help="đến ngày"
    )
    p.add_argument("--responses", metavar="FILE", help="tệp YAML: đơn vị nào gửi gì, khi nào")
    p.add_argument("--no-parents", action="store_true", help="không chạy kèm các kế hoạch cấp trên")
    p.add_argument("--no-email", action="store_true", help="xếp hàng email nhưng không gửi")
    p = _add(
        sub,
        "demo",
        "dựng sẵn và mô phỏng kế hoạch mẫu trong một năm (việc chính)",
        "cli.prefect:cmd_demo",
    )
    p.add_argument("--year", type=int, help="năm mô phỏng (mặc định 2023)")
    p.add_argument("--prefect-port", type=int, help="cổng của máy chủ Prefect cục bộ (4200)")
    p = _add(sub, "portal", "chạy cổng thông tin cho các đơn vị", "cli.portal:cmd_portal")
    p.add_argument("--host", default="127.0.0.1", help="địa chỉ lắng nghe (127.0.0.1)")
    p.add_argument("--port", type=int, default=8700, help="cổng (8700)")


def _report(sub: Any) -> None:
    """The consolidated report's way upward (cli.report, engine.approval)."""
    from engine.report_sections import SECTIONS

    p = _add(
        sub,
        "report",
        "báo cáo tổng hợp: xem, duyệt và cấp số, lưu bản đã ký, gửi cấp trên",
        "cli.report:cmd_report",
    )
    p.add_argument("plan", metavar="PLAN", help="mã kế hoạch")
    p.add_argument(
        "step",
        nargs="?",
        choices=["show", "approve", "sign", "send"],
        help="show (mặc định), approve, sign FILE.pdf, send",
    )
    p.add_argument("file", nargs="?", metavar="FILE", help="tệp PDF đã ký (với sign)")
    p.add_argument("--cycle", required=True, metavar="KEY", help="mã kỳ, ví dụ 2027")
    p.add_argument("--consolidation", metavar="ID", help="lần tổng hợp (khi kế hoạch có nhiều)")
    for key, label in SECTIONS:
        p.add_argument(f"--{key.replace('_', '-')}", dest=key, metavar="TEXT", help=label)
    p.add_argument("--by", default=os.environ.get("USER", "operator"), help="người duyệt")


def _review_and_closing(sub: Any) -> None:
    p = _add(sub, "review", "chấp nhận hoặc trả lại một bản nộp", "cli.running:cmd_review")
    p.add_argument("submission", type=int, metavar="SUBMISSION_ID", help="mã bản nộp")
    p.add_argument(
        "decision",
        choices=["accept", "return"],
        help="accept = chấp nhận; return = trả lại để đơn vị hoàn thiện",
    )
    p.add_argument("--reason", help="lý do (bắt buộc khi trả lại; gửi email cho đơn vị)")
    p.add_argument("--by", default=os.environ.get("USER", "operator"), help="người duyệt")
    p = _add(
        sub,
        "close",
        "đóng một kỳ bằng tay (tiếp nhận bản nộp còn chờ, liệt kê đơn vị không nộp)",
        "cli.running:cmd_close",
    )
    p.add_argument("plan", metavar="PLAN", help="mã kế hoạch")
    p.add_argument("--cycle", required=True, metavar="KEY", help="mã kỳ, ví dụ 2027")
    p.add_argument(
        "--at", type=day_arg, metavar="DATE", help="ngày đóng, YYYY-MM-DD (mặc định: bây giờ)"
    )
    p.add_argument(
        "--force",
        action="store_true",
        help="đóng cả khi kỳ chưa được tổng hợp",
    )
    p.add_argument("--reason", help="lý do, ghi vào nhật ký kiểm tra")
    p.add_argument("--by", default=os.environ.get("USER", "admin"), help="người thực hiện")
    p = _add(
        sub,
        "consolidate",
        "tổng hợp báo cáo của một kỳ ngay; --revise lập báo cáo thay thế",
        "cli.running:cmd_consolidate",
    )
    p.add_argument("plan", metavar="PLAN", help="mã kế hoạch")
    p.add_argument("--cycle", required=True, metavar="KEY", help="mã kỳ, ví dụ 2027")
    p.add_argument("--consolidation", metavar="ID", help="chỉ một đợt tổng hợp (mặc định: tất cả)")
    p.add_argument(
        "--revise",
        action="store_true",
        help="khi có báo cáo đến hoặc thay đổi sau báo cáo tổng hợp: lập lần mới thay thế "
        "(và gửi lại lên cấp trên)",
    )
    p = _add(sub, "reopen", "mở lại một kỳ đã đóng đến một ngày", "cli.running:cmd_reopen")
    p.add_argument("plan", metavar="PLAN", help="mã kế hoạch")
    p.add_argument("--cycle", required=True, metavar="KEY", help="mã kỳ, ví dụ 2027")
    p.add_argument(
        "--until",
        required=True,
        type=day_arg,
        metavar="DATE",
        help="ngày cuối đường dẫn của các đơn vị dùng lại được, YYYY-MM-DD",
    )
    p.add_argument("--reason", required=True, help="lý do, ghi vào nhật ký kiểm tra")
    p.add_argument("--by", default=os.environ.get("USER", "admin"), help="người thực hiện")


def _audit(sub: Any) -> None:
    p = _add(
        sub,
        "audit",
        "in nhật ký kiểm tra của kế hoạch; --verify kiểm tra chuỗi băm và các báo cáo nó ghi nhận",
        "cli.audit:cmd_audit",
    )
    p.add_argument(
        "plan", nargs="?", metavar="PLAN", help="mã kế hoạch (với --verify: không bắt buộc)"
    )
    p.add_argument("--cycle", metavar="KEY", help="chỉ các dòng của kỳ này, ví dụ 2027")
    p.add_argument(
        "--verify",
        action="store_true",
        help="kiểm tra chuỗi và mọi mã băm nội dung được tham chiếu; thoát 1 ở chỗ hỏng đầu tiên",
    )
