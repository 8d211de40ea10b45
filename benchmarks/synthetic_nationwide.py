"""A synthetic nationwide registry and plan: 34 provinces and their communes (3,500 units).

Used by ``bench_activation.py``.  Names are made up (``Tỉnh 01`` … ``Xã 01-103``); the
shape follows the 2025 reform (DOMAIN.md): 34 provinces, about 100 commune-level units
each, no district level.
"""

from __future__ import annotations

from pathlib import Path

import yaml

PROVINCES = 34
TOTAL_UNITS = 3500


def registry(provinces: int = PROVINCES, total: int = TOTAL_UNITS) -> dict:
    communes = total - provinces
    units: list[dict] = [
        {
            "id": "bo-noi-vu",
            "name": "Bộ Nội vụ (mẫu)",
            "kind": "ministry",
            "level": "central",
            "emails": ["vanthu@bonoivu.example"],
            "sample": True,
        }
    ]
    for p in range(1, provinces + 1):
        pid = f"ubnd-tinh-{p:02d}"
        units.append(
            {
                "id": pid,
                "name": f"Ủy ban nhân dân Tỉnh {p:02d}",
                "kind": "people-committee",
                "level": "province",
                "emails": [f"vanthu@tinh{p:02d}.example"],
                "sample": True,
            }
        )
        share = communes // provinces + (1 if p <= communes % provinces else 0)
        for c in range(1, share + 1):
            units.append(
                {
                    "id": f"ubnd-xa-{p:02d}-{c:03d}",
                    "name": f"Ủy ban nhân dân Xã {p:02d}-{c:03d}",
                    "kind": "commune-committee",
                    "level": "commune",
                    "parent": pid,
                    "emails": [f"xa{c:03d}@tinh{p:02d}.example"],
                    "sample": True,
                }
            )
    return {
        "kind": "registry",
        "id": "ca-nuoc-tong-hop",
        "name": "Đăng ký đơn vị tổng hợp: 34 tỉnh và các xã (dữ liệu mẫu)",
        "units": units,
        "groups": [
            {"id": "cac-tinh", "name": "UBND các tỉnh", "kinds": ["people-committee"]},
            {"id": "cac-xa", "name": "UBND các xã, phường", "kinds": ["commune-committee"]},
        ],
    }


def plan() -> dict:
    return {
        "kind": "plan",
        "id": "bao-cao-nam-toan-quoc",
        "registry": "ca-nuoc-tong-hop",
        "as_of": "2026-01-02",
        "start_year": 2026,
        "document": {
            "type": "KH",
            "number": None,
            "issuer": "Bộ Nội vụ (mẫu)",
            "issuer_unit": "bo-noi-vu",
            "summary": "Kế hoạch mẫu: báo cáo năm của mọi tỉnh và xã (đo hiệu năng kích hoạt)",
            "signer": {"name": "Người ký mẫu", "title": "BỘ TRƯỞNG"},
        },
        "assignments": [
            {
                "id": "cac-tinh",
                "section": "II.1",
                "heading": "UBND các tỉnh",
                "to": {"group": "cac-tinh"},
                "tasks": [{"id": "bao-cao-tinh", "text": "Báo cáo kết quả hằng năm."}],
            },
            {
                "id": "cac-xa",
                "section": "II.2",
                "heading": "UBND các xã, phường",
                "to": {"group": "cac-xa"},
                "tasks": [{"id": "bao-cao-xa", "text": "Báo cáo kết quả hằng năm."}],
            },
        ],
        "deliverables": [
            {
                "id": "bao-cao-nam",
                "kind": "report",
                "title": "Báo cáo năm",
                "routing": {"to": "bo-noi-vu"},
                "frequency": "yearly",
                "deadline": {
                    "rule": "yearly",
                    "day": 15,
                    "month": 11,
                    "policy": "next_working_day",
                },
                "template": "bao-cao-nam",
            }
        ],
        "report_templates": [
            {
                "id": "bao-cao-nam",
                "title": "Báo cáo năm",
                "fields": [
                    {
                        "id": "so-hoat-dong",
                        "label": "Số hoạt động",
                        "type": "integer",
                        "min": 0,
                        "aggregate": "sum",
                    },
                    {"id": "danh-gia", "label": "Đánh giá", "type": "text"},
                ],
            }
        ],
    }


def write(folder: Path) -> list[Path]:
    """Write the registry and the plan as YAML; return their paths."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / "registry_ca_nuoc.yaml", folder / "plan_bao_cao_nam.yaml"]
    for path, data in zip(paths, (registry(), plan()), strict=True):
        path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return paths
