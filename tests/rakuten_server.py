"""A local Rakuten server: Rakuten France (``sales_ws``, ``stock_ws``) and the Rakuten.de merchant API on loopback.

The only stand-in the tests use: a real HTTP server (stdlib ``http.server``, one thread per
connection, keep-alive) that implements the calls of formats/rakuten-webservices.md with their
parameters, XML answers, namespaces and encodings (ISO-8859-1 or UTF-8, as declared), paging
(``nexttoken``; ``page``/``pages``) and per-item state: a unit accepted twice is an error, a
shipped order cannot be shipped again, an item must be accepted before it is shipped. It keeps
its own log of every call, so a test can prove what was called how often, and it injects the
faults a real service shows (:meth:`RakutenServer.inject`): 5xx answers, hanging and slow
answers, a connection dropped after the call was applied, a truncated answer, an expired token.

``handler_seconds`` adds up the time spent inside the handlers (parsing a request, applying it,
writing the answer), so that a benchmark can show how much of its time the server took.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import email.parser
import email.policy
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from lxml import etree

FR_NS = "http://pmcdn.priceminister.com/res/schema/{}"
SALE_NS = "http://www.priceminister.com/sales_ws/saleacceptance"


@dataclass
class Item:
    itemid: str
    sku: str
    price: str
    headline: str = "Article"
    advertid: str = ""
    ean: str = ""
    status: str = "TO_CONFIRM"  # → ACCEPTED / REFUSED → SHIPPED; CANCELLED
    tracking: dict[str, str] = field(default_factory=dict)


@dataclass
class Sale:
    purchaseid: str
    purchasedate: str  # dd/MM/yyyy-HH:mm
    items: list[Item]
    shipping: str = "4.9"
    buyer: dict[str, str] = field(default_factory=dict)

    @property
    def day(self) -> dt.date:
        return dt.datetime.strptime(self.purchasedate, "%d/%m/%Y-%H:%M").date()


def make_sale(n: int, units: int | None = None, skus: list[str] | None = None, day: int = 27) -> Sale:
    """Sale ``n`` (purchase 50000000 + n), always the same: 1–3 units of 1–2 articles."""
    count = units if units is not None else 1 + n % 3
    articles = skus or [f"{10001 + (n + i) % 2}" for i in range(count)]
    items = [Item(itemid=str(700000000 + n * 10 + i), sku=articles[i % len(articles)], price="12.9",
                  headline="Tasse à café « Bureau »", advertid=str(600000000 + n), ean="4006381333931")
             for i in range(count)]
    return Sale(purchaseid=str(50000000 + n), purchasedate=f"{day:02d}/11/2026-{8 + n % 10:02d}:{n % 60:02d}",
                items=items, shipping="4.9" if n % 2 else "0.0",
                buyer={"civility": "Mme", "lastname": "Lefèvre", "firstname": "Hélène", "address1": "12 rue des Écoles",
                       "zipcode": "75005", "city": "Paris", "country": "France", "countryalpha2": "FR",
                       "phonenumber1": "0601020304", "email": f"acheteur{n}@example.fr"})


@dataclass
class Order:
    order_no: str
    xml: bytes  # the <order> element as the file-based flow gets it
    status: str = "pending"
    shipped: dict[str, str] = field(default_factory=dict)


@dataclass
class Import:
    importid: str
    skus: list[str]
    polls_left: int
    errors: dict[str, tuple[str, str]]  # sku → (code, message)


@dataclass
class Fault:
    action: str  # an action name or "*"
    kind: str  # 500, hang, slow, drop, drop-before, truncate, expired
    times: int = 1
    skip: int = 0  # let this many matching calls pass first
    key: str = ""  # only calls about this item, purchase, order or article


@dataclass(frozen=True)
class Logged:
    action: str
    key: str  # itemid, purchaseid, order_no or article; "" for listings
    outcome: str  # "ok", "refused <code>", "fault <kind>", "denied"
    applied: bool  # whether the call changed the server's state


class RakutenServer:
    def __init__(self, *, login: str = "boutique-exemple", token: str = "tok-3d9f0c1e7a52",  # noqa: S107
                 de_key: str = "key-85c2e7f0b9a1", encoding: str = "ISO-8859-1", page_size: int = 100,
                 max_new_sales: int | None = None, report_polls: int = 1,
                 tls: tuple[str, str] | None = None) -> None:
        self.login = login
        self.token = token
        self.de_key = de_key
        self.encoding = encoding
        self.page_size = page_size
        self.max_new_sales = max_new_sales  # getnewsales answers at most this many sales
        self.report_polls = report_polls  # genericimportreport says "En cours" this many times first
        self.tls = tls  # (certificate, key) files: the server speaks https
        self.sales: dict[str, Sale] = {}
        self.items: dict[str, tuple[Sale, Item]] = {}
        self.orders: dict[str, Order] = {}
        self.products: dict[str, dict[str, str]] = {}  # product_art_no or variant_art_no → values
        self.known_articles: set[str] | None = None  # editProduct: None accepts any article
        self.imports: dict[str, Import] = {}
        self.import_errors: dict[str, tuple[str, str]] = {}  # sku → error for the next imports
        self.log: list[Logged] = []
        self.applied: Counter[tuple[str, str]] = Counter()  # (action, key) → times applied
        self.faults: list[Fault] = []
        self.handler_seconds = 0.0
        self.lock = threading.RLock()
        self.release = threading.Event()  # ends hanging answers
        self.seen_secrets: list[str] = []  # every token/key value a request carried
        # called after a call of the action was answered, with the server and the call's key (a test's hook:
        # a sale accepted elsewhere right after the poll, a token expiring after so many calls)
        self.after: dict[str, Callable[[RakutenServer, str], None]] = {}
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._next_import = 90000001

    # -- running -----------------------------------------------------------------------------------

    def start(self) -> RakutenServer:
        handler = type("Handler", (_Handler,), {"rakuten": self})
        self._server = _Server(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        if self.tls is not None:
            import ssl

            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(*self.tls)
            self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="rakuten-server", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.release.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    @property
    def url(self) -> str:
        assert self._server is not None
        scheme = "https" if self.tls else "http"
        return f"{scheme}://127.0.0.1:{self._server.server_address[1]}/"

    def env(self) -> dict[str, str]:
        """The environment variables the shipped gateway.yaml names, pointing here."""
        return {"RAKUTEN_FR_URL": self.url, "RAKUTEN_FR_LOGIN": self.login, "RAKUTEN_FR_TOKEN": self.token,
                "RAKUTEN_DE_URL": self.url + "merchants/", "RAKUTEN_DE_KEY": self.de_key}

    # -- data --------------------------------------------------------------------------------------

    def add_sale(self, sale: Sale) -> Sale:
        with self.lock:
            self.sales[sale.purchaseid] = sale
            for item in sale.items:
                self.items[item.itemid] = (sale, item)
        return sale

    def add_order(self, order_no: str, xml: str | bytes, status: str = "pending") -> None:
        data = xml.encode("utf-8") if isinstance(xml, str) else xml
        with self.lock:
            self.orders[order_no] = Order(order_no, data, status)

    def inject(self, action: str, kind: str, times: int = 1, skip: int = 0, key: str = "") -> None:
        with self.lock:
            self.faults.append(Fault(action, kind, times, skip, key))

    def expire_token(self, new_token: str) -> None:
        """From now on the old token is refused; ``new_token`` is the one the seller gets."""
        with self.lock:
            self.token = new_token

    def count(self, action: str, key: str | None = None) -> int:
        """How often ``action`` (for ``key``) changed the server's state."""
        with self.lock:
            if key is None:
                return sum(n for (a, _), n in self.applied.items() if a == action)
            return self.applied[(action, key)]

    def calls(self, action: str | None = None) -> list[Logged]:
        with self.lock:
            return [c for c in self.log if action is None or c.action == action]

    def _fault_for(self, action: str, key: str) -> Fault | None:
        with self.lock:
            for fault in self.faults:
                if fault.action in (action, "*") and fault.times > 0 and fault.key in ("", key):
                    if fault.skip > 0:
                        fault.skip -= 1
                        return None
                    fault.times -= 1
                    return fault
        return None

    # -- Rakuten France -----------------------------------------------------------------------------

    def fr(self, endpoint: str, params: dict[str, str], file: bytes | None) -> tuple[int, bytes, str]:
        action = params.get("action", "")
        self.seen_secrets.append(params.get("pwd", ""))
        if params.get("login") != self.login or params.get("pwd") != self.token:
            self._log(action, "", "denied", False)
            return self._fr_error(action, "Sender", "InvalidUserRights", "Invalid login or token (token expired?)")
        handlers = {
            ("sales_ws", "getnewsales"): self._getnewsales,
            ("sales_ws", "getcurrentsales"): self._getcurrentsales,
            ("sales_ws", "getshippinginformation"): self._getshippinginformation,
            ("sales_ws", "acceptsale"): self._acceptsale,
            ("sales_ws", "refusesale"): self._refusesale,
            ("sales_ws", "settrackingpackageinfos"): self._settracking,
            ("stock_ws", "genericimportfile"): self._genericimportfile,
            ("stock_ws", "genericimportreport"): self._genericimportreport,
        }
        handler = handlers.get((endpoint, action))
        if handler is None:
            return self._fr_error(action, "Sender", "InvalidRequest", f"unknown action {action!r} on {endpoint}")
        if not params.get("version"):
            return self._fr_error(action, "Sender", "InvalidParameterValue", "version is missing")
        with self.lock:
            answer = handler(params, file)
            hook = self.after.get(action)
            if hook is not None:
                hook(self, params.get("itemid") or params.get("purchaseid") or "")
            return answer

    def accept_elsewhere(self, itemid: str) -> None:
        """The seller accepts a unit in the seller account, not through the gateway."""
        with self.lock:
            self.items[itemid][1].status = "ACCEPTED"

    def _xml(self, root: etree._Element) -> tuple[int, bytes, str]:
        body = etree.tostring(root, xml_declaration=True, encoding=self.encoding)
        return 200, body, f"text/xml; charset={self.encoding}"

    def _fr_root(self, name: str, action: str, params: dict[str, str]) -> tuple[etree._Element, etree._Element]:
        ns = FR_NS.format(action)
        root = etree.Element(f"{{{ns}}}{name}", nsmap={None: ns})
        request = etree.SubElement(root, f"{{{ns}}}request")
        etree.SubElement(request, f"{{{ns}}}version").text = params.get("version", "")
        etree.SubElement(request, f"{{{ns}}}user").text = self.login
        response = etree.SubElement(root, f"{{{ns}}}response")
        etree.SubElement(response, f"{{{ns}}}lastversion").text = params.get("version", "")
        return root, response

    def _fr_error(self, action: str, kind: str, code: str, message: str) -> tuple[int, bytes, str]:
        ns = FR_NS.format("error")
        root = etree.Element(f"{{{ns}}}errorresponse", nsmap={None: ns})
        error = etree.SubElement(root, f"{{{ns}}}error")
        etree.SubElement(error, f"{{{ns}}}type").text = kind
        etree.SubElement(error, f"{{{ns}}}code").text = code
        etree.SubElement(error, f"{{{ns}}}message").text = message
        details = etree.SubElement(error, f"{{{ns}}}details")
        etree.SubElement(details, f"{{{ns}}}detail").text = f"action {action}"
        body = etree.tostring(root, xml_declaration=True, encoding=self.encoding)
        return 200, body, f"text/xml; charset={self.encoding}"

    def _sale_xml(self, parent: etree._Element, ns: str, sale: Sale, items: list[Item]) -> None:
        def sub(p: etree._Element, name: str, value: str = "") -> etree._Element:
            el = etree.SubElement(p, f"{{{ns}}}{name}")
            if value:
                el.text = value
            return el

        el = sub(parent, "sale")
        sub(el, "purchaseid", sale.purchaseid)
        sub(el, "purchasedate", sale.purchasedate)
        info = sub(el, "deliveryinformation")
        sub(info, "shippingtype", "Normal")
        sub(info, "isfullrsl", "N")
        sub(info, "purchasebuyerlogin", "acheteur")
        sub(info, "purchasebuyeremail", sale.buyer.get("email", ""))
        for address in ("deliveryaddress", "billingaddress"):
            a = sub(info, address)
            for name in ("civility", "lastname", "firstname", "address1", "address2", "zipcode", "city", "country",
                         "countryalpha2", "phonenumber1"):
                sub(a, name, sale.buyer.get(name, ""))
        its = sub(el, "items")
        for item in items:
            i = sub(its, "item")
            sub(i, "sku", item.sku)
            sub(i, "advertid", item.advertid)
            sub(i, "itemid", item.itemid)
            sub(i, "headline", item.headline)
            sub(i, "itemstatus", item.status)
            price = sub(i, "price")
            sub(price, "amount", item.price)
            sub(price, "currency", "EUR")
            sub(i, "ean", item.ean)

    def _getnewsales(self, params: dict[str, str], file: bytes | None) -> tuple[int, bytes, str]:
        root, response = self._fr_root("getnewsalesresult", "getnewsales", params)
        ns = FR_NS.format("getnewsales")
        etree.SubElement(response, f"{{{ns}}}sellerid").text = "123456"
        sales = etree.SubElement(response, f"{{{ns}}}sales")
        count = 0
        for sale in self.sales.values():
            waiting = [i for i in sale.items if i.status == "TO_CONFIRM"]
            if not waiting:
                continue
            if self.max_new_sales is not None and count >= self.max_new_sales:
                break
            self._sale_xml(sales, ns, sale, sale.items)
            count += 1
        self._log("getnewsales", "", "ok", False)
        return self._xml(root)

    def _getcurrentsales(self, params: dict[str, str], file: bytes | None) -> tuple[int, bytes, str]:
        root, response = self._fr_root("getcurrentsalesresult", "getcurrentsales", params)
        ns = FR_NS.format("getcurrentsales")
        since = params.get("purchasedate", "")
        current = []
        for sale in self.sales.values():
            if since and sale.day < dt.date.fromisoformat(since[:10]):
                continue
            accepted = [i for i in sale.items if i.status == "ACCEPTED"]
            if accepted:
                current.append((sale, accepted))
        start = int(params.get("nexttoken") or 0)
        page = current[start:start + self.page_size]
        following = start + self.page_size
        etree.SubElement(response, f"{{{ns}}}nexttoken").text = str(following) if following < len(current) else ""
        sales = etree.SubElement(response, f"{{{ns}}}sales")
        for sale, items in page:
            self._sale_xml(sales, ns, sale, items)
        self._log("getcurrentsales", params.get("nexttoken", ""), "ok", False)
        return self._xml(root)

    def _getshippinginformation(self, params: dict[str, str], file: bytes | None) -> tuple[int, bytes, str]:
        sale = self.sales.get(params.get("purchaseid", ""))
        if sale is None:
            self._log("getshippinginformation", params.get("purchaseid", ""), "refused", False)
            return self._fr_error("getshippinginformation", "Sender", "InvalidParameterValue", "unknown purchaseid")
        root, response = self._fr_root("getshippinginformationresult", "getshippinginformation", params)
        ns = FR_NS.format("getshippinginformation")
        info = etree.SubElement(response, f"{{{ns}}}shippinginformation")
        etree.SubElement(info, f"{{{ns}}}shippingtype").text = "Normal"
        price = etree.SubElement(info, f"{{{ns}}}purchaseshippingcostprice")
        etree.SubElement(price, f"{{{ns}}}amount").text = sale.shipping
        etree.SubElement(price, f"{{{ns}}}currency").text = "EUR"
        self._log("getshippinginformation", sale.purchaseid, "ok", False)
        return self._xml(root)

    def _decide(self, action: str, params: dict[str, str], to: str) -> tuple[int, bytes, str]:
        itemid = params.get("itemid", "")
        found = self.items.get(itemid)
        if found is None:
            self._log(action, itemid, "refused InvalidParameterValue", False)
            return self._fr_error(action, "Sender", "InvalidParameterValue", f"unknown itemid {itemid}")
        _sale, item = found
        if item.status != "TO_CONFIRM":
            self._log(action, itemid, "refused InvalidItemStatus", False)
            return self._fr_error(action, "Sender", "InvalidItemStatus",
                                  f"item {itemid} is {item.status}, it cannot be {to.lower()} any more")
        item.status = to
        self._applied(action, itemid)
        root = etree.Element(f"{{{SALE_NS}}}saleacceptanceresult", nsmap={None: SALE_NS})
        request = etree.SubElement(root, f"{{{SALE_NS}}}request")
        etree.SubElement(request, f"{{{SALE_NS}}}itemid").text = itemid
        response = etree.SubElement(root, f"{{{SALE_NS}}}response")
        etree.SubElement(response, f"{{{SALE_NS}}}status").text = to.capitalize()
        return self._xml(root)

    def _acceptsale(self, params: dict[str, str], file: bytes | None) -> tuple[int, bytes, str]:
        return self._decide("acceptsale", params, "ACCEPTED")

    def _refusesale(self, params: dict[str, str], file: bytes | None) -> tuple[int, bytes, str]:
        return self._decide("refusesale", params, "REFUSED")

    def _settracking(self, params: dict[str, str], file: bytes | None) -> tuple[int, bytes, str]:
        action = "settrackingpackageinfos"
        itemid = params.get("itemid", "")
        found = self.items.get(itemid)
        if found is None:
            self._log(action, itemid, "refused InvalidParameterValue", False)
            return self._fr_error(action, "Sender", "InvalidParameterValue", f"unknown itemid {itemid}")
        item = found[1]
        if not params.get("transporter_name") or not params.get("tracking_number"):
            return self._fr_error(action, "Sender", "MissingParameter", "transporter_name and tracking_number")
        if params.get("transporter_name") == "Autre" and not params.get("tracking_url"):
            return self._fr_error(action, "Sender", "MissingParameter", "tracking_url is required with Autre")
        if item.status != "ACCEPTED":
            self._log(action, itemid, "refused InvalidItemStatus", False)
            return self._fr_error(action, "Sender", "InvalidItemStatus", f"item {itemid} is {item.status}")
        item.status = "SHIPPED"
        item.tracking = {k: params.get(k, "") for k in ("transporter_name", "tracking_number", "tracking_url")}
        self._applied(action, itemid)
        root, response = self._fr_root("settrackingpackageinfosresult", action, params)
        etree.SubElement(response, f"{{{FR_NS.format(action)}}}status").text = "OK"
        return self._xml(root)

    def _genericimportfile(self, params: dict[str, str], file: bytes | None) -> tuple[int, bytes, str]:
        action = "genericimportfile"
        if not file:
            return self._fr_error(action, "Sender", "MissingParameter", "file is missing")
        try:
            doc = etree.fromstring(file, etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False))
        except etree.XMLSyntaxError as exc:
            self._log(action, "", "refused InvalidFile", False)
            return self._fr_error(action, "Sender", "InvalidFile", f"the file is not XML: {exc}")
        skus = []
        for item in doc.iter("item"):
            sku = ""
            for attr in item.iter("attribute"):
                if (attr.findtext("key") or "") in ("submitterreference", "sellerReference"):
                    sku = attr.findtext("value") or ""
                    break
            skus.append(sku)
        importid = str(self._next_import)
        self._next_import += 1
        self.imports[importid] = Import(importid, skus, self.report_polls, dict(self.import_errors))
        self._applied(action, importid)
        ns = FR_NS.format("importresult")
        root = etree.Element(f"{{{ns}}}importresult", nsmap={None: ns})
        response = etree.SubElement(root, f"{{{ns}}}response")
        etree.SubElement(response, f"{{{ns}}}importid").text = importid
        etree.SubElement(response, f"{{{ns}}}status").text = "OK"
        return self._xml(root)

    def _genericimportreport(self, params: dict[str, str], file: bytes | None) -> tuple[int, bytes, str]:
        action = "genericimportreport"
        imp = self.imports.get(params.get("fileid", ""))
        if imp is None:
            return self._fr_error(action, "Sender", "InvalidParameterValue", "unknown fileid")
        root, response = self._fr_root("genericimportreportresult", action, params)
        ns = FR_NS.format(action)
        f = etree.SubElement(response, f"{{{ns}}}file")
        etree.SubElement(f, f"{{{ns}}}fileid").text = imp.importid
        if imp.polls_left > 0:
            imp.polls_left -= 1
            etree.SubElement(f, f"{{{ns}}}status").text = "En cours"
            self._log(action, imp.importid, "ok", False)
            return self._xml(root)
        etree.SubElement(f, f"{{{ns}}}status").text = "Traité"
        etree.SubElement(f, f"{{{ns}}}totallines").text = str(len(imp.skus))
        etree.SubElement(f, f"{{{ns}}}errorlines").text = str(sum(1 for s in imp.skus if s in imp.errors))
        start = int(params.get("nexttoken") or 0)
        for sku in imp.skus[start:start + self.page_size]:
            p = etree.SubElement(response, f"{{{ns}}}product")
            etree.SubElement(p, f"{{{ns}}}sku").text = sku
            if sku in imp.errors:
                etree.SubElement(p, f"{{{ns}}}status").text = "Erreur"
                errors = etree.SubElement(p, f"{{{ns}}}errors")
                error = etree.SubElement(errors, f"{{{ns}}}error")
                etree.SubElement(error, f"{{{ns}}}code").text = imp.errors[sku][0]
                etree.SubElement(error, f"{{{ns}}}message").text = imp.errors[sku][1]
            else:
                etree.SubElement(p, f"{{{ns}}}status").text = "OK"
        following = start + self.page_size
        etree.SubElement(response, f"{{{ns}}}nexttoken").text = str(following) if following < len(imp.skus) else ""
        self._log(action, imp.importid, "ok", False)
        return self._xml(root)

    # -- Rakuten.de ---------------------------------------------------------------------------------

    def de(self, method: str, params: dict[str, str]) -> tuple[int, bytes, str]:
        self.seen_secrets.append(params.get("key", ""))
        if params.get("key") != self.de_key:
            self._log(method, "", "denied", False)
            return self._de_error("1010", "Der API-Key ist ungültig")
        with self.lock:
            if method == "orders/getOrders":
                return self._get_orders(params)
            if method == "orders/setOrderShipped":
                return self._set_order_shipped(params)
            if method in ("products/editProduct", "products/editProductVariant"):
                return self._edit(method.split("/")[1], params)
            if method == "misc/getKeyInfo":
                self._log("getKeyInfo", "", "ok", False)
                return self._de_ok(etree.Element("key"))
        return self._de_error("1000", f"unbekannte Methode {method}")

    def _de_ok(self, *children: etree._Element) -> tuple[int, bytes, str]:
        root = etree.Element("result")
        etree.SubElement(root, "success").text = "1"
        for child in children:
            root.append(child)
        return 200, etree.tostring(root, xml_declaration=True, encoding="utf-8"), "text/xml; charset=utf-8"

    def _de_error(self, code: str, message: str) -> tuple[int, bytes, str]:
        root = etree.Element("result")
        etree.SubElement(root, "success").text = "-1"
        errors = etree.SubElement(root, "errors")
        error = etree.SubElement(errors, "error")
        etree.SubElement(error, "code").text = code
        etree.SubElement(error, "message").text = message
        return 200, etree.tostring(root, xml_declaration=True, encoding="utf-8"), "text/xml; charset=utf-8"

    def _get_orders(self, params: dict[str, str]) -> tuple[int, bytes, str]:
        wanted = params.get("status", "")
        per_page = int(params.get("per_page") or 20)
        page = int(params.get("page") or 1)
        matching = [o for o in self.orders.values() if not wanted or o.status == wanted]
        pages = max(1, -(-len(matching) // per_page))
        orders = etree.Element("orders")
        paging = etree.SubElement(orders, "paging")
        for name, value in (("total", len(matching)), ("page", page), ("pages", pages), ("per_page", per_page)):
            etree.SubElement(paging, name).text = str(value)
        for order in matching[(page - 1) * per_page: page * per_page]:
            el = etree.fromstring(order.xml)
            status = el.find("status")
            if status is not None:
                status.text = order.status
            orders.append(el)
        self._log("getOrders", f"{wanted} {page}", "ok", False)
        return self._de_ok(orders)

    def _set_order_shipped(self, params: dict[str, str]) -> tuple[int, bytes, str]:
        order = self.orders.get(params.get("order_no", ""))
        if order is None:
            self._log("setOrderShipped", params.get("order_no", ""), "refused 3110", False)
            return self._de_error("3110", "Bestellung nicht gefunden")
        if order.status not in ("pending", "editable"):
            self._log("setOrderShipped", order.order_no, "refused 3120", False)
            return self._de_error("3120", f"Bestellung hat den Status {order.status} und kann nicht versandt werden")
        order.status = "shipped"
        order.shipped = {k: params.get(k, "") for k in ("carrier", "tracking_number", "tracking_url", "dhl")}
        self._applied("setOrderShipped", order.order_no)
        return self._de_ok()

    def _edit(self, method: str, params: dict[str, str]) -> tuple[int, bytes, str]:
        art = params.get("variant_art_no") if method == "editProductVariant" else params.get("product_art_no")
        art = art or ""
        if self.known_articles is not None and art not in self.known_articles:
            code = "2310" if method == "editProductVariant" else "2210"
            self._log(method, art, f"refused {code}", False)
            return self._de_error(code, "Variante nicht gefunden" if code == "2310" else "Produkt nicht gefunden")
        values = {k: v for k, v in params.items() if k not in ("key", "product_art_no", "variant_art_no")}
        self.products.setdefault(art, {}).update(values)
        self._applied(method, art)
        return self._de_ok()

    # -- the call log -------------------------------------------------------------------------------

    def _log(self, action: str, key: str, outcome: str, applied: bool) -> None:
        with self.lock:
            self.log.append(Logged(action, key, outcome, applied))

    def _applied(self, action: str, key: str) -> None:
        self._log(action, key, "ok", True)
        self.applied[(action, key)] += 1


class _Server(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client killed in the middle of a call (the crash campaign) is no error of the server."""
        import sys

        if not isinstance(sys.exc_info()[1], ConnectionError | TimeoutError):
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    rakuten: RakutenServer
    protocol_version = "HTTP/1.1"
    # Headers and body are written separately: with Nagle's algorithm on, each answer would wait for the
    # client's delayed ACK (40 ms), which is no property of the real service.
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:  # quiet: the server keeps its own log
        pass

    def do_GET(self) -> None:
        self._handle(b"")

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self._handle(self.rfile.read(length) if length else b"")

    def _handle(self, body: bytes) -> None:
        started = time.perf_counter()
        try:
            self._answer(body)
        finally:
            with self.rakuten.lock:
                self.rakuten.handler_seconds += time.perf_counter() - started

    def _answer(self, body: bytes) -> None:
        """Answer one call: a fault injected for it instead of the call, or the call's answer, perhaps spoilt."""
        server = self.rakuten
        parts = urlsplit(self.path)
        params, file = self._params(parts.query, body)
        path = parts.path.strip("/")
        action = params.get("action") or path.rpartition("/")[2]
        key = next((params[k] for k in ("itemid", "purchaseid", "order_no", "variant_art_no", "product_art_no")
                    if params.get(k)), "")
        fault = server._fault_for(action, key)
        if fault is not None and fault.kind in _INSTEAD_OF_CALL:
            # a hostile answer is logged under the call's key, a failed call under its itemid
            logged = key if fault.kind in _HOSTILE else params.get("itemid", "")
            server._log(action, logged, f"fault {fault.kind}", False)
            _INSTEAD_OF_CALL[fault.kind](self, action)
            return
        status, data, content_type = self._call(path, params, file)
        deliver = _DELIVERY.get("" if fault is None else fault.kind)
        if deliver is not None:
            deliver(self, status, data, content_type)

    def _params(self, query: str, body: bytes) -> tuple[dict[str, str], bytes | None]:
        """The call's parameters, from the query and a form body, and the file of a multipart upload."""
        params = {k: v[0] for k, v in parse_qs(query, keep_blank_values=True).items()}
        file = None
        ctype = self.headers.get("Content-Type", "")
        if body and ctype.startswith("application/x-www-form-urlencoded"):
            params.update({k: v[0] for k, v in parse_qs(body.decode(), keep_blank_values=True).items()})
        elif body and ctype.startswith("multipart/form-data"):
            message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
                f"Content-Type: {ctype}\r\n\r\n".encode() + body)
            for part in message.iter_parts():
                name = part.get_param("name", header="content-disposition")
                payload = part.get_payload(decode=True)
                if part.get_filename():
                    file = payload
                elif name:
                    params[str(name)] = payload.decode()
        return params, file

    def _call(self, path: str, params: dict[str, str], file: bytes | None) -> tuple[int, bytes, str]:
        """The answer of Rakuten France (``sales_ws``, ``stock_ws``) or Germany (``merchants/…``)."""
        if path in ("sales_ws", "stock_ws"):
            return self.rakuten.fr(path, params, file)
        if path.startswith("merchants/"):
            return self.rakuten.de(path.removeprefix("merchants/"), params)
        return 404, b"not found", "text/plain"

    # -- faults instead of the call -----------------------------------------------------------------

    def _send_dtd(self, action: str) -> None:
        self._send(200, b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY a "aaaaaaaaaa">]>'
                        b"<getnewsalesresult>&a;&a;</getnewsalesresult>", "text/xml")

    def _send_redirect(self, action: str) -> None:
        self.send_response(302)
        self.send_header("Location", "https://elsewhere.example/")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _send_huge(self, action: str) -> None:
        self._send(200, b"<getnewsalesresult>" + b"<x/>" * 1_000_000 + b"</getnewsalesresult>", "text/xml")

    def _send_500(self, action: str) -> None:
        self._send(500, b"<html>Internal Server Error</html>", "text/html")

    def _hang(self, action: str) -> None:
        self.rakuten.release.wait(10)
        self.close_connection = True

    def _drop_before(self, action: str) -> None:
        self._drop()

    def _send_expired(self, action: str) -> None:
        self._send(*self.rakuten._fr_error(action, "Sender", "InvalidUserRights", "token expired"))

    # -- the call's answer, as it is or spoilt ------------------------------------------------------

    def _send(self, status: int, data: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _drop(self) -> None:
        """Close the connection without an answer (the call may have been applied)."""
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)

    def _drop_after(self, status: int, data: bytes, content_type: str) -> None:
        self._drop()

    def _send_truncated(self, status: int, data: bytes, content_type: str) -> None:
        self._send(status, data[: len(data) // 2], content_type)

    def _send_slowly(self, status: int, data: bytes, content_type: str) -> None:
        """A byte every 50 ms, until the test releases the server."""
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        for i in range(len(data)):
            if self.rakuten.release.wait(0.05):
                break
            self.wfile.write(data[i:i + 1])
            self.wfile.flush()
        self.close_connection = True


_HOSTILE = ("dtd", "redirect", "huge")  # answers no client may accept
_INSTEAD_OF_CALL: dict[str, Callable[[_Handler, str], None]] = {
    "dtd": _Handler._send_dtd,
    "redirect": _Handler._send_redirect,
    "huge": _Handler._send_huge,
    "500": _Handler._send_500,
    "hang": _Handler._hang,
    "drop-before": _Handler._drop_before,
    "expired": _Handler._send_expired,
}
_DELIVERY: dict[str, Callable[[_Handler, int, bytes, str], None]] = {  # by fault kind; "" is no fault
    "": _Handler._send,
    "drop": _Handler._drop_after,
    "truncate": _Handler._send_truncated,
    "slow": _Handler._send_slowly,
}
