#!/usr/bin/env python3
"""Look at the operator's window as an operator does: the real Prefect UI at 1280 px.

Starts ``prefect server start`` with its UI (a temporary home, a free port), runs the
operator-window scenario of tests/test_operator_window.py against it (a late, an
on-time and a returned report, the review, the sweep), then screenshots with headless
Chromium (Playwright, /usr/bin/chromium) the runs list and the status and summary
artifacts of the cycle, V2 UI (Prefect's default) and V1, into
tests/output/prefect-ui/ (or the folder given). Prints the PNG paths and, for each
table artifact page, whether the table is wider than its container.

    .venv/bin/python scripts/prefect-ui-shots.py [OUT_DIR] [--width 1280]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")

# the table's own width against its scrolling container (the UI scrolls a wide table)
_OVERFLOW = """() => [...document.querySelectorAll('table')].map(t => {
  let box = t.parentElement;
  while (box && box.scrollWidth <= box.clientWidth && box !== document.body) box = box.parentElement;
  const cut = box && box !== document.body;
  return {table: Math.round(t.getBoundingClientRect().width), page: window.innerWidth,
          cut: !!cut, box: cut ? box.clientWidth : null,
          headers: [...t.querySelectorAll('th')].map(h => h.innerText.trim())};
})"""


def _shoot(browser, url: str, path: Path, width: int, wait_text: str) -> list:  # type: ignore[no-untyped-def]
    context = browser.new_context(
        locale="vi-VN", timezone_id="Asia/Ho_Chi_Minh", viewport={"width": width, "height": 900}
    )
    try:
        page = context.new_page()
        page.goto(url)
        try:
            page.get_by_text(wait_text).first.wait_for(timeout=30_000)
        except Exception as exc:  # the shot shows what the page did instead
            print(f"  {url}: '{wait_text}' not seen ({type(exc).__name__})")
        time.sleep(1.5)  # fonts, badges
        page.screenshot(path=str(path), full_page=True)
        return page.evaluate(_OVERFLOW)
    finally:
        context.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", nargs="?", default=str(ROOT / "tests" / "output" / "prefect-ui"))
    parser.add_argument("--width", type=int, default=1280)
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    import pytest
    from playwright.sync_api import sync_playwright

    from tests.fixtures.browser import CHROMIUM
    from tests.fixtures.prefect_server import _stop_process_group, start_prefect_server
    from tests.lifecycle_factory import DISTRICT
    from tests.test_operator_window import LATE_NAME, operator_window
    from workflows.server import use_api

    home = Path(tempfile.mkdtemp(prefix="kehoach-prefect-ui-"))
    server = start_prefect_server(home / "prefect", ui=True)
    base = server.api_url.removesuffix("/api")
    print(f"Prefect UI at {base} ({server.startup_seconds:.1f} s)")
    patch = pytest.MonkeyPatch()
    try:
        with use_api(server.api_url):
            from prefect.artifacts import Artifact

            window = operator_window(home / "kehoach", patch)
            status = Artifact.get(f"status-{DISTRICT}-2027")
            summary = Artifact.get(f"summary-{DISTRICT}-2027")
            assert status is not None and summary is not None
        pages = [
            ("runs-v2", f"{base}/v2/runs", LATE_NAME),
            ("runs-v1", f"{base}/runs", LATE_NAME),
            ("late-run-v2", f"{base}/v2/runs/flow-run/{window.runs['late']}", "Trễ hạn"),
            ("status-artifact-v2", f"{base}/v2/artifacts/artifact/{status.id}", "Trạng thái"),
            ("status-artifact-v1", f"{base}/artifacts/artifact/{status.id}", "Trạng thái"),
            ("summary-artifact-v2", f"{base}/v2/artifacts/artifact/{summary.id}", "Trễ hạn"),
        ]
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
            try:
                for name, url, wait_text in pages:
                    path = out / f"{name}-{args.width}.png"
                    tables = _shoot(browser, url, path, args.width, wait_text)
                    print(f"{path}  {url}")
                    for table in tables:
                        print(f"  table {table}")
            finally:
                browser.close()
    finally:
        patch.undo()
        _stop_process_group(server.process)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
