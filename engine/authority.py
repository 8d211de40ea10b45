"""Authority as written: who a consolidated report goes out as, who signs it and for
whom, and the rules of a signer block (Nghị định 30/2020/NĐ-CP, Điều 13; Phụ lục I).

The rules checked (each finding located at the line of the chain it concerns):

- a line is a prefix and what it stands before: ``TM.`` (thay mặt) before the name of
  a collective body or its leadership; ``KT.`` (ký thay), ``TL.`` (thừa lệnh) and
  ``TUQ.`` (thừa ủy quyền) before the title of the head; ``Q.`` (quyền) is part of the
  signer's own title ('Q. CHỦ TỊCH'), not a line of its own;
- ``TM.`` only for a body that works collectively (Ủy ban nhân dân, Hội đồng nhân dân;
  the registry's ``collective``), and only as the first line;
- ``KT.``: a deputy signs for the head, so the title under it is a deputy's
  (PHÓ …, THỨ TRƯỞNG) and nothing follows it; a deputy's title needs a ``KT.`` above it;
- ``TL.``: the head of a unit of the body signs by order; the person given it may hand
  it to a deputy, so only ``KT.`` may follow it;
- ``TUQ.``: signed under a written authorisation, which cannot be passed on: nothing
  follows it, and the signer is not a deputy;
- each prefix at most once; the one-line form (``authority`` + ``on_behalf_of``) and
  ``chain`` not both.
"""

from __future__ import annotations

import datetime as dt
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field

from engine import party
from engine.ended import heir_label
from engine.registry import RegistryView
from engine.schema import Consolidation, Plan, Signer, Unit

LINE_PREFIXES = ("TM.", "KT.", "TL.", "TUQ.")
# Kinds that work under collective leadership and sign 'TM.' by default.
COLLECTIVE_KINDS = frozenset(
    {
        "people-committee",
        "commune-committee",
        "ward-committee",
        "town-committee",
        "peoples-council",
        "people-council",
        "party-committee",  # a cấp ủy: 'T/M BAN THƯỜNG VỤ' (engine.party)
    }
)
HEAD_PLACEHOLDER = "THỦ TRƯỞNG ĐƠN VỊ"

Report = Callable[[tuple, str, str], None]  # (path, message, code)


def _upper(text: str) -> str:
    return " ".join(unicodedata.normalize("NFC", text).split()).upper()


def _fold(text: str) -> str:
    """For comparing names: NFC, upper case, 'UỶ' and 'ỦY' spelled alike."""
    return _upper(text).replace("UỶ", "ỦY").replace("HOÀ", "HÒA")


def is_deputy(title: str) -> bool:
    """PHÓ CHỦ TỊCH, PHÓ GIÁM ĐỐC, THỨ TRƯỞNG: a deputy's title."""
    words = _upper(title).split()
    return bool(words) and (words[0] == "PHÓ" or words[:2] == ["THỨ", "TRƯỞNG"])


def is_collective(unit: Unit | None) -> bool:
    if unit is None:
        return False
    if unit.collective is not None:
        return unit.collective
    return unit.kind in COLLECTIVE_KINDS


def chain_text(lines: list[str], title: str, name: str | None) -> str:
    """The signer block on one line: 'TM. ỦY BAN NHÂN DÂN / KT. CHỦ TỊCH / PHÓ CHỦ TỊCH /
    Nguyễn Văn A' ('…' for a name left blank)."""
    return " / ".join([*lines, _upper(title), name or "…"])


def split_line(line: str) -> tuple[str | None, str]:
    """('KT.', 'CHỦ TỊCH') from 'KT. CHỦ TỊCH'; (None, line) without a known prefix."""
    text = " ".join(line.split())
    head, _, rest = text.partition(" ")
    if head.upper() in (*LINE_PREFIXES, "Q."):
        return head.upper(), rest.strip()
    return None, text


def check_signer(
    signer: Signer, issuer: Unit | None, base: tuple, report: Report, warn: Report
) -> None:
    """Every rule above on ``signer`` of a document issued by ``issuer``; findings go to
    ``report`` (errors) and ``warn`` with the path of the line they concern."""
    if signer.chain and (signer.authority or signer.on_behalf_of):
        report(
            (*base, "chain"),
            "ghi thẩm quyền ký một cách: 'chain' (nhiều dòng) hoặc 'authority' + "
            "'on_behalf_of' (một dòng), không cả hai",
            "signer-two-forms",
        )
        return
    if signer.on_behalf_of and not signer.authority:
        report(
            (*base, "on_behalf_of"),
            "'on_behalf_of' cần 'authority' (TM., KT., TL., TUQ.) đứng trước nó",
            "signer-authority-missing",
        )
        return
    if signer.authority and not signer.on_behalf_of:
        report(
            (*base, "authority"),
            f"'{signer.authority}' cần ghi đứng trước gì ('on_behalf_of', ví dụ "
            "'ỦY BAN NHÂN DÂN' sau 'TM.', 'CHỦ TỊCH' sau 'KT.')",
            "signer-authority-alone",
        )
        return
    paths = (
        [(*base, "chain", i) for i in range(len(signer.chain))]
        if signer.chain
        else [(*base, "authority")][: len(signer.lines())]
    )
    _check_chain(signer.lines(), paths, signer, issuer, base, report, warn)


Finding = tuple[str, str]  # (message, code)


def _check_chain(
    lines: list[str],
    paths: list[tuple],
    signer: Signer,
    issuer: Unit | None,
    base: tuple,
    report: Report,
    warn: Report,
) -> None:
    title_prefix, _ = split_line(_upper(signer.title))
    if title_prefix in LINE_PREFIXES:
        report(
            (*base, "title"),
            f"chức vụ '{signer.title}' bắt đầu bằng '{title_prefix}': ghi dòng thẩm quyền "
            "trong 'chain', còn 'title' là chức vụ của người ký (PHÓ CHỦ TỊCH)",
            "signer-title-prefix",
        )
        return
    seen: list[str] = []
    for index, (line, path) in enumerate(zip(lines, paths, strict=True)):
        found = _line_problem(index, line, seen, issuer)
        if found is not None:
            report(path, *found)
            return
        prefix, text = split_line(line)
        assert prefix is not None  # _line_problem refuses a line without one
        if (
            prefix == "TM."
            and issuer is not None
            and not _fold(issuer.name).startswith(_fold(text))
            and not (party.is_party(issuer) and party.names_leadership(text))
        ):
            warn(
                path,
                f"'{line}': sau 'TM.' thường là tên tập thể lãnh đạo hoặc tên cơ quan "
                f"('{issuer.name}'); kiểm tra lại",
                "signer-tm-name",
            )
        seen.append(prefix)
    found = _title_problem(seen[-1] if seen else None, signer.title)
    if found is not None:
        report((*base, "title"), *found)


def _line_problem(index: int, line: str, seen: list[str], issuer: Unit | None) -> Finding | None:
    """What is wrong with authority line ``index`` after the prefixes ``seen``, if anything."""
    prefix, text = split_line(line)
    if prefix == "Q.":
        return (
            f"'{line}': 'Q.' (quyền) là một phần chức vụ của người ký, không phải một dòng "
            f"thẩm quyền; ghi title: 'Q. {text or 'CHỦ TỊCH'}'",
            "signer-acting-line",
        )
    if prefix is None or not text:
        return (
            f"'{line}' không phải một dòng thẩm quyền: viết một trong TM., KT., TL., TUQ. (có "
            "dấu chấm) rồi tên tập thể hoặc chức vụ cấp trưởng, ví dụ 'KT. CHỦ TỊCH'",
            "signer-line",
        )
    if prefix in seen:
        return f"'{prefix}' ghi hai lần; mỗi thẩm quyền một dòng", "signer-repeated"
    if seen and seen[-1] in ("KT.", "TUQ."):
        why = (
            "cấp phó ký thay không giao lại cho ai"
            if seen[-1] == "KT."
            else "người ký thừa ủy quyền không được ủy quyền lại cho người khác"
        )
        return f"'{line}' đứng sau '{seen[-1]}': {why}", "signer-order"
    if seen and seen[-1] == "TL." and prefix != "KT.":
        return (
            f"'{line}' đứng sau 'TL.': người ký thừa lệnh chỉ được giao lại cho cấp phó ký "
            "thay ('KT.')",
            "signer-order",
        )
    if prefix == "TM.":
        if index != 0:
            return "'TM.' (thay mặt tập thể) phải là dòng đầu tiên", "signer-order"
        if not is_collective(issuer):
            name = issuer.name if issuer else "cơ quan ban hành"
            return (
                f"'TM.' (thay mặt) chỉ dùng cho cơ quan làm việc theo chế độ tập thể (Ủy ban "
                f"nhân dân, Hội đồng nhân dân); {name} làm việc theo chế độ thủ trưởng: bỏ "
                "dòng này (hoặc ghi collective: true cho đơn vị trong danh mục)",
                "signer-tm-not-collective",
            )
    elif is_deputy(text):
        return (
            f"'{line}': '{prefix}' đứng trước chức vụ của người đứng đầu (ví dụ "
            f"'{prefix} CHỦ TỊCH'), không phải của cấp phó",
            "signer-deputy-after-prefix",
        )
    return None


def _title_problem(last: str | None, title: str) -> Finding | None:
    """What is wrong with the signer's ``title`` under the last authority line, if anything."""
    deputy = is_deputy(title)
    if last == "KT." and not deputy:
        return (
            "dưới 'KT.' (ký thay) là chức vụ của cấp phó ký thay cấp trưởng (PHÓ CHỦ TỊCH, "
            f"PHÓ GIÁM ĐỐC), không phải '{title}'",
            "signer-kt-not-deputy",
        )
    if last in ("TL.", "TUQ.") and deputy:
        fix = (
            "thêm dòng 'KT. <chức vụ cấp trưởng của đơn vị>' sau 'TL.'"
            if last == "TL."
            else "người được ủy quyền là người đứng đầu đơn vị, không giao lại cho cấp phó"
        )
        return f"cấp phó '{title}' ký dưới '{last}': {fix}", "signer-deputy"
    if last not in ("KT.", "TL.", "TUQ.") and deputy:
        return (
            f"'{title}' là cấp phó: cấp phó ký thay cấp trưởng phải có dòng 'KT. <CHỨC VỤ CẤP "
            "TRƯỞNG>' phía trên (ví dụ chain: ['KT. CHỦ TỊCH'])",
            "signer-deputy-without-kt",
        )
    return None


# ---------------------------------------------------------------- the report's authority


@dataclass
class ReportAuthority:
    """What heads, signs and addresses one consolidated report."""

    issuer_id: str
    parent_body: str | None
    signer_lines: list[str]
    signer_title: str
    signer_name: str | None
    addressee: str  # 'Chủ tịch UBND tỉnh' or the body's name, as the intro names it
    recipients: list[str] = field(default_factory=list)
    archive: str = "Lưu: VT."
    issuer_name: str | None = None  # an heir: 'UBND xã X (kế thừa UBND huyện Hạ Lang)'
    party: bool = False  # a Party body: Hướng dẫn 36-HD/VPTW layout (engine.party)


def routing_person(plan: Plan, duty_id: str) -> str | None:
    """The office holder a deliverable's or a consolidation's report is addressed to."""
    found = plan.deliverable(duty_id) or next(
        (c for c in plan.consolidations if c.id == duty_id), None
    )
    return found.routing.person if found is not None else None


def report_issuer(plan: Plan, consolidation: Consolidation) -> str:
    """The registry id of the body the report goes out as (before successors)."""
    return consolidation.on_behalf_of or plan.document.issuer_unit


def short_code(view: RegistryView, unit_id: str) -> str | None:
    """The unit's code as 'Lưu: VT, CAH' and 'BC-CAH' use it (its initials without one)."""
    unit = view.unit(unit_id)
    if unit is None:
        return None
    if unit.short:
        return unit.short
    initials = "".join(w[0] for w in unit.name.split() if w and w[0].isupper())
    return initials[:6] or None


def _name(view: RegistryView, unit_id: str | None) -> str:
    unit = view.unit(unit_id) if unit_id else None
    return unit.name if unit else str(unit_id)


def _head_signer(unit: Unit | None) -> tuple[list[str], str, str | None]:
    head = unit.head if unit is not None else None
    if head is None:
        return [], HEAD_PLACEHOLDER, None
    return [], _upper(head.title or HEAD_PLACEHOLDER), head.name


def _issuer_on(
    plan: Plan, view: RegistryView, consolidation: Consolidation, day: dt.date
) -> tuple[str, Unit | None, str | None]:
    """The body the report goes out as on ``day``, its unit, and the ended body it
    inherited that from (None: the body itself still exists)."""
    issuer_id = report_issuer(plan, consolidation)
    unit = view.unit(issuer_id)
    if unit is not None and not unit.valid_on(day):
        # the registry's dated change sets name the heir (engine.successors); older
        # registries only their successor links
        heirs = view.heirs(issuer_id, day)
        successor = (view.unit_on(heirs[0].id, day) or heirs[0]) if heirs else None
        successor = successor or view.successor_on(issuer_id, day)
        if successor is not None:
            return successor.id, successor, issuer_id
    return issuer_id, unit, None


def issuer_on(plan: Plan, view: RegistryView, consolidation: Consolidation, day: dt.date) -> str:
    """The registry id the report is issued as on ``day`` (its register numbers it)."""
    return _issuer_on(plan, view, consolidation, day)[0]


def report_authority(
    plan: Plan,
    view: RegistryView,
    consolidation: Consolidation,
    by_unit: str,
    day: dt.date,
    to_unit: str | None,
    via_unit: str | None,
) -> ReportAuthority:
    """Issuer, header, signer and Nơi nhận of ``consolidation``'s report on ``day``.

    The body is ``on_behalf_of`` (default: the plan's issuer); when it no longer exists on
    ``day``, its successor, signed by that unit's head. Its parent in the registry is
    printed above it unless it works collectively (an Ủy ban nhân dân prints none); the
    plan's own issuer keeps the document's ``parent_body``.
    """
    document = plan.document
    issuer_id, unit, heir_of = _issuer_on(plan, view, consolidation, day)
    signer = consolidation.signer if heir_of is None else None
    if issuer_id == document.issuer_unit:
        parent_body = document.parent_body
        signer = signer or document.signer
    else:
        parent = view.unit_on(unit.parent, day) if unit is not None and unit.parent else None
        parent_body = parent.name if parent is not None and not is_collective(unit) else None
        if (
            parent is not None
            and is_collective(unit)
            and party.is_party(unit)
            and party.is_party(parent)
        ):
            # a Party committee under one: the organisation that one leads (ĐẢNG BỘ TỈNH …)
            parent_body = party.organisation(parent.name)
    if signer is not None:
        lines, title, name = signer.lines(), _upper(signer.title), signer.name
    elif heir_of is not None and is_collective(unit) and document.signer is not None:
        # a people's committee that inherited the duty signs as the plan did, by its head
        head = unit.head if unit is not None else None
        lines, title = document.signer.lines(), _upper(document.signer.title)
        name = head.name if head is not None else None
    else:
        lines, title, name = _head_signer(unit)
    person = consolidation.routing.person
    addressee = person or _name(view, to_unit)
    recipients = [line for line in consolidation.recipients if not line.strip().startswith("Lưu")]
    archive = next(
        (line.strip() for line in consolidation.recipients if line.strip().startswith("Lưu")),
        None,
    )
    if not consolidation.recipients:
        recipients = [f"{addressee} (B/c)"] if to_unit else []
        recipients += [f"{_name(view, via_unit)} (B/c)"] if via_unit else []
    if archive is None:
        codes = ["VT"]
        drafter = short_code(view, by_unit) if by_unit != issuer_id else None
        codes += [drafter] if drafter and drafter != "VT" else []
        archive = f"Lưu: {', '.join(codes)}."
    issuer_name = None
    if heir_of is not None:
        issuer_name = heir_label(view, issuer_id, heir_of, day)
    is_party = party.is_party(unit)
    if is_party:  # 'T/M BAN THƯỜNG VỤ', 'K/T BÍ THƯ'
        lines = [party.authority_line(line) for line in lines]
    return ReportAuthority(
        party=is_party,
        issuer_name=issuer_name,
        issuer_id=issuer_id,
        parent_body=parent_body,
        signer_lines=lines,
        signer_title=title,
        signer_name=name,
        addressee=addressee,
        recipients=recipients,
        archive=archive,
    )
