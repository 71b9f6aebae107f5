"""Every input format runs through the same mapping machinery and engine."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import read_csv_rows

from gateway import Engine, load_installation

OUTPUT = """
outputs:
  - name: kunden
    file: "kunden_{{ input.id }}.csv"
    format: csv
    encoding: windows-1252
    columns:
      Kto: { value: "{{ k.Kto }}", required: true }
      Name1: "{{ k.Name1 }}"
      Ort: "{{ k.Ort }}"
"""

INPUTS = {
    "csv": (
        "input:\n  format: csv\n  required: [Kto, Name1]\n  as: k\n  label: customer\n",
        "kunden.csv",
        "Mandant;Kto;Name1;Ort\r\n123;D1;Müller & Söhne;München\r\n123;D2;\"Weiß; Co\";Köln\r\n".encode("cp1252"),
    ),
    "json": (
        "input:\n  format: json\n  records: data.kunden\n  as: k\n  label: customer\n",
        "kunden.json",
        '{"data": {"kunden": [{"Kto": "D1", "Name1": "Müller & Söhne", "Ort": "München"},'
        ' {"Kto": "D2", "Name1": "Weiß; Co", "Ort": "Köln"}]}}'.encode(),
    ),
    "jsonl": (
        "input:\n  format: jsonl\n  as: k\n  label: customer\n",
        "kunden.jsonl",
        '{"Kto": "D1", "Name1": "Müller & Söhne", "Ort": "München"}\n'
        '{"Kto": "D2", "Name1": "Weiß; Co", "Ort": "Köln"}\n'.encode(),
    ),
    "fixed": (
        "input:\n  format: fixed\n  as: k\n  label: customer\n  columns:\n"
        "    Kto: { start: 1, length: 4 }\n    Name1: { start: 5, length: 16 }\n    Ort: { start: 21, length: 10 }\n",
        "kunden.txt",
        "".join("D1".ljust(4) + name.ljust(16) + town + "\r\n"
                for name, town in (("Müller & Söhne", "München"), ("Weiß; Co", "Köln")))
        .replace("D1  Weiß", "D2  Weiß").encode("cp1252"),
    ),
}


def _install(tmp_path: Path, fmt: str) -> Path:
    spec, name, content = INPUTS[fmt]
    root = tmp_path / fmt
    (root / "mappings").mkdir(parents=True)
    (root / "mappings" / "kunden.yaml").write_text(spec + OUTPUT, encoding="utf-8")
    (root / "gateway.yaml").write_text(
        "settle_seconds: 0\nflows:\n  kunden:\n    mapping: mappings/kunden.yaml\n"
        "    source: { folder: inbox }\n    outbox: { folder: outbox }\n", encoding="utf-8")
    (root / "inbox").mkdir()
    (root / "inbox" / name).write_bytes(content)
    return root


@pytest.mark.parametrize("fmt", sorted(INPUTS))
def test_each_input_format_becomes_the_same_rows(tmp_path: Path, fmt: str) -> None:
    root = _install(tmp_path, fmt)
    inst = load_installation(root / "gateway.yaml")
    engine = Engine(inst)
    summary = engine.run_once(inst.select([]), wait_for_settle=False)
    engine.close()
    assert summary.done == 1, summary
    (out,) = sorted((root / "outbox").iterdir())
    rows = read_csv_rows(out)
    assert rows == [
        {"Kto": "D1", "Name1": "Müller & Söhne", "Ort": "München"},
        {"Kto": "D2", "Name1": "Weiß; Co", "Ort": "Köln"},
    ]


def test_a_csv_without_a_required_column_is_quarantined_naming_it(tmp_path: Path) -> None:
    root = _install(tmp_path, "csv")
    (root / "inbox" / "kunden.csv").write_bytes(b"Mandant;Kto;Ort\r\n123;D1;Berlin\r\n")
    inst = load_installation(root / "gateway.yaml")
    engine = Engine(inst)
    summary = engine.run_once(inst.select([]), wait_for_settle=False)
    row = engine.journal.entries()[0]
    engine.close()
    assert summary.failed == 1
    assert row.error is not None and "Name1" in row.error
