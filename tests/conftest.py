"""Shared pytest configuration.

Real-component fixtures live in tests/fixtures/ as pytest plugins:
database (sqlite_url, postgres_url, db_url), smtp (smtp_server, smtp_server_tls),
prefect_server (session-scoped real Prefect server), browser (Playwright + Debian Chromium).
"""

import os

pytest_plugins = [
    "tests.fixtures.database",
    "tests.fixtures.smtp",
    "tests.fixtures.prefect_server",
    "tests.fixtures.browser",
]


def pytest_configure(config):
    os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"


def pytest_collection_modifyitems(config, items):
    """Run browser tests last.

    Playwright's sync API leaves its event loop registered in the main thread for the
    rest of the session (the browser fixture is session-scoped); Prefect's sync entry
    points then see a running loop and hand back coroutines. Tests after the browser
    would see that, so the browser goes last.
    """
    uses_browser = {"browser", "page"}
    items.sort(key=lambda item: bool(uses_browser & set(getattr(item, "fixturenames", ()))))
