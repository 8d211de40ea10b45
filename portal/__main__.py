"""``python -m portal [--host H] [--port P] [--database-url URL]`` (the command line is
:func:`cli.portal.portal_main`)."""

from cli.portal import portal_main

if __name__ == "__main__":
    raise SystemExit(portal_main())
