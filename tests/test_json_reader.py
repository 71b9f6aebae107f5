"""JSON and JSON Lines records: values as text, errors in plain words, memory flat with the file size."""

from __future__ import annotations

import json
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.errors import ReadError
from gateway.mapping.values import MISSING, Record
from gateway.readers import json as json_reader
from gateway.readers.json import read_json_records, read_jsonl_records


def write(tmp_path: Path, text: str | bytes, name: str = "orders.json") -> Path:
    path = tmp_path / name
    if isinstance(text, str):
        path.write_text(text, encoding="utf-8")
    else:
        path.write_bytes(text)
    return path


def read(path: Path, records: str = "") -> list[Record]:
    return list(read_json_records(path, path.name, records=records))


def plain(path: Path, records: str = "") -> list[dict[str, Any]]:
    return [r.to_plain() for r in read(path, records)]


def error_of(path: Path, records: str = "", *, lines: bool = False) -> ReadError:
    with pytest.raises(ReadError) as caught:
        if lines:
            list(read_jsonl_records(path, path.name))
        else:
            read(path, records)
    return caught.value


@pytest.fixture(params=[1, 2, 3, 7, 64, json_reader.CHUNK_SIZE], ids=lambda n: f"chunk{n}")
def chunk_size(request: pytest.FixtureRequest) -> Iterator[int]:
    """Every test using it runs with chunks that cut tokens, strings and UTF-8 characters apart."""
    with mock.patch.object(json_reader, "CHUNK_SIZE", request.param):
        yield request.param


NESTED = """\
{"meta": {"x": [1, {"y": "]"}], "s": "a\\"}b", "n": null},
 "data": {"count": 12345, "orders": [
  {"id": "1", "price": 12.90, "qty": 3, "ok": true, "no": false, "n": null, "e": "",
   "buyer": {"name": "Jörg Müller", "address": {"city": "Köln"}},
   "items": [{"sku": "A", "price": 1.50}, {"sku": "B", "price": -0.0}], "tags": ["x", "", null, 1e-7]},
  {"id": "2", "price": 1E5, "text": "brackets ] } [ { and \\"quotes\\" and \\\\ and \\u00e4"}
 ], "after": {"z": [[], {}], "q": "[{"}},
 "tail": [1, 2, 3]}
"""


# --- values --------------------------------------------------------------------------------------


def test_values_become_text_as_written_and_nested_objects_become_records(tmp_path: Path, chunk_size: int) -> None:
    first, second = read(write(tmp_path, NESTED), "data.orders")
    assert first.price == "12.90"  # not 12.9
    assert first.qty == "3"
    assert first.ok == "true" and first.no == "false"
    assert first.n is MISSING and first.e is MISSING and first.absent is MISSING
    assert first.buyer.name == "Jörg Müller"
    assert first.buyer.address.city == "Köln"
    assert isinstance(first.buyer, Record)
    assert [i.sku for i in first["items"]] == ["A", "B"]
    assert [i.price for i in first["items"]] == ["1.50", "-0.0"]
    assert first.tags == ["x", MISSING, MISSING, "1e-7"]
    assert second.price == "1E5"
    assert second.text == 'brackets ] } [ { and "quotes" and \\ and ä'
    assert (first.line, second.line) == (3, 6)


def test_the_document_itself_can_be_the_array(tmp_path: Path, chunk_size: int) -> None:
    path = write(tmp_path, '\n[\n {"a": "1"},\n\n {"a": "2"}  ,  {"a": 3.10}\n]\n')
    records = read(path)
    assert [r.a for r in records] == ["1", "2", "3.10"]
    assert [r.line for r in records] == [3, 5, 5]


def test_an_empty_array_gives_no_records(tmp_path: Path) -> None:
    assert read(write(tmp_path, '{"data": {"orders": [ ]}}'), "data.orders") == []
    assert read(write(tmp_path, "[]")) == []


def test_a_byte_order_mark_is_accepted(tmp_path: Path, chunk_size: int) -> None:
    path = write(tmp_path, '\ufeff[{"name": "Straße"}]'.encode())
    assert plain(path) == [{"name": "Straße"}]


def test_a_minified_document_on_one_line(tmp_path: Path, chunk_size: int) -> None:
    rows = [{"id": str(i), "n": i} for i in range(50)]
    path = write(tmp_path, json.dumps({"orders": rows}, separators=(",", ":")))
    assert plain(path, "orders") == [{"id": str(i), "n": str(i)} for i in range(50)]
    assert {r.line for r in read(path, "orders")} == {1}


def test_duplicate_keys_keep_the_last_value_within_a_record(tmp_path: Path) -> None:
    assert plain(write(tmp_path, '[{"a": "1", "a": "2"}]')) == [{"a": "2"}]


def test_records_are_handed_on_before_the_rest_is_read(tmp_path: Path) -> None:
    path = write(tmp_path, '[{"a": "1"}, {"a": "2"}, ' + " " * 10_000 + "{broken")
    with mock.patch.object(json_reader, "CHUNK_SIZE", 64):
        records = read_json_records(path, "x.json")
        assert next(records).a == "1"
        assert next(records).a == "2"
        with pytest.raises(ReadError):
            next(records)


# --- the path to the array -----------------------------------------------------------------------


def test_a_missing_key_names_the_keys_that_are_there(tmp_path: Path, chunk_size: int) -> None:
    error = error_of(write(tmp_path, NESTED), "data.order")
    assert error.message == "no array at 'data.order'; 'data' has the keys: 'count', 'orders', 'after'"
    error = error_of(write(tmp_path, NESTED), "dat.orders")
    assert error.message == "no array at 'dat.orders'; the document has the keys: 'meta', 'data', 'tail'"
    assert error.file == "orders.json"


def test_a_long_list_of_keys_is_cut_short(tmp_path: Path) -> None:
    doc = {f"k{i}": i for i in range(30)}
    error = error_of(write(tmp_path, json.dumps(doc)), "orders")
    assert error.message.endswith("'k18', 'k19' and 10 more")


def test_the_path_must_lead_through_objects_to_an_array(tmp_path: Path) -> None:
    path = write(tmp_path, NESTED)
    assert error_of(path, "data.count").message == "no array at 'data.count'; there is a number there"
    assert error_of(path, "data.orders.id").message == (
        "no array at 'data.orders.id'; 'data.orders' is an array, not an object with the key 'id'"
    )
    assert error_of(path, "data").message == (
        "no array at 'data'; there is an object there; its keys are: 'count', 'orders', 'after'"
    )
    assert error_of(write(tmp_path, "{}"), "orders").message == "no array at 'orders'; the document is an empty object"
    assert error_of(write(tmp_path, "[]"), "orders").message == (
        "no array at 'orders'; the document is an array, not an object with the key 'orders'"
    )


def test_an_object_where_the_array_was_expected_suggests_a_path(tmp_path: Path) -> None:
    error = error_of(write(tmp_path, '\n  {"data": {"orders": []}}'))
    assert error.message.startswith("the document is an object, not an array of records; give the path")
    assert error.message.endswith("its keys are: 'data'")
    assert (error.line, error.column) == (2, 3)


@pytest.mark.parametrize(
    ("text", "message", "column"),
    [
        ('{"x": [1, tru], "orders": []}', "the JSON is broken: expected a value", 11),
        ('{"x": {"a" 1}, "orders": []}', "the JSON is broken: ':' after the key was expected", 12),
        ('{"x": [1 2], "orders": []}', "the JSON is broken: ',' or ']' was expected", 10),
        ('{"x": [1, 2,], "orders": []}', "the JSON is broken: expected a value", 13),
        ('{"x": {"a": 01}, "orders": []}', "the JSON is broken: ',' or '}' was expected", 14),
        ('{"x": [NaN], "orders": []}', "NaN is not allowed in JSON (it is in the value that starts here)", 8),
        ('{"orders": [], "x": [1}', "the JSON is broken: ',' or ']' was expected", 23),
        ('{"orders": [], "x": {"a": "\\q"}}', "the JSON is broken: an invalid backslash escape inside quotes", 28),
        ('{"orders": [{"a": "1"}]', "the JSON is broken: the file ends too early, ',' or '}' was expected", 24),
        ('{"orders": [{"a": "1"}], "x": [1, {"y": [2', "the JSON is broken: the file ends too early, ',' or ']' "
                                                     "was expected", 43),
        ('[{"a": "1"}] [', "the JSON is broken: there is more after the end of the document", 14),
    ],
)
def test_values_at_other_keys_are_checked_too(
    tmp_path: Path, chunk_size: int, text: str, message: str, column: int
) -> None:
    error = error_of(write(tmp_path, text), "orders" if text.startswith("{") else "")
    assert (error.message, error.line, error.column) == (message, 1, column)


def test_values_at_other_keys_are_skipped_whatever_their_nesting(tmp_path: Path, chunk_size: int) -> None:
    other = {"a": [1, {"b": [[], {}, "]}\"", None, True, 1.5e-3]}], "c": {"d": {"e": "f"}}}
    path = write(tmp_path, json.dumps({"x": other, "n": 12345, "orders": [{"a": "1"}], "y": other, "m": -1.25e10}))
    assert plain(path, "orders") == [{"a": "1"}]


def test_deep_nesting_at_other_keys_is_refused_however_it_falls_into_chunks(tmp_path: Path, chunk_size: int) -> None:
    levels = json_reader.MAX_DEPTH + 1
    path = write(tmp_path, '{"x": ' + "[" * levels + "]" * levels + ', "orders": []}')
    assert "nested too deeply" in error_of(path, "orders").message
    levels = json_reader.MAX_DEPTH
    path = write(tmp_path, '{"x": ' + "[" * levels + "]" * levels + ', "orders": []}')
    assert read(path, "orders") == []


def test_a_large_value_before_the_array_is_skipped_without_being_built(tmp_path: Path) -> None:
    big = [{"id": i, "s": "x" * 100} for i in range(20_000)]  # ~2.6 MB
    path = write(tmp_path, json.dumps({"before": big, "orders": [{"a": "1"}], "after": big}))
    tracemalloc.start()
    try:
        records = plain(path, "orders")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert records == [{"a": "1"}]
    assert peak < 1_500_000


# --- errors --------------------------------------------------------------------------------------


def test_a_record_that_is_not_an_object_is_named_with_its_line(tmp_path: Path, chunk_size: int) -> None:
    path = write(tmp_path, '[\n{"a": "1"},\n{"a": "2"},\n  42\n]')
    error = error_of(path)
    assert error.message == "record 3 (line 4) is a number, an object {…} was expected"
    assert (error.line, error.column) == (4, 3)
    error = error_of(write(tmp_path, '[{}, "text"]'))
    assert error.message == "record 2 (line 1) is a text, an object {…} was expected"
    assert error_of(write(tmp_path, "[[]]")).message == "record 1 (line 1) is an array, an object {…} was expected"
    assert error_of(write(tmp_path, "[null]")).message == "record 1 (line 1) is null, an object {…} was expected"


@pytest.mark.parametrize(
    ("text", "message", "line", "column"),
    [
        ('[\n  {"a": "1"}\n  {"a": "2"}\n]', "the JSON is broken: ',' or ']' after record 1 was expected", 3, 3),
        ('[{"a": "1",\n "b" "2"}]', "the JSON is broken: expected ':' after the key", 2, 6),
        ('[{"a": 1 2}]', "the JSON is broken: expected ',' or a closing bracket", 1, 10),
        ('[{"a": tru}]', "the JSON is broken: expected a value", 1, 8),
        ('[{"a": "1"},]', "the JSON is broken: there is a comma before the closing ']'", 1, 13),
        ('[{"a": "x\ny"}]', "the JSON is broken: a line break or other control character inside quotes "
                            "(it must be written as \\n)", 1, 10),
        ('[{"a": "\\x"}]', "the JSON is broken: an invalid backslash escape inside quotes", 1, 9),
        ('[{"a": "1"}', "the JSON is broken: the file ends too early, ',' or ']' after record 1 was expected", 1, 12),
        ('[{"a": "1', "the JSON is broken: the file ends too early (a text in quotes is not closed "
                     '(the closing " is missing))', 1, 8),
        ('{"x": {"y": [1, 2}', "the JSON is broken: ',' or ']' was expected", 1, 18),
        ('{"x": "1" "orders": []}', "the JSON is broken: ',' or '}' was expected", 1, 11),
        ("   \n  ", "the file holds no JSON, only blanks", 2, 3),
    ],
)
def test_broken_json_is_reported_with_line_and_column(
    tmp_path: Path, chunk_size: int, text: str, message: str, line: int, column: int
) -> None:
    error = error_of(write(tmp_path, text), "orders" if text.startswith("{") else "")
    assert (error.message, error.line, error.column) == (message, line, column)
    assert str(error).startswith(f"orders.json, line {line}, column {column}: the ")


def test_an_empty_file_is_refused(tmp_path: Path) -> None:
    assert error_of(write(tmp_path, b"")).message == "the file is empty (0 bytes)"
    assert error_of(write(tmp_path, b"", "o.jsonl"), lines=True).message == "the file is empty (0 bytes)"


def test_a_missing_file_is_a_read_error(tmp_path: Path) -> None:
    assert error_of(tmp_path / "gone.json").message.startswith("the file cannot be read")


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_nan_and_infinity_are_refused(tmp_path: Path, constant: str) -> None:
    error = error_of(write(tmp_path, f'[{{"a": "1"}},\n {{"a": {constant}}}]'))
    assert error.message == f"{constant} is not allowed in JSON (it is in the value that starts here)"
    assert (error.line, error.column) == (2, 2)
    error = error_of(write(tmp_path, f'{{"x": {constant}, "orders": []}}'), "orders")
    assert error.message.startswith(f"{constant} is not allowed")
    error = error_of(write(tmp_path, f'{{"a": {constant}}}\n', "o.jsonl"), lines=True)
    assert (error.message, error.line) == (f"{constant} is not allowed in JSON", 1)


def test_text_that_is_not_utf8_is_refused_with_its_line(tmp_path: Path, chunk_size: int) -> None:
    path = write(tmp_path, '[{"a": "1"},\n{"name": "M\xfcller"}]'.encode("windows-1252"))
    error = error_of(path)
    assert error.message.startswith("the file is not valid UTF-8, which JSON must be: the byte 0xFC on line 2")
    assert error.line == 2


def test_a_utf8_character_cut_off_at_the_end_is_refused(tmp_path: Path) -> None:
    error = error_of(write(tmp_path, '[{"a": "ä"}]'.encode()[:-4] + b"\xc3"))
    assert error.message.startswith("the file is not valid UTF-8")


# --- nesting -------------------------------------------------------------------------------------


def test_nesting_up_to_the_limit_is_read(tmp_path: Path) -> None:
    depth = json_reader.MAX_DEPTH - 1  # the record itself is the first level
    [record] = read(write(tmp_path, '[{"a": ' + "[" * depth + "]" * depth + "}]"))
    assert isinstance(record.a, list)


@pytest.mark.parametrize("levels", [json_reader.MAX_DEPTH, 500, 100_000])
def test_deeper_nesting_is_refused(tmp_path: Path, levels: int) -> None:
    path = write(tmp_path, '[{"a": ' + '{"b": ' * levels + "1" + "}" * levels + "}]")
    error = error_of(path)
    assert "nested" in error.message and str(json_reader.MAX_DEPTH) in error.message
    assert error.line == 1
    error = error_of(write(tmp_path, '{"a": ' * (levels + 1) + "1" + "}" * (levels + 1) + "\n", "o.jsonl"), lines=True)
    assert "nested" in error.message


def test_deep_nesting_in_a_skipped_value_is_refused(tmp_path: Path) -> None:
    error = error_of(write(tmp_path, '{"x": ' + "[" * 100_000 + "]" * 100_000 + ', "orders": []}'), "orders")
    assert error.message == f"the JSON is nested too deeply (more than {json_reader.MAX_DEPTH} levels)"


# --- JSON Lines ----------------------------------------------------------------------------------


def test_json_lines_one_object_per_line_and_blank_lines_skipped(tmp_path: Path) -> None:
    text = '\ufeff{"id": "1", "price": 12.90}\r\n\n  \n{"id": "2", "items": [{"sku": "A"}], "n": null}\n'
    records = list(read_jsonl_records(write(tmp_path, text, "o.jsonl"), "o.jsonl"))
    assert [r.to_plain() for r in records] == [
        {"id": "1", "price": "12.90"},
        {"id": "2", "items": [{"sku": "A"}], "n": ""},
    ]
    assert [r.line for r in records] == [1, 4]


def test_json_lines_stop_at_a_broken_line(tmp_path: Path) -> None:
    path = write(tmp_path, '{"id": "1"}\n{"id": "2"}\n{"id": 3,}\n{"id": "4"}\n', "o.jsonl")
    seen: list[str] = []
    with pytest.raises(ReadError) as caught:
        for record in read_jsonl_records(path, "o.jsonl"):
            seen.append(record.id)
    assert seen == ["1", "2"]
    assert (caught.value.line, caught.value.column) == (3, 10)
    assert caught.value.message.startswith("the JSON is broken: ")


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('{"a": 1} {"b": 2}',
         "the JSON is broken: there is more after the JSON object (one object per line is allowed)"),
        ("[1, 2]", "the line holds an array, an object {…} was expected"),
        ('"text"', "the line holds a text, an object {…} was expected"),
        ('{"a": 1', "the JSON is broken: expected ',' or a closing bracket"),
    ],
)
def test_json_lines_errors(tmp_path: Path, line: str, message: str) -> None:
    error = error_of(write(tmp_path, '{"ok": "1"}\n' + line + "\n", "o.jsonl"), lines=True)
    assert (error.message, error.line) == (message, 2)


def test_json_lines_not_utf8(tmp_path: Path) -> None:
    error = error_of(write(tmp_path, b'{"a": "1"}\n{"a": "M\xfcller"}\n', "o.jsonl"), lines=True)
    assert (error.line, error.column) == (2, 9)
    assert "not valid UTF-8" in error.message


# --- memory and speed ----------------------------------------------------------------------------


def _order(i: int) -> dict[str, Any]:
    return {
        "order_no": f"R{i:08d}", "total": "123.45",
        "buyer": {"name": "Erika Mustermann", "city": "Köln"},
        "items": [{"sku": f"SKU-{i % 97}", "qty": 2, "price": 12.90}],
    }


@pytest.mark.campaign  # a large input: run by CI (.ci/run), not by the README's `pytest -q`
def test_memory_stays_flat_for_a_large_file(tmp_path: Path) -> None:
    path = tmp_path / "big.json"
    with path.open("w", encoding="utf-8") as fh:
        fh.write('{"data": {"orders": [\n')
        fh.write(",\n".join(json.dumps(_order(i)).replace('"price": 12.9}', '"price": 12.90}') for i in range(100_000)))
        fh.write("\n]}}\n")
    assert path.stat().st_size > 14_000_000
    tracemalloc.start()
    try:
        count = 0
        last = None
        for record in read_json_records(path, "big.json", records="data.orders"):
            count += 1
            last = record
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert count == 100_000
    assert last is not None and last.order_no == "R00099999" and last.line == 100_001
    assert last["items"][0].price == "12.90"
    assert peak < 10_000_000, f"peak {peak / 1e6:.1f} MB"


# --- round trip ----------------------------------------------------------------------------------

_keys = st.text(max_size=8)
_scalars = st.one_of(
    st.text(max_size=12),
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**20), max_value=10**20),
    st.floats(allow_nan=False, allow_infinity=False),
)
_values = st.recursive(
    _scalars,
    lambda inner: st.one_of(st.dictionaries(_keys, inner, max_size=4), st.lists(inner, max_size=4)),
    max_leaves=12,
)
_objects = st.dictionaries(_keys, _values, max_size=6)


def _expected(value: Any) -> Any:
    """What ``Record.to_plain`` gives for a value read from ``json.dumps(value)``."""
    if isinstance(value, dict):
        return {k: _expected(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_expected(v) for v in value]
    if value is None or value == "":
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return json.dumps(value)  # the number as written
    return value


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    objects=st.lists(_objects, max_size=6),
    indent=st.sampled_from([None, 0, 1, 2, "\t"]),
    ensure_ascii=st.booleans(),
    wrapped=st.booleans(),
    chunk=st.sampled_from([1, 2, 3, 5, 16, 4096]),
)
def test_any_list_of_objects_reads_back_equal(
    tmp_path: Path, objects: list[dict[str, Any]], indent: int | str | None, ensure_ascii: bool,
    wrapped: bool, chunk: int,
) -> None:
    document: Any = {"before": objects, "data": {"orders": objects}, "after": objects} if wrapped else objects
    path = write(tmp_path, json.dumps(document, indent=indent, ensure_ascii=ensure_ascii))
    with mock.patch.object(json_reader, "CHUNK_SIZE", chunk):
        records = read(path, "data.orders" if wrapped else "")
    assert [r.to_plain() for r in records] == [_expected(o) for o in objects]
    lines = path.read_text(encoding="utf-8").split("\n")
    for record in records:
        assert record.line is not None and "{" in lines[record.line - 1]


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(objects=st.lists(_objects, min_size=1, max_size=6))
def test_any_list_of_objects_reads_back_equal_as_json_lines(tmp_path: Path, objects: list[dict[str, Any]]) -> None:
    path = write(tmp_path, "".join(json.dumps(o, ensure_ascii=False) + "\n" for o in objects), "o.jsonl")
    records = list(read_jsonl_records(path, "o.jsonl"))
    assert [r.to_plain() for r in records] == [_expected(o) for o in objects]
    assert [r.line for r in records] == list(range(1, len(objects) + 1))
