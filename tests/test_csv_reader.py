"""The CSV reader against what real SOL files do: encodings, quoting, odd rows, broken files, size."""

from __future__ import annotations

import csv
import io
import tracemalloc
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.errors import ReadError
from gateway.mapping.values import MISSING, Record
from gateway.readers.csv import MAX_COLUMNS, read_csv_records

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
# The reference samples of docs/formats.md, as the golden examples carry them (unchanged).
SAMPLES = {
    **{f"katalog/{n}": EXAMPLES / "sol-stock" / "katalog" / "batch" / n for n in (
        "artikel.csv", "artikelgruppen.csv", "varianten.csv", "preise.csv", "lager.csv", "stuecklisten.csv",
        "zubehoer.csv", "texte.csv", "dokumente.csv")},
    "kunden.csv": EXAMPLES / "sol-b2b-prices" / "sample" / "batch" / "kunden.csv",
    "bestand_20261127T0815.csv": EXAMPLES / "sol-stock" / "sample" / "batch" / "lager.csv",
    "versand_20261127T1600.csv": EXAMPLES / "sol-shipping" / "sample" / "input" / "versand_20261127T1600.csv",
}

# samples/sol/katalog/artikel.csv as exported: Windows-1252 (ü = 0xFC, – = 0x96), CRLF, a quoted
# value with a line break, quoted values with ';', unquoted values with quotes.
ARTIKEL = (
    b"Mandant;Artikelnummer;Bezeichnung1;Bezeichnung2;Matchcode;Langtext;LangtextHTML;Artikelgruppe;"
    b"Hauptartikelgruppe;Vaterartikelgruppe;Hersteller;HArtikelnummer;Steuerklasse;Basismengeneinheit;"
    b"Verkaufsmengeneinheit;Gewicht;Gewichtseinheit;EANNummer;Stuecklistentyp;Variante;Artikelart;Aktiv;"
    b"IstVerkaufsartikel;MetaTitel;MetaBeschreibung;MetaKeywords;GeaendertAm\r\n"
    b'123;10001;Kaffeebecher "B\xfcro";Steingut, 300 ml;KAFFEEBECHER;"Sp\xfclmaschinenfest; mikrowellengeeignet.";'
    b'"<p>Sp\xfclmaschinenfest; mikrowellengeeignet.</p>";0110;01;01;M\xfcller & S\xf6hne;MS-300;1;Stk;Stk;0,420;kg;'
    b"4006381333931;0;0;0;-1;-1;Kaffeebecher kaufen;Becher aus Steingut;becher,kaffee;14.11.2026\r\n"
    b'123;20001;Basic T-Shirt;Baumwolle;TSHIRT;"Weiches T-Shirt aus 100 % Baumwolle.\r\nIn vielen Farben.";;0210;'
    b"02;02;Textil GmbH;TS-B;1;Stk;Stk;0,180;kg;;0;-1;0;-1;-1;;;;20.11.2026\r\n"
    b"123;30001;Fr\xfchst\xfccks-Set;Becher + Teller;SET-FRUEH;Set aus Becher und Teller.;;0110;01;01;"
    b"M\xfcller & S\xf6hne;;1;Set;Set;1,100;kg;4006381333948;1;0;0;-1;-1;;;;21.11.2026\r\n"
    b"123;10002;Teller flach;Steingut, 26 cm;TELLER;;;0110;01;01;M\xfcller & S\xf6hne;MS-260;1;Stk;Stk;0,680;kg;"
    b"4006381333955;0;0;0;-1;-1;;;;01.10.2026\r\n"
    b'123;40001;Kochbuch "Hausmannskost";Gebunden;KOCHBUCH;\xdcber 200 Rezepte \x96 mit Bildern.;;0300;03;03;'
    b"Verlag S\xfcd;;2;Stk;Stk;0,950;kg;9783161484100;0;0;0;-1;-1;;;;02.10.2026\r\n"
    b"123;99999;Altartikel;ausgelistet;ALT;;;0110;01;01;;;1;Stk;Stk;0,100;kg;;0;0;0;0;0;;;;01.01.2020\r\n"
)

# samples/sol/kunden.csv: ß and ä in Windows-1252, empty values.
KUNDEN = (
    b"Mandant;Kto;Adresse;Matchcode;Anrede;Name1;Name2;Zusatz;Strasse;PLZ;Ort;Land;Telefon;EMail;EUUStID;"
    b"Zahlungskond;Preisliste;Kundengruppe;Aktiv\r\n"
    b"123;D10001;5001;MUSTERMANN;Herr;Max Mustermann;;;Musterstra\xdfe 1;11111;Musterstadt;D;0301234567;"
    b"max@mustermann.example;;PAL;1;ENDK;-1\r\n"
    b"123;D20001;5002;HAENDLER-NORD;Firma;H\xe4ndler Nord GmbH;Einkauf;;Hafenweg 5;20457;Hamburg;D;040999;"
    b"einkauf@haendler-nord.example;DE123456789;30T;20;B2B;-1\r\n"
)


def write(tmp_path: Path, data: bytes, name: str = "in.csv") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def read(path: Path, **options: object) -> list[Record]:
    return list(read_csv_records(path, path.name, **options))  # type: ignore[arg-type]


def read_bytes(tmp_path: Path, data: bytes, **options: object) -> list[Record]:
    return read(write(tmp_path, data), **options)


def fails(tmp_path: Path, data: bytes, **options: object) -> ReadError:
    with pytest.raises(ReadError) as info:
        read_bytes(tmp_path, data, **options)
    assert info.value.file == "in.csv"
    return info.value


def values(record: Record) -> dict[str, object]:
    return dict(record._fields)


# --- the real samples -----------------------------------------------------------------------------


def test_artikel_sample_in_windows_1252(tmp_path: Path) -> None:
    records = read_bytes(tmp_path, ARTIKEL, required=("Mandant", "Artikelnummer"))
    assert [r.Artikelnummer for r in records] == ["10001", "20001", "30001", "10002", "40001", "99999"]
    assert [r.line for r in records] == [2, 3, 5, 6, 7, 8]  # 20001 spans lines 3 and 4
    first, shirt = records[0], records[1]
    assert first.Bezeichnung1 == 'Kaffeebecher "Büro"'
    assert first.Langtext == "Spülmaschinenfest; mikrowellengeeignet."
    assert first.Hersteller == "Müller & Söhne"
    assert shirt.Langtext == "Weiches T-Shirt aus 100 % Baumwolle.\r\nIn vielen Farben."
    assert shirt.LangtextHTML is MISSING and shirt.EANNummer is MISSING
    assert records[4].Langtext == "Über 200 Rezepte – mit Bildern."  # 0x96 is an en dash in Windows-1252
    assert len(values(first)) == 27


def test_kunden_sample(tmp_path: Path) -> None:
    first, second = read_bytes(tmp_path, KUNDEN, encoding="windows-1252")
    assert first.Strasse == "Musterstraße 1" and first.Name2 is MISSING
    assert second.Name1 == "Händler Nord GmbH"


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_the_reference_samples_read(name: str) -> None:
    path = SAMPLES[name]
    header = path.read_bytes().split(b"\r\n", 1)[0].decode("cp1252").split(";")
    records = read(path, required=header)
    assert records
    for record in records:
        assert list(values(record)) == header
        text = "".join(str(v) for v in values(record).values())
        assert "Ã" not in text and "\ufffd" not in text  # no UTF-8 misreading


# --- encodings ------------------------------------------------------------------------------------


@pytest.mark.parametrize("encoding", ["auto", "utf-8", "UTF8", "utf-8-sig"])
def test_utf8_with_bom(tmp_path: Path, encoding: str) -> None:
    data = "\ufeffArtikelnummer;Name\r\n10001;Größe € 5\r\n".encode()
    (record,) = read_bytes(tmp_path, data, encoding=encoding, required=["Artikelnummer"])
    assert values(record) == {"Artikelnummer": "10001", "Name": "Größe € 5"}


def test_utf8_without_bom_is_detected(tmp_path: Path) -> None:
    (record,) = read_bytes(tmp_path, "A;B\nMüller;€\n".encode())
    assert (record.A, record.B) == ("Müller", "€")


def test_euro_sign_windows_1252_versus_iso_8859_1(tmp_path: Path) -> None:
    data = b"Preis;Text\r\n12,90 \x80;Gr\xf6\xdfe\r\n"
    (auto,) = read_bytes(tmp_path, data)
    (cp1252,) = read_bytes(tmp_path, data, encoding="windows-1252")
    (latin1,) = read_bytes(tmp_path, data, encoding="iso-8859-1")
    assert auto.Preis == cp1252.Preis == "12,90 €"
    assert latin1.Preis == "12,90 \x80"  # a control character in ISO-8859-1: why auto prefers Windows-1252
    assert auto.Text == cp1252.Text == latin1.Text == "Größe"


def test_auto_detection_sees_a_non_ascii_byte_after_2_mib(tmp_path: Path) -> None:
    filler = b"".join(b"%07d;plain ascii text\r\n" % i for i in range(110_000))
    assert len(filler) > 2 * 1024 * 1024
    records = read_bytes(tmp_path, b"Nr;Text\r\n" + filler + b"9999999;M\xfcller \x80\r\n")
    assert records[-1].Text == "Müller €"
    assert records[-1].line == 110_002


def test_auto_detection_keeps_utf8_cut_at_a_chunk_boundary(tmp_path: Path) -> None:
    head = b"Nr;Text\r\n1;"
    pad = b"x" * (1024 * 1024 - len(head) - 1)  # "ü" = C3 BC: C3 is the last byte of the first MiB
    records = read_bytes(tmp_path, head + pad + "ü\r\n2;Straße\r\n".encode())
    assert records[0].Text == "x" * len(pad) + "ü"
    assert records[1].Text == "Straße"


def test_windows_1252_file_read_as_utf8_names_the_line(tmp_path: Path) -> None:
    error = fails(tmp_path, b"A;B\r\n1;ok\r\n2;ok\r\n3;M\xfcller\r\n", encoding="utf-8")
    assert error.line == 4
    assert "utf-8" in error.message and "0xFC" in error.message
    assert "windows-1252" in error.message  # the likely encoding is suggested


def test_utf8_file_read_as_windows_1252_fails_where_it_cannot_be_read(tmp_path: Path) -> None:
    # Most UTF-8 text reads as (wrong) Windows-1252 characters; "Ł" (C5 81) cannot: 0x81 is undefined.
    error = fails(tmp_path, "A;B\r\n1;Łódź\r\n".encode(), encoding="windows-1252")
    assert error.line == 2
    assert "windows-1252" in error.message and "set the encoding to utf-8" in error.message


def test_utf8_file_read_as_ascii(tmp_path: Path) -> None:
    error = fails(tmp_path, "A;B\n1;a\n2;b\n\n3;Köln\n".encode(), encoding="ascii")
    assert error.line == 5
    assert "utf-8" in error.message


def test_neither_utf8_nor_windows_1252(tmp_path: Path) -> None:
    error = fails(tmp_path, b"A;B\r\n1;\xfc\x81\r\n")
    assert error.line == 2
    assert "neither UTF-8 nor Windows-1252" in error.message and "ISO-8859-1" in error.message
    (record,) = read_bytes(tmp_path, b"A;B\r\n1;\xfc\x81\r\n", encoding="iso-8859-1")
    assert record.B == "ü\x81"


@pytest.mark.parametrize("encoding", ["windows-1252", "iso-8859-1", "ascii"])
def test_bom_on_a_utf8_file_wins_over_another_encoding(tmp_path: Path, encoding: str) -> None:
    (record,) = read_bytes(tmp_path, "\ufeffA;B\r\n1;Müller €\r\n".encode(), encoding=encoding)
    assert values(record) == {"A": "1", "B": "Müller €"}


def test_stray_bom_on_a_windows_1252_file(tmp_path: Path) -> None:
    data = b"\xef\xbb\xbfA;B\r\n1;M\xfcller\r\n"
    error = fails(tmp_path, data)  # auto trusts the BOM, and says what the file looks like
    assert error.line == 2 and "set the encoding to windows-1252" in error.message
    assert "or auto" not in error.message  # auto is what just failed
    (record,) = read_bytes(tmp_path, data, encoding="windows-1252")
    assert values(record) == {"A": "1", "B": "Müller"}
    error = fails(tmp_path, data, encoding="ascii")  # the skipped BOM is not what it complains about
    assert error.line == 2 and "0xFC" in error.message


def test_unknown_encoding_or_delimiter_is_the_callers_mistake(tmp_path: Path) -> None:
    path = write(tmp_path, b"A\r\n1\r\n")
    with pytest.raises(ValueError, match="unknown encoding"):
        read_csv_records(path, "in.csv", encoding="windows-9999")
    with pytest.raises(ValueError, match="delimiter"):
        read_csv_records(path, "in.csv", delimiter=";;")


# --- lines and quoting ----------------------------------------------------------------------------


@pytest.mark.parametrize("end", [b"\r\n", b"\n"])
def test_crlf_and_lf(tmp_path: Path, end: bytes) -> None:
    data = end.join([b"Nr;Text", b"1;x", b'2;"two' + end + b'lines"', b"3;y", b""])
    records = read_bytes(tmp_path, data)
    assert [(r.Nr, r.line) for r in records] == [("1", 2), ("2", 3), ("3", 5)]
    assert records[1].Text == "two" + end.decode() + "lines"


def test_quoted_values(tmp_path: Path) -> None:
    data = (
        b'Nr;Text;Rest\r\n'
        b'1;"a;b";x\r\n'
        b'2;"er sagte ""ja""";"  spaces kept  "\r\n'
        b'3;"line 1\r\nline 2\r\n\r\nline 4";z\r\n'
        b'4;"";""""\r\n'
        b"5;after;all\r\n"
    )
    records = read_bytes(tmp_path, data)
    assert [values(r) for r in records] == [
        {"Nr": "1", "Text": "a;b", "Rest": "x"},
        {"Nr": "2", "Text": 'er sagte "ja"', "Rest": "  spaces kept  "},
        {"Nr": "3", "Text": "line 1\r\nline 2\r\n\r\nline 4", "Rest": "z"},
        {"Nr": "4", "Text": MISSING, "Rest": '"'},
        {"Nr": "5", "Text": "after", "Rest": "all"},
    ]
    assert [r.line for r in records] == [2, 3, 4, 8, 9]
    assert records[3].Text is MISSING


def test_columns_in_another_order_and_extra_columns(tmp_path: Path) -> None:
    usual = read_bytes(tmp_path, b"Mandant;Artikelnummer;Bestand\r\n123;10001;5\r\n")
    other = read_bytes(tmp_path, b"Extra;Bestand;Mandant;Zusatz;Artikelnummer\r\nx;5;123;;10001\r\n",
                       required=["Mandant", "Artikelnummer", "Bestand"])
    for name in ("Mandant", "Artikelnummer", "Bestand"):
        assert usual[0][name] == other[0][name]
    assert other[0].Extra == "x" and other[0].Zusatz is MISSING


def test_header_names_are_stripped(tmp_path: Path) -> None:
    (record,) = read_bytes(tmp_path, b' Mandant ;"Artikelnummer "\r\n123; 10001 \r\n', required=["Artikelnummer"])
    assert values(record) == {"Mandant": "123", "Artikelnummer": " 10001 "}  # values are not stripped


def test_nameless_columns_are_dropped(tmp_path: Path) -> None:
    (record,) = read_bytes(tmp_path, b"A;;B;\r\n1;x;2;y\r\n")
    assert values(record) == {"A": "1", "B": "2"}


def test_missing_required_columns_are_named_together(tmp_path: Path) -> None:
    error = fails(tmp_path, b"Mandant;Bezeichnung1\r\n123;x\r\n", required=["Mandant", "Artikelnummer", "EANNummer"])
    assert error.line == 1
    assert "'Artikelnummer', 'EANNummer'" in error.message
    assert "Mandant, Bezeichnung1" in error.message


def test_duplicate_header_name(tmp_path: Path) -> None:
    error = fails(tmp_path, b"Mandant;Artikelnummer;Preis;Artikelnummer\r\n1;2;3;4\r\n")
    assert error.line == 1
    assert "'Artikelnummer'" in error.message and "column 2" in error.message and "column 4" in error.message


def test_too_many_fields(tmp_path: Path) -> None:
    data = b"A;B;C\r\n1;2;3\r\n" + b'4;"x\r\ny";6\r\n' + b"7;8;9;10\r\n"
    error = fails(tmp_path, data)
    assert error.line == 5
    assert "4 fields" in error.message and "header has 3" in error.message and "';'" in error.message
    assert str(error).startswith("in.csv, line 5: ")


def test_too_few_fields_are_missing(tmp_path: Path) -> None:
    records = read_bytes(tmp_path, b"A;B;C\r\n1;2\r\n3\r\n")
    assert [values(r) for r in records] == [{"A": "1", "B": "2", "C": MISSING}, {"A": "3", "B": MISSING, "C": MISSING}]
    assert records[0].C is MISSING and "C" in records[0]


def test_a_line_with_more_columns_than_the_limit_is_refused_naming_the_line(tmp_path: Path) -> None:
    wide = ";".join(f"c{i}" for i in range(MAX_COLUMNS + 1)).encode()
    error = fails(tmp_path, b"\r\n" + wide + b"\r\n1\r\n")
    assert error.line == 2
    assert f"{MAX_COLUMNS + 1:,} columns" in error.message and f"at most {MAX_COLUMNS:,}" in error.message
    assert len(read_bytes(tmp_path, ";".join(f"c{i}" for i in range(MAX_COLUMNS)).encode() + b"\r\n1\r\n")) == 1


def test_records_hold_only_the_values_of_their_line_not_one_per_column_of_the_header(tmp_path: Path) -> None:
    # A row costs what its own line holds: 2,000 rows of one value under a header of the most columns
    # allowed keep no more memory than under a header of two. (Before, every row was a dict as wide as the
    # header: 46 s and gigabytes for 1,000 rows under 300,000 columns.)
    def kept(columns: int) -> tuple[int, list[Record]]:
        header = ";".join(f"c{i}" for i in range(columns)).encode()
        path = write(tmp_path, header + b"\r\n" + b"1\r\n" * 2000, f"w{columns}.csv")
        tracemalloc.start()
        try:
            records = read(path)
            size = tracemalloc.get_traced_memory()[0]
        finally:
            tracemalloc.stop()
        return size, records

    narrow, few = kept(2)
    wide, many = kept(MAX_COLUMNS)
    assert wide < narrow + 1024 * 1024
    assert [r.c0 for r in many] == [r.c0 for r in few] == ["1"] * 2000
    assert many[0].c999 is MISSING and "c999" in many[0] and many[0]["c998"] is MISSING
    assert len(values(many[0])) == MAX_COLUMNS


def test_blank_and_trailing_lines_are_skipped(tmp_path: Path) -> None:
    data = b"\r\nA;B\r\n\r\n1;2\r\n;\r\n  \r\n3;4\r\n\r\n\r\n"
    records = read_bytes(tmp_path, data)
    assert [(r.A, r.line) for r in records] == [("1", 4), ("3", 7)]


def test_header_only_and_nothing_at_all(tmp_path: Path) -> None:
    assert read_bytes(tmp_path, b"A;B\r\n") == []
    assert read_bytes(tmp_path, b"A;B") == []
    assert "empty (0 bytes)" in fails(tmp_path, b"").message
    assert "no header" in fails(tmp_path, b"\r\n\r\n").message
    assert "no header" in fails(tmp_path, "\ufeff".encode()).message


def test_nul_byte(tmp_path: Path) -> None:
    error = fails(tmp_path, b"A;B\r\n1;2\r\n3;a\x00b\r\n")
    assert error.line == 3
    assert "NUL bytes" in error.message and "text/CSV" in error.message


def test_utf16_file_is_refused_for_its_nul_bytes(tmp_path: Path) -> None:
    error = fails(tmp_path, "A;B\r\n1;2\r\n".encode("utf-16"))
    assert error.line == 1 and "NUL" in error.message


def test_unclosed_quote_at_the_end(tmp_path: Path) -> None:
    error = fails(tmp_path, b'A;B\r\n1;2\r\n3;"never closed\r\nmore text\r\n')
    assert error.line == 3
    assert "not closed" in error.message


def test_text_after_a_closing_quote(tmp_path: Path) -> None:
    error = fails(tmp_path, b'A;B\r\n1;2\r\n3;"Becher "B\xfcro""\r\n')
    assert error.line == 3
    assert "doubled" in error.message


def test_value_longer_than_the_limit(tmp_path: Path) -> None:
    data = b'A;B\r\n1;"' + b"x\r\n" * 400_000 + b'"\r\n'  # 1.2 MB in one quoted value
    error = fails(tmp_path, data)
    assert error.line == 2
    assert "longer than 1 MiB" in error.message


def test_line_without_end(tmp_path: Path) -> None:
    error = fails(tmp_path, b"A;B\r\n" + b"x" * (4 * 1024 * 1024 + 10))
    assert error.line == 2
    assert "line break" in error.message


def test_another_delimiter(tmp_path: Path) -> None:
    (record,) = read_bytes(tmp_path, b"A,B\r\n1,\"x,y\"\r\n", delimiter=",")
    assert values(record) == {"A": "1", "B": "x,y"}


# --- size -----------------------------------------------------------------------------------------


@pytest.mark.campaign  # a large input: run by CI (.ci/run), not by the README's `pytest -q`
def test_memory_stays_flat_on_a_large_file(tmp_path: Path) -> None:
    path = tmp_path / "big.csv"
    row = ('123;{:08d};"Kaffeebecher ""Büro""; Steingut";Müller & Söhne;12,90;4006381333931;-1;'
           "14.11.2026;Langtext für die Anzeige im Shop\r\n")
    with path.open("w", encoding="cp1252", newline="") as out:
        out.write("Mandant;Artikelnummer;Bezeichnung;Hersteller;Preis;EAN;Aktiv;Datum;Langtext\r\n")
        for block in range(0, 200_000, 10_000):
            out.write("".join(row.format(i) for i in range(block, block + 10_000)))
    assert path.stat().st_size > 20_000_000

    tracemalloc.start()
    try:
        count = 0
        last = None
        for record in read_csv_records(path, "big.csv"):  # auto: a full detection pass, then the parse
            count += 1
            last = record
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert count == 200_000
    assert last is not None and last.Artikelnummer == "00199999" and last.line == 200_001
    assert last.Bezeichnung == 'Kaffeebecher "Büro"; Steingut'
    assert peak < 10 * 1024 * 1024, f"peak traced memory {peak / 1e6:.1f} MB"


# --- round trip through Python's csv writer -------------------------------------------------------

Table = tuple[list[str], list[list[str]]]  # header names, rows
_NAME = st.text(alphabet="ABCMandtiklösäßü_0123456789", min_size=1, max_size=8)
_SPECIAL = st.sampled_from([";", '"', "\n", "\r", "\r\n", " ", "ä", "ö", "ü", "ß", "Ä", "€", "–", "„", ""])


def _value(characters: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.lists(st.one_of(_SPECIAL, characters), max_size=8).map("".join)


def _table(characters: st.SearchStrategy[str]) -> st.SearchStrategy[Table]:
    return st.lists(_NAME, min_size=1, max_size=5, unique=True).flatmap(
        lambda names: st.tuples(
            st.just(names), st.lists(st.lists(_value(characters), min_size=len(names), max_size=len(names)),
                                     max_size=6)
        )
    )


def _round_trip(folder: Path, names: list[str], rows: list[list[str]], encoding: str, read_as: str) -> None:
    buffer = io.StringIO()
    csv.writer(buffer, delimiter=";", lineterminator="\r\n").writerows([names, *rows])
    path = folder / "round.csv"
    path.write_bytes(buffer.getvalue().encode(encoding))
    records = read(path, encoding=read_as, required=names)
    expected = [row for row in rows if any(value.strip() for value in row)]  # blank rows are skipped
    assert [[r[name] for name in names] for r in records] == [
        [value or MISSING for value in row] for row in expected
    ]
    for record, row in zip(records, expected, strict=True):
        for name, value in zip(names, row, strict=True):
            assert (record[name] is MISSING) == (value == "")


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(table=_table(st.characters(codec="cp1252", exclude_characters="\x00")))
def test_round_trip_windows_1252(tmp_path_factory: pytest.TempPathFactory, table: Table) -> None:
    names, rows = table
    _round_trip(tmp_path_factory.mktemp("cp1252"), names, rows, "cp1252", "windows-1252")


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(table=_table(st.characters(exclude_categories=["Cs"], exclude_characters="\x00")))
def test_round_trip_utf8_auto(tmp_path_factory: pytest.TempPathFactory, table: Table) -> None:
    names, rows = table
    _round_trip(tmp_path_factory.mktemp("utf8"), names, rows, "utf-8", "auto")
