"""The conformance suite every kind of destination passes (the contract of gateway/destinations/base.py).

Each kind is tried against the real thing: a folder on disk, OpenSSH's sshd (tests/sshd.py),
aiosmtpd (tests/mailserver.py), and the memory destination. A *harness* per kind knows how to
make a fresh destination object (as a restarted process would), what arrived at the far side,
and how to take the partner down and bring it back. The tests are the same for every kind:

* a crash after each step, then recovery by a new process that asks ``status``;
* the same key delivered twice arrives once;
* the partner down, then up: a plain ``DeliveryError``, then delivery, once;
* a lost answer (the delivery arrived, the caller never heard) resolved by asking.

A web service (``http``) is tried against the local Rakuten server (tests/rakuten_server.py): its
outputs are rows of calls (accept these units), which "arrive" when the server applied them; the
delivery's call log is the journal's and survives a crash as the journal does (``calls``), and a
lost answer is one the log never got (``lose_answers``).

A new kind of destination adds its harness to ``HARNESSES`` and must pass all of it.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from mailserver import Server
from sshd import Sshd, SshdUnavailable

from gateway.destinations.base import CallLog, Delivered, Delivery, Destination, NoCalls
from gateway.destinations.email import SmtpDestination
from gateway.destinations.folder import FolderDestination
from gateway.destinations.memory import MemoryDestination, store
from gateway.destinations.sftp import SftpDestination
from gateway.errors import DeliveryError
from gateway.writers.email import build_message


class Harness:
    """One kind of destination and its far side."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.made: list[Destination] = []
        self.count = 0

    def make(self) -> Destination:
        """A new destination object, as a restarted process would build it."""
        dest = self._make()
        self.made.append(dest)
        return dest

    def item(self, data: bytes | None = None) -> Delivery:
        self.count += 1
        staged = self.tmp_path / f"staged-{self.count}"
        staged.write_bytes(data if data is not None else self.content(self.count))
        return Delivery(key=f"c0ffee00-{self.count}", name=f"out-{self.count}.{self.suffix}", staged=staged,
                        flow="flow", input_id=self.count, output="out")

    suffix = "csv"

    def content(self, n: int) -> bytes:
        return f"Artikelnummer;Bestand\r\n{n};5\r\n".encode()

    def close(self) -> None:
        for dest in self.made:
            dest.close()

    def calls(self) -> CallLog:
        """The call log a delivery gets: the journal's, which survives a crash as the journal does.

        Kinds that make no remote calls get a fresh one each time; it does not matter to them.
        """
        return NoCalls()

    def lose_answers(self) -> None:
        """From now on, the answers of calls never reach the call log (the caller dies first)."""

    # what each kind provides
    def _make(self) -> Destination:
        raise NotImplementedError

    def arrived(self) -> list[bytes]:
        """Everything that arrived at the far side, once per arrival."""
        raise NotImplementedError

    def down(self) -> None:
        raise NotImplementedError

    def up(self) -> None:
        raise NotImplementedError


class FolderHarness(Harness):
    def __init__(self, tmp_path: Path) -> None:
        super().__init__(tmp_path)
        self.folder = tmp_path / "outbox"
        self.taken: list[bytes] = []

    def _make(self) -> Destination:
        return FolderDestination(self.folder)

    def arrived(self) -> list[bytes]:
        if not self.folder.is_dir():
            return list(self.taken)
        return self.taken + [p.read_bytes() for p in sorted(self.folder.iterdir()) if not p.name.startswith(".")]

    def take_away(self) -> None:
        """The importer takes what arrived (as SOL's does, the moment it appears)."""
        for p in sorted(self.folder.iterdir()):
            if not p.name.startswith("."):
                self.taken.append(p.read_bytes())
                p.unlink()

    def down(self) -> None:
        self.moved = self.tmp_path / "outbox-away"
        if self.folder.exists():
            self.folder.rename(self.moved)
        self.folder.write_text("a file where the outbox folder should be")

    def up(self) -> None:
        self.folder.unlink()
        if self.moved.exists():
            self.moved.rename(self.folder)


class SftpHarness(Harness):
    def __init__(self, tmp_path: Path) -> None:
        super().__init__(tmp_path)
        try:
            self.sshd = Sshd.create()
        except SshdUnavailable as exc:
            pytest.skip(str(exc))
        (self.sshd.root / "in").mkdir()

    def _make(self) -> Destination:
        from gateway.sftp import SftpEndpoint

        endpoint = SftpEndpoint(self.sshd.host, self.sshd.port, self.sshd.user, self.sshd.client_key,
                                self.sshd.known_hosts, timeout=5, partner="partner", retry_delay=0.05)
        return SftpDestination(endpoint, "in")

    def arrived(self) -> list[bytes]:
        folder = self.sshd.root / "in"
        return [p.read_bytes() for p in sorted(folder.iterdir()) if not p.name.startswith(".")]

    def down(self) -> None:
        self.sshd.kill()

    def up(self) -> None:
        self.sshd.start()

    def close(self) -> None:
        super().close()
        self.sshd.cleanup()


class SmtpHarness(Harness):
    suffix = "eml"

    def __init__(self, tmp_path: Path) -> None:
        super().__init__(tmp_path)
        self.server = Server().start()

    def content(self, n: int) -> bytes:
        return build_message(sender="Shop <shop@example.org>", to=f"kunde{n}@example.org", subject=f"Sendung {n}",
                             text=f"Ihre Sendung {n} ist unterwegs.\n", message_id=f"<gw.test.{n}@example.org>")

    def _make(self) -> Destination:
        return SmtpDestination("127.0.0.1", self.server.port, spool=self.tmp_path / "spool", security="none")

    def arrived(self) -> list[bytes]:
        return [data for _, _, data, _ in self.server.mailbox.messages]

    def down(self) -> None:
        self.server.stop()

    def up(self) -> None:
        self.server.start()

    def close(self) -> None:
        super().close()
        self.server.stop()


class MemoryHarness(Harness):
    def __init__(self, tmp_path: Path) -> None:
        super().__init__(tmp_path)
        self.name = f"conformance-{tmp_path.name}"

    def _make(self) -> Destination:
        return MemoryDestination(self.name)

    def arrived(self) -> list[bytes]:
        s = store(self.name)
        return [data for key, (_, data) in s.delivered.items() for _ in range(s.arrivals.get(key, 1))]

    def down(self) -> None:
        store(self.name).down = True

    def up(self) -> None:
        store(self.name).down = False


class _Log(NoCalls):
    """The journal's record of a delivery's calls; ``deaf`` loses the answers, as a crash after the call does."""

    deaf = False

    def answered(self, call: str, answer: str) -> None:
        if not self.deaf:
            super().answered(call, answer)


class HttpHarness(Harness):
    """Rakuten France's acceptsale on the local Rakuten server: each output accepts the units of one sale."""

    def __init__(self, tmp_path: Path) -> None:
        super().__init__(tmp_path)
        from rakuten_install import ServerEnvironment
        from rakuten_server import RakutenServer

        self.server = RakutenServer().start()
        self.environment = ServerEnvironment(self.server)
        self.log = _Log()
        self.units: dict[bytes, list[str]] = {}  # an output's content → the units it accepts

    def content(self, n: int) -> bytes:
        from rakuten_server import make_sale

        sale = self.server.add_sale(make_sale(100 + n, units=2))
        data = ("purchaseid;itemid;action;reason\r\n"
                + "".join(f"{sale.purchaseid};{i.itemid};accept;\r\n" for i in sale.items)).encode()
        self.units[data] = [i.itemid for i in sale.items]
        return data

    def _make(self) -> Destination:
        from rakuten_install import service_config

        from gateway.clock import SYSTEM_CLOCK
        from gateway.destinations.http import HttpDestination
        from gateway.webservices.client import ServiceClient
        from gateway.webservices.rakuten_fr import RakutenFrance

        config = service_config("rakuten-fr")
        return HttpDestination(RakutenFrance(ServiceClient("rakuten-fr", config)), "acceptsale", journal=None,
                               place="annahme", clock=SYSTEM_CLOCK, spool=self.tmp_path / "spool")

    def calls(self) -> CallLog:
        return self.log

    def lose_answers(self) -> None:
        self.log.deaf = True

    def arrived(self) -> list[bytes]:
        """Each output whose units the server accepted, as often as the most accepted of them."""
        out = []
        for data, units in self.units.items():
            out += [data] * max(self.server.count("acceptsale", u) for u in units)
        return out

    def down(self) -> None:
        self.server.inject("*", "drop-before", times=10**6)

    def up(self) -> None:
        self.server.faults.clear()

    def close(self) -> None:
        super().close()
        self.server.stop()
        self.environment.restore()


class SqlHarness(Harness):
    """A staging table on the session's PostgreSQL server, reached through a proxy that can be cut."""

    postgres: Any = None  # set by the fixture below

    def __init__(self, tmp_path: Path) -> None:
        super().__init__(tmp_path)
        from sqlcampaign import staging_database
        from tcpproxy import Proxy

        if self.postgres is None:
            pytest.skip("no PostgreSQL server")
        self.name = f"conformance_{abs(hash(str(tmp_path))) % 10**8}"
        staging_database(self.postgres, self.name)
        with self.postgres.connect(self.name) as conn:
            conn.execute("CREATE TABLE ConformanceStaging (ImportID bigserial PRIMARY KEY, Artikelnummer varchar(31), "
                         "Bestand varchar(20), GatewayKey varchar(200))")
            conn.execute("GRANT ALL ON ALL TABLES IN SCHEMA public TO gateway")
            conn.execute("GRANT ALL ON ALL SEQUENCES IN SCHEMA public TO gateway")
        self.proxy = Proxy(self.postgres.port)
        self.env = f"GW_CONFORMANCE_{self.name.upper()}"
        os.environ[self.env] = self.postgres.url(self.name, port=self.proxy.port)

    def _make(self) -> Destination:
        from gateway.destinations.sql import SqlDestination
        from gateway.sql.database import Database, DatabaseConfig

        config = DatabaseConfig(url_env=self.env, staging_tables=["ConformanceStaging"], connect_timeout_seconds=2,
                                lock_timeout_seconds=2)
        return SqlDestination(Database("sol", config), "ConformanceStaging", key_column="GatewayKey")

    def arrived(self) -> list[bytes]:
        """Each delivery's rows, as the CSV they came from."""
        with self.postgres.connect(self.name) as conn:
            rows = conn.execute("SELECT gatewaykey, artikelnummer, bestand FROM conformancestaging "
                                "ORDER BY importid").fetchall()
        arrivals: dict[str, list[str]] = {}
        for key, nummer, bestand in rows:
            arrivals.setdefault(key, []).append(f"{nummer};{bestand}\r\n")
        return [("Artikelnummer;Bestand\r\n" + "".join(lines)).encode() for lines in arrivals.values()]

    def down(self) -> None:
        self.proxy.down()

    def up(self) -> None:
        self.proxy.up()

    def close(self) -> None:
        for dest in self.made:
            getattr(dest, "database", None) and dest.database.close()  # type: ignore[attr-defined]
        super().close()
        self.proxy.close()
        os.environ.pop(self.env, None)


HARNESSES: dict[str, Callable[[Path], Harness]] = {
    "sql": SqlHarness,
    "folder": FolderHarness,
    "sftp": SftpHarness,
    "smtp": SmtpHarness,
    "memory": MemoryHarness,
    "http": HttpHarness,
}


@pytest.fixture(params=sorted(HARNESSES))
def harness(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Harness]:
    if request.param == "sql":
        SqlHarness.postgres = request.getfixturevalue("postgres")
    made = HARNESSES[request.param](tmp_path)
    try:
        yield made
    finally:
        made.close()


def same(arrived: bytes, item: Delivery) -> bool:
    """An arrival is the staged output (mail servers may normalise line ends)."""
    return arrived.replace(b"\r\n", b"\n") == item.staged.read_bytes().replace(b"\r\n", b"\n")


# -- the tests --------------------------------------------------------------------------------------


def test_a_delivery_arrives_once_whole(harness: Harness) -> None:
    item = harness.item()
    dest = harness.make()
    dest.prepare(item)
    assert harness.arrived() == []  # prepared is not visible
    location = dest.deliver(item, harness.calls())
    assert location
    (arrived,) = harness.arrived()
    assert same(arrived, item)
    status = dest.status(item, harness.calls())
    assert status.delivered is Delivered.YES and status.location


def test_the_same_key_delivered_twice_arrives_once(harness: Harness) -> None:
    item = harness.item()
    dest = harness.make()
    dest.prepare(item)
    first = dest.deliver(item, harness.calls())
    second = dest.deliver(item, harness.calls())
    assert first == second
    assert len(harness.arrived()) == 1


@pytest.mark.parametrize("crash_after", ["prepare", "deliver"])
def test_a_crash_after_each_step_is_recovered_by_asking(harness: Harness, crash_after: str) -> None:
    item = harness.item()
    crashed = harness.make()
    crashed.prepare(item)
    if crash_after == "deliver":
        crashed.deliver(item, harness.calls())
    # The process dies here; a new one finds the journal at "uploaded" and asks.
    dest = harness.make()
    status = dest.status(item, harness.calls())
    if crash_after == "prepare":
        assert status.delivered is Delivered.NO
        dest.deliver(item, harness.calls())
    else:
        assert status.delivered is Delivered.YES
    assert len(harness.arrived()) == 1
    assert dest.status(item, harness.calls()).delivered is Delivered.YES


def test_the_partner_down_then_up_delivers_once(harness: Harness) -> None:
    item = harness.item()
    dest = harness.make()
    harness.down()
    with pytest.raises(DeliveryError) as info:
        dest.prepare(item)
        dest.deliver(item, harness.calls())
    assert "Traceback" not in str(info.value) and str(info.value)
    harness.up()
    dest.prepare(item)
    dest.deliver(item, harness.calls())
    assert len(harness.arrived()) == 1


def test_down_between_prepare_and_deliver_then_up(harness: Harness) -> None:
    item = harness.item()
    dest = harness.make()
    dest.prepare(item)
    harness.down()
    with pytest.raises(DeliveryError):
        dest.deliver(item, harness.calls())
    harness.up()
    again = harness.make()
    assert again.status(item, harness.calls()).delivered is Delivered.NO
    again.deliver(item, harness.calls())
    assert len(harness.arrived()) == 1


def test_a_lost_answer_is_resolved_by_asking_not_by_delivering_again(harness: Harness) -> None:
    item = harness.item()
    dest = harness.make()
    dest.prepare(item)
    harness.lose_answers()
    dest.deliver(item, harness.calls())  # arrives; the caller dies before it can record the answer
    recovered = harness.make()
    status = recovered.status(item, harness.calls())
    assert status.delivered is Delivered.YES
    assert len(harness.arrived()) == 1


def test_status_changes_nothing(harness: Harness) -> None:
    item = harness.item()
    dest = harness.make()
    dest.prepare(item)
    for _ in range(3):
        assert dest.status(item, harness.calls()).delivered is Delivered.NO
    assert harness.arrived() == []


def test_two_outputs_of_the_same_name_with_different_keys_do_not_meet_before_delivery(harness: Harness) -> None:
    first, second = harness.item(), harness.item()
    second = Delivery(key=second.key, name=first.name, staged=second.staged, flow="flow", input_id=2,
                      output="out")
    dest = harness.make()
    dest.prepare(first)
    dest.prepare(second)
    assert dest.status(first, harness.calls()).delivered is Delivered.NO
    assert dest.status(second, harness.calls()).delivered is Delivered.NO


def test_folder_delivery_taken_by_the_importer_still_counts_as_delivered(tmp_path: Path) -> None:
    harness = FolderHarness(tmp_path)
    item = harness.item()
    dest = harness.make()
    dest.prepare(item)
    dest.deliver(item, harness.calls())
    harness.take_away()
    assert harness.make().status(item, harness.calls()).delivered is Delivered.YES
    assert len(harness.arrived()) == 1


def test_every_destination_kind_has_a_harness() -> None:
    from gateway.destinations import memory
    from gateway.kinds import builtin_kinds

    kinds = {k.name for k in builtin_kinds().plus(memory.KIND).kinds("destination")}
    assert kinds == set(HARNESSES), "a new kind of destination must pass this suite: add its harness"
