"""An SMTP server as a destination (the ``smtp`` kind): every output is one complete e-mail (``.eml``).

The steps of a destination (:mod:`gateway.destinations.base`) map onto mail like this:
``prepare`` spools the message (``upload``), ``deliver`` sends it (``publish``), and
``status`` answers from the spool file: still there, not sent; gone, sent.

``upload``
    copies the staged message into this destination's private spool folder as
    ``<spool>/<name>`` (written as ``.<name>.part``, then renamed). The spool file is
    the message's "temporary name": while it is there the message is owed.
``publish``
    sends the spooled bytes unchanged to the server, then deletes the spool file. A
    spool file that is gone therefore means "sent", which is exactly what the engine
    asks ``has_upload`` after a crash.

Sending is not a rename, so one window remains where a crash produces a second
e-mail: the server has accepted the message (its reply to the end of DATA) but the
process dies — or the connection breaks while that reply is on its way — before the
spool file is deleted. The next run sends the spooled message again. It is the same
file, so it carries the same ``Message-ID``, and mail clients show the two as one
message. SMTP offers nothing better: no server lets a client ask "did you take
message X?". Every other failure (server down, login refused, recipient refused, time
out) happens before the server accepted anything; it raises ``DeliveryError``, the
spool file stays, and the engine sends it on a later run.

Calling ``publish`` for a name whose message was already sent (no spool file) raises
``DeliveryError`` and sends nothing; the engine never does this, because it asks
``has_upload`` first and takes ``location`` instead. Refusing loudly rather than
returning quietly keeps a caller bug from being mistaken for a delivery.

The connection is kept open between messages (an input with 500 shipments is 500
e-mails), checked with NOOP before each use and opened afresh when the server has
dropped it; after any error it is closed, so the next attempt starts clean.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import smtplib
import socket
import ssl
from email import policy as email_policy
from email.headerregistry import Address
from email.message import EmailMessage
from email.parser import HeaderParser
from email.utils import parseaddr
from pathlib import Path
from typing import Any, Literal

from pydantic import field_validator

from ..errors import DeliveryError
from ..files import fsync_dir
from ..i18n import _
from ..kinds import Kind, KindConfig, Parts
from ..writers.email import address_problem
from .base import CallLog, Delivered, Delivery, Destination, Status, temp_name

log = logging.getLogger("gateway")

Security = Literal["starttls", "ssl", "none"]


def _reply(code: int, text: bytes | str) -> str:
    words = text.decode("utf-8", "replace") if isinstance(text, bytes) else text
    return f"{code} {' '.join(words.split())}".strip()


def _refused_recipients(exc: smtplib.SMTPRecipientsRefused) -> str:
    """Each refused address with the server's reply, and whether trying again can help (a 5xx reply says no)."""
    parts = []
    for address, (code, text) in exc.recipients.items():
        if 500 <= code < 600:
            parts.append(_("{address} permanently ({reply}): the address is wrong or no longer exists, and "
                           "every further attempt will be refused the same way").format(
                               address=address, reply=_reply(code, text)))
        else:
            parts.append(_("{address} for now ({reply})").format(address=address, reply=_reply(code, text)))
    return "; ".join(parts)


class SmtpDestinationConfig(KindConfig):
    """E-mail, sent through the server under ``smtp`` in gateway.yaml."""

    kind = "smtp"

    smtp: bool

    @field_validator("smtp")
    @classmethod
    def _yes(cls, v: bool) -> bool:
        if not v:
            raise ValueError(_("write 'smtp: yes' to send through the mail server under 'smtp'"))
        return v


class SmtpDestination(Destination):
    """Send each output as one e-mail through an SMTP server (the company's relay).

    ``security``: ``starttls`` (port 587, the default) or ``ssl`` (implicit TLS, port
    465) verify the server's certificate against the system's trusted CAs, or
    ``ca_file`` for a company CA; ``none`` sends in the clear (a relay on the same
    host or a trusted network only — with ``user`` set, the password, too).
    The password is read at send time from the environment variable ``password_env``,
    never from the configuration, so it does not end up in gateway.yaml or backups.
    ``sender_override`` replaces the envelope sender (``MAIL FROM``, where bounces go);
    the From header in the message is left as it is.
    """

    kind = "smtp"

    def __init__(
        self,
        host: str,
        port: int,
        *,
        spool: Path,
        security: Security = "starttls",
        user: str | None = None,
        password_env: str | None = None,
        timeout: float = 30,
        sender_override: str | None = None,
        ca_file: Path | None = None,
    ) -> None:
        if security not in ("starttls", "ssl", "none"):
            raise ValueError(_("security must be 'starttls', 'ssl' or 'none', not {value}").format(
                value=repr(security)))
        if (user is None) != (password_env is None):
            raise ValueError(_("an SMTP login needs both user and password_env (the variable holding the password)"))
        if not 0 < port < 65536:
            raise ValueError(_("{port} is not a TCP port").format(port=port))
        self.host = host
        self.port = port
        self.spool = spool
        self.security: Security = security
        self.user = user
        self.password_env = password_env
        self.timeout = timeout
        if sender_override is not None and (problem := address_problem(sender_override, "sender_override")):
            raise ValueError(problem)
        self.sender_override = (
            parseaddr(sender_override)[1] if sender_override is not None else None  # the bare user@domain
        )
        self.ca_file = ca_file
        self._smtp: smtplib.SMTP | None = None

    # -- what and where -----------------------------------------------------------------

    @property
    def _server(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    def describe(self) -> str:
        return _("SMTP server {server} ({security})").format(server=self._server, security=self.security)

    def _spooled(self, name: str) -> Path:
        if not name or name in (".", "..") or "/" in name or "\\" in name or name.startswith("."):
            raise DeliveryError(_(
                "{name} cannot be the name of an e-mail output (it must be a plain file name)").format(name=repr(name)))
        return self.spool / name

    def location(self, name: str) -> str:
        """``smtp://host:port/<Message-ID without brackets>``, or the output name once the spool file is gone."""
        try:
            headers = self._headers(self._spooled(name).read_bytes(), name)
            message_id = str(headers.get("Message-ID", "")).strip().strip("<>")
        except (OSError, DeliveryError):
            message_id = ""
        return f"smtp://{self._server}/{message_id or name}"

    # -- upload -------------------------------------------------------------------------

    def upload(self, staged: Path, name: str) -> None:
        target = self._spooled(name)
        temp = self.spool / temp_name(name)
        try:
            data = staged.read_bytes()
        except OSError as exc:
            raise DeliveryError(_("the staged e-mail {file} cannot be read: {error}").format(
                file=staged, error=exc.strerror or exc)) from None
        self._envelope(self._headers(data, name), name)  # refuse now what could never be sent
        try:
            self.spool.mkdir(parents=True, exist_ok=True)
            with open(temp, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(temp, target)
            fsync_dir(self.spool)
        except OSError as exc:
            raise DeliveryError(_("cannot write to the e-mail spool {folder}: {error}").format(
                folder=self.spool, error=exc.strerror or exc)) from None

    def has_upload(self, name: str) -> bool:
        return self._spooled(name).exists()

    # -- the destination contract ------------------------------------------------------

    @staticmethod
    def spool_name(item: Delivery) -> str:
        """The spool file of a delivery: its key, so that two inputs' e-mails of the same name never meet."""
        return f"{item.key}.eml"

    def prepare(self, item: Delivery) -> None:
        self.upload(item.staged, self.spool_name(item))

    def deliver(self, item: Delivery, calls: CallLog) -> str:
        name = self.spool_name(item)
        if not self.has_upload(name):
            return self._sent_location(item)  # sent by an earlier call for this key
        return self.publish(name)

    def status(self, item: Delivery, calls: CallLog) -> Status:
        """Spooled: not sent. Gone: sent (the spool file is deleted only after the server took the message)."""
        if self.has_upload(self.spool_name(item)):
            return Status(Delivered.NO)
        return Status(Delivered.YES, self._sent_location(item))

    def _sent_location(self, item: Delivery) -> str:
        try:
            headers = self._headers(item.staged.read_bytes(), item.name)
            message_id = str(headers.get("Message-ID", "")).strip().strip("<>")
        except (OSError, DeliveryError):
            message_id = ""
        return f"smtp://{self._server}/{message_id or item.name}"

    # -- publish ------------------------------------------------------------------------

    def _headers(self, data: bytes, name: str) -> EmailMessage:
        # Headers are ASCII or, in an SMTPUTF8 message, UTF-8. The bytes parser would keep
        # UTF-8 as surrogates, which cannot be sent, so the text is decoded first.
        head = data.split(b"\r\n\r\n", 1)[0].split(b"\n\n", 1)[0]
        headers = HeaderParser(policy=email_policy.default).parsestr(head.decode("utf-8", "replace") + "\n\n")
        for field in ("From", "To", "Message-ID"):
            if not str(headers.get(field, "")).strip():
                raise DeliveryError(_(
                    "the e-mail {name} has no {header} header; it cannot be sent (it was not built by the gateway's "
                    "e-mail writer?)").format(name=name, header=field))
        return headers

    def _envelope(self, headers: EmailMessage, name: str) -> tuple[str, list[str]]:
        """``MAIL FROM`` and ``RCPT TO`` from the message's own From, To and Cc."""
        try:
            senders: list[Address] = list(headers["From"].addresses)
            recipients: list[Address] = [
                addr for field in ("To", "Cc") if headers[field] for addr in headers[field].addresses
            ]
        except (AttributeError, TypeError, ValueError):
            senders, recipients = [], []
        if len(senders) != 1 or not senders[0].domain or not recipients or any(not r.domain for r in recipients):
            raise DeliveryError(_("the e-mail {name} has no valid From or To address; it cannot be sent").format(
                name=name))
        return self.sender_override or senders[0].addr_spec, [r.addr_spec for r in recipients]

    def _password(self) -> str | None:
        if self.user is None or self.password_env is None:
            return None
        password = os.environ.get(self.password_env)
        if not password:
            raise DeliveryError(_(
                "the SMTP password for user {user} is missing: set the environment variable {variable} for the "
                "gateway (it is never read from gateway.yaml); the message is kept and sent again on the next run"
            ).format(user=repr(self.user), variable=self.password_env))
        return password

    def _tls_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.ca_file) if self.ca_file else None)

    def _connect(self, password: str | None) -> smtplib.SMTP:
        smtp: smtplib.SMTP
        if self.security == "ssl":
            smtp = smtplib.SMTP_SSL(self.host, self.port, timeout=self.timeout, context=self._tls_context())
        else:
            smtp = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
        try:
            smtp.ehlo()
            if self.security == "starttls":
                if not smtp.has_extn("starttls"):
                    raise DeliveryError(_(
                        "the mail server {server} does not offer STARTTLS, so the connection cannot be encrypted; use "
                        "security 'ssl' if the port expects TLS from the start, or 'none' only on a trusted network; "
                        "the message is kept and sent again on the next run").format(server=self._server))
                smtp.starttls(context=self._tls_context())
                smtp.ehlo()
            if self.user is not None and password is not None:
                smtp.login(self.user, password)
        except BaseException:
            smtp.close()
            raise
        return smtp

    def _connection(self, password: str | None) -> smtplib.SMTP:
        """The open connection if the server still answers, else a new one."""
        if self._smtp is not None:
            try:
                code, _answer = self._smtp.noop()
                if code == 250:
                    return self._smtp
            except (smtplib.SMTPException, OSError):
                pass
            self._drop()
        self._smtp = self._connect(password)
        return self._smtp

    def _drop(self) -> None:
        if self._smtp is not None:
            self._smtp.close()
            self._smtp = None

    def publish(self, name: str) -> str:
        """Send the spooled message, delete the spool file, return ``smtp://host:port/<Message-ID>``."""
        spooled = self._spooled(name)
        try:
            data = spooled.read_bytes()
        except FileNotFoundError:
            raise DeliveryError(_(
                "there is no spooled e-mail {name} to send: it was sent already or never uploaded (nothing was sent "
                "now)").format(name=name)) from None
        except OSError as exc:
            raise DeliveryError(_(
                "the spooled e-mail {file} cannot be read: {error}; the message is kept and sent again on the next run"
            ).format(file=spooled, error=exc.strerror or exc)) from None
        # SMTP wants CRLF; a bare LF (from a hand-made or LF-converted file) is refused by
        # many servers, so every line end is made CRLF here, which changes nothing else.
        data = re.sub(rb"\r\n|\r|\n", b"\r\n", data)
        headers = self._headers(data, name)
        envelope_from, recipients = self._envelope(headers, name)
        head = data.split(b"\r\n\r\n", 1)[0]
        needs_utf8 = not (envelope_from.isascii() and all(r.isascii() for r in recipients) and head.isascii())
        password = self._password()
        location = self.location(name)

        try:
            smtp = self._connection(password)
            options: list[str] = []
            if needs_utf8:
                if not smtp.has_extn("smtputf8"):
                    raise DeliveryError(_(
                        "the e-mail {name} has an address with non-ASCII characters (an SMTPUTF8 message), but the "
                        "mail server {server} does not support international addresses (SMTPUTF8); it must be enabled "
                        "on the server or the address corrected; the message is kept and sent again on the next run"
                    ).format(name=name, server=self._server))
                options.append("SMTPUTF8")
            if not data.isascii() and smtp.has_extn("8bitmime"):
                options.append("BODY=8BITMIME")
            refused = smtp.sendmail(envelope_from, recipients, data, mail_options=options)
        except DeliveryError:
            self._drop()
            raise
        except (smtplib.SMTPException, OSError) as exc:
            self._drop()
            raise DeliveryError(self._words(exc, name)) from None

        # Accepted by the server: from here on, nothing may raise DeliveryError, or the
        # message would be sent a second time.
        try:
            spooled.unlink()
            fsync_dir(self.spool)
        except OSError as exc:
            log.warning(_("the e-mail {name} was sent, but its spool file {file} could not be removed: {error}").format(
                name=name, file=spooled, error=exc.strerror or exc))
        for address, (code, text) in refused.items():
            log.warning(_("the e-mail {name} was sent, but the mail server refused the recipient {address} "
                          "({reply})").format(name=name, address=address, reply=_reply(code, text)))
        return location

    def _words(self, exc: BaseException, name: str) -> str:
        """What went wrong, for the admin, and that the message waits."""
        if isinstance(exc, smtplib.SMTPException):  # checked first: an SMTPException is an OSError too
            return self._refusal_words(exc, name)
        return self._connection_words(exc)

    def _refusal_words(self, exc: smtplib.SMTPException, name: str) -> str:
        """What the mail server answered or refused, from the most particular SMTP error to the most general."""
        server = self._server
        seconds = f"{self.timeout:g}"
        if isinstance(exc, smtplib.SMTPRecipientsRefused):
            return _("the mail server {server} refused the recipient of {name}: {details}; the message is kept and "
                     "sent again on the next run").format(server=server, name=name, details=_refused_recipients(exc))
        if isinstance(exc, smtplib.SMTPSenderRefused):
            return _("the mail server {server} refused the sender {sender} of {name} ({reply}); the message is kept "
                     "and sent again on the next run").format(
                         server=server, sender=repr(exc.sender), name=name,
                         reply=_reply(exc.smtp_code, exc.smtp_error))
        if isinstance(exc, smtplib.SMTPAuthenticationError):
            return _("the mail server {server} refused the login of user {user} ({reply}); check the user and the "
                     "password in the environment variable {variable}; the message is kept and sent again on the "
                     "next run").format(server=server, user=repr(self.user),
                                        reply=_reply(exc.smtp_code, exc.smtp_error), variable=self.password_env)
        if isinstance(exc, smtplib.SMTPDataError):
            words = _("the mail server {server} permanently refused the e-mail {name} ({reply}); the message is kept "
                      "and sent again on the next run") if 500 <= exc.smtp_code < 600 else _(
                      "the mail server {server} refused the e-mail {name} ({reply}); the message is kept and sent "
                      "again on the next run")
            return words.format(server=server, name=name, reply=_reply(exc.smtp_code, exc.smtp_error))
        if isinstance(exc, smtplib.SMTPNotSupportedError):
            return _("the mail server {server} does not support what is needed: {error}; the message is kept and "
                     "sent again on the next run").format(server=server, error=exc)
        if isinstance(exc, smtplib.SMTPServerDisconnected) and isinstance(exc.__context__, TimeoutError):
            return _("the mail server {server} did not answer within {seconds} seconds; the message is kept and sent "
                     "again on the next run").format(server=server, seconds=seconds)
        if isinstance(exc, smtplib.SMTPServerDisconnected):
            return _("the mail server {server} closed the connection ({reason}); the message is kept and sent again "
                     "on the next run").format(server=server, reason=exc or _("no reason given"))
        if isinstance(exc, smtplib.SMTPResponseException):
            return _("the mail server {server} answered with an error ({reply}); the message is kept and sent again "
                     "on the next run").format(server=server, reply=_reply(exc.smtp_code, exc.smtp_error))
        return _("the mail server {server} failed: {error}; the message is kept and sent again on the next "
                 "run").format(server=server, error=exc)

    def _connection_words(self, exc: BaseException) -> str:
        """Why the mail server could not be reached or spoken to (TLS, time-out, name, network), or what else broke."""
        server = self._server
        seconds = f"{self.timeout:g}"
        if isinstance(exc, ssl.SSLCertVerificationError):
            return _("the certificate of the mail server {server} is not trusted ({reason}); if the server uses a "
                     "company CA, give its certificate as ca_file; the message is kept and sent again on the next "
                     "run").format(server=server, reason=exc.verify_message)
        if isinstance(exc, ssl.SSLError):
            return _("the TLS connection to the mail server {server} failed ({reason}); check security and port; the "
                     "message is kept and sent again on the next run").format(server=server, reason=exc.reason or exc)
        if isinstance(exc, TimeoutError):
            return _("the mail server {server} did not answer within {seconds} seconds; the message is kept and sent "
                     "again on the next run").format(server=server, seconds=seconds)
        if isinstance(exc, ConnectionRefusedError):
            return _("cannot connect to the mail server {server}: connection refused (is it running, is the port "
                     "right?); the message is kept and sent again on the next run").format(server=server)
        if isinstance(exc, socket.gaierror):
            return _("the mail server name {host} cannot be resolved ({error}); the message is kept and sent again on "
                     "the next run").format(host=repr(self.host), error=exc.strerror)
        if isinstance(exc, OSError):
            return _("cannot talk to the mail server {server}: {error}; the message is kept and sent again on the "
                     "next run").format(server=server, error=exc.strerror or exc)
        return _("the mail server {server}: {error}; the message is kept and sent again on the next run").format(
            server=server, error=exc)

    def close(self) -> None:
        """Say goodbye to the server, if a connection is open; a failing QUIT changes nothing."""
        if self._smtp is not None:
            with contextlib.suppress(smtplib.SMTPException, OSError):
                self._smtp.quit()
            self._drop()


def _build(config: SmtpDestinationConfig, parts: Parts) -> SmtpDestination:
    smtp = parts.installation.smtp
    if smtp is None:  # refused by the check already; kept for library use
        raise DeliveryError(_("e-mail needs the mail server described under 'smtp' in gateway.yaml"))
    spool = parts.installation.state_dir / "spool" / parts.flow.name / parts.place
    return SmtpDestination(smtp.host, smtp.port, spool=spool, security=smtp.security, user=smtp.user,
                           password_env=smtp.password_env)


def _check(config: SmtpDestinationConfig, ctx: Any) -> list[tuple[tuple[str | int, ...], str]]:
    if ctx.gateway is None or ctx.gateway.smtp is not None:
        return []
    return [(("smtp",), _("e-mail needs the mail server described under 'smtp' in gateway.yaml"))]


KIND = Kind(
    name="smtp",
    role="destination",
    config=SmtpDestinationConfig,
    build=_build,
    summary="e-mail through the mail server under `smtp`; one message per output, spooled until sent",
    example="{smtp: yes}",
    check=_check,
)
