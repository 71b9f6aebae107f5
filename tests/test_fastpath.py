"""Columns computed without Jinja must give exactly what Jinja gives, for every shipped column."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import REPO, SAMPLE_ORDERS, order_xml, orders_file

from gateway.mapping.compiler import CompiledOutput, load_mapping
from gateway.mapping.fastpath import compile_fast
from gateway.mapping.templating import make_environment
from gateway.mapping.values import MISSING, Record

VARIANTS = [
    order_xml("1-1-1"),
    order_xml("2-2-2", client={"company": "Gabler & Co. KG"}, coupon={"code": "X", "total": "3.50", "comment": ""}),
    order_xml("3-3-3", omit=("company", "address_add", "phone", "street_no", "max_shipping_date")),
    order_xml("4-4-4", shipping="0.00", delivery={"country": "AT", "company": "Wien GmbH"}),
    order_xml("5-5-5", items=[{"product_art_no": "A", "name": "x", "qty": "3", "price": "1234.5", "tax": "4"}]),
]


def _contexts(tmp_path: Path) -> list[tuple[object, dict[str, object]]]:
    mapping = load_mapping(REPO / "mappings" / "rakuten-orders.yaml", "rakuten-orders.yaml")
    files = [SAMPLE_ORDERS, tmp_path / "v.xml"]
    files[1].write_text(orders_file(*VARIANTS), encoding="utf-8")
    info = {"id": 1, "name": "x.xml", "stem": "x", "suffix": "xml", "received_at": "", "flow": "f"}
    contexts = []
    for path in files:
        for record in mapping.records(path, path.name):
            contexts.append((mapping, mapping.context(record, info, mapping.settings)))
    return contexts


def test_every_fast_column_of_the_shipped_mapping_equals_jinja(tmp_path: Path) -> None:
    checked = 0
    for mapping, context in _contexts(tmp_path):
        for out in mapping.outputs:  # type: ignore[attr-defined]
            assert isinstance(out, CompiledOutput)
            for row in out.rows:
                entries = [None] if row.for_each is None else list(row.for_each(**context))
                for entry in entries:
                    local = dict(context, row_number=1)
                    if row.for_each is not None:
                        local[row.as_] = entry
                    for block in (out.record_block, row.block):
                        for col, fast in zip(block.columns, block.fast, strict=True):
                            if fast is None:
                                continue
                            try:
                                expected = col.template.render(local)
                            except Exception as exc:  # the fast path must fail too
                                with pytest.raises(type(exc)):
                                    fast(local)
                                continue
                            assert fast(local) == expected, (col.name, col.spec.value)
                            checked += 1
    assert checked > 200


def test_most_shipped_columns_take_the_fast_path() -> None:
    mapping = load_mapping(REPO / "mappings" / "rakuten-orders.yaml", "rakuten-orders.yaml")
    (out,) = mapping.outputs
    assert isinstance(out, CompiledOutput)
    blocks = [out.record_block, *(r.block for r in out.rows)]
    slow = [c.name for b in blocks for c, f in zip(b.columns, b.fast, strict=True) if f is None]
    assert slow == []


@pytest.mark.parametrize(
    "source",
    [
        "{{ a.b }}", "x{{ a.b }}y", "{{ a.missing.deeper }}", "{{ a.b if a.c else 'no' }}", "{{ a.b if a.missing }}",
        "{{ a.missing or a.b }}", "{{ a.b and a.c }}", "{{ not a.b }}", "{{ a.n | decimal * -1 }}",
        "{{ (a.n | decimal * -1) | number }}", "{{ [a.b, a.missing, a.c] | join_nonempty }}", "{{ a.b ~ '-' ~ a.c }}",
        "{{ a.b in ('x', 'y') }}", "{{ a.b not in ['x'] }}", "{{ a.n | decimal > 1 }}", "{{ 1 < 2 < 3 }}",
        "{{ a.n | number(0) }}", "{{ a.l | length }}", "{{ -(a.n | decimal) }}", "{{ a.b == '' }}",
    ],
)
def test_fast_expressions_match_jinja(source: str) -> None:
    env = make_environment({})
    fast = compile_fast(env, source)
    assert fast is not None, source
    context = {"a": Record({"b": "x", "c": "", "n": "12.5", "l": [Record({}), Record({})]})}
    assert fast(context) == env.from_string(source).render(context)
    assert MISSING == ""
