"""Jinja2 pages (autoescaped) and the Vietnamese texts of refusals and errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from starlette.responses import HTMLResponse

from portal.access import RefusalReason

TEMPLATES = Path(__file__).parent / "templates"
STATIC = Path(__file__).parent / "static"

REFUSALS: dict[RefusalReason, tuple[str, str]] = {
    RefusalReason.FORGED: (
        "Đường dẫn không hợp lệ",
        "Đường dẫn này không đúng hoặc đã bị thay đổi. Vui lòng mở lại đường dẫn trong thư "
        "giao nhiệm vụ (bấm trực tiếp, hoặc sao chép đầy đủ, không bỏ sót ký tự nào).",
    ),
    RefusalReason.MALFORMED: (
        "Đường dẫn không hợp lệ",
        "Đường dẫn này không đọc được. Vui lòng mở lại đường dẫn trong thư giao nhiệm vụ.",
    ),
    RefusalReason.UNKNOWN: (
        "Không tìm thấy nhiệm vụ",
        "Đường dẫn không ứng với nhiệm vụ nào đang được theo dõi. Vui lòng mở đường dẫn "
        "trong thư mới nhất mà đơn vị nhận được.",
    ),
    RefusalReason.EXPIRED: (
        "Đường dẫn đã hết hạn",
        "Kỳ báo cáo của nhiệm vụ này đã kết thúc hoặc đường dẫn được cấp đã quá lâu. Nếu đơn "
        "vị vẫn cần gửi hoặc xem lại báo cáo, hãy yêu cầu đường dẫn mới ở dưới đây.",
    ),
    RefusalReason.REVOKED: (
        "Đường dẫn đã được thay thế",
        "Đường dẫn này đã bị thu hồi và thay bằng đường dẫn mới (ví dụ khi nhiệm vụ được "
        "chuyển cho đơn vị khác hoặc khi đường dẫn cũ bị lộ). Vui lòng dùng đường dẫn trong "
        "thư mới nhất, hoặc yêu cầu gửi lại ở dưới đây.",
    ),
    RefusalReason.CLOSED: (
        "Kỳ báo cáo đã đóng",
        "Kỳ báo cáo này đã được tổng hợp và đóng lại nên không nhận thêm báo cáo qua cổng. "
        "Nếu cần bổ sung, vui lòng liên hệ đơn vị tổng hợp báo cáo.",
    ),
}

ERRORS: dict[int, tuple[str, str]] = {
    400: (
        "Yêu cầu không hợp lệ",
        "Trình duyệt đã gửi một yêu cầu không đọc được. Vui lòng thử lại.",
    ),
    401: ("Cần đăng nhập", "Trang này cần tài khoản được cấp."),
    403: ("Không được phép", "Bạn không có quyền thực hiện thao tác này."),
    404: (
        "Không tìm thấy trang",
        "Địa chỉ này không có trên cổng. Vui lòng mở đường dẫn trong thư giao nhiệm vụ.",
    ),
    405: ("Thao tác không được hỗ trợ", "Trang này không nhận thao tác đó."),
    409: ("Không thực hiện được", "Thao tác này không còn thực hiện được."),
    413: (
        "Dữ liệu gửi lên quá lớn",
        "Tổng dung lượng gửi lên vượt giới hạn của cổng. Vui lòng giảm kích thước tệp đính kèm "
        "(nén hoặc chia nhỏ) rồi gửi lại.",
    ),
    422: ("Yêu cầu không hợp lệ", "Dữ liệu gửi lên không đúng mẫu. Vui lòng tải lại trang."),
    429: (
        "Quá nhiều yêu cầu",
        "Có quá nhiều yêu cầu trong thời gian ngắn. Vui lòng chờ khoảng một phút rồi thử lại.",
    ),
    500: (
        "Lỗi hệ thống",
        "Đã xảy ra lỗi ở phía máy chủ; dữ liệu chưa được ghi nhận. Vui lòng thử lại sau ít "
        "phút; nếu vẫn lỗi, hãy báo cho đơn vị tổng hợp báo cáo.",
    ),
    503: ("Tạm thời không phục vụ", "Dịch vụ đang tạm dừng. Vui lòng thử lại sau."),
}

CSRF_FAILED = (
    "Phiên làm việc không hợp lệ",
    "Biểu mẫu đã hết hiệu lực hoặc không được gửi từ trang của cổng (ví dụ: trình duyệt chặn "
    "cookie, hoặc trang được mở quá lâu). Chưa có gì được lưu. Vui lòng mở lại trang nhiệm "
    "vụ rồi gửi lại.",
)


class Pages:
    def __init__(self) -> None:
        self.env = Environment(
            loader=FileSystemLoader(str(TEMPLATES)),
            autoescape=True,  # every template here is HTML
            undefined=StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
            auto_reload=False,
        )

    def html(self, name: str, **context: Any) -> str:
        context.setdefault("plan", None)
        return self.env.get_template(name).render(**context)

    def response(self, name: str, status_code: int = 200, **context: Any) -> HTMLResponse:
        return HTMLResponse(self.html(name, **context), status_code=status_code)

    def error(
        self,
        status: int,
        title: str | None = None,
        message: str | None = None,
        back: str | None = None,
    ) -> HTMLResponse:
        default_title, default_message = ERRORS.get(status, ERRORS[500])
        return self.response(
            "error.html.j2",
            status,
            title=title or default_title,
            message=message or default_message,
            back=back,
        )

    def error_bytes(self, status: int, back: str | None = None) -> bytes:
        title, message = ERRORS.get(status, ERRORS[500])
        return self.html("error.html.j2", title=title, message=message, back=back).encode()
