"""The shipped flow sol-documents: SOL sales documents (belege.csv + PDFs) → one JSON file and its PDF per document.

A temporary installation with the shipped mapping and its golden examples; the documents batch as a ZIP and as a
folder completed by export.done.
"""

from __future__ import annotations

import json
import shutil
import zipfile
from pathlib import Path

from click.testing import CliRunner

from gateway import Engine, load_installation
from gateway.cli import cli

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples" / "sol-documents"
SAMPLE_ZIP = EXAMPLES / "sample" / "input" / "belege_sample.zip"

GATEWAY_YAML = """\
settle_seconds: 0
flows:
  sol-documents:
    mapping: mappings/sol-documents.yaml
    source: { folder: inbox/sol-documents, include: ["belege*"], batch_marker: export.done }
    outbox: { folder: outbox/sol-documents }
"""

HEADER = ("Mandant;BelID;Belegkennzeichen;Belegnummer;Belegdatum;Kto;Referenznummer;Nettobetrag;Bruttobetrag;WKz;"
          "Position;Artikelnummer;Bezeichnung1;Menge;Einzelpreis;Steuersatz;Datei")
PDF = b"%PDF-1.4 test\n%%EOF\n"


def _install(tmp_path: Path) -> Path:
    root = tmp_path / "gw"
    (root / "mappings").mkdir(parents=True)
    shutil.copy(REPO / "mappings" / "sol-documents.yaml", root / "mappings")
    shutil.copytree(EXAMPLES, root / "examples" / "sol-documents")
    (root / "gateway.yaml").write_text(GATEWAY_YAML, encoding="utf-8")
    (root / "inbox" / "sol-documents").mkdir(parents=True)
    return root


def _run(root: Path) -> tuple[int, int]:
    inst = load_installation(root / "gateway.yaml")
    engine = Engine(inst)
    summary = engine.run_once(inst.select([]), wait_for_settle=False)
    engine.close()
    return summary.done, summary.failed


def _outbox(root: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted((root / "outbox" / "sol-documents").iterdir())}


def _belege(*rows: str) -> bytes:
    return "\r\n".join((HEADER, *rows, "")).encode("cp1252")


def test_the_golden_examples_pass(tmp_path: Path) -> None:
    root = _install(tmp_path)
    result = CliRunner().invoke(cli, ["--config", str(root / "gateway.yaml"), "test", "sol-documents"])
    assert result.exit_code == 0, result.output
    assert "PASS  sol-documents/sample" in result.output


def test_a_zip_and_a_folder_with_export_done_give_the_same_files(tmp_path: Path) -> None:
    expected = {p.name: p.read_bytes() for p in (EXAMPLES / "sample" / "expected").iterdir()}
    zipped = _install(tmp_path / "zip")
    shutil.copy(SAMPLE_ZIP, zipped / "inbox" / "sol-documents" / "belege_20261127.zip")
    assert _run(zipped) == (1, 0)
    assert _outbox(zipped) == expected

    folder = _install(tmp_path / "folder")
    batch = folder / "inbox" / "sol-documents" / "belege_20261127"
    batch.mkdir()
    with zipfile.ZipFile(SAMPLE_ZIP) as zf:
        for name in zf.namelist():
            if name != "export.done":
                (batch / name).write_bytes(zf.read(name))
    assert _run(folder) == (0, 0)  # no export.done yet: still being written
    (batch / "export.done").write_text("")
    assert _run(folder) == (1, 0)
    assert _outbox(folder) == expected
    invoice = json.loads(expected["konto_D20001_VFR_RE-2026-0999_1.json"])
    assert invoice[0]["pdf"] == "konto_D20001_VFR_RE-2026-0999_1.pdf" and invoice[0]["einzelpreis"] == 7.8
    assert expected["konto_D20001_VFR_RE-2026-0999_1.pdf"].startswith(b"%PDF")


def test_a_document_whose_pdf_is_missing_quarantines_the_batch_naming_the_file(tmp_path: Path) -> None:
    root = _install(tmp_path)
    with zipfile.ZipFile(root / "inbox" / "sol-documents" / "belege_2.zip", "w") as zf:
        zf.writestr("belege.csv", _belege(
            "123;1;VFR;RE-1;27.11.2026;D1;;10,00;11,90;EUR;1;A;Artikel;1;10,00;19;RE-1.pdf"))
    assert _run(root) == (0, 1)
    reason = next((root / "quarantine" / "sol-documents").glob("*.reason.txt")).read_text(encoding="utf-8")
    assert "RE-1.pdf" in reason
    assert not (root / "outbox" / "sol-documents").exists() or not any((root / "outbox" / "sol-documents").iterdir())


def test_two_documents_of_two_customers_give_separate_files_with_all_positions(tmp_path: Path) -> None:
    root = _install(tmp_path)
    with zipfile.ZipFile(root / "inbox" / "sol-documents" / "belege_3.zip", "w") as zf:
        zf.writestr("belege.csv", _belege(
            "123;1;VFR;RE-1;27.11.2026;D1;;1.179,00;1.403,01;EUR;2;B;Zwei;30;12,90;19;RE-1.pdf",
            "123;2;VXY;AU-2;26.11.2026;D2;Tel.;13,50;14,45;EUR;1;C;Drei;1;13,50;7;",
            "123;1;VFR;RE-1;27.11.2026;D1;;1.179,00;1.403,01;EUR;1;A;Eins;100;7,80;19;RE-1.pdf",
            "999;3;VFR;RE-3;27.11.2026;D1;;1,00;1,19;EUR;1;A;Fremd;1;1,00;19;"))
        zf.writestr("RE-1.pdf", PDF)
    assert _run(root) == (1, 0)
    files = _outbox(root)
    assert sorted(files) == ["konto_D1_VFR_RE-1_1.json", "konto_D1_VFR_RE-1_1.pdf", "konto_D2_VXY_AU-2_1.json"]
    assert files["konto_D1_VFR_RE-1_1.pdf"] == PDF
    invoice = json.loads(files["konto_D1_VFR_RE-1_1.json"])
    assert [(p["position"], p["artikelnummer"], p["menge"], p["einzelpreis"]) for p in invoice] == [
        (2, "B", 30, 12.9), (1, "A", 100, 7.8)]  # every position once, in the order of belege.csv
    assert {(p["belegart"], p["nettobetrag"], p["bruttobetrag"], p["belegdatum"], p["pdf"]) for p in invoice} == {
        ("Rechnung", 1179, 1403.01, "2026-11-27", "konto_D1_VFR_RE-1_1.pdf")}
    (order,) = json.loads(files["konto_D2_VXY_AU-2_1.json"])
    assert order["belegart"] == "VXY" and order["pdf"] == "" and order["steuersatz"] == 7  # unknown kind passes
    journal = CliRunner().invoke(cli, ["--config", str(root / "gateway.yaml"), "journal", "--json"]).output
    (entry,) = [json.loads(line) for line in journal.splitlines()]
    assert any("Mandant 999" in s["reason"] for s in entry["skipped"])


def test_a_row_naming_the_documents_table_itself_is_refused_not_published(tmp_path: Path) -> None:
    # The PDFs may lie anywhere in the export (folder: /), but never is a table passed on as a file.
    root = _install(tmp_path)
    with zipfile.ZipFile(root / "inbox" / "sol-documents" / "belege_4.zip", "w") as zf:
        zf.writestr("belege.csv", _belege(
            "123;1;VFR;RE-1;27.11.2026;D1;;10,00;11,90;EUR;1;A;Artikel;1;10,00;19;belege.csv"))
    assert _run(root) == (0, 1)
    reason = next((root / "quarantine" / "sol-documents").glob("*.reason.txt")).read_text(encoding="utf-8")
    assert "names the file 'belege.csv', which is 'belege.csv', a table of the batch" in reason
    assert not (root / "outbox" / "sol-documents").exists() or not any((root / "outbox" / "sol-documents").iterdir())


def test_a_document_exported_again_is_delivered_again_under_a_name_of_its_own(tmp_path: Path) -> None:
    root = _install(tmp_path)
    for number, amount in ((1, "10,00"), (2, "9,00")):  # the second export corrects the invoice
        with zipfile.ZipFile(root / "inbox" / "sol-documents" / f"belege_{number}.zip", "w") as zf:
            zf.writestr("belege.csv", _belege(
                f"123;1;VFR;RE-1;27.11.2026;D1;;{amount};11,90;EUR;1;A;Artikel;1;{amount};19;"))
        assert _run(root) == (1, 0)  # never "already exists" and waiting for ever
    assert sorted(_outbox(root)) == ["konto_D1_VFR_RE-1_1.json", "konto_D1_VFR_RE-1_2.json"]
