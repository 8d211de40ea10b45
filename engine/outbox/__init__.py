"""The engine's side of email: what to send, to whom, with what context, queued in the
same transaction as the state change that causes it. Rendering, MIME, SMTP and the
dispatcher are in notifications/."""

from engine.outbox.builders import plan_admin_email
from engine.outbox.context import ContextBuilder, Prepared
from engine.outbox.keys import mail_domain, message_id_for, obligation_key
from engine.outbox.kinds import KINDS, MailKind, mail_kind
from engine.outbox.queue import (
    Enqueued,
    enqueue,
    enqueue_for_obligation,
    enqueue_many_for_obligations,
)
from engine.outbox.reading import describe_row, list_outbox

__all__ = [
    "KINDS",
    "ContextBuilder",
    "Enqueued",
    "MailKind",
    "Prepared",
    "describe_row",
    "enqueue",
    "enqueue_for_obligation",
    "enqueue_many_for_obligations",
    "list_outbox",
    "mail_domain",
    "mail_kind",
    "message_id_for",
    "obligation_key",
    "plan_admin_email",
]
