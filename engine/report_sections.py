"""The sections of a consolidated report the consolidating unit writes (engine.approval),
apart so that the CLI's parser names them without importing the engine."""

SECTIONS: tuple[tuple[str, str], ...] = (
    ("ket_qua", "Đánh giá kết quả thực hiện"),
    ("ton_tai", "Tồn tại, hạn chế"),
    ("nguyen_nhan", "Nguyên nhân"),
    ("phuong_huong", "Phương hướng, nhiệm vụ thời gian tới"),
    ("kien_nghi", "Kiến nghị, đề xuất"),
)
SECTION_IDS = tuple(key for key, _ in SECTIONS)
