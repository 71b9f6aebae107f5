"""The SOL stock and price flows: sol-stock, sol-prices, sol-b2b-prices.

Each test builds a throw-away installation with the shipped mappings and golden examples, runs
``gateway test`` or the engine on batches (folders completed by export.done, or ZIPs), and
reads the outbox and the journal.
"""

from __future__ import annotations

import shutil
import zipfile
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import read_csv_rows

from gateway import Engine, load_installation
from gateway.cli import cli

REPO = Path(__file__).resolve().parents[1]
KATALOG = REPO / "examples" / "sol-stock" / "katalog" / "batch"  # the shared catalog sample, unpacked
FLOWS = ("sol-stock", "sol-prices", "sol-b2b-prices")
TODAY_IN_EXAMPLES = "2026-11-27"

LAGER_HEAD = "Mandant;Artikelnummer;AuspraegungID;Lagerkennung;PlatzID;Bestand;Verfuegbarkeit\r\n"
VARIANTEN = (KATALOG / "varianten.csv").read_bytes()  # 20001 / 1..4 → 20001-BL-M, -BL-L, -RT-M, -RT-L
PREISE_HEAD = ("Mandant;ListeID;Preisliste;IstAktion;GueltigVon;GueltigBis;IstBruttopreis;"
               "Artikelnummer;AuspraegungID;AbMenge;Einzelpreis\r\n")
KUNDEN_HEAD = "Mandant;Kto;Name1;Preisliste;Aktiv\r\n"


def install(tmp_path: Path, settings: dict[str, dict[str, str]] | None = None) -> Path:
    """An installation with the three flows, their mappings and examples; ``settings`` per flow."""
    root = tmp_path / "gw"
    (root / "mappings").mkdir(parents=True)
    lines = ["settle_seconds: 0", "flows:"]
    for flow in FLOWS:
        shutil.copy(REPO / "mappings" / f"{flow}.yaml", root / "mappings")
        shutil.copytree(REPO / "examples" / flow, root / "examples" / flow)
        lines += [
            f"  {flow}:",
            f"    mapping: mappings/{flow}.yaml",
            f"    source: {{ folder: inbox/{flow}, batch_marker: export.done }}",
            f"    outbox: {{ folder: outbox/{flow} }}",
        ]
        overrides = (settings or {}).get(flow)
        if overrides:
            lines.append("    settings: { " + ", ".join(f"{k}: '{v}'" for k, v in overrides.items()) + " }")
    (root / "gateway.yaml").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return root


def drop_batch(root: Path, flow: str, name: str, files: dict[str, bytes], done: str = "") -> None:
    """A batch folder as SOL writes it: the tables first, export.done (holding ``done``) last."""
    folder = root / "inbox" / flow / name
    folder.mkdir(parents=True)
    for file, data in files.items():
        (folder / file).write_bytes(data)
    (folder / "export.done").write_text(done, encoding="utf-8")


def run(root: Path, monkeypatch: pytest.MonkeyPatch, today: str = TODAY_IN_EXAMPLES) -> None:
    """One ``run --once`` in-process, with the engine's local date (``input.today``) set to ``today``."""
    import datetime as dt

    from gateway.clock import ManualClock

    inst = load_installation(root / "gateway.yaml")
    engine = Engine(inst, clock=ManualClock(dt.datetime.fromisoformat(f"{today}T09:00:00")))
    try:
        engine.run_once(inst.select([]), wait_for_settle=False)
    finally:
        engine.close()


def outputs(root: Path, flow: str) -> list[dict[str, str]]:
    folder = root / "outbox" / flow
    files = sorted(folder.glob("*.csv")) if folder.is_dir() else []
    assert len(files) <= 1, files
    return read_csv_rows(files[0], "utf-8") if files else []


def journal(root: Path) -> list[dict[str, object]]:
    from gateway.journal import open_journal

    j = open_journal(root / "state" / "journal.sqlite")
    try:
        return [j.as_dict(r) for r in j.entries()]
    finally:
        j.close()


def skipped(entry: dict[str, object]) -> list[str]:
    """The reasons the journal gives for the records it left out."""
    found = entry["skipped"]
    assert isinstance(found, list)
    return [str(s["reason"]) for s in found]


def lines(rows: list[dict[str, str]], *columns: str) -> list[tuple[str, ...]]:
    return [tuple(r[c] for c in columns) for r in rows]


# --- the golden examples ---------------------------------------------------------------------------


@pytest.mark.parametrize("flow", FLOWS)
def test_the_golden_examples_pass(tmp_path: Path, flow: str) -> None:
    root = install(tmp_path)
    result = CliRunner().invoke(cli, ["--config", str(root / "gateway.yaml"), "test", flow])
    assert result.exit_code == 0, result.output
    assert "FAIL" not in result.output and "PASS" in result.output


def _cases_with_batch() -> list[Path]:
    return sorted(p.parent for flow in FLOWS for p in (REPO / "examples" / flow).glob("*/batch"))


@pytest.mark.parametrize("case", _cases_with_batch(), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_each_example_zip_holds_exactly_its_batch_folder(case: Path) -> None:
    (archive,) = (case / "input").glob("*.zip")
    with zipfile.ZipFile(archive) as zf:
        packed = {i.filename: zf.read(i) for i in zf.infolist() if not i.is_dir()}
    unpacked = {p.relative_to(case / "batch").as_posix(): p.read_bytes()
                for p in (case / "batch").rglob("*") if p.is_file()}
    assert packed == unpacked


@pytest.mark.parametrize("case", [c for c in _cases_with_batch() if (c / "expected").is_dir()
                                  and not (c / "expected" / "error.txt").exists()],
                         ids=lambda p: f"{p.parent.name}/{p.name}")
def test_a_batch_folder_gives_the_same_bytes_as_the_zip(tmp_path: Path, case: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    flow = case.parent.name
    root = install(tmp_path)
    (archive,) = (case / "input").glob("*.zip")
    name = archive.name.removesuffix(".zip")  # the folder's name: the output is named as from the ZIP
    files = {p.relative_to(case / "batch").as_posix(): p.read_bytes()
             for p in (case / "batch").rglob("*") if p.is_file() and p.name != "export.done"}
    folder = root / "inbox" / flow / name
    for rel, data in files.items():
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        (folder / rel).write_bytes(data)
    (folder / "export.done").write_bytes(b"")
    run(root, monkeypatch)
    (expected,) = (case / "expected").iterdir()
    (produced,) = (root / "outbox" / flow).iterdir()
    assert produced.name == expected.name
    assert produced.read_bytes() == expected.read_bytes()


def test_a_lone_stock_csv_is_quarantined_with_the_reason(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = install(tmp_path)
    inbox = root / "inbox" / "sol-stock"
    inbox.mkdir(parents=True)
    shutil.copy(REPO / "examples" / "sol-stock" / "lone-csv" / "input" / "bestand_20261127T0815.csv", inbox)
    run(root, monkeypatch)
    (entry,) = journal(root)
    assert entry["state"] == "failed" and "not a ZIP archive" in str(entry["error"])


# --- sol-stock -------------------------------------------------------------------------------------


STOCK = (LAGER_HEAD
         + "123;20001;2;HL;302;0;0\r\n"          # a variant without stock
         + "123;20001;3;RETOURE;900;5;0\r\n"     # returns: not counted by default
         + "123;20001;3;HL;303;4;4\r\n"
         + "123;20001;4;RETOURE;901;3;0\r\n"     # a variant with returns only
         + "123;10001;0;HL;101;120;115\r\n"
         + "123;10001;0;AL;205;30;28\r\n"
         + "123;20001;7;HL;307;6;6\r\n")         # not in varianten.csv


def test_stock_variant_without_stock_and_returns_not_counted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = install(tmp_path)
    drop_batch(root, "sol-stock", "bestand_1", {"lager.csv": STOCK.encode("cp1252"), "varianten.csv": VARIANTEN})
    run(root, monkeypatch)
    rows = outputs(root, "sol-stock")
    assert lines(rows, "product_art_no", "variant_art_no", "stock", "available") == [
        ("20001", "20001-BL-L", "0", "0"),
        ("20001", "20001-RT-M", "4", "1"),
        ("20001", "20001-RT-L", "0", "0"),
        ("10001", "", "150", "1"),
    ]
    assert {r["price"] + r["price_reduced"] + r["price_reduced_type"] for r in rows} == {""}
    (entry,) = journal(root)
    assert entry["state"] == "done"
    assert skipped(entry) == [
        "variant 20001 / AuspraegungID 7 (HL, bin 307) is not in varianten.csv, so its Rakuten article "
        "number is unknown; its stock is not sent"]


def test_stock_warehouses_and_column_are_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = install(tmp_path, {"sol-stock": {"lager": "HL, RETOURE", "bestand_spalte": "Verfuegbarkeit",
                                            "hoechstbestand": "100"}})
    drop_batch(root, "sol-stock", "bestand_2", {"lager.csv": STOCK.encode("cp1252"), "varianten.csv": VARIANTEN})
    run(root, monkeypatch)
    assert lines(outputs(root, "sol-stock"), "variant_art_no", "stock", "available") == [
        ("20001-BL-L", "0", "0"),
        ("20001-RT-M", "4", "1"),   # Verfuegbarkeit: RETOURE 0 + HL 4
        ("20001-RT-L", "0", "0"),
        ("", "100", "1"),           # HL 115 (AL is not named now), capped at 100
    ]


def test_stock_sums_german_numbers_and_never_goes_below_zero(tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    root = install(tmp_path)
    lager = (LAGER_HEAD + "123;40001;0;HL;401;1.250;0\r\n123;40001;0;AL;402;2,75;0\r\n"
             + "123;10002;0;HL;102;-3;0\r\n123;10002;0;AL;206;2;0\r\n")
    drop_batch(root, "sol-stock", "bestand_3", {"lager.csv": lager.encode("cp1252"), "varianten.csv": VARIANTEN})
    run(root, monkeypatch)
    assert lines(outputs(root, "sol-stock"), "product_art_no", "stock", "available") == [
        ("40001", "1252", "1"),   # 1250 + 2.75, whole pieces rounded down
        ("10002", "0", "0"),      # -3 + 2 = -1 → 0
    ]


BOM_HEAD = "Mandant;Stueckliste;Element;AuspraegungID;Menge;Sortierung\r\n"


def _stock_batch(root: Path, name: str, lager: str, bom: str | None) -> None:
    files = {"lager.csv": (LAGER_HEAD + lager).encode("cp1252"), "varianten.csv": VARIANTEN}
    if bom is not None:
        files["stuecklisten.csv"] = (BOM_HEAD + bom).encode("cp1252")
    drop_batch(root, "sol-stock", name, files)


def test_a_set_follows_its_components_and_a_component_missing_from_stock_counts_zero(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = install(tmp_path, {"sol-stock": {"bestand_spalte": "Verfuegbarkeit"}})
    _stock_batch(root, "bestand_1",
                 "123;A;0;HL;1;20;9\r\n123;B;0;AL;2;8;8\r\n123;B;0;RETOURE;3;90;90\r\n",
                 "123;S1;A;0;2;1\r\n123;S1;B;0;1;2\r\n"       # min(9 // 2, 8 // 1) = 4 (Verfuegbarkeit)
                 "123;S2;B;0;3;1\r\n123;S2;FEHLT;0;1;2\r\n"   # FEHLT is not in the stock file: 0
                 "123;S3;A;0;1;1\r\n123;S3;B;0;1;2\r\n123;S3;A;0;1;3\r\n")  # A listed twice: one line
    run(root, monkeypatch)
    assert lines(outputs(root, "sol-stock"), "product_art_no", "variant_art_no", "stock", "available") == [
        ("A", "", "9", "1"), ("S1", "", "4", "1"), ("S3", "", "8", "1"),
        ("B", "", "8", "1"), ("S2", "", "0", "0")]
    (entry,) = journal(root)
    assert entry["state"] == "done" and skipped(entry) == []


def test_without_stuecklisten_csv_the_stock_batch_has_no_sets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = install(tmp_path)
    _stock_batch(root, "bestand_1", "123;A;0;HL;1;20;20\r\n", None)
    run(root, monkeypatch)
    assert lines(outputs(root, "sol-stock"), "product_art_no", "stock") == [("A", "20")]


def test_a_set_is_written_once_by_a_component_whose_own_line_is_not_skipped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # 20001 / 9 is not in varianten.csv: its own line is skipped, so the set's line comes with 20001-BL-M
    root = install(tmp_path)
    _stock_batch(root, "bestand_1", "123;20001;9;HL;1;5;5\r\n123;20001;1;HL;2;24;24\r\n",
                 "123;S;20001;9;1;1\r\n123;S;20001;1;2;2\r\n")
    run(root, monkeypatch)
    assert lines(outputs(root, "sol-stock"), "product_art_no", "variant_art_no", "stock") == [
        ("20001", "20001-BL-M", "24"), ("S", "", "5")]  # min(5 // 1, 24 // 2): the skipped variant's stock counts
    (entry,) = journal(root)
    assert len(skipped(entry)) == 1 and "AuspraegungID 9" in skipped(entry)[0]


def test_a_set_listed_with_stock_of_its_own_gets_its_components_stock_and_other_mandanten_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = install(tmp_path)
    _stock_batch(root, "bestand_1",
                 "123;A;0;HL;1;6;6\r\n123;S;0;HL;2;100;100\r\n456;A;0;HL;1;50;50\r\n456;T;0;HL;1;50;50\r\n",
                 "123;S;A;0;2;1\r\n456;T;A;0;1;1\r\n")
    run(root, monkeypatch)
    assert lines(outputs(root, "sol-stock"), "product_art_no", "stock") == [("A", "6"), ("S", "3")]


# --- sol-prices ------------------------------------------------------------------------------------


def _promo(liste: str, name: str, von: str, bis: str, artikel: str, preis: str, brutto: str = "-1") -> str:
    return f"123;{liste};{name};-1;{von};{bis};{brutto};{artikel};0;0;{preis}\r\n"


PREISE = (PREISE_HEAD
          + "".join(f"123;1;Shop;0;;;-1;{a};0;0;20,00\r\n" for a in ("A1", "A2", "A3", "A4", "A5", "A6", "A7", "A8"))
          + _promo("7", "Abgelaufen", "01.06.2026", "26.11.2026", "A1", "10,00")    # ended yesterday
          + _promo("8", "Zukunft", "28.11.2026", "31.12.2026", "A2", "10,00")       # starts tomorrow
          + _promo("9", "Nur heute", "27.11.2026", "27.11.2026", "A3", "10,00")     # today only: both ends count
          + _promo("10", "Leeres Fenster", "30.11.2026", "01.11.2026", "A4", "10,00")  # ends before it begins
          + _promo("11", "Offen", "", "", "A5", "10,00")                             # no dates: always
          + _promo("12", "Ab heute", "27.11.2026", "", "A6", "11,00")                # open end
          + _promo("13", "Netto", "01.11.2026", "31.12.2026", "A7", "9,00", brutto="0")  # net: not used
          + _promo("14", "Nicht freigegeben", "01.11.2026", "31.12.2026", "A8", "5,00"))  # not in aktionslisten

AKTIONSLISTEN = {"sol-prices": {"aktionslisten": "7, 8,9,10,11,12,13"}}


def test_promotions_count_only_on_the_days_they_are_valid(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = install(tmp_path, AKTIONSLISTEN)
    drop_batch(root, "sol-prices", "preise_1", {"preise.csv": PREISE.encode("cp1252"), "varianten.csv": VARIANTEN})
    run(root, monkeypatch)
    assert lines(outputs(root, "sol-prices"), "product_art_no", "price", "price_reduced", "price_reduced_type") == [
        ("A1", "20.00", "", ""),          # expired promotion
        ("A2", "20.00", "", ""),          # future promotion
        ("A3", "20.00", "10.00", "VK"),   # valid from today to today
        ("A4", "20.00", "", ""),          # an empty window (GueltigBis before GueltigVon) is never valid
        ("A5", "20.00", "10.00", "VK"),   # no dates at all: open
        ("A6", "20.00", "11.00", "VK"),
        ("A7", "20.00", "", ""),          # net promotion list: not used…
        ("A8", "20.00", "", ""),          # a promotion list that is not the shop's
    ]
    (entry,) = journal(root)
    assert skipped(entry) == [
        "article A7 / AuspraegungID 0: the promotion list 13 (Netto) holds a net price (9,00); not used"]


def test_the_same_export_the_day_after_ends_a_promotion(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = install(tmp_path, AKTIONSLISTEN)
    drop_batch(root, "sol-prices", "preise_2", {"preise.csv": PREISE.encode("cp1252"), "varianten.csv": VARIANTEN})
    run(root, monkeypatch, today="2026-11-28")
    reduced = {r["product_art_no"]: r["price_reduced"] for r in outputs(root, "sol-prices")}
    assert reduced == {"A1": "", "A2": "10.00", "A3": "", "A4": "", "A5": "10.00", "A6": "11.00", "A7": "",
                       "A8": ""}


def test_prices_with_a_thousands_separator_and_a_net_shop_list(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    root = install(tmp_path)
    preise = (PREISE_HEAD + "123;1;Shop;0;;;-1;40001;0;0;1.234,50\r\n"
              + "123;1;Shop;0;;;-1;40002;0;0;12.345,6\r\n"
              + "123;7;Winter;-1;;;-1;40001;0;0;1.099,00\r\n"
              + "123;1;Shop;0;;;0;40003;0;0;9,00\r\n"              # a net price in the shop list
              + "123;1;Shop;0;;;-1;20001;3;0;21,90\r\n")
    drop_batch(root, "sol-prices", "preise_3", {"preise.csv": preise.encode("cp1252"), "varianten.csv": VARIANTEN})
    run(root, monkeypatch)
    assert lines(outputs(root, "sol-prices"), "product_art_no", "variant_art_no", "price", "price_reduced") == [
        ("40001", "", "1234.50", "1099.00"),
        ("40002", "", "12345.60", ""),
        ("20001", "20001-RT-M", "21.90", ""),
    ]
    (entry,) = journal(root)
    assert skipped(entry) == [
        "article 40003 / AuspraegungID 0: the shop price list 1 holds a net price (9,00), Rakuten needs gross "
        "prices; not sent"]


# --- sol-b2b-prices --------------------------------------------------------------------------------


def test_customer_prices_per_customer_and_tier(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = install(tmp_path)
    kunden = (KUNDEN_HEAD
              + "123;D1;Ohne Liste;;-1\r\n"          # a customer without price list
              + "123;D2;Shopkunde;1;-1\r\n"          # the shop's list
              + "123;D3;Händler;20;-1\r\n"
              + "123;D4;Liste fehlt;30;-1\r\n")      # tied to a list with no prices
    preise = (PREISE_HEAD + "123;1;Shop;0;;;-1;10001;0;0;12,90\r\n"
              + "123;20;Händler;0;;;0;10001;0;0;1.234,50\r\n"
              + "123;20;Händler;0;;;0;10001;0;10;1.100,00\r\n"
              + "123;20;Händler;0;;;0;20001;2;0;9,99\r\n")
    drop_batch(root, "sol-b2b-prices", "kundenpreise_1", {"kunden.csv": kunden.encode("cp1252"),
                                                         "preise.csv": preise.encode("cp1252"),
                                                         "varianten.csv": VARIANTEN})
    run(root, monkeypatch)
    assert lines(outputs(root, "sol-b2b-prices"), "kunde", "artikelnummer", "ab_menge", "preis") == [
        ("D3", "10001", "0", "1234.50"),
        ("D3", "10001", "10", "1100.00"),
        ("D3", "20001-BL-L", "0", "9.99"),
    ]
    (entry,) = journal(root)
    assert entry["state"] == "done"
    assert skipped(entry) == [
        "customer D4 is tied to price list 30, which has no prices in preise.csv; no customer prices sent"]


def test_a_variant_price_without_varianten_csv_stops_the_file(tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    root = install(tmp_path)
    kunden = KUNDEN_HEAD + "123;D3;Händler;20;-1\r\n"
    preise = PREISE_HEAD + "123;20;Händler;0;;;0;20001;2;0;9,99\r\n"
    drop_batch(root, "sol-b2b-prices", "kundenpreise_2",
               {"kunden.csv": kunden.encode("cp1252"), "preise.csv": preise.encode("cp1252")})
    run(root, monkeypatch)
    (entry,) = journal(root)
    assert entry["state"] == "failed"
    assert "'artikelnummer'" in str(entry["error"]) and "required" in str(entry["error"])


# --- snapshots sent again --------------------------------------------------------------------------


def test_an_export_time_in_export_done_lets_an_earlier_state_through_again(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The gateway drops a batch whose files equal an earlier one's (a duplicate); the export time
    that the mappings ask SOL to write into export.done makes every export a new one."""
    root = install(tmp_path)
    five = {"lager.csv": (LAGER_HEAD + "123;10001;0;HL;101;5;5\r\n").encode(), "varianten.csv": VARIANTEN}
    three = {"lager.csv": (LAGER_HEAD + "123;10001;0;HL;101;3;3\r\n").encode(), "varianten.csv": VARIANTEN}
    for name, files, time in (("bestand_0800", five, "08:00"), ("bestand_0815", three, "08:15"),
                              ("bestand_0830", five, "08:30")):
        drop_batch(root, "sol-stock", name, files, done=f"2026-11-27 {time}:00")
        run(root, monkeypatch)
    stock = [read_csv_rows(p, "utf-8")[0]["stock"] for p in sorted((root / "outbox" / "sol-stock").iterdir())]
    assert stock == ["5", "3", "5"]
    prices = {"preise.csv": (PREISE_HEAD + "123;1;Shop;0;;;-1;10001;0;0;12,90\r\n"
                             + "123;7;Winter;-1;28.11.2026;;-1;10001;0;0;9,99\r\n").encode(),
              "varianten.csv": VARIANTEN}
    drop_batch(root, "sol-prices", "preise_1127", prices, done="2026-11-27 06:00:00")
    run(root, monkeypatch)
    drop_batch(root, "sol-prices", "preise_1128", prices, done="2026-11-28 06:00:00")
    run(root, monkeypatch, today="2026-11-28")  # the promotion begins today
    files = sorted((root / "outbox" / "sol-prices").iterdir())
    reduced = [read_csv_rows(p, "utf-8")[0]["price_reduced"] for p in files]
    assert reduced == ["", "9.99"]
    assert {str(e["state"]) for e in journal(root)} == {"done"}
