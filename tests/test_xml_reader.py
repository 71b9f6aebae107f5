"""The XML reader's memory: flat for any shape of document, not only for the elements it turns into records."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from gateway.errors import ReadError
from gateway.readers.xml import read_xml_records

MiB = 1024 * 1024
ORDER = "<order><order_no>{n}</order_no><items><item><qty>1</qty></item></items></order>"

CHILD = r"""
import json, sys
from pathlib import Path
from gateway.readers.xml import read_xml_records
numbers = [r.order_no for r in read_xml_records(Path(sys.argv[1]), sys.argv[2], "big.xml")]
with open("/proc/self/status") as status:
    peak = next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmHWM:"))
print(json.dumps([numbers, peak]))
"""

# Where millions of elements that are no records can stand (the records are at /result/orders/order).
SHAPES = {
    "before the records": ("<result><success>{junk}</success><orders>{orders}</orders></result>",
                           "/result/orders/order"),
    "between the records": ("<result><orders>{orders}<junk>{junk}</junk>{orders}</orders></result>",
                            "/result/orders/order"),
    "nested deeper": ("<result><a><b><c>{junk}</c></b></a><orders>{orders}</orders></result>", "/result/orders/order"),
    "after the records": ("<result><orders>{orders}</orders><success>{junk}</success></result>",
                          "/result/orders/order"),
    "in an element named like a record": ("<result><order>{junk}</order><orders>{orders}</orders></result>",
                                          "/result/orders/order"),
    "with a relative record path": ("<result><success>{junk}</success><orders>{orders}</orders></result>",
                                    "orders/order"),
}


def _write(path: Path, shape: str, elements: int) -> None:
    head, tail = shape.split("{junk}")
    orders = "".join(ORDER.format(n=n) for n in range(3))
    with path.open("w", encoding="utf-8") as out:
        out.write(head.format(orders=orders))
        chunk = "<x/>" * 100_000
        for _ in range(elements // 100_000):
            out.write(chunk)
        out.write(tail.format(orders=orders))


@pytest.mark.parametrize("where", sorted(SHAPES))
def test_memory_stays_flat_with_millions_of_elements_outside_the_records(tmp_path: Path, where: str) -> None:
    shape, record_path = SHAPES[where]
    path = tmp_path / "big.xml"
    _write(path, shape, 3_000_000)  # 12 MB of <x/>: about 400 MB as a tree
    child = subprocess.run([sys.executable, "-c", CHILD, str(path), record_path],
                           capture_output=True, text=True, check=True)
    numbers, peak = json.loads(child.stdout)
    expected = ["0", "1", "2"] * (2 if where == "between the records" else 1)
    assert numbers == expected
    assert peak < 150 * MiB  # the interpreter and lxml are about 40 MiB


def test_records_keep_their_own_children_while_other_elements_are_dropped(tmp_path: Path) -> None:
    path = tmp_path / "o.xml"
    path.write_text("<result><success>1</success><orders>"
                    + "".join(f"<order><order_no>{n}</order_no><items>" + "<item><qty>2</qty></item>" * 3
                              + "</items><junk/></order><note>n</note>" for n in range(2000))
                    + "</orders><end/></result>", encoding="utf-8")
    records = [(r.order_no, [i.qty for i in r["items"]["item"]]) for r in read_xml_records(path, "/result/orders/order",
                                                                                         "o.xml")]
    assert records == [(str(n), ["2", "2", "2"]) for n in range(2000)]


def test_a_document_of_another_kind_is_still_refused(tmp_path: Path) -> None:
    path = tmp_path / "o.xml"
    path.write_text("<feed><success>" + "<x/>" * 1000 + "</success></feed>", encoding="utf-8")
    with pytest.raises(ReadError, match="its root element is <feed>"):
        list(read_xml_records(path, "/result/orders/order", "o.xml"))
