"""Stock and prices to Rakuten.de (``editProduct`` per article or variant) and offers to Rakuten France
(``genericimportfile`` with its import report), against the local Rakuten server."""

from __future__ import annotations

import json
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import REPO
from rakuten_install import WebInstall, make_web_install, set_env
from rakuten_server import RakutenServer

LAGER_HEADER = "Mandant;Artikelnummer;AuspraegungID;Lagerkennung;PlatzID;Bestand;Verfuegbarkeit"
VARIANTEN = ("Mandant;Artikelnummer;AuspraegungID;Variantenartikelnummer;EANNummer;Gewicht;Merkmale;Aktiv\r\n"
             "123;20001;1;20001-BL-M;;;;-1\r\n")


@pytest.fixture
def server() -> Iterator[RakutenServer]:
    srv = RakutenServer().start()
    yield srv
    srv.stop()


@pytest.fixture
def gw(tmp_path: Path, server: RakutenServer, monkeypatch: pytest.MonkeyPatch) -> WebInstall:
    set_env(monkeypatch, server)
    return make_web_install(tmp_path / "gw", server, ("rakuten-de-stock", "rakuten-fr-offers"))


def journal(gw: WebInstall) -> list[dict[str, Any]]:
    return [json.loads(line) for line in gw.cli("journal", "--json").output.splitlines()]


def stock_batch(gw: WebInstall, name: str, stock: dict[tuple[str, str], int]) -> None:
    """A SOL stock export (lager.csv + varianten.csv + export.done) in the inbox of rakuten-de-stock."""
    folder = gw.inbox("rakuten-de-stock") / f".{name}"
    folder.mkdir(parents=True)
    rows = [f"123;{art};{aid};HL;1;{n};{n}" for (art, aid), n in stock.items()]
    (folder / "lager.csv").write_text("\r\n".join([LAGER_HEADER, *rows]) + "\r\n", encoding="utf-8")
    (folder / "varianten.csv").write_text(VARIANTEN, encoding="utf-8")
    (folder / "export.done").write_text(name, encoding="utf-8")
    folder.rename(folder.with_name(name))


def test_stock_becomes_one_call_per_article_or_variant(gw: WebInstall, server: RakutenServer) -> None:
    stock_batch(gw, "bestand_1", {("10001", "0"): 150, ("10002", "0"): 0, ("20001", "1"): 25})
    assert gw.cli("run", "--once").exit_code == 0
    assert server.products == {"10001": {"stock": "150", "available": "1"}, "10002": {"stock": "0", "available": "0"},
                               "20001-BL-M": {"stock": "25", "available": "1"}}
    assert server.count("editProduct") == 2 and server.count("editProductVariant") == 1


def test_an_article_rakuten_does_not_know_is_noted_and_the_rest_goes_on(gw: WebInstall,
                                                                        server: RakutenServer) -> None:
    server.known_articles = {"10001"}
    stock_batch(gw, "bestand_1", {("10001", "0"): 5, ("55555", "0"): 7})
    assert gw.cli("run", "--once").exit_code == 0
    assert server.products == {"10001": {"stock": "5", "available": "1"}}
    (entry,) = journal(gw)
    (note,) = entry["skipped"]
    assert note["key"] == "55555" and "2210" in note["reason"]


def test_a_later_update_waits_for_an_earlier_one_so_that_it_is_never_overwritten(gw: WebInstall,
                                                                                  server: RakutenServer) -> None:
    server.inject("editProduct", "500", times=99, key="10001")  # the first update cannot get through
    stock_batch(gw, "bestand_1", {("10001", "0"): 5, ("10002", "0"): 5})
    assert gw.cli("run", "--once").exit_code == 3
    stock_batch(gw, "bestand_2", {("10001", "0"): 3, ("10002", "0"): 3})
    assert gw.cli("run", "--once").exit_code == 3
    assert server.products["10002"]["stock"] == "5"  # the newer 3 was not sent ahead of the older 10001
    entries = journal(gw)
    assert "waits until the earlier update" in entries[1]["error"]
    server.faults.clear()
    assert gw.cli("run", "--once").exit_code == 0
    assert server.products["10001"]["stock"] == "3" and server.products["10002"]["stock"] == "3"
    assert [c.key for c in server.calls("editProduct") if c.applied] == ["10002", "10001", "10001", "10002"]


def offers_batch(gw: WebInstall) -> None:
    """The sample catalog export, as a folder completed by export.done, in the inbox of rakuten-fr-offers."""
    folder = gw.inbox("rakuten-fr-offers") / ".katalog_1"
    folder.mkdir(parents=True)
    with zipfile.ZipFile(REPO / "examples" / "rakuten-fr-offers" / "sample" / "input" / "katalog_sample.zip") as zf:
        zf.extractall(folder)
    folder.rename(folder.with_name("katalog_1"))


def test_an_offer_upload_is_followed_until_its_report_and_the_refused_articles_are_in_the_journal(
        gw: WebInstall, server: RakutenServer) -> None:
    server.import_errors = {"20001-BL-L": ("PRICE_TOO_LOW", "Le prix est inférieur au prix minimum")}
    offers_batch(gw)
    first = gw.cli("run", "--once")
    assert first.exit_code == 3  # uploaded; Rakuten is still processing it
    assert server.count("genericimportfile") == 1
    (imp,) = server.imports.values()
    assert imp.skus == ["10001", "20001-BL-M", "20001-BL-L", "20001-RT-M", "30001", "10002", "40001"]
    (entry,) = journal(gw)
    assert entry["state"] == "delivering" and "has not finished import" in entry["error"]
    assert gw.cli("run", "--once").exit_code == 0
    assert server.count("genericimportfile") == 1  # asked for the report, not uploaded again
    (entry,) = journal(gw)
    assert entry["state"] == "done"
    (note,) = [s for s in entry["skipped"] if s["key"] == "20001-BL-L"]
    assert "PRICE_TOO_LOW" in note["reason"] and "prix minimum" in note["reason"]


def test_an_upload_whose_answer_was_lost_is_sent_again_since_rakuten_cannot_be_asked(
        gw: WebInstall, server: RakutenServer) -> None:
    server.report_polls = 0
    server.inject("genericimportfile", "drop")
    offers_batch(gw)
    assert gw.cli("run", "--once").exit_code == 3
    assert gw.cli("run", "--once").exit_code == 0
    assert server.count("genericimportfile") == 2  # the same file of values, twice: documented in docs/rakuten.md
    (first, second) = server.imports.values()
    assert first.skus == second.skus
