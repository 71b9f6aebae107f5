"""The batch reader: SOL catalog exports as folder and as ZIP, relations, Jinja on them, ZIP attacks, memory."""

from __future__ import annotations

import builtins
import hashlib
import json
import os
import socket
import stat
import struct
import subprocess
import sys
import time
import tracemalloc
import warnings
import zipfile
import zlib
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from jinja2.exceptions import SecurityError

from gateway.errors import InputError, ReadError
from gateway.mapping.templating import make_environment
from gateway.mapping.values import MISSING, Record
from gateway.processing import sha256_of
from gateway.readers.batch import (
    BatchDatabase,
    BatchLimits,
    BatchRecord,
    MiB,
    Relation,
    TableSpec,
    batch_files,
    hash_batch,
    read_batch_records,
)
from gateway.readers.batch import archive as batch_module


def table(*lines: str) -> bytes:
    """A SOL CSV: Windows-1252, ';', CRLF, a trailing line break."""
    return ("\r\n".join(lines) + "\r\n").encode("cp1252")


# Modelled on samples/sol/katalog: umlauts, a quoted value with ';' and a line break, AuspraegungID 0 as "0".
ARTIKEL = table(
    "Mandant;Artikelnummer;Bezeichnung1;Langtext;Stuecklistentyp;Variante",
    '123;10001;Kaffeebecher "Büro";"Spülmaschinenfest; mikrowellengeeignet.";0;0',
    '123;20001;Basic T-Shirt;"Weiches T-Shirt.\r\nIn vielen Farben.";0;-1',
    "123;30001;Frühstücks-Set;Becher + Teller;1;0",
    "123;10002;Teller flach;;0;0",
    "123;99999;Altartikel;;0;0",
)
VARIANTEN = table(
    "Mandant;Artikelnummer;AuspraegungID;Variantenartikelnummer;Merkmale",
    "123;20001;1;20001-BL-M;Farbe=Blau|Größe=M",
    "123;20001;2;20001-BL-L;Farbe=Blau|Größe=L",
    "123;20001;3;20001-RT-M;Farbe=Rot|Größe=M",
    "123;;9;WAISE;",  # no article: kept, matches nothing
)
LAGER = table(
    "Mandant;Artikelnummer;AuspraegungID;Lagerkennung;PlatzID;Bestand",
    "123;10001;0;HL;101;120",
    "123;10001;0;AL;205;30",
    "123;10001;0;RETOURE;900;5",
    "123;10002;0;HL;102;7",
    "123;20001;1;HL;301;25",
    "123;20001;3;HL;303;4",
    "123;20001;3;RETOURE;900;2",
    "123;20001;00;HL;399;1000",  # "00" is not "0", nor any variant's ID
    "123;;0;HL;999;1",  # no article: matches nothing
)
STUECKLISTEN = table(
    "Mandant;Stueckliste;Element;AuspraegungID;Menge;Sortierung",
    "123;30001;10001;0;1;1",
    "123;30001;10002;0;2;2",
)
TEXTE = table(
    "Mandant;Artikelnummer;Sprache;Bezeichnung1",
    '123;10001;en;Coffee mug "Office"',
    "123;10001;fr;Tasse à café « Bureau »",
)
CATALOG = {
    "artikel.csv": ARTIKEL,
    "varianten.csv": VARIANTEN,
    "lager.csv": LAGER,
    "stuecklisten.csv": STUECKLISTEN,
    "texte.csv": TEXTE,
    "dokumente/10001_datenblatt.pdf": b"%PDF-1.4 not really\n",
}

KEY = (("Artikelnummer", "Artikelnummer"),)
VARIANT_KEY = (("Artikelnummer", "Artikelnummer"), ("AuspraegungID", "AuspraegungID"))
TABLES = {
    "artikel": TableSpec("artikel.csv", required=("Artikelnummer",)),
    "varianten": TableSpec("varianten.csv"),
    "lager": TableSpec("lager.csv", required=("Bestand",)),
    "stuecklisten": TableSpec("stuecklisten.csv", optional=True),
    "texte": TableSpec("texte.csv", optional=True),
    "preise": TableSpec("preise.csv", optional=True),
}
RELATIONS = {
    "artikel": {
        "varianten": Relation("varianten", KEY),
        "lager": Relation("lager", KEY),
        "texte": Relation("texte", KEY),
        "preise": Relation("preise", KEY),
        "komponenten": Relation("stuecklisten", (("Artikelnummer", "Stueckliste"),)),
    },
    "varianten": {"lager": Relation("lager", VARIANT_KEY)},
    "stuecklisten": {
        "lager": Relation("lager", (("Element", "Artikelnummer"), ("AuspraegungID", "AuspraegungID"))),
        "artikel": Relation("artikel", (("Element", "Artikelnummer"),)),  # back to the primary table
    },
}


def make_folder(root: Path, files: dict[str, bytes]) -> Path:
    for name, data in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    (root / "export.done").write_bytes(b"")
    return root


def make_zip(path: Path, files: dict[str, bytes], prefix: str = "") -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in files.items():
            zf.writestr(prefix + name, data)
    return path


@pytest.fixture(params=["folder", "zip", "zip-in-top-folder"])
def catalog(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    kind = request.param
    if kind == "folder":
        return make_folder(tmp_path / "katalog", CATALOG)
    return make_zip(tmp_path / "katalog_1.zip", CATALOG, prefix="katalog/" if kind == "zip-in-top-folder" else "")


def read(path: Path, tmp_path: Path, **options: Any) -> Iterator[Record]:
    arguments: dict[str, Any] = {"tables": TABLES, "records": "artikel", "relations": RELATIONS}
    arguments.update(options)
    return read_batch_records(path, path.name, work_dir=tmp_path / "work", **arguments)


def collect(path: Path, tmp_path: Path, pick: Callable[[Any], Any], **options: Any) -> list[Any]:
    """``pick`` runs on every record while the batch is being read (relations are live only then)."""
    return [pick(a) for a in read(path, tmp_path, **options)]


def error(call: Callable[[], object]) -> ReadError:
    with pytest.raises(ReadError) as caught:
        call()
    return caught.value


# --- records and relations ------------------------------------------------------------------------


def test_one_record_per_article_with_its_columns_and_lines(catalog: Path, tmp_path: Path) -> None:
    rows = collect(catalog, tmp_path, lambda a: (type(a), a.Artikelnummer, a.Bezeichnung1, a.Langtext, a.line))
    assert rows == [
        (BatchRecord, "10001", 'Kaffeebecher "Büro"', "Spülmaschinenfest; mikrowellengeeignet.", 2),
        (BatchRecord, "20001", "Basic T-Shirt", "Weiches T-Shirt.\r\nIn vielen Farben.", 3),
        (BatchRecord, "30001", "Frühstücks-Set", "Becher + Teller", 5),
        (BatchRecord, "10002", "Teller flach", MISSING, 6),
        (BatchRecord, "99999", "Altartikel", MISSING, 7),
    ]


def test_related_rows_as_lists_in_file_order(catalog: Path, tmp_path: Path) -> None:
    def pick(a: Any) -> Any:
        variants = a.varianten
        assert type(variants) is list
        assert a.varianten is variants  # looked up once, then kept with the record
        return (
            a.Artikelnummer,
            [(v.Variantenartikelnummer, v.Merkmale, v.line) for v in variants],
            [(s.Lagerkennung, s.Bestand) for s in a["lager"]],
            [t.Bezeichnung1 for t in a.texte],
        )

    got = {row[0]: row[1:] for row in collect(catalog, tmp_path, pick)}
    assert got["20001"][0] == [
        ("20001-BL-M", "Farbe=Blau|Größe=M", 2), ("20001-BL-L", "Farbe=Blau|Größe=L", 3),
        ("20001-RT-M", "Farbe=Rot|Größe=M", 4),
    ]
    assert got["20001"][1] == [("HL", "25"), ("HL", "4"), ("RETOURE", "2"), ("HL", "1000")]
    assert got["10001"] == ([], [("HL", "120"), ("AL", "30"), ("RETOURE", "5")],
                            ['Coffee mug "Office"', "Tasse à café « Bureau »"])
    assert got["99999"] == ([], [], [])  # no matches: empty lists


def test_nested_relations_with_composite_keys(catalog: Path, tmp_path: Path) -> None:
    def pick(a: Any) -> Any:
        return (
            [(v.AuspraegungID, [(s.Lagerkennung, s.Bestand, s.line) for s in v.lager]) for v in a.varianten],
            [(c.Element, c.Menge, [s.Bestand for s in c.lager], [x.Bezeichnung1 for x in c.artikel])
             for c in a.komponenten],
        )

    got = dict(zip(["10001", "20001", "30001", "10002", "99999"], collect(catalog, tmp_path, pick), strict=True))
    # AuspraegungID compares as text: variant 2 has no stock row, "00" matches no variant.
    assert got["20001"][0] == [
        ("1", [("HL", "25", 6)]),
        ("2", []),
        ("3", [("HL", "4", 7), ("RETOURE", "2", 8)]),
    ]
    assert got["30001"][1] == [
        ("10001", "1", ["120", "30", "5"], ['Kaffeebecher "Büro"']),
        ("10002", "2", ["7"], ["Teller flach"]),
    ]
    assert got["10001"][1] == []


def test_optional_missing_table_gives_empty_lists(catalog: Path, tmp_path: Path) -> None:
    # preise.csv is not in the batch and optional
    assert collect(catalog, tmp_path, lambda a: a.preise) == [[]] * 5
    assert collect(catalog, tmp_path, lambda a: "preise" in a and "varianten" in a and "Preis" not in a) == [True] * 5


def test_unknown_fields_are_missing_and_relations_are_not_columns(catalog: Path, tmp_path: Path) -> None:
    def pick(a: Any) -> Any:
        return a.Gibtsnicht, a["Gibtsnicht"], sorted(a.to_plain()), repr(a)[:24], a._fields.keys() == {
            "Mandant", "Artikelnummer", "Bezeichnung1", "Langtext", "Stuecklistentyp", "Variante"}

    first = collect(catalog, tmp_path, pick)[0]
    assert first[0] is MISSING and first[1] is MISSING
    assert first[2] == ["Artikelnummer", "Bezeichnung1", "Langtext", "Mandant", "Stuecklistentyp", "Variante"]
    assert first[3] == "BatchRecord('artikel', {"
    assert first[4] is True


def test_rows_with_empty_join_values_are_kept_but_match_nothing(tmp_path: Path) -> None:
    files = dict(CATALOG, **{"artikel.csv": table("Mandant;Artikelnummer;Bezeichnung1", "123;;Ohne Nummer")})
    path = make_folder(tmp_path / "k", files)
    assert collect(path, tmp_path, lambda a: (a.Bezeichnung1, a.varianten, a.lager)) == [("Ohne Nummer", [], [])]


def test_case_insensitive_file_names(tmp_path: Path) -> None:
    files = {name.upper(): data for name, data in CATALOG.items()}
    path = make_zip(tmp_path / "katalog_2.zip", files)
    assert collect(path, tmp_path, lambda a: len(a.varianten)) == [0, 3, 0, 0, 0]


def test_utf8_with_bom_and_another_delimiter(tmp_path: Path) -> None:
    tables = {"artikel": TableSpec("artikel.csv", delimiter=","), "varianten": TableSpec("varianten.csv")}
    files = {
        "artikel.csv": "\ufeffArtikelnummer,Bezeichnung1\r\n20001,Größe\r\n".encode(),
        "varianten.csv": VARIANTEN,
    }
    path = make_folder(tmp_path / "k", files)
    got = collect(path, tmp_path, lambda a: (a.Bezeichnung1, len(a.varianten)), tables=tables,
                  relations={"artikel": {"varianten": Relation("varianten", KEY)}})
    assert got == [("Größe", 3)]


def test_relations_after_the_end_of_the_batch_raise(catalog: Path, tmp_path: Path) -> None:
    records = list(read(catalog, tmp_path))
    assert records[1].Artikelnummer == "20001"  # columns stay readable
    with pytest.raises(RuntimeError, match="only be read while the records are being read"):
        _ = records[1].varianten


def test_each_call_works_in_its_own_folder(catalog: Path, tmp_path: Path) -> None:
    first = collect(catalog, tmp_path, lambda a: len(a.lager))
    assert collect(catalog, tmp_path, lambda a: len(a.lager)) == first == [3, 4, 0, 1, 0]
    assert len(list((tmp_path / "work").iterdir())) == 2


# --- Jinja ----------------------------------------------------------------------------------------


def render_all(path: Path, tmp_path: Path, source: str) -> list[str]:
    template = make_environment({}).from_string(source)
    return collect(path, tmp_path, lambda a: template.render(a=a))


def test_jinja_computes_with_relations(catalog: Path, tmp_path: Path) -> None:
    assert render_all(catalog, tmp_path, "{{ a.varianten | length }}") == ["0", "3", "0", "0", "0"]
    stock = (
        "{{ a.lager | selectattr('Lagerkennung', 'in', ['HL','AL']) | map(attribute='Bestand') | map('int') | sum }}"
    )
    assert render_all(catalog, tmp_path, stock) == ["150", "1029", "0", "7", "0"]
    per_variant = (
        "{% for v in a.varianten %}{{ v.Variantenartikelnummer }}="
        "{{ v.lager | rejectattr('Lagerkennung', 'eq', 'RETOURE') | map(attribute='Bestand') | map('int') | sum }}"
        "{% if not loop.last %},{% endif %}{% endfor %}"
    )
    assert render_all(catalog, tmp_path, per_variant)[1] == "20001-BL-M=25,20001-BL-L=0,20001-RT-M=4"
    bom = (
        "{% set ns = namespace(n=none) %}{% for c in a.komponenten %}"
        "{% set n = (c.lager | map(attribute='Bestand') | map('int') | sum) // (c.Menge | int) %}"
        "{% if ns.n is none or n < ns.n %}{% set ns.n = n %}{% endif %}{% endfor %}{{ ns.n }}"
    )
    assert render_all(catalog, tmp_path, bom)[2] == "3"  # min(155 // 1, 7 // 2)
    groups = "{% for g in a.lager | groupby('Lagerkennung') %}{{ g.grouper }}:{{ g.list | length }} {% endfor %}"
    assert render_all(catalog, tmp_path, groups)[1] == "HL:3 RETOURE:1 "
    texts = "{{ a.texte | selectattr('Sprache', 'eq', 'fr') | map(attribute='Bezeichnung1') | join }}"
    assert render_all(catalog, tmp_path, texts)[0] == "Tasse à café « Bureau »"
    first_variant = "{{ a.varianten[0].Merkmale if a.varianten else a.Bezeichnung1 }}"
    assert render_all(catalog, tmp_path, first_variant)[:2] == ['Kaffeebecher "Büro"', "Farbe=Blau|Größe=M"]


def test_jinja_sandbox_still_guards_batch_records(catalog: Path, tmp_path: Path) -> None:
    env = make_environment({})
    with pytest.raises(SecurityError):
        collect(catalog, tmp_path, lambda a: env.from_string("{{ a._fields }}").render(a=a))
    with pytest.raises(SecurityError):
        collect(catalog, tmp_path, lambda a: env.from_string("{{ a.varianten.append(1) }}").render(a=a))
    with pytest.raises(SecurityError):
        collect(catalog, tmp_path, lambda a: env.from_string("{{ a._resolver }}").render(a=a))


# --- errors in the batch --------------------------------------------------------------------------


def test_a_missing_required_table_is_named_with_the_files_present(tmp_path: Path) -> None:
    files = {k: v for k, v in CATALOG.items() if k != "lager.csv"}
    for path in (make_folder(tmp_path / "k", files), make_zip(tmp_path / "katalog_3.zip", files)):
        exc = error(partial(lambda where: list(read(where, tmp_path)), path))
        assert exc.file == path.name
        assert "the batch has no file lager.csv (table 'lager', required)" in exc.message
        assert "artikel.csv, " in exc.message and "dokumente/10001_datenblatt.pdf" in exc.message


def test_errors_name_the_member_and_the_line(tmp_path: Path) -> None:
    broken = LAGER + table("123;10001;0;HL;101;120;zu;viel")
    path = make_zip(tmp_path / "katalog_4.zip", dict(CATALOG, **{"lager.csv": broken}), prefix="katalog/")
    exc = error(lambda: list(read(path, tmp_path)))
    assert (exc.file, exc.line) == ("katalog_4.zip/katalog/lager.csv", 11)
    assert "this row has 8 fields, the header has 6" in exc.message


def test_a_join_column_missing_from_a_header_is_an_error(tmp_path: Path) -> None:
    no_key = table("Mandant;Artikel;AuspraegungID;Variantenartikelnummer", "123;20001;1;X")
    path = make_folder(tmp_path / "k", dict(CATALOG, **{"varianten.csv": no_key}))
    exc = error(lambda: list(read(path, tmp_path)))
    assert exc.file == "k/varianten.csv"
    assert "the header lacks the required column 'Artikelnummer'" in exc.message


def test_a_relation_named_like_a_column_is_refused(tmp_path: Path) -> None:
    path = make_folder(tmp_path / "k", CATALOG)
    relations = {"artikel": {"Variante": Relation("varianten", KEY)}}
    exc = error(lambda: list(read(path, tmp_path, relations=relations)))
    assert exc.file == "k/artikel.csv" and "a column 'Variante'" in exc.message


def test_two_files_with_the_same_base_name_are_refused(tmp_path: Path) -> None:
    path = make_zip(tmp_path / "katalog_5.zip", dict(CATALOG, **{"alt/artikel.csv": ARTIKEL}))
    exc = error(lambda: list(read(path, tmp_path)))
    assert "2 files named artikel.csv ('artikel.csv', 'alt/artikel.csv')" in exc.message


def test_wrong_arguments_raise_value_error_at_once(tmp_path: Path) -> None:
    path = tmp_path / "nowhere"
    with pytest.raises(ValueError, match="primary table 'artikl'"):
        read(path, tmp_path, records="artikl")
    with pytest.raises(ValueError, match="leads to the table 'bilder'"):
        read(path, tmp_path, relations={"artikel": {"bilder": Relation("bilder", KEY)}})
    with pytest.raises(ValueError, match="pairs of column names"):
        read(path, tmp_path, relations={"artikel": {"lager": Relation("lager", ())}})
    with pytest.raises(ValueError, match="must not be empty or start with '_'"):
        read(path, tmp_path, relations={"artikel": {"_lager": Relation("lager", KEY)}})
    with pytest.raises(ValueError, match="unknown encoding"):
        read(path, tmp_path, tables=dict(TABLES, lager=TableSpec("lager.csv", encoding="klingonisch")))


def test_a_batch_that_does_not_exist(tmp_path: Path) -> None:
    exc = error(lambda: list(read(tmp_path / "katalog_9.zip", tmp_path)))
    assert "neither a ZIP file nor a folder" in exc.message


def test_batch_files_lists_the_members(tmp_path: Path) -> None:
    path = make_zip(tmp_path / "katalog_6.zip", CATALOG, prefix="katalog/")
    with zipfile.ZipFile(path, "a") as zf:
        zf.writestr("katalog/leer/", b"")  # a folder entry is not a file
    assert batch_files(path, path.name) == [f"katalog/{name}" for name in CATALOG]
    folder = make_folder(tmp_path / "k", CATALOG)
    assert batch_files(folder, "k") == sorted([*CATALOG, "export.done"])


# --- ZIP attacks ----------------------------------------------------------------------------------


def patch_entry(path: Path, name: str, **fields: int) -> None:
    """Overwrite fields of a member's central directory entry (and its local header), as an attacker would."""
    data = bytearray(path.read_bytes())
    central = {"flags": (8, "<H"), "crc": (16, "<L"), "compressed": (20, "<L"), "size": (24, "<L")}
    local = {"flags": (6, "<H"), "crc": (14, "<L"), "compressed": (18, "<L"), "size": (22, "<L")}
    encoded = name.encode()
    at = data.find(b"PK\x01\x02")
    while data[at + 46: at + 46 + len(encoded)] != encoded:
        at = data.find(b"PK\x01\x02", at + 4)
    header = struct.unpack_from("<L", data, at + 42)[0]
    for key, value in fields.items():
        struct.pack_into(central[key][1], data, at + central[key][0], value)
        struct.pack_into(local[key][1], data, header + local[key][0], value)
    path.write_bytes(bytes(data))


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("../evil.csv", "'..'"),
        ("katalog/../../evil.csv", "'..'"),
        ("/abs.csv", "absolute path"),
        ("C:\\x.csv", "backslash"),
        ("C:x.csv", "drive letter"),
        ("katalog\\artikel.csv", "backslash"),
        ("bad\x01name.csv", "control characters"),
        ("new\nline.csv", "control characters"),
        ("katalog//x.csv", "empty or '.' folder part"),
    ],
)
def test_unsafe_member_names_are_refused(tmp_path: Path, name: str, reason: str) -> None:
    path = make_zip(tmp_path / "katalog_7.zip", dict(CATALOG, **{name: b"x"}))
    exc = error(lambda: list(read(path, tmp_path)))
    assert exc.file == "katalog_7.zip"
    assert "unsafe name" in exc.message and reason in exc.message and repr(name) in exc.message
    assert not (tmp_path / "evil.csv").exists()
    with pytest.raises(ReadError, match="unsafe name"):
        batch_files(path, path.name)


@pytest.mark.parametrize("other", ["artikel.csv", "Artikel.CSV"])
def test_duplicate_member_names_are_refused(tmp_path: Path, other: str) -> None:
    path = make_zip(tmp_path / "katalog_8.zip", CATALOG)
    with warnings.catch_warnings(), zipfile.ZipFile(path, "a") as zf:
        warnings.simplefilter("ignore")  # zipfile warns of the duplicate it writes
        zf.writestr(other, ARTIKEL)
    exc = error(lambda: list(read(path, tmp_path)))
    assert "two members with" in exc.message and repr(other) in exc.message


def test_too_many_members_are_refused_before_the_directory_is_loaded(tmp_path: Path) -> None:
    files = dict(CATALOG, **{f"dokumente/{i}.pdf": b"" for i in range(1000)})
    path = make_zip(tmp_path / "katalog_9.zip", files)
    exc = error(lambda: list(read(path, tmp_path)))
    assert f"the batch has {len(files)} members" in exc.message and "at most 1000" in exc.message
    small = BatchLimits(max_members=3)
    exc = error(lambda: list(read(make_zip(tmp_path / "k.zip", CATALOG), tmp_path, limits=small)))
    assert "at most 3 are allowed" in exc.message
    folder = make_folder(tmp_path / "k", CATALOG)
    exc = error(lambda: list(read(folder, tmp_path, limits=small)))
    assert "more than 3 members" in exc.message


def test_encrypted_members_are_refused(tmp_path: Path) -> None:
    path = make_zip(tmp_path / "katalog_10.zip", CATALOG)
    patch_entry(path, "lager.csv", flags=0x1)
    exc = error(lambda: list(read(path, tmp_path)))
    assert exc.file == "katalog_10.zip/lager.csv" and "encrypted" in exc.message


@pytest.mark.parametrize("content", [ARTIKEL, b"", b"PK\x03\x04 broken", b"PK\x05\x06" + b"\0" * 10])
def test_a_file_that_is_not_a_zip_archive(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "katalog_11.zip"
    path.write_bytes(content)
    exc = error(lambda: list(read(path, tmp_path)))
    assert exc.file == "katalog_11.zip" and "the file is not a ZIP archive" in exc.message


def zip_bomb(path: Path, size: int) -> Path:
    """A catalog with a member of ``size`` zero bytes, written in chunks: small on disk and quick."""
    make_zip(path, CATALOG)
    chunk = bytes(MiB)
    with zipfile.ZipFile(path, "a", zipfile.ZIP_DEFLATED) as zf, zf.open("dokumente/nullen.pdf", "w") as out:
        for _ in range(size // MiB):
            out.write(chunk)
    return path


def test_a_zip_bomb_is_refused_by_its_ratio(tmp_path: Path) -> None:
    path = zip_bomb(tmp_path / "katalog_12.zip", 200 * MiB)
    assert path.stat().st_size < 1 * MiB
    exc = error(lambda: list(read(path, tmp_path)))
    assert exc.file == "katalog_12.zip/dokumente/nullen.pdf"
    assert "ratio over 200 to 1" in exc.message and "zip bomb" in exc.message
    exc = error(lambda: batch_files(path, path.name, BatchLimits(max_ratio=10_000, max_member_bytes=100 * MiB)))
    assert "200 MiB unpacked, more than the 100 MiB one member may have" in exc.message
    exc = error(lambda: list(read(path, tmp_path, limits=BatchLimits(max_ratio=10_000, max_total_bytes=150 * MiB))))
    assert exc.file == "katalog_12.zip" and "more than 150 MiB unpacked together" in exc.message


def test_sizes_are_counted_while_unpacking_not_taken_from_the_header(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A member whose header claims a small size: zipfile stops at the claimed size, and the CRC fails.
    path = make_zip(tmp_path / "katalog_13.zip", dict(CATALOG, **{"lager.csv": LAGER * 20_000}))
    patch_entry(path, "lager.csv", size=1000)
    exc = error(lambda: list(read(path, tmp_path)))
    assert exc.file == "katalog_13.zip/lager.csv" and "damaged" in exc.message
    # Should the header checks ever be fooled, the bytes counted while unpacking still stop a bomb.
    monkeypatch.setattr(batch_module, "_check_members", lambda *args: None)
    monkeypatch.setattr(batch_module, "_check_info", lambda *args: None)
    bomb = make_zip(tmp_path / "katalog_14.zip", {k: v for k, v in CATALOG.items() if k != "lager.csv"})
    with zipfile.ZipFile(bomb, "a", zipfile.ZIP_DEFLATED) as zf, zf.open("lager.csv", "w") as out:
        for _ in range(64):
            out.write(bytes(MiB))
    exc = error(lambda: list(read(bomb, tmp_path)))
    assert exc.file == "katalog_14.zip/lager.csv" and "zip bomb" in exc.message
    exc = error(lambda: list(read(bomb, tmp_path, limits=BatchLimits(max_ratio=1e9, max_member_bytes=8 * MiB))))
    assert "unpacks to more than 8 MiB" in exc.message
    exc = error(lambda: list(read(bomb, tmp_path, limits=BatchLimits(max_ratio=1e9, max_total_bytes=8 * MiB))))
    assert "more than 8 MiB together" in exc.message


def packed_with(path: Path, method: int, name: str, data: bytes) -> Path:
    """The catalog, with the member ``name`` packed with ``method``."""
    make_zip(path, {k: v for k, v in CATALOG.items() if k != name})
    with zipfile.ZipFile(path, "a", method) as zf:
        zf.writestr(name, data)
    return path


@pytest.mark.parametrize(("method", "words"), [(zipfile.ZIP_BZIP2, "BZIP2"), (zipfile.ZIP_LZMA, "LZMA")])
def test_members_packed_with_methods_that_unpack_without_bound_are_refused(
        tmp_path: Path, method: int, words: str) -> None:
    path = packed_with(tmp_path / "katalog_15.zip", method, "lager.csv", LAGER)
    exc = error(lambda: list(read(path, tmp_path)))
    assert exc.file == "katalog_15.zip/lager.csv"
    assert f"packed with {words}" in exc.message and "only members packed with Deflate" in exc.message


def test_a_member_larger_than_its_declared_size_is_refused_while_reading(tmp_path: Path) -> None:
    # The header says 100 bytes, with the checksum of those 100: zipfile stopped there, and the table was cut.
    content = LAGER * 1000
    path = make_zip(tmp_path / "katalog_16.zip", dict(CATALOG, **{"lager.csv": content}))
    patch_entry(path, "lager.csv", size=100, crc=zlib.crc32(content[:100]))
    exc = error(lambda: list(read(path, tmp_path)))
    assert exc.file == "katalog_16.zip/lager.csv"
    assert "unpacks to more than the 100 bytes its header states" in exc.message


def test_a_member_smaller_than_its_declared_size_or_with_a_wrong_checksum_is_refused(tmp_path: Path) -> None:
    path = make_zip(tmp_path / "katalog_17.zip", CATALOG)
    patch_entry(path, "lager.csv", size=len(LAGER) + 1)
    exc = error(lambda: list(read(path, tmp_path)))
    assert exc.file == "katalog_17.zip/lager.csv" and "but its header states" in exc.message
    path = make_zip(tmp_path / "katalog_18.zip", CATALOG)
    patch_entry(path, "lager.csv", crc=zlib.crc32(LAGER) ^ 1)
    exc = error(lambda: list(read(path, tmp_path)))
    assert exc.file == "katalog_18.zip/lager.csv" and "checksum" in exc.message


def test_members_that_overlap_in_the_archive_are_refused(tmp_path: Path) -> None:
    # A second directory entry for the same packed data: one kernel read as many members.
    path = make_zip(tmp_path / "katalog_20.zip", CATALOG)
    data = bytearray(path.read_bytes())
    start = data.find(b"PK\x01\x02")
    entry_end = data.find(b"PK\x01\x02", start + 4)
    twin = bytearray(data[start:entry_end])
    twin[46:46 + len(b"artikel.csv")] = b"artikel.cs2"
    end = data.rfind(b"PK\x05\x06")
    eocd = bytearray(data[end:])
    for at in (8, 10):
        struct.pack_into("<H", eocd, at, struct.unpack_from("<H", eocd, at)[0] + 1)
    struct.pack_into("<L", eocd, 12, struct.unpack_from("<L", eocd, 12)[0] + len(twin))
    path.write_bytes(bytes(data[:end]) + bytes(twin) + bytes(eocd))
    exc = error(lambda: list(read(path, tmp_path)))
    assert exc.file == "katalog_20.zip" and "overlap" in exc.message and "'artikel.cs2'" in exc.message


BOMB_CHILD = r"""
import json, sys
from pathlib import Path
from gateway.errors import InputError, ReadError
from gateway.readers.batch import Relation, TableSpec, read_batch_records
path = Path(sys.argv[1])
tables = {"artikel": TableSpec("artikel.csv"), "lager": TableSpec("lager.csv")}
relations = {"artikel": {"lager": Relation("lager", (("Artikelnummer", "Artikelnummer"),))}}
try:
    outcome = ["read", sum(len(a.lager) + 1 for a in read_batch_records(
        path, path.name, tables=tables, records="artikel", relations=relations, work_dir=Path(sys.argv[2])))]
except ReadError as exc:
    outcome = ["refused", str(exc)]
with open("/proc/self/status") as status:
    peak = next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmHWM:"))
print(json.dumps([*outcome, peak]))
"""


@pytest.mark.parametrize(("method", "words"), [(zipfile.ZIP_BZIP2, "packed with BZIP2"),
                                               (zipfile.ZIP_DEFLATED, "more than the 100 bytes its header states")])
def test_a_bomb_with_forged_sizes_is_refused_with_flat_memory(tmp_path: Path, method: int, words: str) -> None:
    # 256 MiB of line breaks (a valid, empty table) packed into a few kilobytes; the header says 100 bytes.
    path = make_zip(tmp_path / "katalog_19.zip", {k: v for k, v in CATALOG.items() if k != "lager.csv"})
    head = LAGER.split(b"\r\n")[0] + b"\r\n"
    with zipfile.ZipFile(path, "a", method) as zf, zf.open("lager.csv", "w") as out:
        out.write(head)
        for _ in range(256):
            out.write(b"\n" * MiB)
    assert path.stat().st_size < 2 * MiB
    patch_entry(path, "lager.csv", size=100, crc=zlib.crc32((head + b"\n" * 100)[:100]))
    child = subprocess.run([sys.executable, "-c", BOMB_CHILD, str(path), str(tmp_path / "work")],
                           capture_output=True, text=True, check=True)
    outcome, reason, peak = json.loads(child.stdout)
    assert outcome == "refused"
    assert "katalog_19.zip/lager.csv" in reason and words in reason
    assert peak < 150 * MiB  # the gateway's own imports are about 60 MiB; 256 MiB unpacked at once would show


def test_symbolic_links_in_a_folder_are_refused(tmp_path: Path) -> None:
    outside = tmp_path / "geheim.csv"
    outside.write_bytes(LAGER)
    folder = make_folder(tmp_path / "k", {k: v for k, v in CATALOG.items() if k != "lager.csv"})
    try:
        os.symlink(outside, folder / "lager.csv")
    except OSError:  # pragma: no cover - Windows without the right to make links
        pytest.skip("symbolic links cannot be made here")
    exc = error(lambda: list(read(folder, tmp_path)))
    assert exc.file == "k" and "'lager.csv' is a symbolic link" in exc.message


def special_entry(path: Path, kind: str, outside: Path) -> None:
    """Put an entry of ``kind`` at ``path``: something a batch folder must never hold."""
    if kind == "link":
        os.symlink(outside, path)
    elif kind == "fifo":
        os.mkfifo(path)
    elif kind == "socket":
        with socket.socket(socket.AF_UNIX) as sock:
            sock.bind(str(path))
    else:
        try:
            os.mknod(path, stat.S_IFCHR | 0o600, os.makedev(1, 3))  # like /dev/null
        except PermissionError:  # pragma: no cover - not root
            pytest.skip("devices cannot be made here")


@pytest.mark.parametrize(("kind", "words"), [("link", "a symbolic link"), ("fifo", "a named pipe (FIFO)"),
                                             ("socket", "a socket"), ("device", "a device")])
def test_a_batch_folder_is_hashed_without_opening_links_pipes_sockets_or_devices(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kind: str, words: str) -> None:
    outside = tmp_path / "geheim.csv"
    outside.write_bytes(LAGER)
    folder = make_folder(tmp_path / "k", CATALOG)
    (folder / "dokumente" / "tief").mkdir()
    special_entry(folder / "dokumente" / "tief" / "zz_entry.csv", kind, outside)
    opened: list[str] = []
    real_open, real_os_open = builtins.open, os.open
    monkeypatch.setattr(builtins, "open", lambda file, *a, **k: opened.append(str(file)) or real_open(file, *a, **k))
    monkeypatch.setattr(os, "open", lambda file, *a, **k: opened.append(str(file)) or real_os_open(file, *a, **k))
    with pytest.raises(InputError) as caught:
        sha256_of(folder)
    monkeypatch.undo()
    assert f"'dokumente/tief/zz_entry.csv' is {words}" in caught.value.message
    assert not any("zz_entry" in name or "geheim" in name for name in opened)
    exc = error(lambda: list(read(folder, tmp_path)))  # the reader refuses it the same way
    assert f"'dokumente/tief/zz_entry.csv' is {words}" in exc.message


def test_the_hash_of_a_batch_folder_is_the_one_the_engine_took_before(tmp_path: Path) -> None:
    # Inputs hashed before this version must still be recognised as the same content.
    folder = make_folder(tmp_path / "k", dict(CATALOG, **{"a-b/x.csv": b"1", "a/b.csv": b"2", ".hidden": b"3"}))
    digest = hashlib.sha256()
    for file in sorted(p for p in folder.rglob("*") if p.is_file()):
        digest.update(file.relative_to(folder).as_posix().encode() + b"\0" + file.read_bytes())
    size = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
    assert hash_batch(folder) == sha256_of(folder) == (digest.hexdigest(), size)


def nested(root: Path, levels: int) -> Path:
    """``levels`` folders inside each other below ``root``, made one at a time (paths stay short)."""
    here = root
    for _ in range(levels):
        here = here / "d"
        here.mkdir()
    return here


def test_folders_nested_deeper_than_the_limit_are_refused_naming_the_entry(tmp_path: Path) -> None:
    folder = make_folder(tmp_path / "k", CATALOG)
    nested(folder, 40)
    expected = "'" + "d/" * 32 + "d' lies more than 32 folders deep"
    exc = error(lambda: list(read(folder, tmp_path)))
    assert exc.file == "k" and expected in exc.message
    with pytest.raises(InputError, match=expected):
        hash_batch(folder)
    nested(make_folder(tmp_path / "ok", CATALOG), 32)
    assert collect(tmp_path / "ok", tmp_path, lambda a: a.Artikelnummer)[0] == "10001"
    path = make_zip(tmp_path / "tief.zip", dict(CATALOG, **{"d/" * 33 + "x.pdf": b"x"}))
    exc = error(lambda: list(read(path, tmp_path)))
    assert "unsafe name" in exc.message and "more than 32 folders deep" in exc.message


# --- memory and time ------------------------------------------------------------------------------


@pytest.mark.campaign  # a large input: run by CI (.ci/run), not by the README's `pytest -q`
def test_memory_stays_flat_for_a_large_catalog(tmp_path: Path) -> None:
    articles, variants_each = 100_000, 3
    folder = tmp_path / "gross"
    folder.mkdir()
    with (folder / "artikel.csv").open("w", encoding="cp1252", newline="") as out:
        out.write("Mandant;Artikelnummer;Bezeichnung1;Langtext;Gewicht\r\n")
        for i in range(articles):
            out.write(f"123;{100000 + i};Artikel Nr. {i} für Küche;Größe {i % 7};0,{i % 1000:03d}\r\n")
    with (folder / "varianten.csv").open("w", encoding="cp1252", newline="") as out:
        out.write("Mandant;Artikelnummer;AuspraegungID;Variantenartikelnummer;EANNummer;Merkmale\r\n")
        for i in range(articles):
            for v in range(1, variants_each + 1):
                out.write(f"123;{100000 + i};{v};{100000 + i}-{v};4006381{i:06d};Farbe=Grün|Größe={v}\r\n")
    (folder / "export.done").write_bytes(b"")
    tables = {"artikel": TableSpec("artikel.csv"), "varianten": TableSpec("varianten.csv")}
    relations = {"artikel": {"varianten": Relation("varianten", KEY)}}

    def read_all(work: str) -> tuple[int, int]:
        count = total = 0
        for a in read_batch_records(folder, "gross", tables=tables, records="artikel", relations=relations,
                                    work_dir=tmp_path / work):
            total += len(a.varianten)
            count += 1
        return count, total

    started = time.perf_counter()
    assert read_all("work") == (articles, articles * variants_each)
    elapsed = time.perf_counter() - started
    # Once more under tracemalloc, which slows Python's allocations down several times over.
    tracemalloc.start()
    try:
        started = time.perf_counter()
        assert read_all("work-traced") == (articles, articles * variants_each)
        traced = time.perf_counter() - started
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    database = next((tmp_path / "work").glob("*/batch.sqlite")).stat().st_size
    print(f"\nbatch of {articles:,} articles and {articles * variants_each:,} variants, len(a.varianten) for each: "
          f"{elapsed:.1f} s ({traced:.1f} s under tracemalloc), Python memory peak {peak / MiB:.1f} MiB, "
          f"database {database / MiB:.0f} MiB")
    assert peak < 30 * MiB


def test_text_methods_are_quick_but_format_still_goes_through_the_sandbox(catalog: Path, tmp_path: Path) -> None:
    env = make_environment({})
    names = collect(catalog, tmp_path, lambda a: env.from_string(
        "{{ a.Bezeichnung1.split(' ') | first | upper }}|{{ a.Artikelnummer.partition('0')[2] }}").render(a=a))
    assert names[0] == "KAFFEEBECHER|001"
    for source in ("{{ '{0.__class__}'.format(a) }}", "{{ '{Artikelnummer.__class__}'.format_map(a) }}",
                   "{{ a.Bezeichnung1.__class__ }}", "{{ a._fields }}"):
        with pytest.raises(SecurityError):
            collect(catalog, tmp_path, lambda a, s=source: env.from_string(s).render(a=a))  # type: ignore[misc]
    # a record's methods are not reachable: to_plain is a field the row does not have, empty
    assert collect(catalog, tmp_path, lambda a: env.from_string("[{{ a.to_plain() }}]").render(a=a))[0] == "[]"


# --- a second pass over the same batch --------------------------------------------------------------


def _stock(a: Any) -> list[tuple[str, str]]:
    return [(v.Variantenartikelnummer, str(sum(int(x.Bestand) for x in v.lager))) for v in a.varianten]


def test_a_second_pass_with_the_kept_database_loads_nothing_again_and_reads_the_same(
        catalog: Path, tmp_path: Path) -> None:
    keep = BatchDatabase()
    try:
        first = [(a.Artikelnummer, _stock(a)) for a in read_batch_records(
            catalog, catalog.name, tables=TABLES, records="artikel", relations=RELATIONS,
            work_dir=tmp_path / "first", keep=keep)]
        again = [(a.Artikelnummer, _stock(a)) for a in read_batch_records(
            catalog, catalog.name, tables=TABLES, records="artikel", relations=RELATIONS,
            work_dir=tmp_path / "second", keep=keep)]
        assert again == first and any(stock for _, stock in first)
        assert not (tmp_path / "second").exists()  # no unpacking, no second database
    finally:
        keep.close()


def test_relations_of_a_finished_pass_are_closed_even_when_the_database_is_kept(
        catalog: Path, tmp_path: Path) -> None:
    keep = BatchDatabase()
    try:
        records = list(read_batch_records(catalog, catalog.name, tables=TABLES, records="artikel",
                                          relations=RELATIONS, work_dir=tmp_path / "w", keep=keep))
        with pytest.raises(RuntimeError, match="read to the end"):
            _ = records[0].lager
        second = read_batch_records(catalog, catalog.name, tables=TABLES, records="artikel", relations=RELATIONS,
                                    work_dir=tmp_path / "w", keep=keep)
        record = next(iter(second))
        assert record.lager  # the new pass reads relations
        with pytest.raises(RuntimeError, match="read to the end"):
            _ = records[1].lager  # the old pass's records still do not
    finally:
        keep.close()


def test_another_plan_or_batch_gets_a_database_of_its_own(catalog: Path, tmp_path: Path) -> None:
    keep = BatchDatabase()
    try:
        list(read_batch_records(catalog, catalog.name, tables=TABLES, records="artikel", relations=RELATIONS,
                                work_dir=tmp_path / "first", keep=keep))
        fewer = {"artikel": {"lager": RELATIONS["artikel"]["lager"]}}
        stock = [len(a.lager) for a in read_batch_records(
            catalog, catalog.name, tables=TABLES, records="artikel", relations=fewer,
            work_dir=tmp_path / "other", keep=keep)]
        assert any(stock)
        assert (tmp_path / "other").exists()  # loaded on its own
    finally:
        keep.close()


# --- group_by: one record per key, wherever its rows stand ---------------------------------------------

STOCK_TABLES = {"lager": TableSpec("lager.csv"), "varianten": TableSpec("varianten.csv")}
STOCK_RELATIONS = {"lager": {"variante": Relation("varianten", VARIANT_KEY)}}
SCATTERED = table(
    "Mandant;Artikelnummer;AuspraegungID;Lagerkennung;PlatzID;Bestand",
    "123;20001;3;HL;303;4",
    "123;10001;0;HL;101;120",
    "123;20001;1;HL;301;25",
    "123;10001;0;AL;205;30",
    "123;20001;3;RETOURE;900;2",
    "123;;0;HL;998;1",
    "123;10001;0;RETOURE;900;5",
    "123;;0;AL;999;2",
)


def _grouped(tmp_path: Path, lager: bytes, keep: BatchDatabase | None = None) -> list[tuple[Any, ...]]:
    folder = make_folder(tmp_path / f"bestand_{len(list(tmp_path.iterdir()))}",
                         {"lager.csv": lager, "varianten.csv": VARIANTEN})
    return [
        (g.Artikelnummer, g.AuspraegungID, g.line, [(r.PlatzID, r.line) for r in g.rows],
         [v.Variantenartikelnummer for v in g.variante], [v.Variantenartikelnummer for v in g.rows[-1].variante])
        for g in read_batch_records(folder, folder.name, tables=STOCK_TABLES, records="lager",
                                    relations=STOCK_RELATIONS, work_dir=tmp_path / "work", keep=keep,
                                    group_by=("Mandant", "Artikelnummer", "AuspraegungID"))
    ]


def test_group_by_makes_one_record_of_the_rows_of_a_key_wherever_they_stand(tmp_path: Path) -> None:
    assert _grouped(tmp_path, SCATTERED) == [
        ("20001", "3", 2, [("303", 2), ("900", 6)], ["20001-RT-M"], ["20001-RT-M"]),
        ("10001", "0", 3, [("101", 3), ("205", 5), ("900", 8)], [], []),
        ("20001", "1", 4, [("301", 4)], ["20001-BL-M"], ["20001-BL-M"]),
        ("", "0", 7, [("998", 7), ("999", 9)], [], []),  # an empty value groups with the other empty ones
    ]


def test_group_by_on_a_second_pass_with_the_kept_database_gives_the_same_groups(tmp_path: Path) -> None:
    keep = BatchDatabase()
    try:
        folder = make_folder(tmp_path / "bestand", {"lager.csv": SCATTERED, "varianten.csv": VARIANTEN})

        def groups(work: str) -> list[list[str]]:
            return [[r.PlatzID for r in g.rows] for g in read_batch_records(
                folder, folder.name, tables=STOCK_TABLES, records="lager", relations=STOCK_RELATIONS,
                work_dir=tmp_path / work, keep=keep, group_by=("Artikelnummer",))]

        first = groups("one")
        assert first == [["303", "301", "900"], ["101", "205", "900"], ["998", "999"]]
        assert groups("two") == first and not (tmp_path / "two").exists()
    finally:
        keep.close()


def test_group_by_refuses_a_column_named_rows(tmp_path: Path) -> None:
    lager = table("Mandant;Artikelnummer;AuspraegungID;rows", "123;10001;0;1")
    exc = error(lambda: _grouped(tmp_path, lager))
    assert "the file has a column 'rows', and group_by gives each record a field 'rows'" in exc.message


def test_group_by_names_a_missing_column_with_the_file(tmp_path: Path) -> None:
    lager = table("Mandant;Artikelnummer;Lagerkennung", "123;10001;HL")
    exc = error(lambda: _grouped(tmp_path, lager))
    assert "AuspraegungID" in exc.message and exc.file is not None and "lager.csv" in exc.file
