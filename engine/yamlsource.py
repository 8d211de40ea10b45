"""Read YAML while remembering where every value stood (line and column).

PyYAML's composer gives nodes with start marks; we build plain Python data from the
node tree ourselves and keep a map from each value's path — a tuple of mapping keys
and list indexes — to its position, so any later error can point at the exact place.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

try:  # the C loader is several times faster; fall back where libyaml is missing
    from yaml import CSafeLoader as _Loader
except ImportError:  # pragma: no cover
    # Same interface, another class: mypy sees a redefinition.
    from yaml import SafeLoader as _Loader  # type: ignore[assignment]

from engine.errors import Location

PathKey = tuple[str | int, ...]


@dataclass
class Source:
    """One parsed YAML document with positions: ``data`` plus ``where(path)``."""

    path: str
    text: str
    data: Any
    positions: dict[PathKey, tuple[int, int]] = field(default_factory=dict)
    key_positions: dict[PathKey, tuple[int, int]] = field(default_factory=dict)
    budget: Any = field(default=None, repr=False, compare=False)  # while parsing

    def where(self, path: PathKey, *, key: bool = False) -> Location:
        """The location of ``path``; of its key when ``key``; else the nearest ancestor."""
        probe = tuple(path)
        while True:
            table = self.key_positions if key else self.positions
            if probe in table:
                line, column = table[probe]
                return Location(self.path, line, column)
            if key and probe in self.positions:
                line, column = self.positions[probe]
                return Location(self.path, line, column)
            if not probe:
                return Location(self.path, 1, 1)
            probe = probe[:-1]

    def has(self, path: PathKey) -> bool:
        return tuple(path) in self.positions


class YamlSyntaxError(Exception):
    def __init__(self, location: Location, message: str) -> None:
        super().__init__(message)
        self.location = location
        self.message = message


_BOOL = {"true": True, "false": False}


def _scalar(node: yaml.ScalarNode, loader: Any) -> Any:
    # Resolve with the safe constructor so "2022-10-21" is a date and "3" an int,
    # exactly as yaml.safe_load would.
    try:
        return loader.construct_object(node, deep=True)
    except ValueError:
        # e.g. "2022-13-01" looks like a date but is none: keep the text so the
        # schema reports it against the field that expects a date.
        return node.value


# Aliases (*name) may repeat a part of the document; nested ones multiply (350 bytes of
# "billion laughs" expanded to 2.4 GB). Without aliases a document has fewer values than
# characters, so aliases may add at most this many values beyond the text's length.
ALIAS_ALLOWANCE = 10_000


class _Budget:
    def __init__(self, text: str) -> None:
        self.left = len(text) + ALIAS_ALLOWANCE

    def spend(self, node: yaml.Node, file: str) -> None:
        self.left -= 1
        if self.left < 0:
            raise YamlSyntaxError(
                Location(file, node.start_mark.line + 1, node.start_mark.column + 1),
                "phần được đặt tên bằng &tên ở đây bị các bí danh (*tên) lặp lại thành nhiều "
                f"giá trị hơn cả tài liệu (vượt {ALIAS_ALLOWANCE:,} giá trị thêm); hãy viết "
                "phần lặp lại ra",
            )


def _build(node: yaml.Node, path: PathKey, source: Source, loader: Any, file: str) -> Any:
    source.positions[path] = (node.start_mark.line + 1, node.start_mark.column + 1)
    source.budget.spend(node, file)
    if isinstance(node, yaml.MappingNode):
        result: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                raise YamlSyntaxError(
                    Location(file, key_node.start_mark.line + 1, key_node.start_mark.column + 1),
                    "khóa của một mục phải là một giá trị đơn (chữ hoặc số), không phải danh "
                    "sách hay mục lồng nhau; viết lại khóa này",
                )
            key = _scalar(key_node, loader)
            if key == "<<":
                raise YamlSyntaxError(
                    Location(file, key_node.start_mark.line + 1, key_node.start_mark.column + 1),
                    "không hỗ trợ khóa gộp ('<<'); hãy viết các giá trị ra",
                )
            key = str(key) if not isinstance(key, str) else key
            if key in result:
                first = source.key_positions.get((*path, key), (0, 0))[0]
                raise YamlSyntaxError(
                    Location(file, key_node.start_mark.line + 1, key_node.start_mark.column + 1),
                    f"khóa '{key}' bị lặp: đã có ở dòng {first} trong cùng mục này; mỗi khóa "
                    "chỉ được viết một lần, xóa hoặc gộp một trong hai",
                )
            child = (*path, key)
            source.key_positions[child] = (
                key_node.start_mark.line + 1,
                key_node.start_mark.column + 1,
            )
            result[key] = _build(value_node, child, source, loader, file)
        return result
    if isinstance(node, yaml.SequenceNode):
        return [
            _build(item, (*path, index), source, loader, file)
            for index, item in enumerate(node.value)
        ]
    # Not a mapping or a sequence: a ScalarNode (yaml types node as the base Node).
    return _scalar(node, loader)  # type: ignore[arg-type]


# PyYAML's (libyaml's) problems, in Vietnamese; the English text stays in brackets for
# a search. Matched by the start of the problem.
_SYNTAX = (
    (
        "mapping values are not allowed",
        "dấu ':' ở chỗ không được có giá trị (thiếu xuống dòng, "
        "thụt lề sai, hay một đoạn chữ có ': ' cần đặt trong ngoặc kép?)",
    ),
    ("did not find expected key", "thụt lề không khớp với các dòng trên"),
    (
        "did not find expected '-' indicator",
        "thụt lề không khớp: dòng này không thuộc danh sách ở trên",
    ),
    ("did not find expected ',' or ']'", "danh sách mở bằng '[' chưa đóng bằng ']'"),
    ("did not find expected ',' or '}'", "mục mở bằng '{' chưa đóng bằng '}'"),
    ("found unexpected end of stream", "tệp kết thúc khi dấu ngoặc kép hoặc ngoặc chưa đóng"),
    (
        "found character that cannot start any token",
        "ký tự này không được đứng đầu một giá trị (đặt giá trị trong ngoặc kép)",
    ),
    ("found undefined alias", "bí danh (*tên) chưa được đặt tên trước bằng &tên"),
    (
        "found unknown escape character",
        "ký tự thoát '\\' không hợp lệ trong ngoặc kép (dùng ngoặc đơn, hoặc viết '\\\\')",
    ),
    ("found invalid Unicode character escape code", "mã Unicode thoát không hợp lệ"),
    ("but found another document", "tệp có nhiều tài liệu (dòng '---'): mỗi tệp chỉ một tài liệu"),
    ("could not find expected ':'", "thiếu dấu ':' sau khóa"),
    (
        "could not determine a constructor for the tag",
        "thẻ YAML (!!...) không được hỗ trợ: bỏ thẻ đi, viết giá trị thường",
    ),
    ("did not find expected <document start>", "thừa ký tự sau khi tài liệu đã kết thúc"),
    ("found a tab character", "ký tự tab: YAML chỉ thụt lề bằng dấu cách"),
)


def _syntax_message(problem: str | None, context: str | None, tab: bool) -> str:
    english = " ".join(part for part in (problem, context and f"({context})") if part)
    if tab:
        said = "ký tự tab: YAML chỉ thụt lề bằng dấu cách"
    else:
        said = next(
            (vi for start, vi in _SYNTAX if (problem or "").startswith(start)),
            "YAML không hợp lệ",
        )
    return f"lỗi cú pháp YAML: {said} [{english or 'invalid YAML'}]; kiểm tra thụt lề và dấu ngoặc ở đây"


def parse(text: str, path: str) -> Source:
    """Parse one YAML document; raise YamlSyntaxError with a location."""
    source = Source(path=path, text=text, data=None)
    source.budget = _Budget(text)
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            raise YamlSyntaxError(
                Location(path, 1, 1),
                "tệp trống hoặc chỉ có chú thích: cần một tài liệu YAML bắt đầu "
                "bằng 'kind: plan', 'kind: registry' hoặc 'kind: calendar'",
            )
        source.data = _build(node, (), source, loader, path)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        if exc.context_mark and "end of stream" in (exc.problem or ""):
            mark = exc.context_mark  # where the unclosed construct began
        line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        tab = mark is not None and text[mark.index : mark.index + 1] == "\t"
        raise YamlSyntaxError(
            Location(path, line, column), _syntax_message(exc.problem, exc.context, tab)
        ) from None
    except yaml.YAMLError as exc:
        raise YamlSyntaxError(
            Location(path, 1, 1), _syntax_message(str(exc), None, False)
        ) from None
    finally:
        loader.dispose()
    return source


def read(path: str | Path) -> Source:
    """Read and parse a UTF-8 YAML file."""
    file = str(path)
    try:
        raw = Path(path).read_bytes()
    except IsADirectoryError:
        raise YamlSyntaxError(
            Location(file, 0, 0), "đây là một thư mục, không phải tệp: chỉ ra tệp .yaml trong đó"
        ) from None
    except OSError as exc:
        raise YamlSyntaxError(
            Location(file, 0, 0),
            f"không đọc được tệp ({exc.strerror}); kiểm tra đường dẫn và quyền",
        ) from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise YamlSyntaxError(
            Location(file, line, 1),
            "tệp không phải UTF-8: lưu lại tệp với mã UTF-8 (chữ tiếng Việt cần mã này)",
        ) from None
    return parse(text, file)
