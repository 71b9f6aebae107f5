"""The Rakuten.de merchant API (legacy): orders, shipping confirmations, stock and prices.

Every call goes to ``<base>/<group>/<method>`` with ``key=<API key>``: reading calls as ``GET``,
calls that change something as a form ``POST``. The answer is ``<result><success>1</success>…``,
or ``success`` -1 with ``<errors><error><code/><message/>``. Codes in ``record_errors``
(documented: 2210 product, 2310 variant not found) are about the record sent; every other code
is trouble of the service, which waits and is tried again.

Rakuten.de closed its marketplace in 2020; this is the API its connector modules were written
against (formats/rakuten-webservices.md).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from lxml import etree

from ..i18n import _
from .answers import BrokenAnswer, de_refusal, stream, text
from .client import Answer, ServiceClient, ServiceError, expect

MAX_PAGES = 10_000


class RakutenDe:
    api = "rakuten-de"

    def __init__(self, client: ServiceClient) -> None:
        self.client = client
        self.config = client.config

    def describe(self) -> str:
        return self.client.describe()

    def _call(self, path: str, what: str, params: dict[str, str], *, changes: bool,
              to_file: Path | None = None) -> Answer:
        key = {"key": self.client.credentials.secret}
        if changes:
            answer = self.client.call("POST", path, {}, data={**key, **params}, what=what, changes=True)
        else:
            answer = self.client.call("GET", path, {**key, **params}, what=what, changes=False, to_file=to_file)
        refusal = de_refusal(answer.root) if answer.root is not None else None
        if refusal is not None and refusal.code not in self.config.de_record_errors:
            raise self.client.refused(self.client.redact(_(
                "{service}: {call}: the service refused ({answer}); check the API key in {variable}, or, if code "
                "{code} is about the order or article sent, add it to services → {name} → record_errors in "
                "gateway.yaml").format(service=self.describe(), call=what, answer=refusal.words(),
                                       variable=self.config.key_env, code=refusal.code, name=self.client.name)))
        expect(self.client, answer, "result", what, refusal)
        return answer

    # -- orders -----------------------------------------------------------------------------------

    def orders(self, status: str, spool: Path) -> Iterator[etree._Element]:
        """``orders/getOrders`` in ``status``, every page: each ``<order>``."""
        page, pages = 1, 1
        for _page in range(MAX_PAGES):
            path = spool / ".getOrders.xml"
            what = _("getOrders {status} page {page}").format(status=status, page=page)
            self._call("orders/getOrders", what,
                       {"status": status, "page": str(page), "per_page": str(self.config.per_page)},
                       changes=False, to_file=path)
            try:
                for el in stream(path, "paging"):
                    pages = int(text(el, "pages") or "1")
                    break
                yield from stream(path, "order")
            except (BrokenAnswer, ValueError) as exc:
                raise ServiceError(f"{self.describe()}: {what}: {exc}") from None
            finally:
                with contextlib.suppress(OSError):
                    path.unlink()
            if page >= pages:
                return
            page += 1
        raise ServiceError(_("{service}: getOrders: more than {count} pages; stopped reading").format(
            service=self.describe(), count=MAX_PAGES))

    def ship(self, order_no: str, carrier: str, tracking_number: str, tracking_url: str, dhl: str) -> str:
        """``orders/setOrderShipped``."""
        params = {"order_no": order_no, "carrier": carrier, "tracking_number": tracking_number,
                  "tracking_url": tracking_url, "dhl": dhl or "0"}
        self._call("orders/setOrderShipped", f"setOrderShipped {order_no}", {k: v for k, v in params.items() if v},
                   changes=True)
        return f"setOrderShipped {order_no}: success"

    def edit(self, product_art_no: str, variant_art_no: str, values: dict[str, str]) -> str:
        """``products/editProduct`` (an article) or ``editProductVariant`` (a variant): only the values given."""
        sent = {k: v for k, v in values.items() if v != ""}
        if variant_art_no:
            self._call("products/editProductVariant", f"editProductVariant {variant_art_no}",
                       {"variant_art_no": variant_art_no, **sent}, changes=True)
            return f"editProductVariant {variant_art_no}: success"
        self._call("products/editProduct", f"editProduct {product_art_no}",
                   {"product_art_no": product_art_no, **sent}, changes=True)
        return f"editProduct {product_art_no}: success"

    # -- a harmless call --------------------------------------------------------------------------

    def test(self, spool: Path) -> str:
        """``misc/getKeyInfo``: proves address and key, changes nothing."""
        self._call("misc/getKeyInfo", "getKeyInfo", {}, changes=False)
        return _("getKeyInfo answered")
