"""The shipped flow sol-catalog: a SOL catalog export (batch) → the Rakuten.de product CSV and the shop's side files.

The golden examples (examples/sol-catalog/) pin whole outputs; the tests here pin the rules one by
one on small exports built to order, each converted with the shipped mapping and templates.
"""

from __future__ import annotations

import csv
import io
import shutil
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from click.testing import CliRunner

from gateway import Engine, GatewayError, load_installation
from gateway.cli import cli
from gateway.config import Flow
from gateway.convert import convert
from gateway.errors import InputError

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples" / "sol-catalog"
TODAY = "2026-11-27"  # as in golden examples and previews

GATEWAY_YAML = """\
settle_seconds: 0
flows:
  sol-catalog:
    mapping: mappings/sol-catalog.yaml
    source: { folder: inbox/sol-catalog, include: ["katalog_*.zip", "katalog*"], batch_marker: export.done }
    outbox: { folder: outbox/sol-catalog }
"""

# docs/formats.md, "Product feed, Rakuten.de product CSV": the columns in this order, then the further
# columns of Rakuten.de's product CSV (free fields, MPN, pictures 6-10, technical data, energy label)
PRODUCT_HEADER = (
    "id;variante_zu_id;artikelnummer;produkt_bestellbar;produktname;hersteller;beschreibung;variante;variantenwert;"
    "isbn_ean;lagerbestand;preis;grundpreis_inhalt;grundpreis_einheit;reduzierter_preis;bezug_reduzierter_preis;"
    "mwst_klasse;bestandsverwaltung_aktiv;bild1;bild2;bild3;bild4;bild5;kategorien;lieferzeit;tradoria_kategorie;"
    "sichtbar;" + ";".join(f"free_var_{n}" for n in range(1, 21)) + ";MPN;bild6;bild7;bild8;bild9;bild10;"
    "technical_data;energie_klassen_gruppe;energie_klasse;energie_klasse_bis;energie_klassen_bild"
)
TEXT_HEADER = "artikelnummer;sprache;produktname;kurztext;beschreibung;einheit;meta_titel;meta_beschreibung"

# One row of each table with every column the mapping reads; a test gives only what it is about.
DEFAULTS: dict[str, dict[str, str]] = {
    "artikel": {"Mandant": "123", "Artikelnummer": "", "Bezeichnung1": "Artikel", "Langtext": "",
                "LangtextHTML": "", "Artikelgruppe": "01", "Hersteller": "", "Steuerklasse": "1", "EANNummer": "",
                "Stuecklistentyp": "0", "Variante": "0", "Aktiv": "-1", "IstVerkaufsartikel": "-1"},
    "artikelgruppen": {"Mandant": "123", "Artikelgruppe": "01", "Bezeichnung": "Küche", "Langbezeichnung": "",
                       "VaterArtikelgruppe": "EMPTY", "Gruppenebene": "1", "Aktiv": "-1", "Bild": "",
                       "MetaTitel": "", "MetaBeschreibung": "", "Sortierung": "10"},
    "varianten": {"Mandant": "123", "Artikelnummer": "", "AuspraegungID": "1", "Variantenartikelnummer": "",
                  "EANNummer": "", "Merkmale": "", "Aktiv": "-1"},
    "preise": {"Mandant": "123", "ListeID": "1", "IstAktion": "0", "GueltigVon": "", "GueltigBis": "",
               "Artikelnummer": "", "AuspraegungID": "0", "AbMenge": "0", "Einzelpreis": "10,00"},
    "lager": {"Mandant": "123", "Artikelnummer": "", "AuspraegungID": "0", "Lagerkennung": "HL", "Bestand": "0"},
    "stuecklisten": {"Mandant": "123", "Stueckliste": "", "Element": "", "AuspraegungID": "0", "Menge": "1"},
    "zubehoer": {"Mandant": "123", "Artikelnummer": "", "Bezugsartikel": "", "Beziehung": "Zubehoer",
                 "Sortierung": "1"},
    "texte": {"Mandant": "123", "Artikelnummer": "", "Sprache": "en", "Bezeichnung1": "", "Langtext": "",
              "MetaTitel": "", "MetaBeschreibung": ""},
    "dokumente": {"Mandant": "123", "Artikelnummer": "", "Datei": "", "Titel": "", "Sprache": "de",
                  "Sortierung": "1"},
}


def _install(root: Path) -> Path:
    (root / "mappings").mkdir(parents=True)
    shutil.copy(REPO / "mappings" / "sol-catalog.yaml", root / "mappings")
    (root / "templates").mkdir()
    for template in (REPO / "templates").glob("sol-catalog-*.j2"):
        shutil.copy(template, root / "templates")
    shutil.copytree(EXAMPLES, root / "examples" / "sol-catalog")
    (root / "gateway.yaml").write_text(GATEWAY_YAML, encoding="utf-8")
    (root / "inbox" / "sol-catalog").mkdir(parents=True)
    return root / "gateway.yaml"


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _install(tmp_path_factory.mktemp("gw"))


@pytest.fixture(scope="module")
def flow(config: Path) -> Flow:
    return load_installation(config).flows["sol-catalog"]


def _write_table(path: Path, rows: list[dict[str, str]], defaults: dict[str, str]) -> None:
    out = io.StringIO(newline="")
    columns = list(dict.fromkeys([*defaults, *(name for row in rows for name in row)]))  # a test's extra columns last
    writer = csv.DictWriter(out, fieldnames=columns, delimiter=";", lineterminator="\r\n", restval="")
    writer.writeheader()
    for row in rows:
        writer.writerow({**defaults, **row})
    path.write_bytes(out.getvalue().encode("cp1252"))  # as SOL writes: Windows-1252, CRLF


@dataclass
class Result:
    files: dict[str, list[dict[str, str]]] = field(default_factory=dict)  # output name → rows
    raw: dict[str, bytes] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)  # the reasons

    def products(self) -> dict[str, dict[str, str]]:
        return {row["artikelnummer"]: row for row in self.files.get("produkte", [])}


_counter = iter(range(1, 1_000_000))


def run(tmp_path: Path, flow: Flow, settings: dict[str, str] | None = None, **tables: list[dict[str, str]]) -> Result:
    """Convert an export made of the given tables (the others present but empty), as a folder.

    bilder.csv is written only when the test gives it: the other tables are always there.
    """
    batch = tmp_path / f"katalog_{next(_counter)}"
    batch.mkdir()
    tables.setdefault("artikelgruppen", [{}])
    for name, defaults in DEFAULTS.items():
        _write_table(batch / f"{name}.csv", tables.get(name, []), defaults)
    if "bilder" in tables:
        _write_table(batch / "bilder.csv", tables["bilder"], BILDER)
    for document in tables.get("dokumente", []):  # the files the documents table names are in the batch
        if document.get("Datei"):
            (batch / document["Datei"]).parent.mkdir(parents=True, exist_ok=True)
            (batch / document["Datei"]).write_bytes(b"%PDF-1.4 " + document["Datei"].encode() + b"\n%%EOF\n")
    (batch / "export.done").write_bytes(b"")
    info = {"id": 1, "name": batch.name, "stem": batch.name, "suffix": "", "received_at": "",
            "flow": "sol-catalog", "today": TODAY}
    stage = tmp_path / f"stage-{batch.name}"
    stage.mkdir()
    conversion = convert(flow.mapping, batch, batch.name, stage, info, {**flow.settings, **(settings or {})},
                         key_delivered=lambda key: None)
    result = Result(skipped=[s["reason"] for s in conversion.skipped])
    for staged in conversion.outputs:
        data = staged.path.read_bytes()
        output = staged.output
        if output == "texte":  # one file per language: texte_en_…, texte_fr_…
            output = "_".join(staged.name.split("_")[:2])
        result.raw[output] = data
        if staged.name.endswith(".csv"):
            result.files[output] = list(csv.DictReader(io.StringIO(data.decode("utf-8"), newline=""),
                                                              delimiter=";"))
    return result


BILDER = {"Mandant": "123", "Artikelnummer": "", "AuspraegungID": "0", "URL": "", "Sortierung": "1"}


def price(nr: str, value: str = "10,00", **more: str) -> dict[str, str]:
    return {"Artikelnummer": nr, "Einzelpreis": value, **more}


def stock(nr: str, amount: str, where: str = "HL", **more: str) -> dict[str, str]:
    return {"Artikelnummer": nr, "Bestand": amount, "Lagerkennung": where, **more}


# --- the golden examples ---------------------------------------------------------------------------------------


def test_the_golden_examples_pass(config: Path) -> None:
    result = CliRunner().invoke(cli, ["--config", str(config), "test", "sol-catalog"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    for case in ("sample", "edge-cases", "base-price-and-pictures", "too-long-article-number", "unknown-tax-class"):
        assert f"PASS  sol-catalog/{case}" in result.output
    assert result.output.rstrip().endswith("5 passed, 0 failed")


def test_the_mapping_passes_check(config: Path) -> None:
    result = CliRunner().invoke(cli, ["--config", str(config), "check"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "OK (1 flow(s): sol-catalog)" in result.output


def _unpack(archive: Path, folder: Path) -> None:
    with zipfile.ZipFile(archive) as zf:
        for info in zf.infolist():
            target = folder.joinpath(*info.filename.split("/"))
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(zf.read(info))


def test_preview_names_a_binary_document_without_printing_it_and_saves_it_byte_for_byte(tmp_path: Path) -> None:
    config = _install(tmp_path / "gw")
    batch = tmp_path / "katalog_binary"
    _unpack(EXAMPLES / "sample" / "input" / "katalog_sample.zip", batch)
    pdf = b"%PDF-1.7\n" + bytes(range(256)) + b"\n%%EOF\n"  # not UTF-8
    (batch / "dokumente" / "10001_datenblatt.pdf").write_bytes(pdf)
    saved = tmp_path / "saved"
    result = CliRunner().invoke(cli, ["--config", str(config), "preview", "sol-catalog", str(batch), "--save",
                                      str(saved)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert (f"==> dokument_1_10001_10001_datenblatt.pdf (a file of the input passed on as it is, {len(pdf):,} bytes) "
            "<==") in result.output
    assert "%PDF" not in result.output
    assert (saved / "dokument_1_10001_10001_datenblatt.pdf").read_bytes() == pdf
    assert (saved / "texte_en_katalog_binary_1.csv").exists() and (saved / "texte_fr_katalog_binary_1.csv").exists()


def test_preview_refuses_a_folder_for_a_flow_that_reads_single_files(tmp_path: Path) -> None:
    config = _install(tmp_path / "gw")
    text = config.read_text(encoding="utf-8")
    (tmp_path / "gw" / "mappings" / "orders.yaml").write_text(
        'input: { format: csv }\noutputs:\n  - { name: x, file: x.csv, format: csv, columns: { a: "1" } }\n',
        encoding="utf-8")
    config.write_text(text + "  orders:\n    mapping: mappings/orders.yaml\n    source: { folder: inbox/orders }\n"
                      "    outbox: { folder: outbox/orders }\n", encoding="utf-8")
    (tmp_path / "gw" / "inbox" / "orders").mkdir(parents=True)
    result = CliRunner().invoke(cli, ["--config", str(config), "preview", "orders", str(tmp_path)])
    assert result.exit_code == 2
    assert "is a folder; flow 'orders' reads single files (csv), only a batch flow takes a folder" in result.output


def test_the_sample_as_a_folder_in_the_inbox_gives_the_golden_files(tmp_path: Path) -> None:
    config = _install(tmp_path / "gw")
    batch = tmp_path / "gw" / "inbox" / "sol-catalog" / "katalog_sample"
    _unpack(EXAMPLES / "sample" / "input" / "katalog_sample.zip", batch)
    assert (batch / "export.done").exists() and (batch / "dokumente" / "10001_datenblatt.pdf").exists()
    inst = load_installation(config)
    engine = Engine(inst)
    summary = engine.run_once(inst.select([]), wait_for_settle=False)
    engine.close()
    assert (summary.done, summary.failed) == (1, 0)
    expected = {p.name: p.read_bytes() for p in (EXAMPLES / "sample" / "expected").iterdir()}
    delivered = {p.name: p.read_bytes() for p in (tmp_path / "gw" / "outbox" / "sol-catalog").iterdir()
                 if not p.name.startswith(".")}
    assert delivered == expected  # input no. 1 named katalog_sample: the same names, byte for byte
    journal = CliRunner().invoke(cli, ["--config", str(config), "journal", "--json"]).output
    assert '"skipped": []' in journal  # 99999 (inactive) is not skipped but switched off


# --- the product CSV ---------------------------------------------------------------------------------------


def test_columns_are_rakutens_in_rakutens_order_utf8_with_a_decimal_point(tmp_path: Path, flow: Flow) -> None:
    result = run(tmp_path, flow, artikel=[{"Artikelnummer": "1", "Bezeichnung1": "Becher"}],
                 preise=[price("1", "1.234,5")])
    raw = result.raw["produkte"]
    assert raw.split(b"\r\n")[0].decode() == PRODUCT_HEADER
    row = result.products()["1"]
    assert (row["preis"], row["produkt_bestellbar"], row["sichtbar"], row["mwst_klasse"]) == ("1234.50", "1", "1", "1")


def test_an_article_without_a_price_is_left_out_of_every_file_and_the_journal_says_why(
    tmp_path: Path, flow: Flow
) -> None:
    result = run(
        tmp_path, flow,
        artikel=[{"Artikelnummer": "1"}, {"Artikelnummer": "2"}],
        preise=[price("1"), price("2", "9,00", AbMenge="10"), price("2", "8,00", ListeID="20")],  # no base price
        texte=[{"Artikelnummer": "2", "Bezeichnung1": "Mug"}],
        zubehoer=[{"Artikelnummer": "2", "Bezugsartikel": "1"}],
    )
    assert list(result.products()) == ["1"]
    assert result.skipped == ["article 2 has no price in price list 1"]
    assert "staffelpreise" not in result.files and "texte_en" not in result.files and "beziehungen" not in result.files


def test_articles_not_for_sale_go_out_switched_off_and_other_mandanten_are_left_out(tmp_path: Path, flow: Flow) -> None:
    result = run(
        tmp_path, flow,
        artikel=[{"Artikelnummer": "1"}, {"Artikelnummer": "2", "Aktiv": "0"},
                 {"Artikelnummer": "3", "IstVerkaufsartikel": "0"}, {"Artikelnummer": "1", "Mandant": "456"},
                 {"Artikelnummer": "4", "Aktiv": "0"}],
        preise=[price("1"), price("2", "7,00"), price("3"), price("1", Mandant="456"),
                price("2", "5,00", ListeID="7", IstAktion="-1")],  # no promotion for an article switched off
        lager=[stock("1", "4"), stock("1", "50", Mandant="456"), stock("2", "6")],
        texte=[{"Artikelnummer": "2", "Bezeichnung1": "Old"}],
        zubehoer=[{"Artikelnummer": "2", "Bezugsartikel": "1"}],
    )
    rows = result.products()
    assert list(rows) == ["1", "2", "3", "4"]
    assert rows["1"]["lagerbestand"] == "4"  # not the other Mandant's 50
    assert [(r["produkt_bestellbar"], r["sichtbar"]) for r in rows.values()] == [("1", "1"), ("0", "0"), ("0", "0"),
                                                                                  ("0", "0")]
    assert (rows["2"]["lagerbestand"], rows["2"]["preis"], rows["2"]["reduzierter_preis"]) == ("6", "7.00", "")
    assert rows["4"]["preis"] == ""  # no price: an article switched off goes out without one
    assert result.skipped == ["article 1 belongs to Mandant 456, this flow sends Mandant 123"]
    assert [t["artikelnummer"] for t in result.files["texte_de"]] == ["1"]  # side files: articles for sale only
    assert "texte_en" not in result.files and "beziehungen" not in result.files


def test_with_the_setting_weglassen_articles_not_for_sale_are_left_out_and_the_journal_says_why(
    tmp_path: Path, flow: Flow
) -> None:
    result = run(
        tmp_path, flow, {"inaktive_artikel": "weglassen"},
        artikel=[{"Artikelnummer": "1"}, {"Artikelnummer": "2", "Aktiv": "0"},
                 {"Artikelnummer": "3", "IstVerkaufsartikel": "0"}, {"Artikelnummer": "1", "Mandant": "456"}],
        preise=[price("1"), price("2"), price("3"), price("1", Mandant="456")],
    )
    assert list(result.products()) == ["1"]
    assert result.skipped == ["article 2 is not an active sales article", "article 3 is not an active sales article",
                              "article 1 belongs to Mandant 456, this flow sends Mandant 123"]


def test_a_misspelt_setting_for_inactive_articles_stops_the_export_naming_the_two_words(
    tmp_path: Path, flow: Flow
) -> None:
    with pytest.raises(GatewayError) as caught:
        run(tmp_path, flow, {"inaktive_artikel": "ausschalten"}, artikel=[{"Artikelnummer": "1"}], preise=[price("1")])
    assert "'ausschalten' is not in the lookup table 'inaktive_artikel' (known: abschalten, weglassen)" in str(
        caught.value)


def test_without_stock_an_article_is_orderable_unless_the_setting_asks_for_stock(tmp_path: Path, flow: Flow) -> None:
    tables: dict[str, list[dict[str, str]]] = {
        "artikel": [{"Artikelnummer": "A"}, {"Artikelnummer": "B"}, {"Artikelnummer": "S", "Stuecklistentyp": "1"},
                    {"Artikelnummer": "T", "Variante": "-1"}, {"Artikelnummer": "X", "Aktiv": "0"}],
        "preise": [price("A"), price("B"), price("S"), price("T"), price("X")],
        "lager": [stock("A", "3"), stock("B", "0"), stock("T", "2", AuspraegungID="1"), stock("X", "9")],
        "stuecklisten": [{"Stueckliste": "S", "Element": "A", "Menge": "2"}, {"Stueckliste": "S", "Element": "B"}],
        "varianten": [{"Artikelnummer": "T", "AuspraegungID": "1", "Variantenartikelnummer": "T-1", "Merkmale": "G=1"},
                      {"Artikelnummer": "T", "AuspraegungID": "2", "Variantenartikelnummer": "T-2", "Merkmale": "G=2"}],
    }
    default = run(tmp_path, flow, **tables).products()
    assert {nr: r["produkt_bestellbar"] for nr, r in default.items()} == {
        "A": "1", "B": "1", "S": "1", "T": "1", "T-1": "1", "T-2": "1", "X": "0"}
    asked = run(tmp_path, flow, {"nur_mit_bestand_bestellbar": "1"}, **tables).products()
    assert {nr: (r["produkt_bestellbar"], r["sichtbar"]) for nr, r in asked.items()} == {
        "A": ("1", "1"), "B": ("0", "1"), "S": ("0", "1"),  # the set: min(3 // 2, 0 // 1) = 0
        "T": ("1", "1"), "T-1": ("1", "1"), "T-2": ("0", "1"), "X": ("0", "0")}


@pytest.mark.parametrize(
    ("rows", "settings", "expected"),
    [
        ([stock("1", "5"), stock("1", "2", "AL"), stock("1", "9", "RETOURE")], None, "7"),  # returns not counted
        ([stock("1", "5"), stock("1", "2", "AL"), stock("1", "9", "RETOURE")], {"lager": "HL, RETOURE"}, "14"),
        ([stock("1", "12.000"), stock("1", "5", "AL")], None, "9999"),  # 12 005 (thousands point) clipped
        ([stock("1", "9999")], None, "9999"),
        ([stock("1", "-3"), stock("1", "1", "AL")], None, "0"),  # negative stock is 0
        ([stock("1", "2,5")], None, "2"),  # whole pieces, rounded down
        ([], None, "0"),  # no stock rows at all
    ],
)
def test_stock_is_the_sum_over_the_configured_warehouses_between_0_and_9999(
    tmp_path: Path, flow: Flow, rows: list[dict[str, str]], settings: dict[str, str] | None, expected: str
) -> None:
    result = run(tmp_path, flow, settings, artikel=[{"Artikelnummer": "1"}], preise=[price("1")], lager=rows)
    assert result.products()["1"]["lagerbestand"] == expected


@pytest.mark.parametrize(
    ("von", "bis", "sent"),
    [
        ("", "", True),  # both open: always valid
        ("27.11.2026", "27.11.2026", True),  # a one-day window, today
        ("20.11.2026", "", True),
        ("", "27.11.2026", True),  # the last day is inclusive
        ("", "26.11.2026", False),  # expired yesterday
        ("28.11.2026", "", False),  # starts tomorrow
        ("28.11.2026", "26.11.2026", False),  # an empty window: no day lies in it
    ],
)
def test_a_promotion_is_sent_only_when_valid_today(tmp_path: Path, flow: Flow, von: str, bis: str, sent: bool) -> None:
    result = run(tmp_path, flow, artikel=[{"Artikelnummer": "1"}],
                 preise=[price("1", "12,90"), price("1", "9,99", ListeID="7", IstAktion="-1", GueltigVon=von,
                                                   GueltigBis=bis)])
    row = result.products()["1"]
    assert row["preis"] == "12.90"
    assert (row["reduzierter_preis"], row["bezug_reduzierter_preis"]) == (("9.99", "VK") if sent else ("", ""))


def test_the_lowest_valid_promotion_of_the_shops_lists_wins(tmp_path: Path, flow: Flow) -> None:
    promo = {"IstAktion": "-1"}
    result = run(tmp_path, flow, artikel=[{"Artikelnummer": "1"}],
                 preise=[price("1", "12,90"), price("1", "11,00", ListeID="7", **promo),
                         price("1", "10,50", ListeID="8", **promo),
                         price("1", "5,00", ListeID="9", **promo)])  # list 9 is not the shop's
    assert result.products()["1"]["reduzierter_preis"] == "10.50"
    other = run(tmp_path, flow, {"aktionslisten": "9"}, artikel=[{"Artikelnummer": "1"}],
                preise=[price("1", "12,90"), price("1", "5,00", ListeID="9", **promo)])
    assert other.products()["1"]["reduzierter_preis"] == "5.00"


def test_umlauts_quotes_and_semicolons_survive_into_utf8(tmp_path: Path, flow: Flow) -> None:
    name = 'Kaffeebecher „Büro“ "Spezial"; 300 ml – 5 €'
    result = run(tmp_path, flow,
                 artikel=[{"Artikelnummer": "1", "Bezeichnung1": name, "Hersteller": "Müller & Söhne",
                           "Langtext": "Spülmaschinenfest;\r\nmikrowellengeeignet."}],
                 preise=[price("1")],
                 texte=[{"Artikelnummer": "1", "Sprache": "fr", "Bezeichnung1": 'Tasse « Bureau » "spéciale"',
                         "Langtext": "Lave-vaisselle; micro-ondes."}])
    row = result.products()["1"]
    assert (row["produktname"], row["hersteller"]) == (name, "Müller & Söhne")
    assert row["beschreibung"] == "Spülmaschinenfest;\r\nmikrowellengeeignet."
    assert '"Kaffeebecher „Büro“ ""Spezial""; 300 ml – 5 €"'.encode() in result.raw["produkte"]
    (text,) = result.files["texte_fr"]
    assert text == {"artikelnummer": "1", "sprache": "fr", "produktname": 'Tasse « Bureau » "spéciale"',
                    "kurztext": "", "beschreibung": "Lave-vaisselle; micro-ondes.", "einheit": "", "meta_titel": "",
                    "meta_beschreibung": ""}
    assert "texte_en" not in result.files  # no English text: no file


def test_name_and_maker_are_cut_to_rakutens_lengths(tmp_path: Path, flow: Flow) -> None:
    result = run(tmp_path, flow, artikel=[{"Artikelnummer": "1", "Bezeichnung1": "N" * 130, "Hersteller": "H" * 40}],
                 preise=[price("1")])
    row = result.products()["1"]
    assert (row["produktname"], row["hersteller"]) == ("N" * 100, "H" * 30)


@pytest.mark.parametrize("where", ["article", "variant"])
def test_an_article_number_longer_than_30_stops_the_export(tmp_path: Path, flow: Flow, where: str) -> None:
    long = "A" * 31
    if where == "article":
        tables = {"artikel": [{"Artikelnummer": "X" * 30}, {"Artikelnummer": long}],
                  "preise": [price("X" * 30), price(long)]}
    else:
        tables = {"artikel": [{"Artikelnummer": "T", "Variante": "-1"}], "preise": [price("T")],
                  "varianten": [{"Artikelnummer": "T", "Variantenartikelnummer": long, "Merkmale": "Größe=M"}]}
    with pytest.raises(GatewayError) as caught:
        run(tmp_path, flow, **tables)
    message = str(caught.value)
    assert "field 'artikelnummer': the value is 31 characters long, at most 30 are allowed" in message
    assert long in message


def test_the_category_path_follows_the_active_groups_from_the_top(tmp_path: Path, flow: Flow) -> None:
    groups = [
        {"Artikelgruppe": "1", "Bezeichnung": "Haus & Garten", "VaterArtikelgruppe": ""},
        {"Artikelgruppe": "11", "Bezeichnung": "Küche", "VaterArtikelgruppe": "1", "Gruppenebene": "2"},
        {"Artikelgruppe": "111", "Bezeichnung": "Töpfe", "VaterArtikelgruppe": "11", "Gruppenebene": "3"},
        {"Artikelgruppe": "12", "Bezeichnung": "Alt", "VaterArtikelgruppe": "1", "Aktiv": "0"},
        {"Artikelgruppe": "121", "Bezeichnung": "Unter Alt", "VaterArtikelgruppe": "12"},
        {"Artikelgruppe": "7", "Bezeichnung": "Schleife", "VaterArtikelgruppe": "8"},  # a loop in the data
        {"Artikelgruppe": "8", "Bezeichnung": "Schleife 2", "VaterArtikelgruppe": "7"},
    ]
    result = run(tmp_path, flow, {"kategorie_trenner": "/"},
                 artikel=[{"Artikelnummer": "1", "Artikelgruppe": "111"},
                          {"Artikelnummer": "2", "Artikelgruppe": "121"},
                          {"Artikelnummer": "3", "Artikelgruppe": "7"}, {"Artikelnummer": "4", "Artikelgruppe": "99"}],
                 preise=[price("1"), price("2"), price("3"), price("4")], artikelgruppen=groups)
    paths = {nr: row["kategorien"] for nr, row in result.products().items()}
    assert paths == {"1": "Haus & Garten/Küche/Töpfe", "2": "Haus & Garten", "3": "", "4": ""}


# --- variants ----------------------------------------------------------------------------------------------------


def _variants(tmp_path: Path, flow: Flow, **more: list[dict[str, str]]) -> Result:
    tables: dict[str, list[dict[str, str]]] = {
        "artikel": [{"Artikelnummer": "T", "Bezeichnung1": "Shirt", "Variante": "-1", "Langtext": "Weich."}],
        "varianten": [
            {"Artikelnummer": "T", "AuspraegungID": "1", "Variantenartikelnummer": "T-BL-M",
             "Merkmale": "Farbe=Blau|Größe=M"},
            {"Artikelnummer": "T", "AuspraegungID": "2", "Variantenartikelnummer": "T-RT-L",
             "Merkmale": "Größe=L|Farbe=Rot"},
            {"Artikelnummer": "T", "AuspraegungID": "3", "Variantenartikelnummer": "T-GN-S",
             "Merkmale": "Farbe=Grün|Größe=S", "Aktiv": "0"},
        ],
        "preise": [price("T", "19,90"), price("T", "21,90", AuspraegungID="2"), price("T", "20,00", AuspraegungID="3"),
                   price("T", "18,00", AuspraegungID="3", AbMenge="5"),
                   price("T", "19,00", AuspraegungID="2", AbMenge="5")],
        "lager": [stock("T", "3", AuspraegungID="1"), stock("T", "7", AuspraegungID="3"),
                  stock("T", "4", "RETOURE", AuspraegungID="2")],
    }
    tables.update(more)
    return run(tmp_path, flow, **tables)


def test_variants_become_a_parent_row_and_one_row_per_active_variant(tmp_path: Path, flow: Flow) -> None:
    result = _variants(tmp_path, flow)
    rows = result.files["produkte"]
    assert [r["artikelnummer"] for r in rows] == ["T", "T-BL-M", "T-RT-L", "T-GN-S"]  # T-GN-S is inactive: last
    parent, blue, red, green = rows
    assert (parent["id"], parent["variante_zu_id"], parent["variante"], parent["produktname"]) == (
        "#T", "", "Farbe|Größe", "Shirt")
    assert (parent["lagerbestand"], parent["preis"], parent["beschreibung"]) == ("", "", "Weich.")
    assert (blue["id"], blue["variante_zu_id"], blue["variantenwert"]) == ("", "#T", "Blau|M")
    assert (red["variantenwert"], red["produktname"], red["beschreibung"]) == ("Rot|L", "", "")  # by name, not order
    assert (blue["lagerbestand"], red["lagerbestand"]) == ("3", "0")  # red: no stock but in RETOURE
    assert (blue["preis"], red["preis"]) == ("19.90", "21.90")  # blue has no price of its own: the article's
    assert result.files["staffelpreise"] == [{"artikelnummer": "T-RT-L", "ab_menge": "5", "preis": "19.00"}]
    # the inactive variant is switched off, with its own price and stock but without its tier
    assert (green["produkt_bestellbar"], green["sichtbar"], green["variantenwert"]) == ("0", "0", "Grün|S")
    assert (green["preis"], green["lagerbestand"], green["reduzierter_preis"]) == ("20.00", "7", "")
    assert [(r["produkt_bestellbar"], r["sichtbar"]) for r in (parent, blue, red)] == [("1", "1")] * 3


def test_a_variant_without_prices_of_its_own_gets_the_articles_tiers(tmp_path: Path, flow: Flow) -> None:
    result = _variants(tmp_path, flow, preise=[
        price("T", "19,90"), price("T", "18,50", AbMenge="10"), price("T", "17,00", AbMenge="50"),
        price("T", "21,90", AuspraegungID="2"), price("T", "19,00", AuspraegungID="2", AbMenge="5"),
        price("T", "20,00", AuspraegungID="3", AbMenge="5")])  # 3 is inactive
    assert [(r["artikelnummer"], r["ab_menge"], r["preis"]) for r in result.files["staffelpreise"]] == [
        ("T-BL-M", "10", "18.50"), ("T-BL-M", "50", "17.00"),  # blue has no price of its own: the article's tiers
        ("T-RT-L", "5", "19.00"),  # red has prices of its own: only its own tier
    ]


def test_a_variant_with_its_own_price_but_no_tier_gets_no_tier_of_the_article(tmp_path: Path, flow: Flow) -> None:
    result = _variants(tmp_path, flow, preise=[
        price("T", "19,90"), price("T", "18,50", AbMenge="10"), price("T", "21,90", AuspraegungID="2"),
        price("T", "19,90", AuspraegungID="1", ListeID="20", AbMenge="5")])  # blue: a tier of another list only
    assert [(r["artikelnummer"], r["ab_menge"]) for r in result.files["staffelpreise"]] == [("T-BL-M", "10")]


def test_a_variant_takes_its_own_promotion_or_else_the_articles(tmp_path: Path, flow: Flow) -> None:
    promo = {"ListeID": "7", "IstAktion": "-1", "GueltigVon": "01.11.2026", "GueltigBis": "30.11.2026"}
    result = _variants(tmp_path, flow, preise=[
        price("T", "19,90"), price("T", "21,90", AuspraegungID="2"),
        price("T", "15,00", **promo), price("T", "17,50", AuspraegungID="2", **promo)])
    prices = {r["artikelnummer"]: (r["reduzierter_preis"], r["bezug_reduzierter_preis"])
              for r in result.files["produkte"]}
    assert prices == {"T": ("", ""), "T-BL-M": ("15.00", "VK"), "T-RT-L": ("17.50", "VK"), "T-GN-S": ("", "")}


def test_a_variant_article_without_a_sellable_variant_is_switched_off_and_without_a_price_left_out(
    tmp_path: Path, flow: Flow
) -> None:
    tables: dict[str, list[dict[str, str]]] = {
        "artikel": [{"Artikelnummer": "A", "Variante": "-1"}, {"Artikelnummer": "B", "Variante": "-1"},
                    {"Artikelnummer": "C", "Variante": "-1", "Aktiv": "0"}],
        "varianten": [{"Artikelnummer": "A", "Variantenartikelnummer": "A-1", "Merkmale": "Größe=M", "Aktiv": "0"},
                      {"Artikelnummer": "B", "Variantenartikelnummer": "B-1", "Merkmale": "Größe=M"},
                      {"Artikelnummer": "C", "Variantenartikelnummer": "C-1", "Merkmale": "Größe=S"}],
        "preise": [price("A"), price("B", AuspraegungID="2")],  # B-1 (ID 1) has no price, nor has B itself
    }
    result = run(tmp_path, flow, **tables)
    rows = result.files["produkte"]
    # A: no active variant; C: inactive (its variant C-1 is active, but not sold without its article)
    assert [(r["artikelnummer"], r["variante"], r["variantenwert"], r["produkt_bestellbar"], r["sichtbar"], r["preis"])
            for r in rows] == [("A", "Größe", "", "0", "0", ""), ("A-1", "", "M", "0", "0", "10.00"),
                               ("C", "Größe", "", "0", "0", ""), ("C-1", "", "S", "0", "0", "")]
    assert result.skipped == ["article B has a variant without a price in price list 1"]
    left_out = run(tmp_path, flow, {"inaktive_artikel": "weglassen"}, **tables)
    assert "produkte" not in left_out.files
    assert left_out.skipped == ["article A has variants, but none of them is active",
                                "article B has a variant without a price in price list 1",
                                "article C is not an active sales article"]


# --- sets (trade bills of materials) ------------------------------------------------------------------------------


def test_a_sets_stock_is_what_its_components_make_and_its_text_lists_them(tmp_path: Path, flow: Flow) -> None:
    result = run(
        tmp_path, flow,
        artikel=[{"Artikelnummer": "S", "Bezeichnung1": "Set", "Stuecklistentyp": "1", "Langtext": "Ein Set."},
                 {"Artikelnummer": "B", "Bezeichnung1": 'Becher "Büro"'},
                 {"Artikelnummer": "T", "Bezeichnung1": "Teller", "IstVerkaufsartikel": "0"}],
        preise=[price("S", "29,90"), price("B")],
        lager=[stock("B", "9"), stock("B", "2", "AL"), stock("B", "100", "RETOURE"), stock("T", "7")],
        stuecklisten=[{"Stueckliste": "S", "Element": "B", "Menge": "2"},
                      {"Stueckliste": "S", "Element": "T", "Menge": "1"},
                      {"Stueckliste": "S", "Element": "X", "Menge": "0"}],  # not needed: does not limit
    )
    row = result.products()["S"]
    assert row["lagerbestand"] == "5"  # min(floor(11 / 2), floor(7 / 1)); RETOURE not counted
    assert row["beschreibung"] == 'Ein Set.\n\nSet aus: 2 × Becher "Büro", 1 × Teller'
    assert row["preis"] == "29.90"


def test_a_set_with_a_missing_component_has_no_stock(tmp_path: Path, flow: Flow) -> None:
    result = run(
        tmp_path, flow,
        artikel=[{"Artikelnummer": "S", "Stuecklistentyp": "1", "LangtextHTML": "<p>Set</p>"},
                 {"Artikelnummer": "B", "Bezeichnung1": "Becher & Co"},
                 {"Artikelnummer": "E", "Stuecklistentyp": "1"}],
        preise=[price("S"), price("B"), price("E")],
        lager=[stock("B", "50")],
        stuecklisten=[{"Stueckliste": "S", "Element": "B"}, {"Stueckliste": "S", "Element": "GIBTSNICHT"}],
    )
    row = result.products()["S"]
    assert row["lagerbestand"] == "0"
    assert row["beschreibung"] == "<p>Set</p><p>Set aus: 1 × Becher &amp; Co, 1 × GIBTSNICHT</p>"  # HTML: escaped
    assert result.products()["E"]["lagerbestand"] == "0"  # a set without components


# --- the side files -----------------------------------------------------------------------------------------------


def test_tier_prices_relations_texts_and_documents(tmp_path: Path, flow: Flow) -> None:
    result = run(
        tmp_path, flow,
        artikel=[{"Artikelnummer": "1"}, {"Artikelnummer": "2"}, {"Artikelnummer": "3", "Aktiv": "0"}],
        preise=[price("1", "12,90"), price("1", "11,50", AbMenge="10"), price("1", "6,90", AbMenge="10", ListeID="20"),
                price("1", "9,00", AbMenge="10", ListeID="7", IstAktion="-1"), price("2"), price("3")],
        zubehoer=[{"Artikelnummer": "1", "Bezugsartikel": "2", "Beziehung": "CrossSelling", "Sortierung": "2"},
                  {"Artikelnummer": "1", "Bezugsartikel": "3", "Beziehung": "UpSelling"}],  # 3 is not in the shop
        texte=[{"Artikelnummer": "1", "Sprache": "en", "Bezeichnung1": "Mug", "MetaTitel": "Buy a mug"},
               {"Artikelnummer": "2", "Sprache": "fr", "Bezeichnung1": "Tasse"},
               {"Artikelnummer": "3", "Sprache": "en", "Bezeichnung1": "Old"}],
        dokumente=[{"Artikelnummer": "1", "Datei": "dokumente/1.pdf", "Titel": "Datenblatt", "Sortierung": "1"}],
    )
    assert result.files["staffelpreise"] == [{"artikelnummer": "1", "ab_menge": "10", "preis": "11.50"}]
    assert result.files["beziehungen"] == [{"artikelnummer": "1", "bezug": "2", "art": "CrossSelling",
                                            "sortierung": "2"}]
    assert [(t["artikelnummer"], t["produktname"], t["meta_titel"]) for t in result.files["texte_en"]] == [
        ("1", "Mug", "Buy a mug")]
    assert [t["produktname"] for t in result.files["texte_fr"]] == ["Tasse"]
    assert result.files["dokumente"] == [{"artikelnummer": "1", "datei": "dokument_1_1_1.pdf", "titel": "Datenblatt",
                                          "sprache": "de", "sortierung": "1"}]
    assert result.raw["dokumente_dateien"] == b"%PDF-1.4 dokumente/1.pdf\n%%EOF\n"  # the PDF itself is passed on


def test_each_language_in_the_texts_gets_its_own_file_without_a_change_to_the_mapping(
        tmp_path: Path, flow: Flow) -> None:
    result = run(
        tmp_path, flow, artikel=[{"Artikelnummer": "1"}], preise=[price("1")],
        texte=[{"Artikelnummer": "1", "Sprache": "it", "Bezeichnung1": "Tazza"},
               {"Artikelnummer": "1", "Sprache": "EN", "Bezeichnung1": "Mug"},
               {"Artikelnummer": "1", "Sprache": "", "Bezeichnung1": "ohne Sprache"},  # no language: no file
               {"Artikelnummer": "1", "Sprache": " ", "Bezeichnung1": "auch ohne"}],
    )
    texts = {name: [t["produktname"] for t in rows] for name, rows in result.files.items() if name.startswith("texte")}
    assert texts == {"texte_de": ["Artikel"], "texte_it": ["Tazza"], "texte_en": ["Mug"]}
    assert result.files["texte_en"][0]["sprache"] == "en"  # "EN" in texte.csv, in small letters like the file name


def test_an_unknown_kind_of_relation_stops_the_export(tmp_path: Path, flow: Flow) -> None:
    with pytest.raises(GatewayError, match="'Ersatzteil' is not in the lookup table 'beziehung'"):
        run(tmp_path, flow, artikel=[{"Artikelnummer": "1"}, {"Artikelnummer": "2"}], preise=[price("1"), price("2")],
            zubehoer=[{"Artikelnummer": "1", "Bezugsartikel": "2", "Beziehung": "Ersatzteil"}])


def _xml_groups(result_xml: bytes) -> Iterator[tuple[int, str]]:
    import xml.etree.ElementTree as ET

    def walk(element: ET.Element, depth: int) -> Iterator[tuple[int, str]]:
        for child in element.findall("kategorie"):
            yield depth, child.get("id", "")
            yield from walk(child, depth + 1)

    yield from walk(ET.fromstring(result_xml), 0)  # noqa: S314 - our own output


def test_the_category_tree_holds_the_active_groups_in_their_order(tmp_path: Path, flow: Flow) -> None:
    groups = [
        {"Artikelgruppe": "B", "Sortierung": "10", "Bezeichnung": "B"},
        {"Artikelgruppe": "A", "Sortierung": "9", "Bezeichnung": "A <&>"},
        {"Artikelgruppe": "A2", "VaterArtikelgruppe": "A", "Sortierung": "2"},
        {"Artikelgruppe": "A1", "VaterArtikelgruppe": "A", "Sortierung": "1"},
        {"Artikelgruppe": "AX", "VaterArtikelgruppe": "A", "Aktiv": "0"},
        {"Artikelgruppe": "AX1", "VaterArtikelgruppe": "AX"},
        {"Artikelgruppe": "Z", "Mandant": "456"},
    ]
    result = run(tmp_path, flow, artikel=[{"Artikelnummer": "1", "Artikelgruppe": "A1"}], preise=[price("1")],
                 artikelgruppen=groups)
    xml = result.raw["kategorien"]
    assert list(_xml_groups(xml)) == [(0, "A"), (1, "A1"), (1, "A2"), (0, "B")]
    assert b"<name>A &lt;&amp;&gt;</name>" in xml


def test_an_export_without_a_sendable_article_gives_no_files(tmp_path: Path, flow: Flow) -> None:
    result = run(tmp_path, flow, {"inaktive_artikel": "weglassen"}, artikel=[{"Artikelnummer": "1", "Aktiv": "0"}],
                 preise=[price("1")])
    assert result.raw == {}
    assert result.skipped == ["article 1 is not an active sales article"]
    switched_off = run(tmp_path, flow, artikel=[{"Artikelnummer": "1", "Aktiv": "0"}], preise=[price("1")])
    assert list(switched_off.files) == ["produkte"] and "kategorien" in switched_off.raw


def test_a_language_code_that_cannot_be_in_a_file_name_stops_the_export_naming_the_article(
        tmp_path: Path, flow: Flow) -> None:
    with pytest.raises(InputError) as caught:
        run(tmp_path, flow, artikel=[{"Artikelnummer": "1"}, {"Artikelnummer": "2"}], preise=[price("1"), price("2")],
            texte=[{"Artikelnummer": "2", "Sprache": "pt/BR", "Bezeichnung1": "Caneca"}])
    message = str(caught.value)
    assert "article no. 2" in message and "plain name without folders" in message and "pt/br" in message, message


def test_the_category_file_reads_the_tables_loaded_for_the_product_files(tmp_path: Path, flow: Flow) -> None:
    result = run(tmp_path, flow, artikel=[{"Artikelnummer": "1"}], preise=[price("1")])
    assert "kategorien" in result.raw
    assert list(tmp_path.glob("stage-*/.reader/batch-*"))  # the first pass loaded the batch …
    assert not list(tmp_path.glob("stage-*/.reader-kategorien"))  # … and the template pass did not again


def test_a_broken_promotion_date_of_an_inactive_variant_does_not_stop_the_export(tmp_path: Path, flow: Flow) -> None:
    promo = {"ListeID": "7", "IstAktion": "-1", "GueltigVon": "31.02.2026", "GueltigBis": "31.12.2026"}
    result = _variants(tmp_path, flow, preise=[price("T", "19,90"), price("T", "15,00", AuspraegungID="3", **promo)])
    rows = result.files["produkte"]
    assert [r["artikelnummer"] for r in rows] == ["T", "T-BL-M", "T-RT-L", "T-GN-S"]  # 3 is inactive: switched off
    assert rows[-1]["reduzierter_preis"] == ""  # its promotion is not read


def test_a_broken_promotion_date_that_counts_stops_the_export_naming_the_price_row(tmp_path: Path, flow: Flow) -> None:
    promo = {"ListeID": "7", "IstAktion": "-1", "GueltigVon": "31.02.2026", "GueltigBis": "31.12.2026"}
    with pytest.raises(InputError) as caught:
        _variants(tmp_path, flow, preise=[price("T", "19,90"), price("T", "15,00", AuspraegungID="1", **promo)])
    message = str(caught.value)
    assert "expected a date like 2026-11-27 or 27.11.2026" in message and "31.02.2026" in message, message
    assert "GueltigVon/GueltigBis of the row of preise at line 3" in message, message


def test_a_variant_without_auspraegungid_takes_the_articles_price(tmp_path: Path, flow: Flow) -> None:
    result = run(
        tmp_path, flow, artikel=[{"Artikelnummer": "T", "Variante": "-1"}],
        varianten=[{"Artikelnummer": "T", "AuspraegungID": "", "Variantenartikelnummer": "T-X", "Merkmale": "Größe=X"}],
        preise=[price("T", "18,00"), price("T", "5,00", AuspraegungID="")],
    )
    assert result.products()["T-X"]["preis"] == "18.00"


# --- documents passed on: names the gateway makes, files only from dokumente/ --------------------------------------


def _engine_run(config: Path) -> tuple[int, int, int]:
    inst = load_installation(config)
    engine = Engine(inst)
    summary = engine.run_once(inst.select([]), wait_for_settle=False)
    engine.close()
    return summary.done, summary.failed, summary.pending


def _export(config: Path, name: str, **changes: bytes | None) -> Path:
    """The sample export as a ZIP in the inbox, with some of its members replaced, added or (None) left out."""
    inbox = config.parent / "inbox" / "sol-catalog"
    with zipfile.ZipFile(EXAMPLES / "sample" / "input" / "katalog_sample.zip") as src, \
            zipfile.ZipFile(inbox / name, "w", zipfile.ZIP_DEFLATED) as out:
        for info in src.infolist():
            if info.filename not in changes:
                out.writestr(info.filename, src.read(info))
        for member, data in changes.items():
            if data is not None:
                out.writestr(member, data)
    return inbox / name


def _dokumente(*rows: str) -> bytes:
    return ("Mandant;Artikelnummer;Datei;Titel;Sprache;Sortierung\r\n"
            + "".join(f"123;10001;{row};Datenblatt;de;1\r\n" for row in rows)).encode()


def _reason(config: Path) -> str:
    (reason,) = (config.parent / "quarantine" / "sol-catalog").glob("*.reason.txt")
    return reason.read_text(encoding="utf-8")


def test_the_same_document_in_a_second_export_is_delivered_under_a_name_of_its_own(tmp_path: Path) -> None:
    # The second export holds dokumente/10001_datenblatt.pdf again: it stayed "delivering" for ever
    # ("already exists") and held back its own product CSV.
    config = _install(tmp_path / "gw")
    _export(config, "katalog_mo.zip")
    assert _engine_run(config) == (1, 0, 0)
    _export(config, "katalog_di.zip", **{"export.done": b"\r\n"})  # other content: not a duplicate
    assert _engine_run(config) == (1, 0, 0)
    outbox = {p.name for p in (tmp_path / "gw" / "outbox" / "sol-catalog").iterdir()}
    assert {"dokument_1_10001_10001_datenblatt.pdf", "dokument_2_10001_10001_datenblatt.pdf",
            "rakuten_produkte_katalog_mo_1.csv", "rakuten_produkte_katalog_di_2.csv"} <= outbox


@pytest.mark.parametrize(
    ("datei", "words"),
    [
        ("rakuten_produkte_katalog_nightly_2.csv", "which is not in the folder 'dokumente/'"),
        ("preise.csv", "which is not in the folder 'dokumente/'"),
        ("dokumente/../preise.csv", "it contains '..'"),
        ("dokumente/texte.csv", "which is 'dokumente/texte.csv', a table of the batch; tables are read, never "
                                "passed on as files"),
    ],
)
def test_a_row_naming_a_file_outside_the_documents_folder_or_a_table_is_refused_naming_the_row(
        tmp_path: Path, datei: str, words: str) -> None:
    config = _install(tmp_path / "gw")
    forged = b"artikelnummer;preis\r\n10001;0.01\r\n"  # a member named like another input's product CSV
    extra: dict[str, bytes | None] = {"rakuten_produkte_katalog_nightly_2.csv": forged}
    if datei == "dokumente/texte.csv":  # the table texte.csv kept in the documents folder (found there as well)
        with zipfile.ZipFile(EXAMPLES / "sample" / "input" / "katalog_sample.zip") as src:
            extra = {"texte.csv": None, "dokumente/texte.csv": src.read("texte.csv")}
    _export(config, "katalog_nightly.zip", **{"dokumente.csv": _dokumente(datei)}, **extra)
    assert _engine_run(config) == (0, 1, 0)
    reason = _reason(config)
    assert f"the row of dokumente at line 2 names the file '{datei}'" in reason and words in reason
    assert "article 10001" in reason or "article no. 1" in reason
    assert not (tmp_path / "gw" / "outbox" / "sol-catalog").exists() or not any(
        (tmp_path / "gw" / "outbox" / "sol-catalog").iterdir())


def test_a_document_name_with_a_bidi_control_is_refused_naming_the_row(tmp_path: Path) -> None:
    config = _install(tmp_path / "gw")
    member = "dokumente/rechnung\u202efdp.exe"
    _export(config, "katalog_bidi.zip", **{"dokumente.csv": _dokumente("dokumente/10001_datenblatt.pdf", member),
                                            member: b"MZ"})
    assert _engine_run(config) == (0, 1, 0)
    reason = _reason(config)
    assert "invisible character U+202E" in reason and "(the row of dokumente at line 3)" in reason


def test_two_document_names_that_differ_only_in_how_an_accent_is_written_are_refused(tmp_path: Path) -> None:
    # "Müller.pdf" with ü as one character and as u + a combining diaeresis: one name on a Mac or Windows share.
    config = _install(tmp_path / "gw")
    composed, decomposed = "dokumente/M\u00fcller.pdf", "dokumente/Mu\u0308ller.pdf"
    dokumente = ("Mandant;Artikelnummer;Datei;Titel;Sprache;Sortierung\r\n"
                 f"123;10001;{composed};A;de;1\r\n123;10001;{decomposed};B;de;2\r\n").encode()
    _export(config, "katalog_nfd.zip", **{"dokumente.csv": dokumente, composed: b"%PDF a", decomposed: b"%PDF b"})
    assert _engine_run(config) == (0, 1, 0)
    reason = _reason(config)
    assert "for the row of dokumente at line 3 would have a name that is the same on Windows and Mac shares" in reason


def test_a_document_name_too_long_for_a_file_system_is_refused_before_delivery(tmp_path: Path) -> None:
    # 244 characters are a valid file name, but with "dokument_1_10001_" in front no outbox can hold it:
    # unchecked, its delivery would fail again and again ("delivering" for ever) instead of the input being
    # refused once, with the row named.
    config = _install(tmp_path / "gw")
    member = "dokumente/" + "d" * 240 + ".pdf"
    _export(config, "katalog_lang.zip", **{"dokumente.csv": _dokumente(member), member: b"%PDF"})
    assert _engine_run(config) == (0, 1, 0)
    reason = _reason(config)
    assert "the output file name is 261 bytes long" in reason and "(the row of dokumente at line 2)" in reason


# --- the fields of the later formats: base price, pictures, free fields, texts per language ----------------------


def test_the_base_price_is_the_content_with_a_comma_and_the_unit_per_row_that_has_a_price(
    tmp_path: Path, flow: Flow
) -> None:
    result = run(
        tmp_path, flow,
        artikel=[{"Artikelnummer": "H", "Grundpreiseinheit": "kg", "GrundpreisInhalt": "0,5"},
                 {"Artikelnummer": "O", "Grundpreiseinheit": " ml ", "GrundpreisInhalt": "1.500"},
                 {"Artikelnummer": "N", "Grundpreiseinheit": "", "GrundpreisInhalt": ""},
                 {"Artikelnummer": "V", "Variante": "-1", "Grundpreiseinheit": "m", "GrundpreisInhalt": "2"}],
        varianten=[{"Artikelnummer": "V", "Variantenartikelnummer": "V-1", "Merkmale": "Farbe=Rot"}],
        preise=[price("H"), price("O"), price("N"), price("V")],
    )
    rows = result.products()
    assert {nr: (r["grundpreis_inhalt"], r["grundpreis_einheit"]) for nr, r in rows.items()} == {
        "H": ("0,500", "kg"), "O": ("1500,000", "ml"), "N": ("", ""), "V": ("", ""), "V-1": ("2,000", "m")}


@pytest.mark.parametrize(
    ("unit", "content", "words"),
    [
        ("kg", "", "field 'grundpreis_inhalt': expected a number, but the field is empty"),
        ("", "0,5", "field 'grundpreis_einheit': '' is not in the lookup table 'grundpreis_einheit'"),
        ("m³", "2", "field 'grundpreis_einheit': 'm³' is not in the lookup table 'grundpreis_einheit' (known: kg, g"),
        ("kg", "ein halbes", "field 'grundpreis_inhalt': expected a number like 1.234,50 (the value was 'ein halbes')"),
    ],
)
def test_a_base_price_with_a_part_missing_or_an_unknown_unit_stops_the_export_naming_article_and_field(
    tmp_path: Path, flow: Flow, unit: str, content: str, words: str
) -> None:
    with pytest.raises(InputError) as caught:
        run(tmp_path, flow, artikel=[{"Artikelnummer": "1"}, {"Artikelnummer": "H", "Grundpreiseinheit": unit,
                                                                "GrundpreisInhalt": content}],
            preise=[price("1"), price("H")])
    message = str(caught.value)
    assert "article no. 2" in message and words in message, message


def test_pictures_are_sent_in_the_order_of_their_number_at_most_ten_empty_urls_passed_over(
    tmp_path: Path, flow: Flow
) -> None:
    pictures = [{"Artikelnummer": "1", "URL": f"https://b.example/{n}.jpg", "Sortierung": str(n)}
                for n in (11, 3, 10, 2, 1, 9, 4, 8, 5, 7, 6)]
    pictures.append({"Artikelnummer": "1", "URL": " ", "Sortierung": "0"})
    pictures.append({"Artikelnummer": "2", "URL": "https://b.example/other.jpg", "Mandant": "456"})
    result = run(tmp_path, flow, artikel=[{"Artikelnummer": "1"}, {"Artikelnummer": "2"}],
                 preise=[price("1"), price("2")], bilder=pictures)
    row = result.products()["1"]
    assert [row[f"bild{n}"] for n in range(1, 11)] == [f"https://b.example/{n}.jpg" for n in range(1, 11)]
    assert all(result.products()["2"][f"bild{n}"] == "" for n in range(1, 11))  # another Mandant's picture


def test_a_parent_without_pictures_of_its_own_shows_those_of_its_sold_variants(tmp_path: Path, flow: Flow) -> None:
    result = _variants(tmp_path, flow, bilder=[
        {"Artikelnummer": "T", "AuspraegungID": "3", "URL": "gruen.jpg", "Sortierung": "1"},  # inactive variant
        {"Artikelnummer": "T", "AuspraegungID": "2", "URL": "rot.jpg", "Sortierung": "2"},
        {"Artikelnummer": "T", "AuspraegungID": "1", "URL": "blau.jpg", "Sortierung": "1"}])
    rows = result.products()
    assert (rows["T"]["bild1"], rows["T"]["bild2"], rows["T"]["bild3"]) == ("blau.jpg", "rot.jpg", "")
    assert rows["T-BL-M"]["bild1"] == "" and rows["T-RT-L"]["bild1"] == ""  # the pictures are in the parent row
    own = _variants(tmp_path, flow, bilder=[{"Artikelnummer": "T", "URL": "shirt.jpg"},
                                            {"Artikelnummer": "T", "AuspraegungID": "1", "URL": "blau.jpg"}])
    assert (own.products()["T"]["bild1"], own.products()["T"]["bild2"]) == ("shirt.jpg", "")


def test_a_picture_number_that_is_not_a_number_stops_the_export_naming_the_row(tmp_path: Path, flow: Flow) -> None:
    with pytest.raises(InputError) as caught:
        run(tmp_path, flow, artikel=[{"Artikelnummer": "1"}], preise=[price("1")],
            bilder=[{"Artikelnummer": "1", "URL": "a.jpg", "Sortierung": "erstes"}])
    message = str(caught.value)
    assert "sort_by_number: expected a number like 1.234,50" in message and "'erstes'" in message, message
    assert "Sortierung of the row of bilder at line 2" in message, message


def test_free_field_1_takes_a_user_field_and_mpn_the_makers_article_number(tmp_path: Path, flow: Flow) -> None:
    result = run(tmp_path, flow, artikel=[{"Artikelnummer": "1", "USER_Material": "Steingut", "HArtikelnummer": "M-1"}],
                 preise=[price("1")])
    row = result.products()["1"]
    assert (row["free_var_1"], row["MPN"]) == ("Steingut", "M-1")
    assert all(row[f"free_var_{n}"] == "" for n in range(2, 21))
    assert all(row[name] == "" for name in ("technical_data", "energie_klassen_gruppe", "energie_klasse",
                                            "energie_klasse_bis", "energie_klassen_bild"))


def test_an_export_without_the_optional_tables_and_columns_still_converts(tmp_path: Path, flow: Flow) -> None:
    # only the required tables, and artikel.csv with only its required columns: no bilder.csv, texte.csv,
    # zubehoer.csv, dokumente.csv, no base-price columns, no user fields
    batch = tmp_path / "katalog_minimal"
    batch.mkdir()
    required = {"artikel": {k: DEFAULTS["artikel"][k] for k in ("Mandant", "Artikelnummer", "Bezeichnung1", "Aktiv",
                                                               "IstVerkaufsartikel", "Variante", "Stuecklistentyp",
                                                               "Steuerklasse", "Artikelgruppe")},
                "artikelgruppen": DEFAULTS["artikelgruppen"], "varianten": DEFAULTS["varianten"],
                "preise": DEFAULTS["preise"], "lager": DEFAULTS["lager"], "stuecklisten": DEFAULTS["stuecklisten"]}
    rows = {"artikel": [{"Artikelnummer": "1"}], "artikelgruppen": [{}], "preise": [price("1")],
            "lager": [stock("1", "3")]}
    for name, defaults in required.items():
        _write_table(batch / f"{name}.csv", rows.get(name, []), defaults)
    (batch / "export.done").write_bytes(b"")
    info = {"id": 1, "name": batch.name, "stem": batch.name, "suffix": "", "received_at": "",
            "flow": "sol-catalog", "today": TODAY}
    (tmp_path / "stage").mkdir()
    conversion = convert(flow.mapping, batch, batch.name, tmp_path / "stage", info, flow.settings,
                         key_delivered=lambda key: None)
    names = sorted(staged.name for staged in conversion.outputs)
    assert names == ["kategorien_katalog_minimal_1.xml", "rakuten_produkte_katalog_minimal_1.csv",
                     "texte_de_katalog_minimal_1.csv"]
    product = next(s for s in conversion.outputs if s.output == "produkte").path.read_text(encoding="utf-8")
    (row,) = list(csv.DictReader(io.StringIO(product, newline=""), delimiter=";"))
    assert (row["lagerbestand"], row["preis"], row["produkt_bestellbar"]) == ("3", "10.00", "1")
    assert all(row[name] == "" for name in ("grundpreis_inhalt", "grundpreis_einheit", "bild1", "bild10",
                                            "free_var_1", "MPN"))


def test_the_texts_of_the_shops_language_come_from_the_article_with_short_text_and_unit(
    tmp_path: Path, flow: Flow
) -> None:
    result = run(
        tmp_path, flow,
        artikel=[{"Artikelnummer": "1", "Bezeichnung1": "Becher", "Bezeichnung2": "300 ml", "Langtext": "Fein.",
                  "LangtextHTML": "<p>Fein.</p>", "Verkaufsmengeneinheit": "Stk", "MetaTitel": "Becher kaufen"},
                 {"Artikelnummer": "2", "Bezeichnung1": "Stoff", "Basismengeneinheit": "m"}],
        preise=[price("1"), price("2")],
        texte=[{"Artikelnummer": "1", "Sprache": "DE", "Bezeichnung1": "alter Text"},  # the shop language: passed over
               {"Artikelnummer": "1", "Sprache": "en", "Bezeichnung1": "Mug", "Bezeichnung2": "300 ml"}],
    )
    assert result.raw["texte_de"].split(b"\r\n")[0].decode() == TEXT_HEADER
    assert result.files["texte_de"] == [
        {"artikelnummer": "1", "sprache": "de", "produktname": "Becher", "kurztext": "300 ml",
         "beschreibung": "<p>Fein.</p>", "einheit": "Stk", "meta_titel": "Becher kaufen", "meta_beschreibung": ""},
        {"artikelnummer": "2", "sprache": "de", "produktname": "Stoff", "kurztext": "", "beschreibung": "",
         "einheit": "m", "meta_titel": "", "meta_beschreibung": ""}]
    assert [(t["sprache"], t["produktname"], t["kurztext"]) for t in result.files["texte_en"]] == [
        ("en", "Mug", "300 ml")]
    english_shop = run(tmp_path, flow, {"sprache": "EN"}, artikel=[{"Artikelnummer": "1", "Bezeichnung1": "Mug"}],
                       preise=[price("1")], texte=[{"Artikelnummer": "1", "Sprache": "de", "Bezeichnung1": "Becher"}])
    assert {name: [t["produktname"] for t in rows] for name, rows in english_shop.files.items()
            if name.startswith("texte")} == {"texte_en": ["Mug"], "texte_de": ["Becher"]}
