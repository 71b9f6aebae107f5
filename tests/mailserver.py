"""A real SMTP server on loopback for the tests: aiosmtpd in a thread, keeping every message.

Its handler keeps every accepted message, so a test can check what actually went over the
wire (byte for byte) and how often; it can refuse chosen recipients, and it can be stopped and
started again on the same port (a mail server that is down, then back).
"""

from __future__ import annotations

import socket
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


class Mailbox:
    """An aiosmtpd handler that keeps every message and can refuse chosen recipients."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, list[str], bytes, Any]] = []  # envelope from, to, data, login
        self.refuse: dict[str, str] = {}
        self.sessions: list[int] = []

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: Any) -> str:
        if address in self.refuse:
            return self.refuse[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.content, session.auth_data))
        self.sessions.append(id(session))
        return "250 Message accepted for delivery"


def authenticator(server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> AuthResult:
    ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (b"gateway", b"s3cr3t")
    return AuthResult(success=ok, handled=False, auth_data=auth_data)  # not handled: the server replies


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    """Start, stop and restart aiosmtpd on one fixed port."""

    def __init__(self, **options: Any) -> None:
        self.port = _free_port()
        self.mailbox = Mailbox()
        self.options = options
        self.controller: Controller | None = None

    def start(self) -> Server:
        self.controller = Controller(self.mailbox, hostname="127.0.0.1", port=self.port,
                                     server_hostname="mail.test", **self.options)
        self.controller.start()
        return self

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None


