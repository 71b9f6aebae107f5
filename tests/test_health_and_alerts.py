"""Health of sources and destinations in `gateway status`, and alert e-mails once per change of state."""

from __future__ import annotations

import email
import json
from email import policy

import pytest
from conftest import Install, order_xml, orders_file
from mailserver import Server


@pytest.fixture
def smtp() -> Server:
    server = Server().start()
    yield server  # type: ignore[misc]
    server.stop()


def _alerts(install: Install, port: int, after_minutes: str = "30") -> None:
    config = install.config.read_text(encoding="utf-8").replace(
        "flows:\n",
        f"smtp:\n  host: 127.0.0.1\n  port: {port}\n  security: none\n  sender: gateway@example.org\n"
        f"alerts:\n  email: admin@example.org\n  after_minutes: {after_minutes}\nflows:\n",
    )
    install.config.write_text(config, encoding="utf-8")


def _subjects(smtp: Server) -> list[str]:
    return [str(email.message_from_bytes(m[2], policy=policy.default)["Subject"]) for m in smtp.mailbox.messages]


def test_a_quarantined_input_is_told_to_the_admin_with_what_to_do(install: Install, smtp: Server) -> None:
    _alerts(install, smtp.port)
    install.drop("bad.xml", "<result><orders><order>")
    assert install.cli("run", "--once").exit_code == 1
    assert _subjects(smtp) == ["Gateway: rakuten-orders: bad.xml was quarantined"]
    body = email.message_from_bytes(smtp.mailbox.messages[0][2], policy=policy.default).get_body(("plain",))
    assert body is not None
    text = body.get_content()
    assert "the XML is broken" in text and "gateway retry 1" in text


def test_an_outbox_failing_longer_than_allowed_is_alerted_once_then_its_recovery(install: Install,
                                                                                  smtp: Server) -> None:
    _alerts(install, smtp.port, after_minutes="0.0001")
    outbox = install.outbox()
    outbox.rmdir()
    outbox.write_text("not a folder")
    install.drop("a.xml", orders_file(order_xml("1-1-1")))
    assert install.cli("run", "--once").exit_code == 3
    assert install.cli("run", "--once").exit_code == 3
    assert install.cli("run", "--once").exit_code == 3
    failing = [s for s in _subjects(smtp) if "has been failing" in s]
    assert failing == [f"Gateway: destination outbox of rakuten-orders has been failing since {failing[0][-25:]}"]

    status = install.cli("status", "--json")
    (flow,) = [json.loads(line) for line in status.output.splitlines()]
    (place,) = [p for p in flow["places"] if p["place"].startswith("destination")]
    assert place["failing_since"] is not None and "cannot" in place["error"]

    outbox.unlink()
    assert install.cli("run", "--once").exit_code == 0
    assert _subjects(smtp)[-1] == "Gateway: destination outbox of rakuten-orders works again"
    (flow,) = [json.loads(line) for line in install.cli("status", "--json").output.splitlines()]
    (place,) = [p for p in flow["places"] if p["place"].startswith("destination")]
    assert place["failing_since"] is None and place["last_ok"] is not None


def test_without_a_mail_server_alerts_are_a_config_problem(install: Install) -> None:
    config = install.config.read_text(encoding="utf-8").replace(
        "flows:\n", "alerts:\n  email: admin@example.org\nflows:\n")
    install.config.write_text(config, encoding="utf-8")
    result = install.cli("check")
    assert result.exit_code == 2 and "describe the mail server under 'smtp'" in result.output


def test_an_alert_that_cannot_be_sent_does_not_stop_processing(install: Install, smtp: Server) -> None:
    _alerts(install, smtp.port)
    smtp.stop()
    install.drop("bad.xml", "<result>")
    install.drop("good.xml", orders_file(order_xml("2-2-2")))
    result = install.cli("run", "--once")
    assert result.exit_code == 1  # bad.xml quarantined; the alert could not be sent, and that is only logged
    assert len(install.outputs()) == 1
