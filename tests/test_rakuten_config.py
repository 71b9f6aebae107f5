"""The ``services:`` section and the http kinds in gateway.yaml: refused before anything moves, in plain words."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import REPO, Install

from gateway import i18n

BASE = """\
settle_seconds: 0
services:
  rakuten-fr: {{ api: rakuten-fr, url_env: RAKUTEN_FR_URL, login_env: RAKUTEN_FR_LOGIN,
                token_env: RAKUTEN_FR_TOKEN{fr} }}
  rakuten-de: {{ api: rakuten-de, url_env: RAKUTEN_DE_URL, key_env: RAKUTEN_DE_KEY }}
flows:
  sales:
    mapping: mappings/rakuten-fr-orders.yaml
    source: {{ http: {service}, call: {call} }}
    outbox: {{ folder: outbox/sol }}
    destinations:
      annahme: {{ http: rakuten-fr, call: acceptsale }}
"""


def install(tmp_path: Path, *, fr: str = "", service: str = "rakuten-fr", call: str = "getnewsales") -> Install:
    root = tmp_path / "gw"
    (root / "mappings").mkdir(parents=True)
    (root / "mappings" / "rakuten-fr-orders.yaml").write_text(
        (REPO / "mappings" / "rakuten-fr-orders.yaml").read_text(encoding="utf-8"), encoding="utf-8")
    (root / "gateway.yaml").write_text(BASE.format(fr=fr, service=service, call=call), encoding="utf-8")
    return Install(root)


@pytest.mark.parametrize(("changes", "words"), [
    ({"service": "rakuten-es"}, "no web service named 'rakuten-es' under 'services' (services: rakuten-fr, "),
    ({"service": "rakuten-de"}, "'getnewsales' is a call of rakuten-fr, and the service 'rakuten-de' is rakuten-de"),
    ({"call": "getSales"}, "call"),
    ({"fr": ", calls_per_secnd: 2"}, "calls_per_secnd"),
    ({"fr": ", key_env: RAKUTEN_DE_KEY"}, "key_env belongs to rakuten-de"),
    ({"fr": ", ca_file: keys/none.pem"}, "the CA bundle keys/none.pem does not exist"),
])
def test_a_wrong_service_setting_is_refused_with_its_line(tmp_path: Path, changes: dict[str, str],
                                                          words: str) -> None:
    result = install(tmp_path, **changes).cli("check")
    assert result.exit_code == 2
    assert words in result.output and "gateway.yaml:" in result.output


def test_a_secret_written_where_its_variable_belongs_is_refused(tmp_path: Path) -> None:
    gw = install(tmp_path)
    text = gw.config.read_text(encoding="utf-8").replace("token_env: RAKUTEN_FR_TOKEN", "token_env: 'x9/+secret'")
    gw.config.write_text(text, encoding="utf-8")
    result = gw.cli("check")
    assert result.exit_code == 2 and "write the variable's name here, never its value" in result.output


def test_check_warns_about_an_address_that_would_be_refused_without_calling(tmp_path: Path,
                                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("RAKUTEN_FR_URL", "RAKUTEN_FR_LOGIN", "RAKUTEN_FR_TOKEN", "RAKUTEN_DE_URL", "RAKUTEN_DE_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("RAKUTEN_DE_URL", "http://webservice.rakuten.de/merchants/")
    result = install(tmp_path).cli("check")
    assert result.exit_code == 0
    assert "web service rakuten-de: RAKUTEN_DE_URL must start with https://" in result.output
    assert "rakuten-fr" not in result.output.split("OK")[0]  # variables not set are no problem of the file


def test_the_shipped_configuration_runs_without_any_variable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The README's first command still exits 0: the web-service flows wait for their variables."""
    import shutil
    import subprocess

    for name in ("RAKUTEN_FR_URL", "RAKUTEN_FR_LOGIN", "RAKUTEN_FR_TOKEN", "RAKUTEN_DE_URL", "RAKUTEN_DE_KEY"):
        monkeypatch.delenv(name, raising=False)
    root = tmp_path / "shipped"
    files = subprocess.run(["git", "ls-files", "gateway.yaml", "mappings", "templates", "lookups", "schemas"],
                           cwd=REPO, capture_output=True, text=True, check=True).stdout.split()
    for name in files:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(REPO / name, root / name)
    (root / "inbox" / "rakuten-orders").mkdir(parents=True)
    sample = REPO / "examples" / "rakuten-orders" / "sample" / "input" / "orders_de.xml"
    shutil.copy(sample, root / "inbox" / "rakuten-orders")
    result = Install(root).cli("run", "--once")
    assert result.exit_code == 0, result.output
    assert "rakuten-fr-sales" in result.output and "RAKUTEN_FR_TOKEN" in result.output


def test_a_web_service_source_is_polled_every_five_minutes_unless_the_flow_says_otherwise(tmp_path: Path) -> None:
    from gateway.config import load_installation

    inst = load_installation(install(tmp_path).config)
    flow = inst.flows["sales"]
    assert flow.config.schedule is None and inst.kinds.poll_minutes(flow) == 5.0
    assert inst.kinds.get("source", "folder").poll_minutes is None  # a folder is watched, not polled


@pytest.fixture
def english_afterwards() -> Iterator[None]:
    """The command line sets the process's language from gateway.yaml; the next test starts in English."""
    yield
    i18n.set_language("en")


def _german(gw: Install) -> Install:
    gw.config.write_text("language: de\n" + gw.config.read_text(encoding="utf-8"), encoding="utf-8")
    return gw


def _no_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("RAKUTEN_FR_URL", "RAKUTEN_FR_LOGIN", "RAKUTEN_FR_TOKEN", "RAKUTEN_DE_URL", "RAKUTEN_DE_KEY"):
        monkeypatch.delenv(name, raising=False)


@pytest.mark.usefixtures("english_afterwards")
def test_a_wrong_service_setting_is_refused_in_german(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _no_variables(monkeypatch)
    result = _german(install(tmp_path / "a", fr=", key_env: RAKUTEN_DE_KEY")).cli("check")
    assert result.exit_code == 2
    assert "key_env gehört zu rakuten-de; rakuten-fr nimmt login_env und token_env" in result.output
    result = _german(install(tmp_path / "b", service="rakuten-es")).cli("check")
    assert result.exit_code == 2
    assert "kein Webdienst namens 'rakuten-es' unter 'services' (Webdienste: rakuten-fr, rakuten-de)" in result.output
    monkeypatch.setenv("RAKUTEN_DE_URL", "http://webservice.rakuten.de/merchants/")
    result = _german(install(tmp_path / "c")).cli("check")
    assert result.exit_code == 0
    assert "Warnung: Webdienst rakuten-de: RAKUTEN_DE_URL muss mit https:// beginnen" in result.output
    assert "belongs to" not in result.output and "must start" not in result.output


@pytest.mark.usefixtures("english_afterwards")
def test_a_web_service_that_cannot_be_reached_is_shown_in_german(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    import socket

    with socket.socket() as s:  # a port nobody listens on: the connection is refused at once
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    _no_variables(monkeypatch)
    monkeypatch.setenv("RAKUTEN_FR_URL", f"http://127.0.0.1:{port}/")
    monkeypatch.setenv("RAKUTEN_FR_LOGIN", "seller")
    monkeypatch.setenv("RAKUTEN_FR_TOKEN", "t0ken")
    gw = _german(install(tmp_path, fr=", retries: 0, calls_per_second: 0"))
    run = gw.cli("run", "--once")
    assert "0 erledigt, 0 doppelt, 0 in Quarantäne" in run.output, run.output
    status = gw.cli("status").output.splitlines()
    (fr,) = [line for line in status if line.startswith("Webdienst rakuten-fr ")]
    assert fr.startswith("Webdienst rakuten-fr (rakuten-fr): letzter Aufruf 2"), fr
    assert ", zuletzt geantwortet nie; gestört seit " in fr
    assert ": Webdienst rakuten-fr: getnewsales: ist nicht erreichbar (" in fr
    assert ("Webdienst rakuten-de (rakuten-de): letzter Aufruf nie, zuletzt geantwortet nie; wartet auf "
            "RAKUTEN_DE_URL, RAKUTEN_DE_KEY") in status
    test = gw.cli("service", "test", "rakuten-fr")
    assert test.exit_code == 1
    assert "rakuten-fr: FEHLGESCHLAGEN: Webdienst rakuten-fr: getcurrentsales: ist nicht erreichbar (" in test.output
    assert "(1 Versuch)" in test.output and "t0ken" not in test.output
