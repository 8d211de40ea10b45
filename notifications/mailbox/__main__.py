"""``python -m notifications.mailbox``: the command line is :func:`cli.mail.mailbox_main`."""

from cli.mail import mailbox_main

if __name__ == "__main__":
    raise SystemExit(mailbox_main())
