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
