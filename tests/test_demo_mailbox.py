"""The demo's local mailbox and a port someone else holds.

The mailbox asks for 127.0.0.1:8025. When another program listens there, the mailbox
starts on a free port, the command says so once in Vietnamese, and the units' mail goes
to the port used, never to the other program; ``kehoach simulate`` reuses a kehoach
mailbox it finds on the port, never a stranger. Here the "other program" is a real SMTP
server holding the port the code tries first (the machine's own 8025 may be anyone's).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from engine import config
from engine.store.db import migrate, session_scope
from notifications import mailbox as mailbox_module
from notifications.dispatch import dispatch_pending_sync
from notifications.mailbox import is_mailbox, start_mailbox_server
from tests.notifications_factory import make_settings, make_world

T0 = dt.datetime(2028, 8, 1, 1, 0, tzinfo=dt.UTC)  # 08:00 in Hà Nội, a Tuesday


@pytest.fixture
def demo_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """The demo's environment; the SMTP variables the mailbox sets are restored after."""
    monkeypatch.setenv("KEHOACH_HOME", str(tmp_path / "var"))
    monkeypatch.setenv("KEHOACH_MAIL_FROM", "kehoach@halang.example")
    for name in ("KEHOACH_SMTP_HOST", "KEHOACH_SMTP_PORT", "KEHOACH_SMTP_SECURITY"):
        monkeypatch.setenv(name, "")
        monkeypatch.delenv(name)
    config.settings.cache_clear()
    yield
    config.settings.cache_clear()


def test_a_held_port_moves_the_mailbox_said_once_and_mail_goes_there(
    demo_env, smtp_server, sqlite_url: str, tmp_path: Path, monkeypatch, capsys
) -> None:
    from cli.prefect import _start_mailbox

    held = smtp_server.port  # another program's SMTP server, on the port tried first
    monkeypatch.setattr(mailbox_module, "DEFAULT_PORT", held)
    folder = tmp_path / "mailbox"
    mailbox = _start_mailbox(folder)
    try:
        printed = capsys.readouterr().out
        assert mailbox.port != held
        assert printed.count("Cảnh báo") == 1 and f"cổng {held} " in printed, printed
        assert f"hộp thư cục bộ đã chạy ở 127.0.0.1:{mailbox.port}" in printed
        assert f"hộp thư (SMTP 127.0.0.1:{mailbox.port})" in printed
        # the dispatcher reads the port actually used
        assert (config.settings().smtp_host, config.settings().smtp_port) == (
            "127.0.0.1",
            mailbox.port,
        )
        migrate(sqlite_url)
        from engine.outbox import enqueue_for_obligation

        with session_scope(sqlite_url) as session:
            world = make_world(session)
            enqueue_for_obligation(session, world.obligation, "assignment", now=T0)
        outcome = dispatch_pending_sync(sqlite_url, config.settings(), now=T0)
        assert outcome.sent == 1, outcome
        assert len(list(folder.glob("*.eml"))) == 1 and mailbox.received == 1
        assert smtp_server.messages == []  # nothing to the program holding the port
    finally:
        mailbox.stop()


def test_a_free_port_is_taken_as_asked_with_nothing_to_say(demo_env, tmp_path, capsys) -> None:
    from cli.prefect import _start_mailbox
    from workflows.server import free_port

    port = free_port()
    mailbox = _start_mailbox(tmp_path / "mailbox", port)
    try:
        assert mailbox.port == port and "Cảnh báo" not in capsys.readouterr().out
    finally:
        mailbox.stop()


def test_simulate_mails_its_own_mailbox_or_the_configured_server_never_a_stranger(
    demo_env, smtp_server, tmp_path: Path
) -> None:
    """What listens on the default port: a stranger (an SMTP server that is no kehoach
    mailbox) gets nothing unless the user configured that port; a kehoach mailbox left
    running there is used; nothing listening: the caller starts the mailbox."""
    from cli.prefect import _smtp_to_use
    from workflows.server import free_port

    stranger = make_settings(smtp_host=smtp_server.host, smtp_port=smtp_server.port)
    assert not is_mailbox(smtp_server.host, smtp_server.port)
    assert not _smtp_to_use(stranger, configured=False)
    assert _smtp_to_use(stranger, configured=True)  # the user's own server, as configured
    ours = start_mailbox_server(tmp_path / "mailbox", "127.0.0.1", free_port())
    try:
        assert is_mailbox("127.0.0.1", ours.port)
        assert _smtp_to_use(make_settings(smtp_port=ours.port), configured=False)
    finally:
        ours.stop()
    nothing = make_settings(smtp_port=free_port())
    assert not _smtp_to_use(nothing, configured=False)
    assert not _smtp_to_use(nothing, configured=True)
