"""E-mails to customers, built completely as RFC 5322 bytes before anything is sent.

A message is an output like any file: the engine stages the ``.eml`` bytes built here,
commits them, then hands them to a destination (an outbox folder or an SMTP server).
Everything the message will ever be is decided here, once, so a re-send after a crash
is byte for byte the message that may already have gone out — above all the same
``Message-ID``, which mail clients use to show a duplicate as one message.

Choices that keep the message deliverable by any server:

* With plain ASCII addresses the whole message is 7-bit: non-ASCII display names and
  subjects become RFC 2047 encoded-words, bodies are UTF-8 in quoted-printable,
  attachments base64, file names RFC 2231. No server extension is needed.
* Only an address whose mailbox or domain itself is non-ASCII (``jörg@bücher.de``)
  makes an SMTPUTF8 message (raw UTF-8 headers); the SMTP destination then asks the
  server for SMTPUTF8 and says so plainly when the server cannot.
* MIME boundaries are derived from the Message-ID instead of being random, so the
  same record with the same date gives the same bytes (golden tests, re-conversion).
  They start with ``=_``, which quoted-printable and base64 never produce.

Every header value is checked before use: a CR or LF (or another control or line
separator character) in a value could add headers or recipients of the data's choosing
(header injection), so it is refused as a ``MappingError`` naming the field, like an
address that is not one. Both are faults of the record, not of the gateway.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from email import policy as email_policy
from email.header import Header
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import parseaddr
from typing import TYPE_CHECKING

from ..errors import MappingError
from ..i18n import N_, _
from .base import RecordAt, StagedOutput, Staging

if TYPE_CHECKING:
    from ..mapping.compiler import CompiledEmail

__all__ = ["address_problem", "build_message", "message_id_for"]

# RFC 5322 atext; '.' is left out on purpose (see _id_part).
_ATEXT = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!#$%&'*+-/?^_`{|}~")
_DOMAIN_LABEL = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$", re.IGNORECASE)
_MIME_TOKEN = re.compile(r"^[A-Za-z0-9!#$&^_.+-]+/[A-Za-z0-9!#$&^_.+-]+$")
_MESSAGE_ID = re.compile(r"^<[^<>@\s]+@[^<>@\s]+>$")


def _id_part(text: str) -> str:
    """``text`` made safe for a Message-ID, reversibly.

    Letters, digits and the usual ``_-`` stay as they are; everything else (including
    ``.``, the separator, and ``=``, the escape) becomes ``=XX`` per UTF-8 byte, so two
    different flow/output names can never give the same Message-ID.
    """
    out = []
    for ch in text:
        if ch in _ATEXT and ch != "=":
            out.append(ch)
        else:
            out.extend(f"={b:02X}" for b in ch.encode("utf-8"))
    return "".join(out)


def message_id_for(domain: str, flow: str, input_id: int, output: str, index: int) -> str:
    """The Message-ID of the ``index``-th message of ``output`` for journal input ``input_id``.

    Derived only from what the journal knows, so rebuilding or re-sending the message
    after a crash gives the same ID and the customer's mail client shows one message.
    ``domain`` should be a domain the sender controls (the From domain), which keeps
    the IDs unique worldwide. Names with characters a Message-ID cannot hold are
    escaped (see ``_id_part``); ordinary names appear unchanged.
    """
    labels = domain.split(".")
    if not domain or not all(_DOMAIN_LABEL.match(label) for label in labels):
        raise ValueError(_("the Message-ID domain {domain} is not a domain name (like 'shop.example.de')").format(
            domain=repr(domain)))
    if input_id < 0 or index < 0:
        raise ValueError("input_id and index of a Message-ID must not be negative")
    return f"<gw.{_id_part(flow)}.{input_id}.{_id_part(output)}.{index}@{domain.lower()}>"


#: What is checked, with its article, for the messages (``what`` below); translated where shown.
_THE = {
    "sender": N_("the sender"),
    "recipient": N_("the recipient"),
    "reply-to address": N_("the reply-to address"),
    "subject": N_("the subject"),
    "Message-ID": N_("the Message-ID"),
    "attachment name": N_("the attachment name"),
    "address": N_("the address"),
    "alert address": N_("the alert address"),
    "sender_override": N_("the sender_override"),
}


def _the(what: str) -> str:
    """``sender`` → "the sender", in the admin's language."""
    return _(_THE[what]) if what in _THE else f"the {what}"


def _check_header_text(what: str, value: str) -> None:
    """Refuse anything that could end a header line and start a new one."""
    for ch in value:
        if ch in "\r\n":
            raise MappingError(_(
                "{what} {value} contains a line break; line breaks are not allowed in an e-mail header (they could "
                "add headers or recipients)").format(what=_the(what), value=repr(value)))
        if ch != "\t" and unicodedata.category(ch) in ("Cc", "Zl", "Zp"):
            raise MappingError(_(
                "{what} {value} contains the control character {character}, which is not allowed in an e-mail "
                "header").format(what=_the(what), value=repr(value), character=f"U+{ord(ch):04X}"))


def _valid_domain(domain: str) -> bool:
    labels = domain.split(".")
    if len(labels) < 2 or labels[-1].isdigit():
        return False
    for label in labels:
        if not label or len(label) > 63 or label.startswith("-") or label.endswith("-"):
            return False
        if not all(ch.isalnum() or ch == "-" for ch in label):
            return False
    return True


def _address(what: str, value: str) -> Address:
    """Exactly one mailbox, as ``user@domain`` or ``Display Name <user@domain>``.

    Parsed by the RFC 5322 parser of ``email.headerregistry``; any defect it reports
    (other than a non-ASCII mailbox name, which SMTPUTF8 allows) refuses the value, and
    ``email.utils.parseaddr`` must find the same mailbox, so a value the two parsers
    read differently (a trick to smuggle in a second address) is refused as well.
    """
    _check_header_text(what, value)
    if not value.strip():
        raise MappingError(_("{what} is empty; an e-mail address is needed").format(what=_the(what)))
    header = email_policy.default.header_factory("To", value)
    addresses = list(header.addresses)
    defects = [d for d in header.defects if type(d).__name__ != "NonASCIILocalPartDefect"]
    if len(addresses) > 1:
        raise MappingError(_("{what} {value} holds {count} addresses; exactly one is allowed").format(
            what=_the(what), value=repr(value), count=len(addresses)))
    if len(addresses) != 1 or defects:
        raise MappingError(_("{what} {value} is not an e-mail address").format(what=_the(what), value=repr(value)))
    addr: Address = addresses[0]
    if not addr.username or not _valid_domain(addr.domain) or parseaddr(value)[1] != addr.addr_spec:
        raise MappingError(_("{what} {value} is not an e-mail address").format(what=_the(what), value=repr(value)))
    return Address(display_name=addr.display_name, username=addr.username, domain=addr.domain)


def address_problem(value: str, what: str = "address") -> str | None:
    """Why ``value`` is not one usable e-mail address, or ``None`` when it is.

    For checks outside a record, such as the configured sender, which should be refused
    when gateway.yaml is loaded rather than quarantine every input that uses it.
    """
    try:
        _address(what, value)
    except MappingError as exc:
        return exc.message
    return None


def _boundary(message_id: str, part: str) -> str:
    digest = hashlib.sha256(f"{message_id}\0{part}".encode()).hexdigest()[:32]
    return f"=_gw_{part}_{digest}"


def build_message(
    *,
    sender: str,
    to: str,
    subject: str,
    text: str,
    html: str | None = None,
    reply_to: str | None = None,
    message_id: str,
    date: dt.datetime | None = None,
    attachments: Sequence[tuple[str, bytes, str]] = (),
) -> bytes:
    """The complete message, ready to be staged as an ``.eml`` file and sent as it is.

    ``text`` is always there (some customers read plain text only); with ``html`` the
    two are a ``multipart/alternative``. ``attachments`` are ``(file name, content,
    "type/subtype")``; with any, the body goes into a ``multipart/mixed`` first.
    ``message_id`` comes from the caller (``message_id_for``) so a re-send carries the
    same ID. ``date`` defaults to now; a naive ``date`` is taken as local time.

    Raises ``MappingError`` when an address is not one address, or when any header
    value (or attachment name) holds a line break or another control character.
    """
    from_addr = _address("sender", sender)
    to_addr = _address("recipient", to)
    reply_addr = _address("reply-to address", reply_to) if reply_to is not None else None
    _check_header_text("subject", subject)
    _check_header_text("Message-ID", message_id)
    if not _MESSAGE_ID.match(message_id) or not message_id.isascii():
        raise MappingError(_("the Message-ID {value} is not of the form <id@domain>").format(value=repr(message_id)))
    for filename, _content, mime_type in attachments:
        _check_header_text("attachment name", filename)
        if not filename.strip() or "/" in filename or "\\" in filename:
            raise MappingError(_("the attachment name {name} is not a plain file name").format(name=repr(filename)))
        if not _MIME_TOKEN.match(mime_type):
            raise MappingError(_("the attachment type {type} of {name} is not of the form type/subtype").format(
                type=repr(mime_type), name=repr(filename)))

    addrs = [from_addr, to_addr] + ([reply_addr] if reply_addr else [])
    international = not all(a.addr_spec.isascii() for a in addrs)
    policy = email_policy.SMTPUTF8 if international else email_policy.SMTP

    when = date if date is not None else dt.datetime.now()
    if when.tzinfo is None:
        when = when.astimezone()  # naive: local time, as the caller's clock shows it

    msg = EmailMessage(policy=policy)
    msg["From"] = from_addr
    msg["To"] = to_addr
    if reply_addr is not None:
        msg["Reply-To"] = reply_addr
    subject = subject.strip()  # whitespace at either end does not survive a header anyway
    if subject.isascii():
        msg["Subject"] = subject
    else:
        # The policy's own folding drops the space between an ASCII word and a following
        # encoded-word in some subjects ("unterwegs – Größe" arrives as "unterwegs– Größe");
        # the classic Header encoder puts the spaces inside the encoded-words and is exact.
        msg.set_raw("Subject", Header(subject, "utf-8", header_name="Subject").encode(linesep="\n"))
    msg["Date"] = when
    msg["Message-ID"] = message_id
    msg.set_content(text, subtype="plain", charset="utf-8", cte="quoted-printable")
    if html is not None:
        msg.add_alternative(html, subtype="html", charset="utf-8", cte="quoted-printable")
    for filename, content, mime_type in attachments:
        maintype, subtype = mime_type.split("/", 1)
        msg.add_attachment(content, maintype=maintype, subtype=subtype, filename=filename, cte="base64")
    for number, part in enumerate(msg.walk()):
        if part is not msg:
            del part["MIME-Version"]  # the email package repeats it in every part; only the top needs it
        if part.is_multipart():
            part.set_boundary(_boundary(message_id, f"{part.get_content_subtype()}{number}"))
    return msg.as_bytes(policy=policy)


@dataclass(frozen=True)
class MailSettings:
    """What e-mails take from gateway.yaml: the sender and the domain of Message-IDs."""

    sender: str = "gateway@localhost"
    domain: str = "gateway.invalid"
    date: dt.datetime | None = None  # fixed for golden examples; otherwise the time of building


class EmailWriter:
    """``format: email``: one complete message per record (none when ``when`` is false), staged as ``.eml``."""

    needs_records = True
    rank = 2

    def __init__(self, email: CompiledEmail, position: int, staging: Staging) -> None:
        self.email = email
        self.position = position
        self.staging = staging

    def write(self, record: RecordAt) -> list[StagedOutput]:
        email, context, staging = self.email, record.context, self.staging
        if not email.wanted(context):
            return []
        mail, info = staging.mail, staging.input_info
        message_id = message_id_for(mail.domain, str(info.get("flow", "flow")), int(info.get("id", 0)),
                                    email.name, record.number)
        data = build_message(
            sender=email.spec.sender or mail.sender,
            to=email.render("recipient", context).strip(),
            subject=email.render("subject", context).strip(),
            text=email.render("text", context),
            html=email.render("html", context) if email.html is not None else None,
            reply_to=email.spec.reply_to,
            message_id=message_id,
            date=mail.date,
        )
        path = staging.place(self.position, email.name, record.number)
        path.write_bytes(data)
        with open(path, "rb+") as fh:
            os.fsync(fh.fileno())
        return [StagedOutput(output=email.name, destination=email.spec.to, name=email.file_name(context),
                             path=path, rows=1)]

    def finish(self, records: int | None) -> list[StagedOutput]:
        return []

    def close(self) -> None:
        """Each message is complete when ``write`` returns."""
