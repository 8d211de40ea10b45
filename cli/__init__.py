"""The ``kehoach`` command line: the entry point and every command.

- :mod:`cli.main`: the parser, the dispatch and the exit codes;
- :mod:`cli.definitions`: validate, load, plans, schema, show, calendar;
- :mod:`cli.running`: activate, status, review, consolidate, close, reopen;
- :mod:`cli.prefect`: deploy, simulate, demo, and ``python -m cli.flow`` (:mod:`cli.flow`) and
  ``python -m cli.server`` (:mod:`cli.server`);
- :mod:`cli.mail`: outbox, dispatch, and ``python -m cli.mailbox`` (:mod:`cli.mailbox`);
- :mod:`cli.portal`: portal, and ``python -m cli.portal``.

Only this package parses arguments; engine/, workflows/, notifications/ and portal/
expose functions.  A command's module is imported when the command runs, so
``kehoach validate`` imports neither Prefect nor SQLAlchemy.
"""

from cli.main import main

__all__ = ["main"]
