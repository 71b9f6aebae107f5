"""E-mail outputs: the message writer, and delivery through a real SMTP server on loopback.

The server is aiosmtpd in a thread; its handler keeps every accepted message, so the
tests can check what actually went over the wire (byte for byte) and how often.
"""

from __future__ import annotations

import datetime as dt
import email
import ipaddress
import socket
import ssl
from collections.abc import Callable, Iterator
from email import policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from mailserver import Server, authenticator

from gateway.destinations.email import SmtpDestination
from gateway.errors import DeliveryError, MappingError
from gateway.writers.email import build_message, message_id_for

SENDER = "Bücherstube Köln <shop@example.de>"
TO = "Jörg Müller <joerg.mueller@example.de>"
SUBJECT = "Ihre Sendung für Jörg Müller ist unterwegs – Größe ß, 12 €"
TEXT = (
    "Guten Tag Herr Müller,\n\nIhre Bestellung ist unterwegs.\nSendungsnummer: 00340434161094042557\n\n"
    "Grüße aus Köln\n"
)
HTML = "<p>Guten Tag Herr Müller,</p><p>Ihre Sendung: <b>00340434161094042557</b></p><p>Grüße aus Köln</p>\n"
ENV_NAME = "GATEWAY_SMTP_PASSWORD"  # the variable holding the SMTP password
MID = message_id_for("shop.example.de", "rakuten-shipping", 42, "tracking-mail", 0)


# -- a real SMTP server (tests/smtpd.py) ------------------------------------------------


@pytest.fixture
def server_factory() -> Iterator[Callable[..., Server]]:
    servers: list[Server] = []

    def make(**options: Any) -> Server:
        server = Server(**options).start()
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.stop()


@pytest.fixture
def server(server_factory: Callable[..., Server]) -> Server:
    return server_factory()


@pytest.fixture
def destinations(tmp_path: Path) -> Iterator[Callable[..., SmtpDestination]]:
    made: list[SmtpDestination] = []

    def make(port: int, **options: Any) -> SmtpDestination:
        options.setdefault("security", "none")
        options.setdefault("timeout", 5)
        dest = SmtpDestination("127.0.0.1", port, spool=tmp_path / "spool", **options)
        made.append(dest)
        return dest

    yield make
    for dest in made:
        dest.close()


def stage(tmp_path: Path, name: str = "tracking-42-0.eml", **fields: Any) -> Path:
    """Build a message like the engine does and stage it as an .eml file."""
    args: dict[str, Any] = {"sender": SENDER, "to": TO, "subject": SUBJECT, "text": TEXT, "html": HTML,
                            "message_id": MID, "date": dt.datetime(2026, 3, 2, 14, 30, tzinfo=dt.UTC)}
    args.update(fields)
    path = tmp_path / "stage" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(build_message(**args))
    return path


def parse(data: bytes) -> EmailMessage:
    msg = email.message_from_bytes(data, policy=policy.default)
    assert isinstance(msg, EmailMessage)
    return msg


# -- the message -------------------------------------------------------------------------


def test_message_is_7bit_with_encoded_words_and_parses_back(tmp_path: Path) -> None:
    raw = stage(tmp_path).read_bytes()
    assert raw.isascii(), "plain ASCII addresses must give a message any server takes"
    assert b"\r\n" in raw and b"\n" not in raw.replace(b"\r\n", b"")
    head = raw.split(b"\r\n\r\n", 1)[0].decode()
    assert "Subject: =?utf-8?" in head  # RFC 2047 encoded-words
    msg = parse(raw)
    assert msg["Subject"] == SUBJECT
    assert msg["To"].addresses[0].display_name == "Jörg Müller"
    assert msg["From"].addresses[0].display_name == "Bücherstube Köln"
    assert msg["Message-ID"] == MID == "<gw.rakuten-shipping.42.tracking-mail.0@shop.example.de>"
    assert msg["Date"].datetime == dt.datetime(2026, 3, 2, 14, 30, tzinfo=dt.UTC)
    assert msg.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in msg.iter_parts()] == ["text/plain", "text/html"]
    plain, html = msg.get_body(("plain",)), msg.get_body(("html",))
    assert plain is not None and html is not None
    assert plain.get_content_charset() == "utf-8" and html.get_content_charset() == "utf-8"
    assert plain.get_content().replace("\r\n", "\n") == TEXT
    assert html.get_content().replace("\r\n", "\n") == HTML


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("ab äöüß€–,.xyz\t")) | st.characters(
    codec="utf-8", exclude_categories=("Cc", "Cs", "Zl", "Zp")), max_size=200))
def test_any_subject_survives_exactly(subject: str) -> None:
    """Every character and every space of a subject arrives (the ends are trimmed), in lines of at most 78."""
    raw = build_message(sender="shop@example.de", to="kunde@example.com", subject=subject, text="x", message_id=MID)
    assert parse(raw)["Subject"] == subject.strip()
    assert max(len(line) for line in raw.split(b"\r\n")) <= 78


def test_text_only_attachments_and_reply_to(tmp_path: Path) -> None:
    raw = build_message(sender="shop@example.de", to="kunde@example.com", subject="Zahlungsaufforderung",
                        text="Bitte überweisen Sie 12,50 €.\n", reply_to="Buchhaltung <buchhaltung@example.de>",
                        message_id=MID, attachments=[("Rechnung Müller.pdf", b"%PDF-1.4\x00\xff", "application/pdf")])
    msg = parse(raw)
    assert msg.get_content_type() == "multipart/mixed"
    assert msg["Reply-To"].addresses[0].addr_spec == "buchhaltung@example.de"
    [attachment] = list(msg.iter_attachments())
    assert attachment.get_filename() == "Rechnung Müller.pdf"
    assert attachment.get_content() == b"%PDF-1.4\x00\xff"
    body = msg.get_body(("plain",))
    assert body is not None and body.get_content().replace("\r\n", "\n") == "Bitte überweisen Sie 12,50 €.\n"
    only_text = parse(build_message(sender="shop@example.de", to="kunde@example.com", subject="x", text="ä",
                                    message_id=MID))
    assert only_text.get_content_type() == "text/plain"


def test_same_input_gives_the_same_bytes(tmp_path: Path) -> None:
    """Boundaries come from the Message-ID, not from chance: a rebuild is byte for byte the same."""
    first = stage(tmp_path, "a.eml", attachments=[("a.txt", b"x", "text/plain")]).read_bytes()
    second = stage(tmp_path, "b.eml", attachments=[("a.txt", b"x", "text/plain")]).read_bytes()
    assert first == second


def test_message_id_for_escapes_what_a_message_id_cannot_hold() -> None:
    assert message_id_for("shop.example.de", "orders", 7, "mail", 3) == "<gw.orders.7.mail.3@shop.example.de>"
    # dots are the separators: "a.1" + "b" must not look like "a" + "1.b"
    assert message_id_for("x.de", "a.1", 2, "b", 0) != message_id_for("x.de", "a", 1, "2.b", 0)
    assert message_id_for("x.de", "Versand Süd", 1, "m", 0) == "<gw.Versand=20S=C3=BCd.1.m.0@x.de>"
    with pytest.raises(ValueError, match="not a domain"):
        message_id_for("shop example", "f", 1, "o", 0)


@pytest.mark.parametrize(
    ("fields", "words"),
    [
        ({"to": "foo"}, "the recipient 'foo' is not an e-mail address"),
        ({"to": ""}, "the recipient is empty"),
        ({"to": "   "}, "the recipient is empty"),
        ({"to": "kunde@localhost"}, "not an e-mail address"),
        ({"to": "Müller <kunde@>"}, "not an e-mail address"),
        ({"to": "a@example.de, b@example.de"}, "holds 2 addresses"),
        ({"to": "alice@example.org)<bob@example.org>"}, "not an e-mail address"),
        ({"sender": "shop"}, "the sender 'shop' is not an e-mail address"),
        ({"reply_to": "nobody"}, "the reply-to address 'nobody' is not an e-mail address"),
    ],
)
def test_an_address_that_is_not_one_is_a_mapping_error(tmp_path: Path, fields: dict[str, str], words: str) -> None:
    with pytest.raises(MappingError, match=words):
        stage(tmp_path, **fields)


@pytest.mark.parametrize(
    ("fields", "words"),
    [
        ({"subject": "Ihre Sendung\r\nBcc: victim@example.org"}, "the subject .* contains a line break"),
        ({"subject": "Ihre Sendung\nX-Evil: 1"}, "the subject .* contains a line break"),
        ({"subject": "Ihre Sendung\u2028Bcc: x@example.org"}, "the subject .* control character U\\+2028"),
        ({"to": "kunde@example.de\r\nBcc: victim@example.org"}, "the recipient .* contains a line break"),
        ({"to": "Müller\n <kunde@example.de>"}, "the recipient .* contains a line break"),
        ({"sender": "shop@example.de\rBcc: x@example.org"}, "the sender .* contains a line break"),
        ({"attachments": [("a\r\nb.pdf", b"", "application/pdf")]}, "the attachment name .* line break"),
    ],
)
def test_header_injection_is_a_mapping_error(tmp_path: Path, fields: dict[str, Any], words: str) -> None:
    with pytest.raises(MappingError, match=words):
        stage(tmp_path, **fields)


# -- delivery ------------------------------------------------------------------------------


def test_message_arrives_intact_once(
    tmp_path: Path, server: Server, destinations: Callable[..., SmtpDestination]
) -> None:
    staged = stage(tmp_path)
    dest = destinations(server.port)
    dest.upload(staged, "tracking-42-0.eml")
    assert dest.has_upload("tracking-42-0.eml")
    expected = f"smtp://127.0.0.1:{server.port}/gw.rakuten-shipping.42.tracking-mail.0@shop.example.de"
    assert dest.location("tracking-42-0.eml") == expected

    assert dest.publish("tracking-42-0.eml") == expected

    [(mail_from, rcpts, data, _login)] = server.mailbox.messages
    assert (mail_from, rcpts) == ("shop@example.de", ["joerg.mueller@example.de"])
    assert data == staged.read_bytes(), "the server must get exactly the staged .eml"
    msg = parse(data)
    assert msg["Subject"] == SUBJECT and msg["Message-ID"] == MID
    assert msg["To"].addresses[0].display_name == "Jörg Müller"
    assert [p.get_content_type() for p in msg.iter_parts()] == ["text/plain", "text/html"]
    plain = msg.get_body(("plain",))
    assert plain is not None and plain.get_content().replace("\r\n", "\n") == TEXT

    # sent: the spool file is gone, which is how the engine knows after a crash
    assert not dest.has_upload("tracking-42-0.eml")
    assert not (tmp_path / "spool" / "tracking-42-0.eml").exists()
    assert dest.location("tracking-42-0.eml") == f"smtp://127.0.0.1:{server.port}/tracking-42-0.eml"
    assert not dest.takes_markers  # mail has no importer that waits for a marker file
    assert list((tmp_path / "spool").iterdir()) == []

    # publishing again sends nothing and says so
    with pytest.raises(DeliveryError, match="sent already or never uploaded"):
        dest.publish("tracking-42-0.eml")
    assert len(server.mailbox.messages) == 1


def test_upload_refuses_a_file_that_is_no_message(tmp_path: Path) -> None:
    staged = tmp_path / "not-a-mail.eml"
    staged.write_bytes(b"Bestellnummer;Menge\r\n4711;2\r\n")
    dest = SmtpDestination("127.0.0.1", 25, spool=tmp_path / "spool", security="none")
    with pytest.raises(DeliveryError, match="has no From header; it cannot be sent"):
        dest.upload(staged, "m.eml")
    assert not dest.has_upload("m.eml")


def test_a_resend_after_a_crash_carries_the_same_message_id(
    tmp_path: Path, server: Server, destinations: Callable[..., SmtpDestination]
) -> None:
    """The one window: accepted by the server, crash before the spool file is deleted."""
    staged = stage(tmp_path)
    dest = destinations(server.port)
    dest.upload(staged, "m.eml")
    dest.publish("m.eml")
    dest.upload(staged, "m.eml")  # what the spool holds when the crash came before the delete
    dest.publish("m.eml")
    ids = [parse(data)["Message-ID"] for _f, _t, data, _l in server.mailbox.messages]
    assert ids == [MID, MID]


def test_connection_is_reused_and_reopened(
    tmp_path: Path, server: Server, destinations: Callable[..., SmtpDestination]
) -> None:
    dest = destinations(server.port)
    for index in range(3):
        mid = message_id_for("shop.example.de", "f", 1, "o", index)
        dest.upload(stage(tmp_path, f"m{index}.eml", message_id=mid), f"m{index}.eml")
        dest.publish(f"m{index}.eml")
    assert len(set(server.mailbox.sessions)) == 1, "one connection for a batch of messages"

    server.stop()  # the server drops the open connection, as after an idle timeout
    server.start()
    dest.upload(stage(tmp_path, "m3.eml"), "m3.eml")
    dest.publish("m3.eml")
    assert len(server.mailbox.messages) == 4
    assert parse(server.mailbox.messages[-1][2])["Message-ID"] == MID
    assert len(set(server.mailbox.sessions)) == 2


def test_server_down_keeps_the_message_and_sends_it_later(
    tmp_path: Path, server: Server, destinations: Callable[..., SmtpDestination]
) -> None:
    dest = destinations(server.port)
    dest.upload(stage(tmp_path), "m.eml")
    server.stop()

    with pytest.raises(DeliveryError) as err:
        dest.publish("m.eml")
    assert "connection refused" in str(err.value)
    assert "kept and sent again" in str(err.value)
    assert dest.has_upload("m.eml")

    server.start()
    dest.publish("m.eml")
    assert len(server.mailbox.messages) == 1
    assert not dest.has_upload("m.eml")


def test_a_server_that_does_not_answer_times_out(
    tmp_path: Path, destinations: Callable[..., SmtpDestination]
) -> None:
    with socket.socket() as silent:  # accepts the connection (backlog) but never greets
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)
        dest = destinations(silent.getsockname()[1], timeout=0.3)
        dest.upload(stage(tmp_path), "m.eml")
        with pytest.raises(DeliveryError, match=r"did not answer within 0\.3 seconds; the message is kept"):
            dest.publish("m.eml")
    assert dest.has_upload("m.eml")


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
def test_login_with_the_password_from_the_environment(
    tmp_path: Path, server_factory: Callable[..., Server], destinations: Callable[..., SmtpDestination],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    server = server_factory(authenticator=authenticator, auth_require_tls=False, auth_required=True)
    dest = destinations(server.port, user="gateway", password_env=ENV_NAME)
    dest.upload(stage(tmp_path), "m.eml")

    monkeypatch.delenv("GATEWAY_SMTP_PASSWORD", raising=False)
    with pytest.raises(DeliveryError, match="set the environment variable GATEWAY_SMTP_PASSWORD"):
        dest.publish("m.eml")

    monkeypatch.setenv("GATEWAY_SMTP_PASSWORD", "wrong")
    with pytest.raises(DeliveryError, match=r"refused the login of user 'gateway'.*GATEWAY_SMTP_PASSWORD"):
        dest.publish("m.eml")
    assert server.mailbox.messages == [] and dest.has_upload("m.eml")

    monkeypatch.setenv("GATEWAY_SMTP_PASSWORD", "s3cr3t")
    dest.publish("m.eml")
    [(_f, _t, _data, login)] = server.mailbox.messages
    assert login.login == b"gateway"


def test_login_without_a_password_variable_is_a_configuration_mistake(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="password_env"):
        SmtpDestination("127.0.0.1", 25, spool=tmp_path, user="gateway")


def test_a_permanently_refused_recipient_is_named(
    tmp_path: Path, server: Server, destinations: Callable[..., SmtpDestination]
) -> None:
    server.mailbox.refuse["joerg.mueller@example.de"] = "550 no such user"
    dest = destinations(server.port)
    dest.upload(stage(tmp_path), "m.eml")
    with pytest.raises(DeliveryError) as err:
        dest.publish("m.eml")
    text = str(err.value)
    assert "refused the recipient of m.eml: joerg.mueller@example.de permanently (550 no such user)" in text
    assert "every further attempt will be refused" in text and "kept and sent again" in text
    assert dest.has_upload("m.eml") and server.mailbox.messages == []


def test_a_temporarily_refused_recipient_is_not_called_permanent(
    tmp_path: Path, server: Server, destinations: Callable[..., SmtpDestination]
) -> None:
    server.mailbox.refuse["joerg.mueller@example.de"] = "450 mailbox busy"
    dest = destinations(server.port)
    dest.upload(stage(tmp_path), "m.eml")
    with pytest.raises(DeliveryError, match=r"joerg.mueller@example.de for now \(450 mailbox busy\)") as err:
        dest.publish("m.eml")
    assert "permanently" not in str(err.value)
    del server.mailbox.refuse["joerg.mueller@example.de"]
    dest.publish("m.eml")  # the same destination recovers on the next attempt
    assert len(server.mailbox.messages) == 1


def test_envelope_sender_override(
    tmp_path: Path, server: Server, destinations: Callable[..., SmtpDestination]
) -> None:
    dest = destinations(server.port, sender_override="bounces@example.de")
    dest.upload(stage(tmp_path), "m.eml")
    dest.publish("m.eml")
    [(mail_from, _t, data, _l)] = server.mailbox.messages
    assert mail_from == "bounces@example.de"
    assert parse(data)["From"].addresses[0].addr_spec == "shop@example.de"


def test_international_address_needs_smtputf8(
    tmp_path: Path, server_factory: Callable[..., Server], destinations: Callable[..., SmtpDestination]
) -> None:
    staged = stage(tmp_path, to="Jörg <jörg@bücher.example>")
    plain_server = server_factory(enable_SMTPUTF8=False)
    dest = destinations(plain_server.port)
    dest.upload(staged, "m.eml")
    with pytest.raises(DeliveryError, match="does not support international addresses"):
        dest.publish("m.eml")

    utf8_server = server_factory(enable_SMTPUTF8=True)
    dest = destinations(utf8_server.port)
    dest.publish("m.eml")
    [(_f, rcpts, data, _l)] = utf8_server.mailbox.messages
    assert rcpts == ["jörg@bücher.example"]
    assert "To: Jörg <jörg@bücher.example>\r\n".encode() in data  # an SMTPUTF8 message: raw UTF-8 headers
    received = email.message_from_string(data.decode("utf-8"), policy=policy.default)
    assert received["To"].addresses[0].addr_spec == "jörg@bücher.example"


# -- TLS -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1, made on the spot."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "mail.test")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        .sign(key, hashes.SHA256())
    )
    folder = tmp_path_factory.mktemp("tls")
    (folder / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (folder / "key.pem").write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                                       serialization.PrivateFormat.PKCS8,
                                                       serialization.NoEncryption()))
    return folder / "cert.pem", folder / "key.pem"


def _server_tls(certificate: tuple[Path, Path]) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*certificate)
    return context


def test_starttls_verifies_the_certificate_and_then_logs_in(
    tmp_path: Path, server_factory: Callable[..., Server], destinations: Callable[..., SmtpDestination],
    certificate: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch,
) -> None:
    server = server_factory(tls_context=_server_tls(certificate), require_starttls=True,
                            authenticator=authenticator, auth_required=True)
    monkeypatch.setenv("GATEWAY_SMTP_PASSWORD", "s3cr3t")
    staged = stage(tmp_path)

    untrusting = destinations(server.port, security="starttls", user="gateway", password_env=ENV_NAME)
    untrusting.upload(staged, "m.eml")
    with pytest.raises(DeliveryError, match=r"certificate of the mail server .* is not trusted"):
        untrusting.publish("m.eml")

    trusting = destinations(server.port, security="starttls", user="gateway", password_env=ENV_NAME,
                            ca_file=certificate[0])
    trusting.publish("m.eml")
    assert len(server.mailbox.messages) == 1


def test_implicit_tls(
    tmp_path: Path, server_factory: Callable[..., Server], destinations: Callable[..., SmtpDestination],
    certificate: tuple[Path, Path],
) -> None:
    server = server_factory(ssl_context=_server_tls(certificate))
    dest = destinations(server.port, security="ssl", ca_file=certificate[0])
    dest.upload(stage(tmp_path), "m.eml")
    dest.publish("m.eml")
    assert len(server.mailbox.messages) == 1


def test_starttls_required_but_not_offered(
    tmp_path: Path, server: Server, destinations: Callable[..., SmtpDestination]
) -> None:
    dest = destinations(server.port, security="starttls")
    dest.upload(stage(tmp_path), "m.eml")
    with pytest.raises(DeliveryError, match="does not offer STARTTLS"):
        dest.publish("m.eml")
    assert dest.has_upload("m.eml")
