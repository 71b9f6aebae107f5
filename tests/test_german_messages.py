"""With ``language: de`` in gateway.yaml the admin reads German where the messages arrive: a quarantined
input's reason file, ``gateway check``, the alert e-mails, the journal's advice, and ``gateway test``."""

from __future__ import annotations

import email
import shutil
from collections.abc import Iterator
from email import policy

import pytest
from conftest import REPO, Install, order_xml, orders_file
from mailserver import Server

from gateway import i18n
from gateway.errors import MappingError


@pytest.fixture(autouse=True)
def english_afterwards() -> Iterator[None]:
    """The command line sets the process's language from gateway.yaml; the next test starts in English."""
    yield
    i18n.set_language("en")


@pytest.fixture
def german(install: Install) -> Install:
    install.config.write_text("language: de\n" + install.config.read_text(encoding="utf-8"), encoding="utf-8")
    return install


@pytest.fixture
def smtp() -> Iterator[Server]:
    server = Server().start()
    yield server
    server.stop()


def _alerts(install: Install, port: int, after_minutes: str = "30") -> None:
    config = install.config.read_text(encoding="utf-8").replace(
        "flows:\n",
        f"smtp:\n  host: 127.0.0.1\n  port: {port}\n  security: none\n  sender: gateway@example.org\n"
        f"alerts:\n  email: admin@example.org\n  after_minutes: {after_minutes}\nflows:\n",
    )
    install.config.write_text(config, encoding="utf-8")


def _mails(smtp: Server) -> list[email.message.EmailMessage]:
    return [email.message_from_bytes(m[2], policy=policy.default) for m in smtp.mailbox.messages]  # type: ignore[misc]


def test_a_quarantined_input_has_its_reason_file_in_german(german: Install) -> None:
    german.drop("bad.xml", "<result><orders><order>")
    assert german.cli("run", "--once").exit_code == 1
    (reason,) = (german.quarantine / "rakuten-orders").glob("*.reason.txt")
    text = reason.read_text(encoding="utf-8")
    assert text.startswith("bad.xml, Zeile 1, Spalte "), text
    assert "das XML ist fehlerhaft" in text
    assert ("Was zu tun ist: Korrigieren Sie die Datei oder die Zuordnung und führen Sie dann\n"
            "    gateway retry 1\n") in text
    assert "Das Journal (gateway journal) enthält die Einzelheiten." in text
    assert "the XML is broken" not in text and "What to do" not in text and "line 1, column" not in text
    entry = german.cli("journal", "--json").output
    assert "das XML ist fehlerhaft" in entry


def test_the_same_input_in_english_without_the_language(install: Install) -> None:
    install.drop("bad.xml", "<result><orders><order>")
    assert install.cli("run", "--once").exit_code == 1
    (reason,) = (install.quarantine / "rakuten-orders").glob("*.reason.txt")
    text = reason.read_text(encoding="utf-8")
    assert text.startswith("bad.xml, line 1, column ") and "the XML is broken" in text and "What to do:" in text


def test_gateway_check_names_the_problems_in_german(german: Install) -> None:
    config = german.config.read_text(encoding="utf-8")
    config = config.replace("settle_seconds: 0", "settle_second: 0").replace(
        "mappings/rakuten-orders.yaml", "mappings/fehlt.yaml")
    german.config.write_text(config, encoding="utf-8")
    result = german.cli("check")
    assert result.exit_code == 2
    assert "unbekanntes Feld 'settle_second' (meinten Sie 'settle_seconds'?)" in result.output
    assert "die Zuordnungsdatei mappings/fehlt.yaml existiert nicht" in result.output
    assert "2 Probleme: beheben Sie sie und rufen Sie dann gateway check erneut auf." in result.output
    assert "unknown field" not in result.output and "does not exist" not in result.output


def test_a_wrong_kind_and_a_wrong_choice_are_named_in_german(german: Install) -> None:
    config = german.config.read_text(encoding="utf-8").replace(
        "    outbox:\n      folder: outbox/rakuten-orders\n", "    outbox:\n      memory: yes\n").replace(
        "settle_seconds: 0\n", "settle_seconds: 0\nwatch: sometimes\n")
    german.config.write_text(config, encoding="utf-8")
    result = german.cli("check")
    assert result.exit_code == 2
    assert "ein Ziel nennt seine Art mit einem der Schlüssel 'folder', 'sftp', 'smtp', 'sql'" in result.output
    assert "'watch' muss eines von 'auto', 'native' oder 'polling' sein, nicht 'sometimes'" in result.output


def test_an_alert_e_mail_is_written_in_german(german: Install, smtp: Server) -> None:
    _alerts(german, smtp.port)
    german.drop("bad.xml", "<result><orders><order>")
    assert german.cli("run", "--once").exit_code == 1
    (mail,) = _mails(smtp)
    assert str(mail["Subject"]) == "Gateway: rakuten-orders: bad.xml wurde in Quarantäne gelegt"
    body = mail.get_body(("plain",))
    assert body is not None
    text = body.get_content()
    assert "Der Eingang bad.xml des Ablaufs rakuten-orders konnte nicht verarbeitet werden" in text
    assert "das XML ist fehlerhaft" in text and "gateway retry 1" in text
    assert "Andere Eingänge werden wie gewohnt verarbeitet." in text


def test_a_failing_destination_is_alerted_in_german_by_its_german_name(german: Install, smtp: Server) -> None:
    _alerts(german, smtp.port, after_minutes="0.0001")
    outbox = german.outbox()
    outbox.rmdir()
    outbox.write_text("not a folder")
    german.drop("a.xml", orders_file(order_xml("1-1-1")))
    for _run in range(3):
        assert german.cli("run", "--once").exit_code == 3
    failing = [m for m in _mails(smtp) if "gestört" in str(m["Subject"])]
    assert failing and str(failing[0]["Subject"]).startswith("Gateway: Ziel outbox von rakuten-orders ist seit ")
    body = failing[0].get_body(("plain",))
    assert body is not None
    assert "Eingänge und Ausgaben warten und werden automatisch erneut versucht" in body.get_content()
    outbox.unlink()
    assert german.cli("run", "--once").exit_code == 0
    assert str(_mails(smtp)[-1]["Subject"]) == "Gateway: Ziel outbox von rakuten-orders funktioniert wieder"


def test_a_damaged_journal_says_what_to_do_in_german(german: Install) -> None:
    journal = german.root / "state" / "journal.sqlite"
    journal.parent.mkdir(parents=True)
    journal.write_bytes(b"this is not a database" * 100)
    result = german.process("run", "--once")
    assert result.returncode == 3, result.stderr
    assert "das Journal (" in result.stderr and ") kann nicht verwendet werden: " in result.stderr
    assert "Nichts ist verloren: die Eingänge warten in ihrem Eingangs- oder Arbeitsordner." in result.stderr
    assert "Die Datei ist beschädigt oder kein Journal des Gateways: stellen Sie sie aus einer Sicherung wieder " \
           "her" in result.stderr
    assert "cannot be used" not in result.stderr


def test_a_lost_journal_is_refused_in_german(german: Install) -> None:
    german.drop("a.xml", orders_file(order_xml("1-1-1")))
    assert german.cli("run", "--once").exit_code == 0
    for part in (german.root / "state").glob("journal.sqlite*"):
        part.unlink()
    result = german.process("run", "--once")
    assert result.returncode == 3, result.stderr
    assert "es ist neu, aber diese Installation hat schon früher Eingänge verarbeitet" in result.stderr
    assert "führen Sie 'gateway journal restore' aus" in result.stderr


def test_the_place_words_of_an_input_error_are_german() -> None:
    error = MappingError("x", file="a.csv", line=3, column=5, record="Bestellung 7", field="Menge", value="abc",
                         mapping="m.yaml:4")
    assert str(error) == ("a.csv, line 3, column 5, Bestellung 7, field 'Menge': x (the value was 'abc') "
                          "[mapping m.yaml:4]")
    i18n.set_language("de")
    assert str(error) == ("a.csv, Zeile 3, Spalte 5, Bestellung 7, Feld 'Menge': x (der Wert war 'abc') "
                          "[Zuordnung m.yaml:4]")


def test_gateway_test_passes_the_english_error_txt_in_german(german: Install) -> None:
    shutil.copytree(REPO / "examples" / "rakuten-orders", german.root / "examples" / "rakuten-orders")
    result = german.cli("test")
    assert result.exit_code == 0, result.output
    assert result.output.rstrip().endswith("4 bestanden, 0 fehlgeschlagen")


def test_run_once_and_retry_answer_in_german(german: Install) -> None:
    german.drop("bad.xml", "<result><orders><order>")
    run = german.cli("run", "--once")
    assert run.exit_code == 1
    assert "0 erledigt, 0 doppelt, 1 in Quarantäne" in run.output
    assert "1 Eingang liegt in Quarantäne und wartet auf einen Menschen" in run.output
    assert "0 done" not in run.output
    retry = german.cli("retry", "1", "99")
    assert retry.exit_code == 1
    assert "Eingang 99: kein solcher Eintrag im Journal" in retry.output
    assert "Eingang 1 (rakuten-orders: bad.xml) wird beim nächsten Lauf verarbeitet" in retry.output
    assert german.cli("retry", "--all").output == "nichts erneut zu versuchen\n"


def test_a_wrong_schedule_is_refused_in_german(german: Install) -> None:
    german.config.write_text(german.config.read_text(encoding="utf-8") + '    schedule: { at: ["25:00"] }\n',
                             encoding="utf-8")
    result = german.cli("check")
    assert result.exit_code == 2
    assert "'25:00' ist keine Uhrzeit: die Stunde muss 00 bis 23 sein (Mitternacht ist 00:00)" in result.output
    assert "is not a time of day" not in result.output


def test_a_schedule_describes_itself_in_german() -> None:
    from gateway.schedule import Schedule

    i18n.set_language("de")
    assert Schedule(15, ["18:30", "06:00"]).describe() == "alle 15 min und um 06:00, 18:30"
    assert Schedule(0.5).describe() == "alle 0.5 min"
    with pytest.raises(ValueError) as refused:
        Schedule(-1)
    assert str(refused.value) == "every_minutes muss mehr als 0 Minuten sein, nicht -1"


def test_gateway_check_names_an_unknown_name_of_a_template_in_german_at_its_line(german: Install) -> None:
    mapping = german.root / "mappings" / "rakuten-orders.yaml"
    text = mapping.read_text(encoding="utf-8").replace('Bezeichnung1: "{{ item.name }}"',
                                                       'Bezeichnung1: "{{ itme.name }}"')
    mapping.write_text(text, encoding="utf-8")
    line = text[:text.index('Bezeichnung1: "{{ itme')].count("\n") + 1
    result = german.cli("check")
    assert result.exit_code == 2
    assert (f"rakuten-orders.yaml:{line}:" in result.output
            and "unbekannter Name 'itme' (hier bekannt: input, item, order, record, row_number, settings)"
            in result.output), result.output
    assert "unknown name" not in result.output


def test_a_record_that_cannot_be_converted_has_its_reason_in_german(german: Install) -> None:
    item = {"product_art_no": "10001", "name": "Kaffeebecher", "qty": "viele", "price": "12.90", "tax": "1"}
    german.drop("a.xml", orders_file(order_xml("1-1-1", items=[item])))
    assert german.cli("run", "--once").exit_code == 1
    (reason,) = (german.quarantine / "rakuten-orders").glob("*.reason.txt")
    text = reason.read_text(encoding="utf-8")
    assert "erwartet wurde eine Zahl wie 1234.50 (der Wert war 'viele')" in text, text
    assert "[Zuordnung " in text and "mappings/rakuten-orders.yaml:" in text
    assert "expected a number" not in text
    assert "erwartet wurde eine Zahl wie 1234.50" in german.cli("journal", "--json").output


def test_gateway_settings_names_where_each_value_comes_from_in_german(german: Install) -> None:
    text = german.config.read_text(encoding="utf-8").replace(
        "settle_seconds: 0\n", "settle_seconds: 0\nsettings:\n  belegart: VFR\n")
    german.config.write_text(text.rstrip("\n") + "\n    settings:\n      mandant: '789'\n", encoding="utf-8")
    result = german.cli("settings")
    assert result.exit_code == 0, result.output
    assert "mandant: '789'  ← der Ablauf in gateway.yaml (" in result.output
    assert "belegart: 'VFR'  ← die settings von gateway.yaml (" in result.output
    assert "the flow in" not in result.output and "settings of" not in result.output
    german.config.write_text(text, encoding="utf-8")
    result = german.cli("settings")
    assert "mandant: '123'  ← der Standardwert der Zuordnung (" in result.output
    assert "mappings/rakuten-orders.yaml:" in result.output


def test_a_mapping_mistake_found_by_its_model_is_named_in_german(german: Install) -> None:
    mapping = german.root / "mappings" / "rakuten-orders.yaml"
    text = mapping.read_text(encoding="utf-8")
    mapping.write_text(text.replace("\noutputs:\n", "\ndefine:\n  1preis: order.total\noutputs:\n", 1),
                       encoding="utf-8")
    result = german.cli("check")
    assert result.exit_code == 2
    assert ("'1preis' kann kein Name sein: verwenden Sie Buchstaben, Ziffern und '_', nicht mit einer Ziffer am "
            "Anfang") in result.output, result.output
