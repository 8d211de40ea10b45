"""The order tests/conftest.py gives the suite (pytest_collection_modifyitems): tests
with a time limit of at least 10 minutes first, then the modules on a Prefect server,
then the rest, browser tests last; a module goes as early as its heaviest test and its
tests stay together, in their own order.

Nothing else would notice a broken order but the suite's time (a 2-minute test started
last keeps one worker busy alone), so a small tree of tests is collected here with
that hook, on dummy fixtures of the same names.
"""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]

CONFTEST = """
import pytest

from tests.conftest import pytest_collection_modifyitems  # noqa: F401  (the hook tested)


@pytest.fixture
def prefect_server():
    return None


@pytest.fixture
def browser():
    return None


@pytest.fixture
def page(browser):
    return browser
"""

# Named so that the collection order (alphabetical) is nearly the reverse of the one
# the hook gives.
MODULES = {
    "test_a_browser": """
def test_one(page):
    pass

def test_two(browser):
    pass
""",
    "test_b_mixed": """
def test_first():
    pass

def test_on_a_page(page):
    pass

def test_last():
    pass
""",
    "test_c_plain": """
import pytest

@pytest.mark.timeout(300)
def test_one():
    pass

def test_two():
    pass
""",
    "test_d_prefect_mark": """
import pytest

def test_before_the_server():
    pass

@pytest.mark.prefect
def test_on_the_server():
    pass
""",
    "test_e_prefect_fixture": """
def test_flow(prefect_server):
    pass

def test_other():
    pass
""",
    "test_f_long": """
import pytest

def test_short():
    pass

@pytest.mark.timeout(900)
def test_long():
    pass

def test_after():
    pass
""",
}

EXPECTED = [
    # class 0: a test with a limit >= 600 s takes its whole module first
    "test_f_long.py::test_short",
    "test_f_long.py::test_long",
    "test_f_long.py::test_after",
    # class 1: modules with a Prefect test (mark or fixture), in collection order
    "test_d_prefect_mark.py::test_before_the_server",
    "test_d_prefect_mark.py::test_on_the_server",
    "test_e_prefect_fixture.py::test_flow",
    "test_e_prefect_fixture.py::test_other",
    # class 2: the rest (a 300 s limit is not long), a module's tests together
    "test_b_mixed.py::test_first",
    "test_b_mixed.py::test_last",
    "test_c_plain.py::test_one",
    "test_c_plain.py::test_two",
    # class 3: browser tests last, even those of a module whose other tests ran before
    "test_a_browser.py::test_one",
    "test_a_browser.py::test_two",
    "test_b_mixed.py::test_on_a_page",
]


class _Order:
    """Records the items in the order the session will run them."""

    def __init__(self) -> None:
        self.nodeids: list[str] = []

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        self.nodeids = [item.nodeid for item in session.items]


def test_long_tests_first_prefect_modules_next_browser_tests_last(
    pytester: pytest.Pytester,
) -> None:
    pytester.makeconftest(CONFTEST)
    pytester.makeini(
        "[pytest]\nasyncio_default_fixture_loop_scope = function\n"
        "markers =\n    prefect: needs a real Prefect server\n"
    )
    pytester.makepyfile(**MODULES)
    order = _Order()
    result = pytester.inline_run("--collect-only", "-p", "no:cacheprovider", plugins=[order])
    assert result.ret == pytest.ExitCode.OK, result.getreports("pytest_collectreport")
    assert order.nodeids == EXPECTED
