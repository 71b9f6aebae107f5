"""A catalog batch (a folder completed by export.done, or a ZIP) through the engine, with joined tables."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

from conftest import read_csv_rows

from gateway import Engine, load_installation

ARTIKEL = "Mandant;Artikelnummer;Bezeichnung1;Aktiv\r\n123;10001;Kaffeebecher „Büro“;-1\r\n123;20001;T-Shirt;-1\r\n"
VARIANTEN = ("Mandant;Artikelnummer;AuspraegungID;Variantenartikelnummer\r\n"
             "123;20001;1;20001-BL-M\r\n123;20001;2;20001-BL-L\r\n")
LAGER = ("Mandant;Artikelnummer;AuspraegungID;Lagerkennung;Bestand\r\n"
         "123;10001;0;HL;5\r\n123;10001;0;AL;2\r\n123;10001;0;RETOURE;9\r\n"
         "123;20001;1;HL;3\r\n123;20001;2;HL;0\r\n123;20001;2;AL;4\r\n")

MAPPING = """
input:
  format: batch
  records: artikel
  as: a
  label: article
  tables:
    artikel: { file: artikel.csv, required: [Artikelnummer] }
    varianten: { file: varianten.csv, optional: true }
    lager: { file: lager.csv }
  relations:
    artikel:
      varianten: { table: varianten, on: { Artikelnummer: Artikelnummer } }
      lager: { table: lager, on: { Artikelnummer: Artikelnummer } }
    varianten:
      lager: { table: lager, on: { Artikelnummer: Artikelnummer, AuspraegungID: AuspraegungID } }
settings:
  lager: "HL,AL"
outputs:
  - name: bestand
    file: "bestand_{{ input.id }}.csv"
    format: csv
    columns:
      nr: "{{ a.Artikelnummer }}"
      name: "{{ a.Bezeichnung1 }}"
      bestand: >-
        {{ a.lager | selectattr('Lagerkennung', 'in', settings.lager.split(','))
           | map(attribute='Bestand') | map('decimal') | sum | number(0) }}
    rows:
      - when: not a.varianten
      - for_each: a.varianten
        as: v
        columns:
          nr: "{{ v.Variantenartikelnummer }}"
          bestand: >-
            {{ v.lager | selectattr('Lagerkennung', 'in', settings.lager.split(','))
               | map(attribute='Bestand') | map('decimal') | sum | number(0) }}
"""


def _install(tmp_path: Path, batch_marker: bool) -> Path:
    root = tmp_path / "gw"
    (root / "mappings").mkdir(parents=True)
    (root / "mappings" / "katalog.yaml").write_text(MAPPING, encoding="utf-8")
    marker = "\n      batch_marker: export.done" if batch_marker else ""
    (root / "gateway.yaml").write_text(
        "settle_seconds: 0\nflows:\n  katalog:\n    mapping: mappings/katalog.yaml\n"
        f"    source:\n      folder: inbox{marker}\n    outbox: {{ folder: outbox }}\n", encoding="utf-8")
    (root / "inbox").mkdir()
    return root


def _tables() -> dict[str, bytes]:
    return {"artikel.csv": ARTIKEL.encode("cp1252"), "varianten.csv": VARIANTEN.encode("cp1252"),
            "lager.csv": LAGER.encode("cp1252")}


def _run(root: Path) -> tuple[int, int]:
    inst = load_installation(root / "gateway.yaml")
    engine = Engine(inst)
    summary = engine.run_once(inst.select([]), wait_for_settle=False)
    engine.close()
    return summary.done, summary.failed


EXPECTED = [
    {"nr": "10001", "name": "Kaffeebecher „Büro“", "bestand": "7"},
    {"nr": "20001-BL-M", "name": "T-Shirt", "bestand": "3"},
    {"nr": "20001-BL-L", "name": "T-Shirt", "bestand": "4"},
]


def test_a_batch_folder_is_taken_only_once_its_marker_is_there(tmp_path: Path) -> None:
    root = _install(tmp_path, batch_marker=True)
    batch = root / "inbox" / "katalog_20261127"
    batch.mkdir()
    for name, data in _tables().items():
        (batch / name).write_bytes(data)
    assert _run(root) == (0, 0)  # no export.done yet: still being written
    assert batch.exists()
    (batch / "export.done").write_text("")
    assert _run(root) == (1, 0)
    (out,) = (root / "outbox").iterdir()
    assert read_csv_rows(out, "utf-8") == EXPECTED
    assert not batch.exists()
    archived = list((root / "archive" / "katalog").glob("*/*--katalog_20261127"))
    assert len(archived) == 1 and (archived[0] / "artikel.csv").exists()


def test_a_zip_batch_gives_the_same_result(tmp_path: Path) -> None:
    root = _install(tmp_path, batch_marker=False)
    with zipfile.ZipFile(root / "inbox" / "katalog_1.zip", "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in _tables().items():
            zf.writestr(f"katalog/{name}", data)
    assert _run(root) == (1, 0)
    (out,) = (root / "outbox").iterdir()
    assert read_csv_rows(out, "utf-8") == EXPECTED


def test_a_batch_without_a_required_table_is_quarantined_and_can_be_retried(tmp_path: Path) -> None:
    root = _install(tmp_path, batch_marker=True)
    batch = root / "inbox" / "katalog_2"
    batch.mkdir()
    tables = _tables()
    del tables["lager.csv"]
    for name, data in tables.items():
        (batch / name).write_bytes(data)
    (batch / "export.done").write_text("")
    assert _run(root) == (0, 1)
    quarantined = root / "quarantine" / "katalog" / "1--katalog_2"
    assert quarantined.is_dir()
    reason = (root / "quarantine" / "katalog" / "1--katalog_2.reason.txt").read_text(encoding="utf-8")
    assert "lager.csv" in reason
    (quarantined / "lager.csv").write_bytes(LAGER.encode("cp1252"))
    from click.testing import CliRunner

    from gateway.cli import cli

    assert CliRunner().invoke(cli, ["--config", str(root / "gateway.yaml"), "retry", "1"]).exit_code == 0
    assert _run(root) == (1, 0)
    journal = CliRunner().invoke(cli, ["--config", str(root / "gateway.yaml"), "journal", "--json"]).output
    (entry,) = [json.loads(line) for line in journal.splitlines()]
    assert entry["state"] == "done" and entry["attempts"] == 2


DOCS_MAPPING = """
input:
  format: batch
  records: artikel
  as: a
  tables:
    artikel: { file: artikel.csv }
    dokumente: { file: dokumente.csv, optional: true }
  relations:
    artikel:
      dokumente: { table: dokumente, on: { Artikelnummer: Artikelnummer } }
outputs:
  - name: index
    file: "dokumente_{{ input.id }}.csv"
    format: csv
    columns: { artikelnummer: "{{ a.Artikelnummer }}", datei: "{{ d.Datei }}", titel: "{{ d.Titel }}" }
    rows:
      - for_each: a.dokumente
        as: d
  - name: pdfs
    format: file
    folder: dokumente
    for_each: a.dokumente
    as: d
    source: "dokumente/{{ d.Datei }}"
    file: "{{ a.Artikelnummer }}_{{ input.id }}_{{ d.Datei }}"
"""


def test_files_of_a_batch_are_passed_on_beside_their_index(tmp_path: Path) -> None:
    root = _install(tmp_path, batch_marker=False)
    (root / "mappings" / "katalog.yaml").write_text(DOCS_MAPPING, encoding="utf-8")
    pdf = b"%PDF-1.4 data sheet\n%%EOF\n"
    with zipfile.ZipFile(root / "inbox" / "katalog_3.zip", "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("artikel.csv", ARTIKEL.encode("cp1252"))
        zf.writestr("dokumente.csv", b"Artikelnummer;Datei;Titel\r\n10001;blatt.pdf;Datenblatt\r\n")
        zf.writestr("dokumente/blatt.pdf", pdf)
    assert _run(root) == (1, 0)
    assert (root / "outbox" / "10001_1_blatt.pdf").read_bytes() == pdf
    assert read_csv_rows(root / "outbox" / "dokumente_1.csv", "utf-8") == [
        {"artikelnummer": "10001", "datei": "blatt.pdf", "titel": "Datenblatt"}]


def test_a_document_the_batch_does_not_hold_is_named_in_the_quarantine_reason(tmp_path: Path) -> None:
    root = _install(tmp_path, batch_marker=False)
    (root / "mappings" / "katalog.yaml").write_text(DOCS_MAPPING, encoding="utf-8")
    with zipfile.ZipFile(root / "inbox" / "katalog_4.zip", "w") as zf:
        zf.writestr("artikel.csv", ARTIKEL.encode("cp1252"))
        zf.writestr("dokumente.csv", b"Artikelnummer;Datei;Titel\r\n10001;fehlt.pdf;Datenblatt\r\n")
    assert _run(root) == (0, 1)
    reason = next((root / "quarantine" / "katalog").glob("*.reason.txt")).read_text(encoding="utf-8")
    assert "fehlt.pdf" in reason and "record no. 1" in reason


def _remove_deep(folder: Path) -> None:
    """Remove a tree of nested folders from the bottom up (shutil.rmtree recurses once per level)."""
    deepest = folder
    while (subfolders := [p for p in deepest.iterdir() if p.is_dir()]):
        deepest = subfolders[0]
    while deepest != folder.parent:
        for entry in deepest.iterdir():
            entry.unlink()
        deepest.rmdir()
        deepest = deepest.parent


def test_a_batch_folder_1100_folders_deep_is_quarantined_naming_the_entry(tmp_path: Path) -> None:
    root = _install(tmp_path, batch_marker=True)
    batch = root / "inbox" / "katalog_5"
    batch.mkdir()
    for name, data in _tables().items():
        (batch / name).write_bytes(data)
    here = batch
    for _ in range(1100):
        here = here / "d"
        here.mkdir()
    (batch / "export.done").write_text("")
    assert _run(root) == (0, 1)  # not "the input stays" for ever
    reason = (root / "quarantine" / "katalog" / "1--katalog_5.reason.txt").read_text(encoding="utf-8")
    assert reason.startswith("katalog_5: 'd/d/d/") and "lies more than 32 folders deep" in reason
    _remove_deep(root / "quarantine" / "katalog" / "1--katalog_5")


def test_a_file_output_must_say_from_which_folder_and_put_the_input_number_into_the_name(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from gateway.cli import cli

    root = _install(tmp_path, batch_marker=False)
    mapping = root / "mappings" / "katalog.yaml"
    plain_name = DOCS_MAPPING.replace("{{ a.Artikelnummer }}_{{ input.id }}_{{ d.Datei }}", "{{ d.Datei }}")
    mapping.write_text(plain_name.replace("    folder: dokumente\n", ""), encoding="utf-8")
    result = CliRunner().invoke(cli, ["--config", str(root / "gateway.yaml"), "check"])
    assert result.exit_code == 2
    assert "katalog.yaml:25:5: 'folder' is required here (in 'file')" in result.output
    mapping.write_text(plain_name, encoding="utf-8")
    result = CliRunner().invoke(cli, ["--config", str(root / "gateway.yaml"), "check"])
    assert result.exit_code == 2
    assert ("katalog.yaml:26:5: the name of a file passed on must contain the input's number, {{ input.id }}"
            in result.output)
