"""The mapping features beyond one-row-per-field: JSON outputs, files per record, skip rules,
lookup files, grouping rows into documents, collapsing units, aggregates, encodings."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import read_csv_rows

from gateway import Engine, load_installation

GATEWAY = (
    "settle_seconds: 0\nflows:\n  f:\n    mapping: mappings/f.yaml\n"
    "    source: { folder: inbox }\n    outbox: { folder: outbox }\n"
)


def run(tmp_path: Path, mapping: str, name: str, content: bytes, files: dict[str, bytes] | None = None) -> Path:
    root = tmp_path / "gw"
    (root / "mappings").mkdir(parents=True)
    (root / "mappings" / "f.yaml").write_text(mapping, encoding="utf-8")
    (root / "gateway.yaml").write_text(GATEWAY, encoding="utf-8")
    for rel, data in (files or {}).items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    (root / "inbox").mkdir()
    (root / "inbox" / name).write_bytes(content)
    inst = load_installation(root / "gateway.yaml")
    engine = Engine(inst)
    engine.run_once(inst.select([]), wait_for_settle=False)
    engine.close()
    return root


def journal(root: Path) -> list[dict[str, object]]:
    from gateway.journal import open_journal

    j = open_journal(root / "state" / "journal.sqlite")
    try:
        return [j.as_dict(r) for r in j.entries()]
    finally:
        j.close()


BELEGE = (
    "Belegnummer;Kto;Position;Artikelnummer;Menge;Einzelpreis\r\n"
    "A-1;D1;1;10001;2;12,90\r\n"
    "A-1;D1;2;20001;1;19,90\r\n"
    "A-2;D2;1;30001;1;29,90\r\n"
).encode("cp1252")


def test_json_output_with_typed_values_and_one_document_per_group(tmp_path: Path) -> None:
    mapping = """
input: { format: csv, as: b, label: document, group_by: [Belegnummer] }
outputs:
  - name: beleg
    file: "beleg_{{ b.Belegnummer }}.json"
    format: json
    per: record
    columns:
      beleg: "{{ b.Belegnummer }}"
      position: { value: "{{ p.Position }}", type: integer }
      menge: { value: "{{ p.Menge }}", type: number }
      preis: { value: "{{ p.Einzelpreis }}", type: number }
      summe: { value: "{{ b.rows | map(attribute='Einzelpreis') | map('decimal', true) | sum }}", type: number }
    rows:
      - for_each: b.rows
        as: p
"""
    root = run(tmp_path, mapping, "belege.csv", BELEGE)
    names = sorted(p.name for p in (root / "outbox").iterdir())
    assert names == ["beleg_A-1.json", "beleg_A-2.json"]
    first = json.loads((root / "outbox" / "beleg_A-1.json").read_text(encoding="utf-8"))
    assert first == [
        {"beleg": "A-1", "position": 1, "menge": 2, "preis": 12.9, "summe": 32.8},
        {"beleg": "A-1", "position": 2, "menge": 1, "preis": 19.9, "summe": 32.8},
    ]
    assert '"preis": 12.90' in (root / "outbox" / "beleg_A-1.json").read_text(encoding="utf-8")  # exact decimals


def test_rows_of_a_document_that_are_not_together_are_refused(tmp_path: Path) -> None:
    mapping = """
input: { format: csv, as: b, label: document, group_by: [Belegnummer] }
outputs:
  - { name: x, file: "x_{{ input.id }}.csv", format: csv, columns: { n: "{{ b.Belegnummer }}" } }
"""
    split = BELEGE + "A-1;D1;3;40001;1;1,00\r\n".encode("cp1252")
    root = run(tmp_path, mapping, "belege.csv", split)
    (entry,) = journal(root)
    assert entry["state"] == "failed"
    assert "document A-1 are not together" in str(entry["error"]) and "line 5" in str(entry["error"])


def test_skip_rules_leave_records_out_and_the_journal_says_why(tmp_path: Path) -> None:
    mapping = """
input: { format: xml, records: /orders/order, as: o, label: order }
key: { value: "{{ o.no }}", label: order number }
skip:
  - when: o.status not in ('pending', 'editable')
    reason: "order {{ o.no }} is {{ o.status }}, not imported"
outputs:
  - { name: x, file: "x_{{ input.id }}.csv", format: csv, columns: { no: "{{ o.no }}" } }
"""
    xml = (b"<orders><order><no>1</no><status>pending</status></order>"
           b"<order><no>2</no><status>cancelled</status></order></orders>")
    root = run(tmp_path, mapping, "o.xml", xml)
    (out,) = (root / "outbox").iterdir()
    assert [r["no"] for r in read_csv_rows(out, "utf-8")] == ["1"]
    (entry,) = journal(root)
    assert entry["skipped"] == [{"key": "2", "reason": "order 2 is cancelled, not imported"}]
    assert entry["state"] == "done"


def test_a_lookup_table_can_come_from_a_csv_file_and_inline_values_win(tmp_path: Path) -> None:
    mapping = """
input: { format: csv, as: r }
lookups:
  carrier:
    file: lookups/carriers.csv
    key: Code
    value: Name
    values: { DP: Deutsche Post AG }
outputs:
  - { name: x, file: "x_{{ input.id }}.csv", format: csv, columns: { c: "{{ r.c | lookup('carrier') }}" } }
"""
    files = {"lookups/carriers.csv": "Code;Name\r\nDHL;DHL Paket\r\nDP;Deutsche Post\r\n".encode("cp1252")}
    root = run(tmp_path, mapping, "r.csv", b"c\r\nDHL\r\nDP\r\n", files)
    (out,) = (root / "outbox").iterdir()
    assert [r["c"] for r in read_csv_rows(out, "utf-8")] == ["DHL Paket", "Deutsche Post AG"]


def test_a_missing_lookup_file_is_a_config_problem(tmp_path: Path) -> None:
    from gateway.errors import ConfigError
    from gateway.mapping.compiler import load_mapping

    path = tmp_path / "mappings" / "m.yaml"
    path.parent.mkdir()
    path.write_text("""input: { format: csv }
lookups:
  carrier: { file: lookups/nope.csv, key: Code, value: Name }
outputs:
  - { name: x, file: x.csv, format: csv, columns: { c: "1" } }
""", encoding="utf-8")
    try:
        load_mapping(path, "mappings/m.yaml")
    except ConfigError as exc:
        expected = "mappings/m.yaml:3:14: the lookup file lookups/nope.csv does not exist"
        assert [str(p) for p in exc.problems] == [expected]
    else:
        raise AssertionError("expected a ConfigError")


def test_units_sold_one_by_one_are_collapsed_into_quantities(tmp_path: Path) -> None:
    mapping = """
input: { format: xml, records: /sales/sale, as: s }
outputs:
  - name: x
    file: "x_{{ input.id }}.csv"
    format: csv
    columns:
      sku: "{{ g.grouper }}"
      menge: "{{ g.list | length }}"
      summe: "{{ g.list | map(attribute='price') | map('decimal') | sum | number }}"
    rows:
      - for_each: s.items.item | groupby('sku')
        as: g
"""
    xml = (b"<sales><sale><items><item><sku>A</sku><price>12.9</price></item>"
           b"<item><sku>B</sku><price>1</price></item><item><sku>A</sku><price>12.9</price></item>"
           b"</items></sale></sales>")
    root = run(tmp_path, mapping, "s.xml", xml)
    (out,) = (root / "outbox").iterdir()
    assert read_csv_rows(out, "utf-8") == [{"sku": "A", "menge": "2", "summe": "25,80"},
                                           {"sku": "B", "menge": "1", "summe": "1,00"}]


def test_stock_summed_over_configured_warehouses_and_bom_minimum(tmp_path: Path) -> None:
    mapping = """
input: { format: json, records: artikel, as: a }
settings: { lager: "HL,AL" }
outputs:
  - name: x
    file: "x_{{ input.id }}.csv"
    format: csv
    columns:
      nr: "{{ a.nr }}"
      bestand: >-
        {{ a.lager | selectattr('ort', 'in', settings.lager.split(',')) | map(attribute='menge')
           | map('decimal') | sum | number(0) }}
"""
    doc = {"artikel": [{"nr": "1", "lager": [{"ort": "HL", "menge": 5}, {"ort": "AL", "menge": 2},
                                              {"ort": "RETOURE", "menge": 9}]}]}
    root = run(tmp_path, mapping, "a.json", json.dumps(doc).encode())
    (out,) = (root / "outbox").iterdir()
    assert read_csv_rows(out, "utf-8") == [{"nr": "1", "bestand": "7"}]


def test_unencodable_characters_can_be_replaced_when_the_mapping_says_so(tmp_path: Path) -> None:
    mapping = """
input: { format: jsonl, as: r }
outputs:
  - { name: x, file: "x_{{ input.id }}.csv", format: csv, encoding: windows-1252, unencodable: replace,
      columns: { n: "{{ r.n }}" } }
"""
    root = run(tmp_path, mapping, "r.jsonl", '{"n": "Łódź €"}\n'.encode())
    (out,) = (root / "outbox").iterdir()
    assert out.read_bytes() == b"n\r\n?\xf3d? \x80\r\n"


def test_a_template_only_flow_streams_in_one_pass_and_writes_nothing_for_no_records(tmp_path: Path) -> None:
    mapping = """
input: { format: csv, as: r }
outputs:
  - { name: feed, file: "feed_{{ input.id }}.xml", format: template, template: templates/feed.xml.j2 }
"""
    template = b"<feed>{% for r in records %}<p n=\"{{ r.n }}\">{{ r.t }}</p>{% endfor %}</feed>\n"
    files = {"templates/feed.xml.j2": template}
    root = run(tmp_path, mapping, "a.csv", "n;t\r\n1;Müller & Söhne\r\n2;<b>\r\n".encode("cp1252"), files)
    (out,) = (root / "outbox").iterdir()
    assert out.read_text(encoding="utf-8") == '<feed><p n="1">Müller &amp; Söhne</p><p n="2">&lt;b&gt;</p></feed>\n'
    empty = run(tmp_path / "empty", mapping, "b.csv", b"n;t\r\n", files)
    assert not (empty / "outbox").exists() or list((empty / "outbox").iterdir()) == []
    (entry,) = journal(empty)
    assert entry["state"] == "done" and entry["outputs"] == []
