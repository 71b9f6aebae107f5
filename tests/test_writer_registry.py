"""The registry of output kinds: one entry per kind, one contract for every writer, always closed."""

from __future__ import annotations

import datetime as dt
import importlib
import inspect
import typing
from pathlib import Path
from typing import Any

import pytest

import gateway.writers.registry as registry
from gateway.convert import convert, input_info
from gateway.errors import InputError
from gateway.mapping.compiler import load_mapping
from gateway.mapping.model import OutputSpec, RowOutput
from gateway.writers.base import OutputWriter, RecordAt, StagedOutput, Staging

MAPPING = """
input: { format: csv, as: a }
key: { value: "{{ a.nr }}", label: "article" }
skip:
  - when: a.nr == 'A2'
    reason: "A2 is never sent"
outputs:
  - name: liste
    file: "liste_{{ input.id }}.csv"
    format: csv
    columns:
      nr: "{{ a.nr }}"
      preis: "{{ a.preis | decimal }}"
  - name: einzeln
    file: "einzeln_{{ a.nr }}.json"
    format: json
    per: record
    columns:
      nr: "{{ a.nr }}"
"""


def _compiled(tmp_path: Path, text: str = MAPPING) -> Any:
    path = tmp_path / "mappings" / "m.yaml"
    path.parent.mkdir(exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return load_mapping(path, "mappings/m.yaml")


def _convert(tmp_path: Path, data: str) -> Any:
    source = tmp_path / "artikel.csv"
    source.write_text(data, encoding="utf-8")
    stage = tmp_path / "stage"
    stage.mkdir(exist_ok=True)
    info = input_info(7, source.name, "flow", "2026-12-06T10:00:00", dt.date(2026, 12, 6))
    return convert(_compiled(tmp_path), source, source.name, stage, info, {}, key_delivered=lambda key: None)


def test_the_mapping_model_and_the_registry_name_the_same_output_kinds() -> None:
    union = typing.get_args(typing.get_args(OutputSpec)[0])
    in_model = {typing.get_args(m.model_fields["format"].annotation)[0] for m in union}
    assert set(registry.output_kinds()) == in_model
    rows = {typing.get_args(m.model_fields["format"].annotation)[0] for m in typing.get_args(RowOutput)}
    assert set(registry.row_formats()) == rows


@pytest.mark.parametrize("kind", registry.output_kinds())
def test_every_output_writer_is_made_the_one_way(kind: str) -> None:
    module, name = registry._OUTPUT_KINDS[kind]
    factory = getattr(importlib.import_module(module), name)
    assert len(inspect.signature(factory).parameters) == 3  # (compiled output, position, staging)


@pytest.mark.parametrize("kind", registry.row_formats())
def test_every_row_format_is_made_the_one_way(kind: str) -> None:
    module, name = registry._ROW_FORMATS[kind]
    assert len(inspect.signature(getattr(importlib.import_module(module), name)).parameters) == 2


def test_an_unregistered_output_kind_is_an_error_not_a_fall_through(tmp_path: Path) -> None:
    class Spec:
        format = "edifact"

    class Out:
        spec = Spec()

    with pytest.raises(LookupError, match="no writer is registered for the output format 'edifact'"):
        registry.writer_for(Out(), 0, typing.cast(Staging, None))


class Recorder:
    """Wraps a real writer and notes each call of the contract, to show what the conversion asks of it."""

    calls: typing.ClassVar[list[str]] = []

    def __init__(self, out: Any, position: int, staging: Staging) -> None:
        from gateway.writers.rows import rows_writer

        self.inner: OutputWriter = rows_writer(out, position, staging)
        self.name = out.name
        self.needs_records = self.inner.needs_records
        self.rank = self.inner.rank

    def write(self, record: RecordAt) -> list[StagedOutput]:
        Recorder.calls.append(f"{self.name}.write({record.name}, {record.number})")
        return self.inner.write(record)

    def finish(self, records: int | None) -> list[StagedOutput]:
        Recorder.calls.append(f"{self.name}.finish({records})")
        return self.inner.finish(records)

    def close(self) -> None:
        Recorder.calls.append(f"{self.name}.close()")
        self.inner.close()


@pytest.fixture
def recorded(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every CSV and JSON output made through ``Recorder``: a new kind registered with one line."""
    Recorder.calls = []
    monkeypatch.setitem(globals(), "Recorder", Recorder)
    for kind in ("csv", "json"):
        monkeypatch.setitem(registry._OUTPUT_KINDS, kind, (__name__, "Recorder"))
    return Recorder.calls


def test_the_conversion_talks_to_writers_only_through_the_contract(tmp_path: Path, recorded: list[str]) -> None:
    conversion = _convert(tmp_path, "nr;preis\nA1;1.50\nA2;2\nA3;3\n")
    assert recorded == [
        "liste.write(record A1, 1)", "einzeln.write(record A1, 1)",
        # A2 is skipped by the mapping: no writer sees it
        "liste.write(record A3, 3)", "einzeln.write(record A3, 3)",
        "liste.finish(2)", "einzeln.finish(2)",
        "einzeln.close()", "liste.close()",
    ]
    assert [o.name for o in conversion.outputs] == ["einzeln_A1.json", "einzeln_A3.json", "liste_7.csv"]
    assert conversion.skipped == [{"key": "A2", "reason": "A2 is never sent"}]


def test_every_writer_is_closed_when_a_record_fails(tmp_path: Path, recorded: list[str]) -> None:
    with pytest.raises(InputError) as caught:
        _convert(tmp_path, "nr;preis\nA1;1.50\nA3;drei\n")
    assert "record article A3" in str(caught.value) or "A3" in str(caught.value)
    assert recorded[-2:] == ["einzeln.close()", "liste.close()"]
    assert not any(call.endswith("finish(1)") for call in recorded)
