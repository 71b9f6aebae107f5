"""Fixed-width records: fields by position, short lines, headers, encodings and the column check."""

from __future__ import annotations

import tracemalloc
from pathlib import Path
from typing import Any

import pytest

from gateway.errors import ReadError
from gateway.mapping.values import MISSING
from gateway.readers.fixed import FixedColumn, check_columns, read_fixed_records

COLUMNS = [
    FixedColumn("Kunde", 1, 6),
    FixedColumn("Name", 7, 20),
    FixedColumn("Datum", 27, 10),
    FixedColumn("Jahr", 33, 4),  # overlaps Datum on purpose
    FixedColumn("Preis", 37, 10),
]

#        Kunde Name                Datum     Preis
LINES = [
    "K00001Jörg Müller         27.11.2026     12.90",
    "K00002  Straße & Co.      01.01.2027   1234.50",
]


def write(tmp_path: Path, lines: list[str], *, newline: str = "\n", encoding: str = "windows-1252",
          end: str | None = None, name: str = "export.txt") -> Path:
    path = tmp_path / name
    path.write_bytes((newline.join(lines) + (newline if end is None else end)).encode(encoding))
    return path


def plain(path: Path, **options: Any) -> list[dict[str, Any]]:
    return [r.to_plain() for r in read_fixed_records(path, "export.txt", COLUMNS, **options)]


def test_fields_are_taken_by_position_and_stripped(tmp_path: Path) -> None:
    records = list(read_fixed_records(write(tmp_path, LINES), "export.txt", COLUMNS))
    assert [r.to_plain() for r in records] == [
        {"Kunde": "K00001", "Name": "Jörg Müller", "Datum": "27.11.2026", "Jahr": "2026", "Preis": "12.90"},
        {"Kunde": "K00002", "Name": "Straße & Co.", "Datum": "01.01.2027", "Jahr": "2027", "Preis": "1234.50"},
    ]
    assert [r.line for r in records] == [1, 2]
    assert LINES[0][36:46].strip() == "12.90"  # the layout above is what the columns say


@pytest.mark.parametrize("newline", ["\n", "\r\n"])
def test_lf_and_crlf_line_ends(tmp_path: Path, newline: str) -> None:
    assert plain(write(tmp_path, LINES, newline=newline)) == plain(write(tmp_path, LINES))
    assert plain(write(tmp_path, LINES, newline=newline, end=""))[-1]["Preis"] == "1234.50"


def test_blank_fields_are_missing(tmp_path: Path) -> None:
    [record] = read_fixed_records(write(tmp_path, ["K00003" + " " * 40]), "export.txt", COLUMNS)
    assert record.Kunde == "K00003"
    assert record.Name is MISSING and record.Preis is MISSING


def test_blank_lines_and_a_dos_end_of_file_are_skipped(tmp_path: Path) -> None:
    records = list(read_fixed_records(write(tmp_path, [LINES[0], "", "   ", LINES[1], "\x1a"], newline="\r\n"),
                                      "export.txt", COLUMNS))
    assert [r.Kunde for r in records] == ["K00001", "K00002"]
    assert [r.line for r in records] == [1, 4]


def test_header_lines_are_skipped_and_lines_still_count_from_the_top(tmp_path: Path) -> None:
    path = write(tmp_path, ["KUNDE NAME", "======", *LINES])
    records = list(read_fixed_records(path, "export.txt", COLUMNS, skip_lines=2))
    assert [r.Kunde for r in records] == ["K00001", "K00002"]
    assert [r.line for r in records] == [3, 4]


def test_header_lines_are_not_decoded(tmp_path: Path) -> None:
    path = tmp_path / "export.txt"
    path.write_bytes(b"\x81\x8d header in another code page\n" + LINES[0].encode("windows-1252") + b"\n")
    assert [r["Kunde"] for r in plain(path, skip_lines=1)] == ["K00001"]


def test_a_short_line_leaves_the_columns_it_does_not_reach_missing(tmp_path: Path) -> None:
    [record] = read_fixed_records(write(tmp_path, [LINES[0][:30]]), "export.txt", COLUMNS)
    assert record.Name == "Jörg Müller"
    assert record.Datum == "27.1"  # cut off: keeps what there is
    assert record.Jahr is MISSING and record.Preis is MISSING


def test_a_short_line_is_refused_when_the_length_is_strict(tmp_path: Path) -> None:
    path = write(tmp_path, [*LINES, "", "", LINES[0][:40]])
    with pytest.raises(ReadError) as caught:
        list(read_fixed_records(path, "export.txt", COLUMNS, strict_length=True))
    assert caught.value.message == "line 5 is 40 characters long, column 'Preis' needs 46"
    assert (caught.value.file, caught.value.line) == ("export.txt", 5)


def test_strict_length_accepts_lines_that_are_long_enough(tmp_path: Path) -> None:
    assert len(plain(write(tmp_path, [LINES[0] + "   extra"]), strict_length=True)) == 1


def test_other_encodings(tmp_path: Path) -> None:
    path = write(tmp_path, LINES, encoding="utf-8", name="utf8.txt")
    assert plain(path, encoding="utf-8") == plain(write(tmp_path, LINES))
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())  # a BOM is not part of the first column
    assert plain(path, encoding="utf-8")[0]["Kunde"] == "K00001"
    assert plain(write(tmp_path, LINES, encoding="cp850"), encoding="cp850")[0]["Name"] == "Jörg Müller"


def test_a_byte_the_encoding_does_not_have_is_a_read_error_with_its_line(tmp_path: Path) -> None:
    path = tmp_path / "export.txt"
    path.write_bytes(LINES[0].encode("windows-1252") + b"\r\nK00002Gr\x81n\r\n")
    with pytest.raises(ReadError) as caught:
        list(read_fixed_records(path, "export.txt", COLUMNS))
    error = caught.value
    assert error.message.startswith("line 2 cannot be read as windows-1252: the byte 0x81 at position 9")
    assert (error.line, error.column) == (2, 9)


def test_a_utf8_export_read_as_utf8_with_a_broken_character(tmp_path: Path) -> None:
    path = tmp_path / "export.txt"
    path.write_bytes("K00001Jörg".encode() + b" \xfc\n")
    with pytest.raises(ReadError) as caught:
        list(read_fixed_records(path, "export.txt", COLUMNS, encoding="utf-8"))
    assert (caught.value.line, caught.value.column) == (1, 12)


@pytest.mark.parametrize("encoding", ["utf-16", "cp037", "no-such-encoding"])
def test_encodings_that_cannot_be_read_line_by_line_are_refused(tmp_path: Path, encoding: str) -> None:
    with pytest.raises(ValueError, match="encoding"):
        list(read_fixed_records(write(tmp_path, LINES), "export.txt", COLUMNS, encoding=encoding))


def test_wrong_columns_are_refused_before_reading(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="starts at 0"):
        list(read_fixed_records(write(tmp_path, LINES), "export.txt", [FixedColumn("A", 0, 3)]))


def test_a_missing_file_is_a_read_error(tmp_path: Path) -> None:
    with pytest.raises(ReadError, match="cannot be read"):
        list(read_fixed_records(tmp_path / "gone.txt", "gone.txt", COLUMNS))


def test_an_empty_file_gives_no_records(tmp_path: Path) -> None:
    path = tmp_path / "export.txt"
    path.write_bytes(b"")
    assert plain(path) == []


def test_memory_stays_flat_for_a_long_export(tmp_path: Path) -> None:
    path = write(tmp_path, LINES * 10_000, newline="\r\n")
    tracemalloc.start()
    try:
        count = sum(1 for _ in read_fixed_records(path, "export.txt", COLUMNS))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert count == 20_000
    assert peak < 1_000_000


# --- check_columns -------------------------------------------------------------------------------


def test_check_columns_accepts_a_good_layout_with_overlaps() -> None:
    assert check_columns(COLUMNS) == []


def test_check_columns_names_every_problem() -> None:
    problems = check_columns([
        FixedColumn("Kunde", 0, 6),
        FixedColumn("Name", 7, 0),
        FixedColumn("Kunde", 13, 2),
        FixedColumn("Kunde", 15, 2),
        FixedColumn(" ", 17, -1),
    ])
    assert problems == [
        "column 'Kunde' starts at 0; positions count from 1",
        "column 'Name' is 0 characters long; it must be at least 1",
        "the column name 'Kunde' is used more than once",
        "column 5 has no name",
        "column 5 is -1 characters long; it must be at least 1",
    ]


def test_check_columns_wants_at_least_one_column() -> None:
    assert check_columns([]) == ["no columns are given"]


def test_a_column_knows_its_last_position() -> None:
    assert FixedColumn("Preis", 37, 10).end == 46
