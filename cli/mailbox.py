"""``python -m cli.mailbox [--dir DIR] [--host H] [--port P]``: the local mailbox."""

from cli.mail import mailbox_main

if __name__ == "__main__":
    raise SystemExit(mailbox_main())
