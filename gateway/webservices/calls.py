"""What an ``http`` destination does with the rows of an output: one call per row (or per item), and how
the outcome of a call whose answer was lost is found out.

Each operation says, for its rows:

* ``calls``: the calls they make, each with a name unique in the delivery (``acceptsale 260306083``),
  under which the journal records it before and after;
* ``make``: the call itself; an answer that refuses the record raises
  :class:`~gateway.webservices.client.RecordRefused` (the destination notes the reason and goes on),
  trouble of the service :class:`~gateway.webservices.client.ServiceError` (everything waits);
* ``resolve``: the outcome of a call recorded as started but never answered, found out by asking
  the service (:class:`Outcome`), never by making the call blindly again.

How each lost answer is resolved (docs/rakuten.md has the table):

=====================  =================================================================================
acceptsale             the unit is among ``getcurrentsales``: accepted. Still among ``getnewsales``: not
                       yet, accept it. Neither: no longer waiting (refused, cancelled elsewhere): done.
refusesale             still among ``getnewsales``: not yet, refuse it; otherwise done.
settrackingpackageinfos  still among ``getcurrentsales`` (accepted, not shipped): not yet; otherwise done.
setOrderShipped        still among the open orders (``getOrders`` pending, editable): not yet; otherwise done.
editProduct(Variant)   a stock or price is a value, not an action: sending the same value again leaves
                       Rakuten as one call would, and updates of a flow go in order (a later update
                       waits for an earlier one), so no newer value can be overwritten: sent again.
=====================  =================================================================================
"""

from __future__ import annotations

import csv
import enum
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import DeliveryError
from ..i18n import _

if TYPE_CHECKING:
    from lxml import etree

    from ..journal import Journal
    from .rakuten_de import RakutenDe
    from .rakuten_fr import RakutenFrance

#: Journal memory: a Rakuten France purchase's item ids, kept by the acceptance for the shipping confirmation.
PURCHASE_ITEMS = "rakuten-fr:purchase-items"


class Resolved(enum.Enum):
    TAKEN = "took effect"  # (or can no longer be made): record it as answered
    NOT_TAKEN = "did not take effect"  # make it (again)
    UNKNOWN = "unknown"  # the service cannot tell now: wait


@dataclass(frozen=True)
class Outcome:
    resolved: Resolved
    words: str = ""


@dataclass(frozen=True)
class Call:
    """One call a delivery makes."""

    name: str  # unique within the delivery; the journal's name for it
    request: str  # what is asked, in words (no secrets)
    row: dict[str, str]
    key: str  # the record it is about (a purchase, an order, an article), for the journal's notes
    items: tuple[str, ...] = ()  # acceptsale: the units of the purchase to remember for its shipping
    problem: str = ""  # why it cannot be made at all (a purchase whose units are unknown)
    extra: dict[str, str] = field(default_factory=dict)


def read_rows(path: Path, columns: tuple[str, ...], output: str) -> Iterator[dict[str, str]]:
    """The rows of a staged CSV output (UTF-8, ``;``), streamed; ``DeliveryError`` when a column is missing."""
    with open(path, encoding="utf-8-sig", newline="") as fh:
        reader = csv.DictReader(fh, delimiter=";")
        have = set(reader.fieldnames or [])
        missing = [c for c in columns if c not in have]
        if missing:
            raise DeliveryError(_(
                "the output {output} lacks the column(s) {missing} that this web-service call needs (it has "
                "{columns}); correct the mapping's output, then retry the input").format(
                output=output, missing=", ".join(missing), columns=", ".join(reader.fieldnames or []) or _("none")))
        for row in reader:
            yield {k: (v or "").strip() for k, v in row.items() if k is not None}


class Operation(ABC):
    """The calls one kind of output makes (see the module docstring)."""

    name = ""
    apis: tuple[str, ...] = ()
    columns: tuple[str, ...] = ()
    in_order = False  # values that replace each other (stock, prices): updates of a flow go in order

    def __init__(self, api: RakutenFrance | RakutenDe, journal: Journal | None, spool: Path) -> None:
        self.api = api
        self.journal = journal
        self.spool = spool

    @abstractmethod
    def calls(self, rows: Iterator[dict[str, str]], *, remember: bool) -> Iterator[Call]:
        """The calls for ``rows``, in order; ``remember`` is False when only asking (``status``)."""

    @abstractmethod
    def make(self, call: Call) -> str:
        """Make the call; the answer in words."""

    @abstractmethod
    def resolve(self, call: Call) -> Outcome:
        """The outcome of ``call`` whose answer was lost, asked of the service."""

    def refused_note(self, call: Call, words: str) -> dict[str, str]:
        return {"key": call.key, "reason": _("{service} refused {request}: {error}").format(
            service=self.api.describe(), request=call.request, error=words)}

    def answered_note(self, call: Call, answer: str) -> dict[str, str] | None:
        """A note for the journal about a call that went through (a refused sale), if it deserves one."""
        return None

    def wait_instead(self, call: Call, words: str) -> str | None:
        """Why a refusal only means "not yet" (a shipment of a unit whose acceptance is still owed), if it does."""
        return None

    def forget_snapshot(self) -> None:  # noqa: B027 - most operations keep no listings
        """Listings fetched to resolve lost answers are for one pass only."""


# -- Rakuten France ---------------------------------------------------------------------------------


class _Listings:
    """The unit ids Rakuten France lists as new and as current (accepted, unshipped), read once per pass."""

    def __init__(self, api: RakutenFrance, spool: Path) -> None:
        self.api = api
        self.spool = spool
        self._new: set[str] | None = None
        self._current: dict[str, str] | None = None  # itemid → purchaseid
        self._purchases: dict[str, list[str]] | None = None

    def new(self) -> set[str]:
        if self._new is None:
            self._new = {_item_id(item) for sale in self.api.waiting_sales(self.spool) for item in _items(sale)}
        return self._new

    def current(self) -> dict[str, str]:
        if self._current is None:
            from .answers import text

            current: dict[str, str] = {}
            purchases: dict[str, list[str]] = {}
            for sale in self.api.current_sales(self.spool):
                purchase = text(sale, "purchaseid")
                for item in _items(sale):
                    status = _item_status(item)
                    if status in ("REFUSED", "CANCELLED", "CANCELED"):
                        continue
                    current[_item_id(item)] = purchase
                    purchases.setdefault(purchase, []).append(_item_id(item))
            self._current, self._purchases = current, purchases
        return self._current

    def items_of(self, purchase: str) -> list[str]:
        self.current()
        return list((self._purchases or {}).get(purchase, []))


def _items(sale: etree._Element) -> list[etree._Element]:
    from .answers import find_all

    return find_all(sale, "item")


def _item_id(item: etree._Element) -> str:
    from .answers import text

    return text(item, "itemid")


def _item_status(item: etree._Element) -> str:
    from .answers import text

    return text(item, "itemstatus").upper()


class AcceptSales(Operation):
    """Rows ``purchaseid;itemid;action;reason``: ``acceptsale`` (action ``accept``) or ``refusesale`` per unit.

    Before the units of a purchase are accepted, its item ids are remembered in the journal for
    the shipping confirmation, which SOL's shipment export cannot give.
    """

    name = "acceptsale"
    apis = ("rakuten-fr",)
    columns = ("purchaseid", "itemid", "action", "reason")

    def __init__(self, api: RakutenFrance | RakutenDe, journal: Journal | None, spool: Path) -> None:
        super().__init__(api, journal, spool)
        self.fr: RakutenFrance = api  # type: ignore[assignment]
        self.listings = _Listings(self.fr, spool)

    def calls(self, rows: Iterator[dict[str, str]], *, remember: bool) -> Iterator[Call]:
        group: list[dict[str, str]] = []
        for row in rows:
            if group and row["purchaseid"] != group[0]["purchaseid"]:
                yield from self._group(group, remember)
                group = []
            group.append(row)
        if group:
            yield from self._group(group, remember)

    def _group(self, rows: list[dict[str, str]], remember: bool) -> Iterator[Call]:
        purchase = rows[0]["purchaseid"]
        accepted = tuple(r["itemid"] for r in rows if r["action"].lower() != "refuse")
        if remember and accepted and self.journal is not None:
            self.journal.remember(PURCHASE_ITEMS, purchase, " ".join(accepted))
        for row in rows:
            action = "refusesale" if row["action"].lower() == "refuse" else "acceptsale"
            if row["action"].lower() not in ("accept", "refuse"):
                yield Call(name=f"{action} {row['itemid']}",
                           request=_("{call} of unit {unit}").format(call=action, unit=row["itemid"]), row=row,
                           key=purchase, problem=_("the action '{action}' is neither accept nor refuse").format(
                               action=row["action"]))
                continue
            reason = f" ({row['reason']})" if row["reason"] and action == "refusesale" else ""
            yield Call(name=f"{action} {row['itemid']}",
                       request=_("{call} of unit {unit} of sale {sale}{reason}").format(
                           call=action, unit=row["itemid"], sale=purchase, reason=reason),
                       row=row, key=purchase, items=accepted)

    def make(self, call: Call) -> str:
        if call.name.startswith("refusesale"):
            return self.fr.refuse(call.row["itemid"])
        return self.fr.accept(call.row["itemid"])

    def resolve(self, call: Call) -> Outcome:
        item = call.row["itemid"]
        if call.name.startswith("acceptsale") and item in self.listings.current():
            return Outcome(Resolved.TAKEN, _("accepted: Rakuten lists the unit among the current sales"))
        if item in self.listings.new():
            return Outcome(Resolved.NOT_TAKEN, _("still waiting for acceptance"))
        if call.name.startswith("refusesale"):
            return Outcome(Resolved.TAKEN, _("refused: the unit no longer waits for acceptance"))
        return Outcome(Resolved.TAKEN, _("no longer waiting for acceptance (refused, cancelled or handled elsewhere)"))

    def answered_note(self, call: Call, answer: str) -> dict[str, str] | None:
        if call.name.startswith("refusesale"):
            return {"key": call.key, "reason": _("sale {sale}: unit {unit} refused on Rakuten France{reason}").format(
                sale=call.key, unit=call.row["itemid"], reason=": " + call.row["reason"] if call.row["reason"] else "")}
        return None

    def refused_note(self, call: Call, words: str) -> dict[str, str]:
        return {"key": call.key, "reason": _("sale {sale}: Rakuten France did not take the {request}: {error}").format(
            sale=call.key, request=call.request, error=words)}

    def forget_snapshot(self) -> None:
        self.listings = _Listings(self.fr, self.spool)


class TrackFrance(Operation):
    """Rows ``purchaseid;transporter;trackingnumber;trackingurl``: ``settrackingpackageinfos`` per unit.

    The units of a purchase are those the acceptance remembered; a purchase the gateway did not
    import (accepted in the seller account) is looked up among ``getcurrentsales``.
    """

    name = "settrackingpackageinfos"
    apis = ("rakuten-fr",)
    columns = ("purchaseid", "transporter", "trackingnumber", "trackingurl")

    def __init__(self, api: RakutenFrance | RakutenDe, journal: Journal | None, spool: Path) -> None:
        super().__init__(api, journal, spool)
        self.fr: RakutenFrance = api  # type: ignore[assignment]
        self.listings = _Listings(self.fr, spool)

    def calls(self, rows: Iterator[dict[str, str]], *, remember: bool) -> Iterator[Call]:
        for row in rows:
            purchase = row["purchaseid"]
            kept = self.journal.recall(PURCHASE_ITEMS, purchase) if self.journal is not None else None
            items = kept.split() if kept else self.listings.items_of(purchase)
            if not items:
                yield Call(name=f"settrackingpackageinfos {purchase}",
                           request=_("shipping confirmation of sale {sale}").format(sale=purchase), row=row,
                           key=purchase,
                           problem=_("sale {sale} is not known: it was not imported through the Rakuten France "
                                     "web service and Rakuten does not list it among the accepted, unshipped sales; "
                                     "confirm it in the Rakuten seller account").format(sale=purchase))
                continue
            for item in items:
                yield Call(name=f"settrackingpackageinfos {item}",
                           request=_("shipping confirmation of unit {unit} of sale {sale} ({carrier} {number})").format(
                               unit=item, sale=purchase, carrier=row["transporter"], number=row["trackingnumber"]),
                           row=row, key=purchase, extra={"itemid": item})

    def make(self, call: Call) -> str:
        row = call.row
        return self.fr.track(call.extra["itemid"], row["transporter"], row["trackingnumber"], row["trackingurl"])

    def resolve(self, call: Call) -> Outcome:
        if call.extra.get("itemid") in self.listings.current():
            return Outcome(Resolved.NOT_TAKEN, _("Rakuten still lists the unit as accepted and not shipped"))
        if call.extra.get("itemid") in self.listings.new():
            return Outcome(Resolved.NOT_TAKEN, _("the unit is not even accepted yet"))
        return Outcome(Resolved.TAKEN, _("shipped: Rakuten no longer lists the unit among the unshipped sales"))

    def wait_instead(self, call: Call, words: str) -> str | None:
        self.forget_snapshot()
        if call.extra.get("itemid") in self.listings.new():
            return _("unit {unit} of sale {sale} is not accepted yet; its shipping confirmation waits until the "
                     "acceptance has gone through").format(unit=call.extra["itemid"], sale=call.key)
        return None

    def forget_snapshot(self) -> None:
        self.listings = _Listings(self.fr, self.spool)


# -- Rakuten.de -------------------------------------------------------------------------------------


class ShipGermany(Operation):
    """Rows ``order_no;carrier;tracking_number;tracking_url;dhl``: ``setOrderShipped`` per order."""

    name = "setOrderShipped"
    apis = ("rakuten-de",)
    columns = ("order_no", "carrier", "tracking_number", "tracking_url", "dhl")
    open_statuses = ("pending", "editable")

    def __init__(self, api: RakutenFrance | RakutenDe, journal: Journal | None, spool: Path) -> None:
        super().__init__(api, journal, spool)
        self.de: RakutenDe = api  # type: ignore[assignment]
        self._open: set[str] | None = None

    def calls(self, rows: Iterator[dict[str, str]], *, remember: bool) -> Iterator[Call]:
        for row in rows:
            yield Call(name=f"setOrderShipped {row['order_no']}",
                       request=_("shipping confirmation of order {order} ({carrier} {number})").format(
                           order=row["order_no"], carrier=row["carrier"], number=row["tracking_number"]),
                       row=row, key=row["order_no"])

    def make(self, call: Call) -> str:
        r = call.row
        return self.de.ship(r["order_no"], r["carrier"], r["tracking_number"], r["tracking_url"], r["dhl"])

    def resolve(self, call: Call) -> Outcome:
        from .answers import text

        if self._open is None:
            self._open = {text(order, "order_no") for status in self.open_statuses
                          for order in self.de.orders(status, self.spool)}
        if call.row["order_no"] in self._open:
            return Outcome(Resolved.NOT_TAKEN, _("the order is still open at Rakuten"))
        return Outcome(Resolved.TAKEN, _("shipped: the order is no longer open at Rakuten"))

    def forget_snapshot(self) -> None:
        self._open = None


class EditProducts(Operation):
    """Rows ``product_art_no;variant_art_no;stock;available;price;price_reduced;price_reduced_type``:
    ``editProductVariant`` for a variant, ``editProduct`` for an article; empty values are not sent."""

    name = "editProduct"
    apis = ("rakuten-de",)
    columns = ("product_art_no", "variant_art_no", "stock", "available", "price", "price_reduced",
               "price_reduced_type")
    in_order = True
    values = ("stock", "available", "price", "price_reduced", "price_reduced_type")

    def __init__(self, api: RakutenFrance | RakutenDe, journal: Journal | None, spool: Path) -> None:
        super().__init__(api, journal, spool)
        self.de: RakutenDe = api  # type: ignore[assignment]

    def calls(self, rows: Iterator[dict[str, str]], *, remember: bool) -> Iterator[Call]:
        for row in rows:
            article = row["variant_art_no"] or row["product_art_no"]
            sent = ", ".join(f"{k} {row[k]}" for k in self.values if row.get(k))
            call = "editProductVariant" if row["variant_art_no"] else "editProduct"
            values = sent or _("no values")
            yield Call(name=f"{call} {article}", request=f"{call} {article} ({values})", row=row, key=article)

    def make(self, call: Call) -> str:
        r = call.row
        return self.de.edit(r["product_art_no"], r["variant_art_no"], {k: r.get(k, "") for k in self.values})

    def resolve(self, call: Call) -> Outcome:
        return Outcome(Resolved.NOT_TAKEN, _("a stock or price is a value: sending the same value again changes "
                                             "nothing, and later updates wait for this one"))

    def refused_note(self, call: Call, words: str) -> dict[str, str]:
        return {"key": call.key, "reason": _("Rakuten.de refused the update of article {article}: {error}").format(
            article=call.key, error=words)}


OPERATIONS: dict[str, type[Operation]] = {
    op.name: op for op in (AcceptSales, TrackFrance, ShipGermany, EditProducts)
}
