"""``kehoach import FILE [--registry R] [-o draft.yaml] [--diff PLAN]``: a plan document
(text, DOCX, text PDF) → a commented YAML draft and a report of what to check."""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path
from typing import Any

from cli.common import EXIT_OK, EXIT_USAGE, err, out
from engine.errors import DefinitionError, KehoachError, NotFound


def setup(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "file", metavar="FILE", help="văn bản kế hoạch: .txt (UTF-8), .docx hoặc .pdf có lớp chữ"
    )
    p.add_argument(
        "--registry",
        metavar="REGISTRY",
        help="danh bạ đơn vị để đối chiếu tên: tệp YAML, hoặc mã danh bạ đã nạp",
    )
    p.add_argument(
        "--changes",
        metavar="PATH",
        action="append",
        help="tệp hoặc thư mục thay đổi danh bạ (kind: registry-change) áp dụng theo ngày của "
        "văn bản; lặp lại được (mặc định: thư mục registry_changes/ cạnh tệp danh bạ, nếu có)",
    )
    p.add_argument(
        "-o", "--output", metavar="DRAFT", help="ghi bản nháp ra tệp này (mặc định: ra màn hình)"
    )
    p.add_argument(
        "--diff",
        metavar="PLAN",
        help="so bản nháp với một kế hoạch đã có (tệp YAML hoặc mã đã nạp); mã thoát 1 khi khác ở phần chính",
    )


def _registry_file(path: Path) -> Any:
    """The registry in ``path``.  A well-formed file is read without the schema and the
    loader (most of the command's time); any problem is reported by the loader, located,
    as ``kehoach validate`` does."""
    from engine.importer.directory import directory_of
    from engine.yamlsource import YamlSyntaxError, read

    try:
        found = directory_of(read(path).data, str(path))
    except YamlSyntaxError:
        found = None
    return found if found is not None else _loaded(path, "registry")


def _file_or_stored(args: argparse.Namespace, given: str, kind: str, read_file: Any) -> Any:
    """A definition named on the command line: a YAML file, else an id in the store."""
    path = Path(given)
    if path.suffix in {".yaml", ".yml"} or path.exists():
        if not path.exists():
            raise KehoachError(f"{given}: không có tệp này; kiểm tra đường dẫn")
        return read_file(path)
    from cli.definitions import _plan_lookup, _registry_lookup

    lookup = _registry_lookup(args) if kind == "registry" else _plan_lookup(args)
    found = lookup(given)
    if found is None:
        what = "danh bạ" if kind == "registry" else "kế hoạch"
        raise NotFound(f"chưa nạp {what} '{given}'; đưa tệp YAML của nó, hoặc `kehoach load` trước")
    return found


def _loaded(path: Path, kind: str) -> Any:
    """The one definition of ``kind`` in ``path``, through the loader (problems located)."""
    from engine.loader import read_files

    catalog, problems = read_files([path])
    if problems:
        raise DefinitionError(problems)
    found = [i.definition for i in catalog.table(kind).values()]
    if not found:
        what = "danh bạ" if kind == "registry" else "kế hoạch"
        raise KehoachError(f"{path}: không phải tệp {what} (kind: {kind})")
    return found[0]


def _plan_file(path: Path) -> Any:
    return _loaded(path, "plan")


def _write(path: Path, text: str) -> None:
    """All or nothing: a temporary file beside ``path``, renamed over it."""
    try:
        handle, temporary = tempfile.mkstemp(
            dir=path.parent or Path("."), prefix=f".{path.name}.", suffix=".tmp"
        )
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(text)
        os.replace(temporary, path)
    except OSError as exc:
        from engine.importer.sources import os_reason

        raise KehoachError(
            f"{path}: không ghi được tệp ({os_reason(exc)}); kiểm tra thư mục và quyền ghi"
        ) from None


def _change_paths(args: argparse.Namespace) -> list[str]:
    """The change sets to apply: those named, else the ``registry_changes/`` folder beside
    the registry file (the layout of plan_definitions/)."""
    if args.changes:
        for given in args.changes:
            if not Path(given).exists():
                raise KehoachError(f"{given}: không có tệp hay thư mục này; kiểm tra đường dẫn")
        return list(args.changes)
    beside = Path(args.registry).parent / "registry_changes"
    return [str(beside)] if Path(args.registry).is_file() and beside.is_dir() else []


def cmd_import(args: argparse.Namespace) -> int:
    import yaml

    from engine.importer.api import draft_yaml, import_document, registry_draft_yaml, report_lines
    from engine.registry_files import change_files

    if args.changes and not args.registry:
        err("kehoach import: --changes cần --registry (danh bạ để áp dụng các thay đổi)")
        return EXIT_USAGE
    registry = (
        _file_or_stored(args, args.registry, "registry", _registry_file) if args.registry else None
    )
    changes = change_files(_change_paths(args)) if args.registry else []
    stored = None
    if args.diff:
        stored = _file_or_stored(args, args.diff, "plan", _plan_file).model_dump(mode="json")
    draft = import_document(args.file, registry, changes)
    text = draft_yaml(draft)
    for line in report_lines(draft):
        err(line)
    for near in draft.near:
        err(near.warning(draft.source))
    if draft.changes:
        err(
            "Tên đơn vị đã đối chiếu với danh bạ như ngày của văn bản, sau các thay đổi: "
            + ", ".join(draft.changes)
            + "."
        )
    checks = sum(1 for f in draft.findings if f.kind == "chưa chắc")
    unread = sum(1 for f in draft.findings if f.kind == "không hiểu")
    if args.output:
        target = Path(args.output)
        extra = registry_draft_yaml(draft)
        registry_note = ""
        if extra is not None:
            # The registry draft first: should the plan's write fail, it is taken back.
            registry_file = target.with_name(target.stem + ".danh-ba-bo-sung.yaml")
            _write(registry_file, extra)
            registry_note = f"; đơn vị chưa có trong danh bạ: {registry_file}"
        try:
            _write(target, text)
        except KehoachError:
            if extra is not None:
                registry_file.unlink(missing_ok=True)
            raise
        err(f"Đã ghi {target}: {checks} chỗ cần kiểm tra, {unread} đoạn chưa hiểu{registry_note}.")
    elif stored is None:
        out(text.rstrip("\n"))
        err(f"{checks} chỗ cần kiểm tra, {unread} đoạn chưa hiểu.")
    if stored is None:
        return EXIT_OK
    from engine.importer.compare import compare

    differences = compare(yaml.safe_load(text), stored)
    for difference in differences:
        out(str(difference))
    main = [d for d in differences if d.part != "detail"]
    out(
        f"{len(main)} khác biệt chính, {len(differences) - len(main)} khác biệt chi tiết so với {args.diff}."
    )
    return 1 if main else EXIT_OK
