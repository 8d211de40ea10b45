"""The report's Markdown twin (the Prefect artifact) shows unit text, never renders it:
a link, an image or HTML typed into an answer stays text (rendered by markdown-it, the
CommonMark renderer, as a Markdown viewer would)."""

from __future__ import annotations

import datetime as dt

from markdown_it import MarkdownIt

from engine.documents import ReportDocument, render_markdown

ATTACKS = [
    "[bấm vào đây](javascript:alert(document.cookie))",
    "![](http://203.0.113.9/theo-doi.png)",
    "<img src=x onerror=alert(1)>",
    "<a href='javascript:alert(1)'>x</a>",
    "**đậm** _nghiêng_ `mã` | ô",
]


def _doc(text: str) -> ReportDocument:
    return ReportDocument(
        issuer="Công an huyện Hạ Lang",
        symbol="BC-CAH",
        place="Hạ Lang",
        day=dt.date(2023, 9, 25),
        title="BÁO CÁO",
        summary=f"Kết quả {text}",
        intro=[f"Đơn vị ghi: {text}"],
        results=[(f"Ý kiến {text}", text, text)],
        status=[(f"Xã {text}", "11/9/2023", "Đúng hạn", text)],
        on_time=[f"Xã {text}"],
        closing=text,
        recipients=[text],
    )


def test_unit_text_is_shown_not_rendered() -> None:
    md = MarkdownIt("commonmark").enable("table")
    for text in ATTACKS:
        html = md.render(render_markdown(_doc(text)))
        assert "<a " not in html, (text, html)
        assert "<img" not in html, (text, html)
        assert 'href="javascript' not in html, (text, html)
        assert "<strong>đậm</strong>" not in html and "<code>" not in html, (text, html)


def test_the_text_reads_as_typed() -> None:
    md = MarkdownIt("commonmark").enable("table")
    html = md.render(render_markdown(_doc(ATTACKS[0])))
    # the reader sees exactly what the unit typed (entities decode in the browser)
    assert "[bấm vào đây](javascript:alert(document.cookie))" in html
    text = "Số 5 - 10 (tạm tính); 3.5 ha * 2"
    assert text in md.render(render_markdown(_doc(text)))
