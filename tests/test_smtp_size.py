"""The SIZE the dispatcher announces is what aiosmtplib sends in DATA."""

from __future__ import annotations

import pytest
from aiosmtplib.protocol import normalize_message_line_endings

from notifications.smtp import wire_size


@pytest.mark.parametrize(
    "data",
    [
        b"Subject: a\r\n\r\nbody\r\n",
        b"Subject: a\r\n\r\nbody",  # no final line ending: two octets added
        b"Subject: a\n\nbody\n",  # bare LF: each becomes CRLF
        b"Subject: a\r\rbody\r\n",  # bare CR
        b"a\r\n\nb\r\r\n",  # mixed
        b"",
        b"\r\n",
        b"\n\r",
        "Tiêu đề: Giao nhiệm vụ\r\n\r\nKính gửi\r\n".encode(),
    ],
)
def test_wire_size_is_the_normalised_length(data: bytes) -> None:
    assert wire_size(data) == len(normalize_message_line_endings(data))
