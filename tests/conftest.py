"""Shared pytest configuration.

Real-component fixtures live in tests/fixtures/ as pytest plugins:
database (sqlite_url, postgres_url, db_url), smtp (smtp_server, smtp_server_tls),
prefect_server (session-scoped real Prefect server), browser (Playwright + Debian Chromium).
"""

import os

import pytest

pytest_plugins = [
    "tests.fixtures.database",
    "tests.fixtures.smtp",
    "tests.fixtures.prefect_server",
    "tests.fixtures.browser",
]


# Links are signed only with a configured secret (engine.links fails closed): the test
# session has one, as a deployment does; tests of the refusal remove it.
TEST_PORTAL_SECRET = "kehoach-test-session-secret-3c9e1f7a5b2d8046"


def pytest_configure(config):
    os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
    os.environ["KEHOACH_PORTAL_SECRET"] = TEST_PORTAL_SECRET
    os.environ.pop("KEHOACH_DEMO", None)


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist's, which reads the groups added here
def pytest_collection_modifyitems(config, items):
    """Long tests first (:func:`_weight_class`), browser tests last.

    Playwright's sync API leaves its event loop registered in the main thread for the
    rest of the session (the browser fixture is session-scoped); Prefect's sync entry
    points then see a running loop and hand back coroutines. Tests after the browser
    would see that, so the browser goes last.
    """
    uses_browser = {"browser", "page"}
    weights = {item: _weight_class(item, uses_browser) for item in items}
    module_of = {item: item.nodeid.split("::")[0] for item in items}
    modules: dict[str, int] = {}  # a module goes as early as its longest (non-browser) test
    for item, weight in weights.items():
        if weight < BROWSER:
            modules[module_of[item]] = min(weight, modules.get(module_of[item], BROWSER))
    items.sort(
        key=lambda item: weights[item] if weights[item] == BROWSER else modules[module_of[item]]
    )
    _group_by_module_fixtures(items, uses_browser)


# A test whose own time limit is at least this long (the crash harness, the worker mode,
# the no-worker backlog: 35-165 s each) is among the longest of the suite.
LONG_TIMEOUT = 600
BROWSER = 3  # the last class: browser tests


def _weight_class(item, uses_browser) -> int:  # type: ignore[no-untyped-def]
    """The order the suite runs in: long tests first, then the modules on a Prefect server,
    then the rest, browser tests last (a stable sort keeps each module's own order).

    pytest-xdist hands the next test (or module group) to whichever worker is free, in
    this order; with the long ones first, the short ones fill the gaps at the end, and no
    worker waits alone for a 2-minute test started last (alphabetical order put
    tests/test_worker_mode.py and tests/test_workflows*.py at the end)."""
    names = set(getattr(item, "fixturenames", ()))
    if uses_browser & names:
        return BROWSER
    limit = item.get_closest_marker("timeout")
    if limit is not None and limit.args and float(limit.args[0]) >= LONG_TIMEOUT:
        return 0
    if "prefect_server" in names or item.get_closest_marker("prefect") is not None:
        return 1
    return 2


def _group_by_module_fixtures(items, uses_browser) -> None:  # type: ignore[no-untyped-def]
    """Under pytest-xdist (``--dist loadgroup``), keep the tests of a module that share an
    expensive module-scoped fixture (a simulated year, a rendered report, a crash-harness
    world) on one worker, so the fixture is built once, not once per worker.

    xdist groups the tests whose node id ends in ``@<group>``. Its own hook writes that
    suffix where pytest < 9.2 kept the id (``_nodeid``); pytest 9.2 keeps it in ``_id``, so
    the ``xdist_group`` mark alone groups nothing there (each test of tests/test_workflows.py
    built its simulated year again on the other worker). The suffix is written here, to
    whichever attribute this pytest has.

    Modules with browser tests are left alone: grouping would pull their browser tests
    ahead of other modules' Prefect tests on that worker (see above)."""
    if not items or not getattr(items[0].config.option, "loadgroup", False):
        return
    by_module: dict[str, list] = {}
    for item in items:
        by_module.setdefault(item.module.__name__ if item.module else "", []).append(item)
    for module, members in by_module.items():
        if any(uses_browser & set(getattr(item, "fixturenames", ())) for item in members):
            continue
        for item in members:
            info = getattr(item, "_fixtureinfo", None)
            defs = info.name2fixturedefs.values() if info is not None else ()
            if any(d and d[-1].scope == "module" for d in defs):
                _suffix_node_id(item, f"@{module}")


def _suffix_node_id(item, suffix: str) -> None:  # type: ignore[no-untyped-def]
    if hasattr(item, "_id"):  # pytest >= 9.2: a structured NodeId
        from _pytest.nodeid import coerce_node_id

        item._id = coerce_node_id(item.nodeid + suffix)
    else:
        item._nodeid = item.nodeid + suffix
