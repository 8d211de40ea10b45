"""The MIME writer: what it writes parses back to exactly what went in."""

from __future__ import annotations

import email
import email.header
import email.policy

import pytest

from notifications import mime
from notifications.render import _ics_fold

NAMES = [
    "Phòng Văn hóa và Thông tin",
    "Ủy ban nhân dân thị trấn Thanh Nhật, huyện Hạ Lang, tỉnh Cao Bằng (cũ) – đặc biệt dài",
    'Office "A", Room (1) \\ B',
    "Plain ASCII Name",
    "Đội 😀 PCCC; <không> @ phải địa chỉ",
    "",
]

SUBJECTS = [
    "[134/KH-UBND] Nhắc hạn: Báo cáo kết quả công tác PCCC và CNCH – còn 7 ngày " * 3,
    "An ASCII subject that is long enough to need folding at a space, " * 3,
    "Ngắn",
]


def _parse(headers: list[str]) -> email.message.EmailMessage:
    raw = mime.compose(mime.Message(headers=[("", h) for h in headers], text="x", html="<p>x</p>"))
    for line in raw.split(b"\r\n\r\n", 1)[0].split(b"\r\n"):
        assert len(line) <= 78, line
        assert line.isascii()
    return email.message_from_bytes(raw, policy=email.policy.default)


def _rfc2047(value: str) -> str:
    """Decode as RFC 2047 §6.2 says: whitespace between adjacent encoded-words is ignored.

    (Python's address parser keeps it, so display_name may gain a space at a
    boundary; mail clients follow the RFC.)"""
    return str(email.header.make_header(email.header.decode_header(value)))


@pytest.mark.parametrize("name", NAMES)
def test_display_names_round_trip(name):
    msg = _parse([mime.address_list("To", [(name, "a@x.example"), (name, "b@x.example")])])
    assert [a.addr_spec for a in msg["To"].addresses] == ["a@x.example", "b@x.example"]
    if name.isascii():
        assert [a.display_name for a in msg["To"].addresses] == [name, name]
    else:
        words = mime.phrase(name).replace("\r\n ", " ")
        assert _rfc2047(words) == name
        # Even a lenient reader sees the words intact: cuts fall after spaces.
        shown = msg["To"].addresses[0].display_name
        assert " ".join(shown.split()) == " ".join(name.split())


@pytest.mark.parametrize("subject", SUBJECTS)
def test_subjects_round_trip(subject):
    subject = subject.strip()
    assert _parse([mime.unstructured("Subject", subject)])["Subject"] == subject


@pytest.mark.parametrize("value", ["a\r\nBcc: x@y.example", "a\nb", "a\rb"])
def test_line_breaks_never_reach_a_header(value):
    with pytest.raises(ValueError):
        mime.unstructured("Subject", value)
    with pytest.raises(ValueError):
        mime.address_list("To", [(value, "a@x.example")])


def test_bodies_and_attachments_round_trip():
    text = "Kính gửi: Phòng VH\nDòng hai\r\nDòng ba 😀\n"
    html = "<p>Hạn gửi: <strong>Thứ Hai, 11/9/2028</strong></p>"
    blob = bytes(range(256)) * 40
    raw = mime.compose(
        mime.Message(
            headers=[("", mime.simple("Message-ID", "<x@y>"))],
            text=text,
            html=html,
            attachments=[mime.Part("application/octet-stream", blob, "báo cáo tổng hợp.docx")],
        )
    )
    assert max(len(line) for line in raw.split(b"\r\n")) <= 78
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    # Text travels in canonical CRLF form.
    assert msg.get_body(("plain",)).get_content() == text.replace("\r\n", "\n").replace(
        "\n", "\r\n"
    )
    assert msg.get_body(("html",)).get_content() == html
    [attachment] = list(msg.iter_attachments())
    assert attachment.get_content() == blob
    assert attachment.get_filename() == "báo cáo tổng hợp.docx"


def test_ics_lines_fold_at_75_octets_on_character_boundaries():
    line = "SUMMARY:Hạn gửi: Báo cáo kết quả công tác phòng cháy, chữa cháy 😀 " * 4
    folded = _ics_fold(line)
    physical = folded.split("\r\n")
    assert len(physical) > 3
    assert all(len(p.encode("utf-8")) <= 75 for p in physical)
    assert folded.replace("\r\n ", "") == line
