"""E-mails as outputs of a flow, through a real SMTP server on loopback: one per record, none twice."""

from __future__ import annotations

import email
import json
from email import policy

import pytest
from conftest import Install, order_xml, orders_file
from mailserver import Server

EMAIL_OUTPUT = """
  - name: zahlung
    format: email
    to: mail
    when: order.payment == 'PP'
    file: "zahlung_{{ order.order_no }}.eml"
    recipient: "{{ order.client.first_name }} {{ order.client.last_name }} <{{ order.client.email }}>"
    subject: "Ihre Bestellung {{ order.order_no }}: bitte überweisen Sie {{ order.total | number }} €"
    text: templates/zahlung.txt.j2
    html: templates/zahlung.html.j2
"""

TEXT = ("Guten Tag {{ order.client.first_name }},\n"
        "bitte überweisen Sie {{ order.total | number }} € für {{ order.order_no }}.\n")
HTML = "<p>Guten Tag {{ order.client.first_name }}, Betrag: <b>{{ order.total | number }} €</b></p>\n"


@pytest.fixture
def smtp() -> Server:
    server = Server().start()
    yield server  # type: ignore[misc]
    server.stop()


def _setup(install: Install, port: int) -> None:
    (install.root / "templates").mkdir()
    (install.root / "templates" / "zahlung.txt.j2").write_text(TEXT, encoding="utf-8")
    (install.root / "templates" / "zahlung.html.j2").write_text(HTML, encoding="utf-8")
    mapping = install.root / "mappings" / "rakuten-orders.yaml"
    mapping.write_text(mapping.read_text(encoding="utf-8") + EMAIL_OUTPUT, encoding="utf-8")
    config = install.config.read_text(encoding="utf-8")
    config = config.replace("flows:\n", f"smtp:\n  host: 127.0.0.1\n  port: {port}\n  security: none\n"
                                         "  sender: Shop Müller <shop@example.org>\n  domain: example.org\nflows:\n")
    config += "    destinations:\n      mail: { smtp: true }\n"
    install.config.write_text(config, encoding="utf-8")


def _orders() -> str:
    return orders_file(
        order_xml("1-1-1", payment="PP", client={"first_name": "Jörg", "email": "joerg@example.org"}),
        order_xml("2-2-2", payment="PAL"),
        order_xml("3-3-3", payment="PP", client={"first_name": "Ännchen", "email": "anna@example.org"}),
    ).replace("<total>0</total>", "<total>63.20</total>")


def test_one_payment_request_per_prepayment_order_with_umlauts_intact(install: Install, smtp: Server) -> None:
    _setup(install, smtp.port)
    assert install.cli("check").exit_code == 0
    install.drop("a.xml", _orders())
    result = install.cli("run", "--once")
    assert result.exit_code == 0, result.output
    messages = smtp.mailbox.messages
    assert [rcpt for _, rcpt, _, _ in messages] == [["joerg@example.org"], ["anna@example.org"]]
    first = email.message_from_bytes(messages[0][2], policy=policy.default)
    assert str(first["Subject"]) == "Ihre Bestellung 1-1-1: bitte überweisen Sie 63,20 €"
    assert str(first["From"]) == "Shop Müller <shop@example.org>"
    assert first["Message-ID"] == "<gw.rakuten-orders.1.zahlung.1@example.org>"
    text = first.get_body(("plain",))
    html = first.get_body(("html",))
    assert text is not None and "Guten Tag Jörg" in text.get_content() and "63,20 €" in text.get_content()
    assert html is not None and "<b>63,20 €</b>" in html.get_content()
    (entry,) = [json.loads(line) for line in install.cli("journal", "--json").output.splitlines()]
    mails = [o for o in entry["outputs"] if o.startswith("smtp://")]
    assert len(mails) == 2


def test_no_email_is_sent_twice_when_the_same_orders_come_again(install: Install, smtp: Server) -> None:
    _setup(install, smtp.port)
    install.drop("a.xml", _orders())
    assert install.cli("run", "--once").exit_code == 0
    install.drop("b.xml", _orders().replace("<comment_client></comment_client>", "<comment_client>x</comment_client>"))
    assert install.cli("run", "--once").exit_code == 0
    assert len(smtp.mailbox.messages) == 2


def test_smtp_down_keeps_the_email_waiting_and_sends_it_once_later(install: Install, smtp: Server) -> None:
    _setup(install, smtp.port)
    smtp.stop()
    install.drop("a.xml", _orders())
    first = install.cli("run", "--once")
    assert first.exit_code == 3
    (entry,) = [json.loads(line) for line in install.cli("journal", "--json").output.splitlines()]
    assert entry["state"] == "delivering" and "sent again" in str(entry["error"])
    assert len(entry["pending_outputs"]) >= 2  # the two e-mails wait (the CSV may be out already)
    smtp.start()
    assert install.cli("run", "--once").exit_code == 0
    assert len(smtp.mailbox.messages) == 2
    assert install.cli("run", "--once").exit_code == 0
    assert len(smtp.mailbox.messages) == 2


def test_e_mails_can_be_collected_as_eml_files_in_a_folder(install: Install) -> None:
    _setup(install, 1)
    config = install.config.read_text(encoding="utf-8").replace("mail: { smtp: true }", "mail: { folder: outbox/mail }")
    install.config.write_text(config, encoding="utf-8")
    install.drop("a.xml", _orders())
    assert install.cli("run", "--once").exit_code == 0
    names = sorted(p.name for p in (install.root / "outbox" / "mail").iterdir())
    assert names == ["zahlung_1-1-1.eml", "zahlung_3-3-3.eml"]


def test_a_customer_address_that_is_not_an_address_quarantines_with_its_order(install: Install, smtp: Server) -> None:
    _setup(install, smtp.port)
    install.drop("a.xml", orders_file(order_xml("9-9-9", payment="PP", client={"email": "kein-at-zeichen"})))
    assert install.cli("run", "--once").exit_code == 1
    (entry,) = [json.loads(line) for line in install.cli("journal", "--json").output.splitlines()]
    assert entry["state"] == "failed"
    assert "order 9-9-9" in str(entry["error"]) and "recipient" in str(entry["error"])
    assert smtp.mailbox.messages == []


def test_an_invalid_sender_in_gateway_yaml_is_refused_by_check(install: Install, smtp: Server) -> None:
    _setup(install, smtp.port)
    config = install.config.read_text(encoding="utf-8").replace("shop@example.org", "kein sender")
    install.config.write_text(config, encoding="utf-8")
    result = install.cli("check")
    assert result.exit_code == 2 and "sender" in result.output
