"""Uploaded documents: checked by content, stored by content hash, served by name.

Accepted: PDF, DOCX, XLSX and ODT. The file's bytes decide its type (a PDF starts
with ``%PDF-``; DOCX and XLSX are ZIP packages with ``[Content_Types].xml`` and
``word/document.xml`` / ``xl/workbook.xml``; an ODT is a ZIP whose ``mimetype``
entry says ``application/vnd.oasis.opendocument.text``) and must agree with the
name's extension. A file is first written to ``files_dir/.incoming`` while it is
hashed and counted; only when the whole submission is valid is it moved to
``files_dir/<sha256[:2]>/<sha256>``, outside any web root. The original name is kept
only as data (``StoredFile.original_name``) and never used as a path.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import os
import re
import tempfile
import unicodedata
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import quote

CHUNK = 256 * 1024

KINDS: dict[str, tuple[str, str]] = {  # kind -> (extension, media type)
    "pdf": (".pdf", "application/pdf"),
    "docx": (".docx", "application/vnd.openxmlformats-officedocument.wordprocessingml.document"),
    "xlsx": (".xlsx", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
    "odt": (".odt", "application/vnd.oasis.opendocument.text"),
}
KIND_BY_EXTENSION = {ext: kind for kind, (ext, _) in KINDS.items()}
KIND_NAMES = {"pdf": "PDF", "docx": "Word (DOCX)", "xlsx": "Excel (XLSX)", "odt": "ODT"}
ACCEPT_ATTRIBUTE = ",".join(ext for ext, _ in KINDS.values())
ODT_MIMETYPE = b"application/vnd.oasis.opendocument.text"


class UploadRejected(Exception):
    """A file the portal does not accept; ``message`` is shown next to the field."""

    def __init__(self, field_id: str, message: str) -> None:
        super().__init__(message)
        self.field_id = field_id
        self.message = message


@dataclass
class StagedFile:
    field_id: str
    original_name: str
    kind: str
    size: int
    sha256: str
    temp_path: Path

    @property
    def content_type(self) -> str:
        return KINDS[self.kind][1]


def safe_name(name: str | None) -> str:
    """The name to keep as data: last path component, NFC, no control characters."""
    text = unicodedata.normalize("NFC", name or "")
    text = re.split(r"[\\/]", text)[-1]
    text = re.sub(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]", "", text).strip().strip(".")
    if len(text) > 200:
        stem, dot, ext = text.rpartition(".")
        text = (stem[:190] + dot + ext[:9]) if dot else text[:200]
    return text or "tep-dinh-kem"


def sniff(path: Path) -> str | None:
    """'pdf', 'docx', 'xlsx', 'odt' or None, from the bytes of ``path``."""
    with open(path, "rb") as fh:
        head = fh.read(1024)
    if head.startswith(b"%PDF-"):
        return "pdf"
    if not head.startswith(b"PK\x03\x04"):
        return None
    try:
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
            if "mimetype" in names:
                info = archive.getinfo("mimetype")
                if info.file_size <= 100 and archive.read("mimetype").strip() == ODT_MIMETYPE:
                    return "odt"
                return None
            if "[Content_Types].xml" in names:
                if "word/document.xml" in names:
                    return "docx"
                if "xl/workbook.xml" in names:
                    return "xlsx"
    except (zipfile.BadZipFile, OSError, RuntimeError, NotImplementedError, EOFError):
        return None
    return None


def _describe(kind: str | None) -> str:
    return KIND_NAMES.get(kind or "", "không thuộc loại được nhận")


def stage(
    source: BinaryIO, filename: str | None, field_id: str, files_dir: Path, max_bytes: int
) -> StagedFile:
    """Copy ``source`` to a temporary file while hashing it; check size and type."""
    name = safe_name(filename)
    extension = os.path.splitext(name)[1].lower()
    expected = KIND_BY_EXTENSION.get(extension)
    if expected is None:
        raise UploadRejected(
            field_id,
            f"Tệp «{name}» không được nhận: chỉ nhận tệp PDF, DOCX, XLSX hoặc ODT.",
        )
    incoming = files_dir / ".incoming"
    incoming.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    size = 0
    fd, temp_name = tempfile.mkstemp(dir=incoming, prefix="up-")
    temp_path = Path(temp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            while chunk := source.read(CHUNK):
                size += len(chunk)
                if size > max_bytes:
                    raise UploadRejected(
                        field_id,
                        f"Tệp «{name}» quá lớn: tối đa {max_bytes / 1048576:g} MB. "
                        "Vui lòng nén hoặc chia nhỏ tệp rồi gửi lại.",
                    )
                digest.update(chunk)
                out.write(chunk)
        if size == 0:
            raise UploadRejected(field_id, f"Tệp «{name}» rỗng (0 byte); vui lòng chọn lại tệp.")
        actual = sniff(temp_path)
        if actual != expected:
            raise UploadRejected(
                field_id,
                f"Tệp «{name}» có đuôi {extension} nhưng nội dung không phải tệp "
                f"{KIND_NAMES[expected]} ({'nội dung là tệp ' + _describe(actual) if actual else 'nội dung không thuộc loại được nhận'}). "
                "Vui lòng xuất lại văn bản đúng định dạng rồi gửi lại.",
            )
    except BaseException:
        temp_path.unlink(missing_ok=True)
        raise
    return StagedFile(field_id, name, expected, size, digest.hexdigest(), temp_path)


def final_path(files_dir: Path, sha256: str) -> Path:
    return files_dir / sha256[:2] / sha256


def commit(staged: StagedFile, files_dir: Path) -> tuple[Path, bool]:
    """Move a staged file into place; (path, True) when it was not stored before."""
    target = final_path(files_dir, staged.sha256)
    if target.exists():
        staged.temp_path.unlink(missing_ok=True)
        return target, False
    target.parent.mkdir(parents=True, exist_ok=True)
    os.chmod(staged.temp_path, 0o640)
    os.replace(staged.temp_path, target)
    return target, True


def place(
    session: Any, staged: StagedFile, files_dir: Path, now: dt.datetime, placed: list[Path]
) -> Any:
    """Move ``staged`` into place and add its ``StoredFile`` row (flushed: it has its id);
    a file this put in place is appended to ``placed``, for the caller to remove should
    its transaction fail."""
    from engine.store.models import StoredFile

    path, created = commit(staged, files_dir)
    if created:
        placed.append(path)
    row = StoredFile(
        sha256=staged.sha256,
        original_name=staged.original_name,
        content_type=staged.content_type,
        size=staged.size,
        created_at=now,
    )
    session.add(row)
    session.flush()
    return row


def discard(staged: list[StagedFile]) -> None:
    for item in staged:
        with contextlib.suppress(OSError):
            item.temp_path.unlink(missing_ok=True)


def content_disposition(name: str, inline: bool = False) -> str:
    """RFC 6266 / RFC 5987: an ASCII fallback plus the exact UTF-8 name."""
    plain = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii")
    plain = re.sub(r"[^A-Za-z0-9._ -]+", "_", plain).strip() or "tep-dinh-kem"
    disposition = "inline" if inline else "attachment"
    return f"{disposition}; filename=\"{plain}\"; filename*=UTF-8''{quote(name, safe='')}"
