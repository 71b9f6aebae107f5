"""The Rakuten France offer file (``genericimportfile``) built from the rows of a mapping's output.

The mapping says *what* to offer, one row per article or variant, in columns: ``alias`` (the
Rakuten product type), ``submitterreference`` (the seller's article number), and any number of
attributes named by their part of the file: ``product_titre``, ``advert_sellingPrice``,
``advert_qty``, ``media_image_url``. This module writes them in the layout Rakuten France
imports::

    <items><item><alias>…</alias><attributes>
      <product><attribute><key>submitterreference</key><value>SKU</value></attribute>…</product>
      <advert><attribute><key>sellingPrice</key><value>12.90</value></attribute>…</advert>
      <media>…</media>
    </attributes></item></items>

Empty values are left out (an empty ``qty`` must not set the stock to nothing). The file is
written as it streams and is the same, byte for byte, every time it is built from the same
rows, so an upload after a crash sends the same file.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from .calls import read_rows

if TYPE_CHECKING:
    from lxml import etree

PARTS = ("product", "advert", "media")
REQUIRED = ("alias", "submitterreference")


def build_offer_file(rows_csv: Path, output: str, target: Path) -> int:
    """Write the offer file for the rows of ``rows_csv`` to ``target``; the number of items."""
    from lxml import etree

    count = 0
    temp = target.with_name(f".{target.name}.part")
    with etree.xmlfile(str(temp), encoding="utf-8") as xf:
        xf.write_declaration()
        with xf.element("items"):
            for row in read_rows(rows_csv, REQUIRED, output):
                item = etree.Element("item")
                etree.SubElement(item, "alias").text = row["alias"]
                attributes = etree.SubElement(item, "attributes")
                parts = {part: etree.SubElement(attributes, part) for part in PARTS}
                _attribute(parts["product"], "submitterreference", row["submitterreference"])
                for column, value in row.items():
                    part, _, key = column.partition("_")
                    if part in parts and key and value:
                        _attribute(parts[part], key, value)
                for el in parts.values():
                    if len(el) == 0:
                        attributes.remove(el)
                xf.write(item)
                count += 1
    temp.replace(target)
    return count


def _attribute(parent: etree._Element, key: str, value: str) -> None:
    from lxml import etree

    attribute = etree.SubElement(parent, "attribute")
    etree.SubElement(attribute, "key").text = key
    etree.SubElement(attribute, "value").text = value
