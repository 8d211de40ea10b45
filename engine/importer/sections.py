"""The body of a plan as a tree: sections (I, II … or "Phần II"), items (1., 1.1, 1/),
points (a) … đ) … g)), "-" and "+" bullets, plain paragraphs and table rows."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field

from engine.importer.normalise import Paragraph, is_caps

ROMAN_HEAD = re.compile(
    r"^(?:(?:PHẦN|Phần|MỤC|Mục)\s+(?P<word>[IVX]+|\d+)\s*[.:\-–]?\s*|(?P<label>[IVX]+)\s*[.\-–/]\s*)(?P<title>\S.*)?$"
)
ITEM = re.compile(r"^(?P<label>\d+(?:\.\d+)*)\s*[./)]?\s+(?P<text>\S.*)$")
POINT = re.compile(r"^(?P<label>[a-zđ])\s*\)\s*(?P<text>\S.*)$")
BULLET = re.compile(r"^[-•*–]\s*(?P<text>\S.*)$")
PLUS = re.compile(r"^\+\s*(?P<text>\S.*)$")
# A heading in capitals with no number ("TỔ CHỨC THỰC HIỆN", "PHỤ LỤC").
_BARE_HEADINGS = re.compile(
    r"^(?:MỤC ĐÍCH|NỘI DUNG|NHIỆM VỤ|TỔ CHỨC THỰC HIỆN|PHÂN CÔNG|GIẢI PHÁP|KINH PHÍ|CHẾ ĐỘ BÁO CÁO|PHỤ LỤC|THỜI GIAN|THÀNH PHẦN)"
)
_APPENDIX = re.compile(r"^(?:PHỤ LỤC|Phụ lục)\b")
_CAPTION = re.compile(r"^\((?:Kèm theo|Ban hành kèm theo)")
_STOP = re.compile(r"^(?:Trên đây|Nơi nhận|Lưu\s*:)")

LEVELS = {
    "section": 1,
    "item": 2,
    "subitem": 3,
    "point": 4,
    "bullet": 5,
    "plus": 6,
    "text": 9,
    "row": 9,
}


@dataclass
class Node:
    kind: str
    label: str | None
    text: str
    para: Paragraph | None
    children: list[Node] = field(default_factory=list)
    parent: Node | None = None

    @property
    def level(self) -> int:
        return LEVELS[self.kind]

    @property
    def line(self) -> int:
        return self.para.first_line if self.para else 0

    def path(self) -> str:
        """'II.1', 'V.2.a': the labels of the section, item and point above it."""
        labels: list[str] = []
        node: Node | None = self
        while node is not None:
            if node.label and node.kind in {"section", "item", "subitem", "point"}:
                labels.append(node.label)
            node = node.parent
        return ".".join(reversed(labels))

    def walk(self) -> Iterator[Node]:
        yield self
        for child in self.children:
            yield from child.walk()


def classify(para: Paragraph) -> Node:
    text = para.text
    if para.is_table_row:
        return Node("row", None, text, para)
    head = ROMAN_HEAD.match(text)
    if head and (
        head["word"] or (head["title"] and (is_caps(head["title"][:40]) or len(head["title"]) < 80))
    ):
        label = head["word"] or head["label"]
        return Node("section", label, (head["title"] or "").strip(), para)
    if is_caps(text) and _BARE_HEADINGS.match(text):
        return Node("section", "PL" if text.startswith("PHỤ LỤC") else None, text, para)
    item = ITEM.match(text)
    if item and int(item["label"].split(".")[0]) < 100:
        kind = "subitem" if "." in item["label"] else "item"
        return Node(kind, item["label"], item["text"], para)
    point = POINT.match(text)
    if point:
        return Node("point", point["label"], point["text"], para)
    bullet = BULLET.match(text)
    if bullet:
        return Node("bullet", None, bullet["text"], para)
    plus = PLUS.match(text)
    if plus:
        return Node("plus", None, plus["text"], para)
    return Node("text", None, text, para)


def build_tree(paragraphs: list[Paragraph]) -> tuple[Node, list[Paragraph], list[Paragraph]]:
    """The body's tree, the paragraphs before its first section (the preamble) and the
    paragraphs from "Trên đây"/"Nơi nhận" on (the closing)."""
    root = Node("root", None, "", None)
    preamble: list[Paragraph] = []
    closing: list[Paragraph] = []
    stack: list[Node] = [root]
    in_body = False
    for index, para in enumerate(paragraphs):
        if para.used:
            continue
        if _STOP.match(para.text) and in_body and not closing:
            rest = paragraphs[index:]
            appendix = next((i for i, p in enumerate(rest) if _APPENDIX.match(p.text)), len(rest))
            closing = [p for p in rest[:appendix] if not p.used]
            for later in closing:
                later.used = True  # read by the closing, not the tree
            stack = [root]
            continue
        node = classify(para)
        if node.kind == "section":
            in_body = True
            last = root.children[-1] if root.children else None
            if node.label is None and last is not None and last.label == "PL" and not last.children:
                last.text = f"{last.text} {node.text}"  # the appendix's title under "PHỤ LỤC"
                para.used = True
                continue
        if _CAPTION.match(para.text) and in_body:
            para.used = True  # "(Kèm theo Kế hoạch số …)": the appendix's caption
            continue
        if not in_body:
            preamble.append(para)
            continue
        if node.kind in {"text", "row"}:
            parent = stack[-1]
        else:
            while len(stack) > 1 and stack[-1].level >= node.level:
                stack.pop()
            parent = stack[-1]
        node.parent = parent
        parent.children.append(node)
        if node.kind not in {"text", "row"}:
            stack.append(node)
    return root, preamble, closing
