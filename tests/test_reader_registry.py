"""The registry of input formats: one entry per format, one contract for every reader, lazy imports."""

from __future__ import annotations

import importlib
import inspect
import subprocess
import sys
import typing
from pathlib import Path

import pytest

from gateway.mapping.model import CsvInput, InputBase, InputSpec
from gateway.readers.registry import FORMATS, ReadRoom, format_of, read_records, reader_for, register


def test_the_mapping_model_and_the_registry_name_the_same_formats() -> None:
    union = typing.get_args(typing.get_args(InputSpec)[0])
    in_model = {typing.get_args(m.model_fields["format"].annotation)[0]: m for m in union}
    assert {name: f.model for name, f in FORMATS.items()} == in_model


@pytest.mark.parametrize("name", sorted(FORMATS))
def test_every_reader_has_the_one_signature(name: str) -> None:
    fmt = FORMATS[name]
    reader = getattr(importlib.import_module(fmt.module), fmt.function)
    assert list(inspect.signature(reader).parameters) == ["source", "shown_as", "spec", "room"]


def test_an_unknown_format_is_an_error_not_a_fall_through() -> None:
    class EdiInput(InputBase):
        format: typing.Literal["edi"]

    with pytest.raises(ValueError, match="no reader is registered for the input format 'edi'"):
        reader_for(EdiInput(format="edi"))


def test_a_format_is_registered_once() -> None:
    with pytest.raises(ValueError, match="registered twice"):
        register("csv", CsvInput, "gateway.readers.csv")


def test_a_spec_of_another_model_than_its_format_is_refused() -> None:
    class Pretender(InputBase):
        format: typing.Literal["csv"]

    with pytest.raises(ValueError, match="no reader is registered"):
        format_of(Pretender(format="csv"))


def test_read_records_groups_formats_that_do_not_group_themselves(tmp_path: Path) -> None:
    path = tmp_path / "belege.csv"
    path.write_text("Beleg;Pos\n1;1\n1;2\n2;1\n", encoding="utf-8")
    spec = CsvInput(format="csv", group_by=["Beleg"])
    groups = [[r.Pos for r in g.rows] for g in read_records(path, path.name, spec, ReadRoom())]
    assert groups == [["1", "2"], ["1"]]


def test_loading_and_reading_a_csv_mapping_imports_neither_lxml_nor_sqlite_nor_other_readers(tmp_path: Path) -> None:
    (tmp_path / "mappings").mkdir()
    (tmp_path / "mappings" / "k.yaml").write_text(
        "input: { format: csv, as: k }\n"
        "outputs:\n  - { name: k, file: k.csv, format: csv, columns: { Kto: '{{ k.Kto }}' } }\n", encoding="utf-8")
    (tmp_path / "k.csv").write_text("Kto\nD1\n", encoding="utf-8")
    code = (
        "import sys\nfrom pathlib import Path\nfrom gateway.mapping.compiler import load_mapping\n"
        f"root = Path({str(tmp_path)!r})\n"
        "m = load_mapping(root / 'mappings' / 'k.yaml', 'k.yaml')\n"
        "assert [r.Kto for r in m.records(root / 'k.csv', 'k.csv')] == ['D1']\n"
        "print(sorted(n for n in sys.modules if n.startswith(('gateway.readers.', 'lxml', 'sqlite3'))))\n"
    )
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "gateway.readers.csv" in loaded
    assert "gateway.readers.xml" not in loaded and "lxml" not in loaded
    assert "gateway.readers.json" not in loaded and "gateway.readers.fixed" not in loaded
    assert "gateway.readers.batch" not in loaded and "sqlite3" not in loaded
