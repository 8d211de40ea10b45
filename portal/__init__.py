"""The units' web portal: answer an obligation through a signed link (FastAPI + Jinja2).

Start it with ``kehoach portal`` (or ``python -m cli.portal``); build the ASGI app with
:func:`portal.app.create_app`.
"""
