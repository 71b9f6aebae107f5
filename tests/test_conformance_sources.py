"""The conformance suite every kind of source passes (the contract of gateway/sources/base.py).

Each kind runs against the real thing: a folder on disk, OpenSSH's sshd (tests/sshd.py), PostgreSQL and
the local Rakuten server (tests/rakuten_server.py). A
*harness* per kind puts files where a partner would, makes fresh source objects (as a restarted
process would), and, for remote kinds, takes the partner down and brings it back. The rules:

* a complete candidate is fetched whole into the work folder; a temporary name never is;
* nothing is taken before it has settled (clocks are injected, nothing sleeps);
* a crash between fetch and acknowledge loses nothing: the content is in the work folder or
  still at the source, and fetching again brings the same bytes;
* acknowledge removes it at the source and may be repeated;
* a partner that is down is a plain ``DeliveryError``, and everything works once it is back.

A new kind of source adds its harness to ``HARNESSES`` and must pass all of it.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sshd import Sshd, SshdUnavailable

from gateway.clock import ManualClock
from gateway.errors import DeliveryError
from gateway.sources.base import Candidate, Source
from gateway.sources.folder import FolderSource
from gateway.sources.sftp import SftpSource


class Harness:
    remote = False

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.work = tmp_path / "work"
        self.made: list[Source] = []

    def make(self, settle: float = 0.0) -> Source:
        source = self._make(settle)
        self.made.append(source)
        return source

    def close(self) -> None:
        for source in self.made:
            source.close()

    def _make(self, settle: float) -> Source:
        raise NotImplementedError

    def put(self, name: str, data: bytes) -> None:
        """A partner drops a file, the careful way (temporary name, then rename)."""
        raise NotImplementedError

    #: Whether completion is judged by waiting (files settle); a database snapshot is complete by its transaction.
    settles = True

    def put_unfinished(self, name: str, data: bytes) -> None:
        """Something still being written, which must never be taken (a temporary file name)."""
        (self.inbox / f".{name}.part").write_bytes(data)  # type: ignore[attr-defined]

    def matches(self, cand: Candidate, name: str, data: bytes) -> bool:
        return cand.name == name and cand.size == len(data)

    def holds(self, work: Path, name: str, data: bytes) -> bool:
        """The fetched input at ``work`` is what was put as ``name``."""
        return work.read_bytes() == data

    def waiting(self, source: Source) -> list[str]:
        """What a run of ``source`` would take now."""
        return [c.name for c in ready(source)]

    def at_source(self) -> list[str]:
        raise NotImplementedError

    def advance(self, seconds: float) -> None:
        raise NotImplementedError

    def down(self) -> None:
        raise NotImplementedError

    def up(self) -> None:
        raise NotImplementedError


class FolderHarness(Harness):
    def __init__(self, tmp_path: Path) -> None:
        super().__init__(tmp_path)
        self.inbox = tmp_path / "inbox"
        self.inbox.mkdir()
        self.clock = ManualClock(dt.datetime(2026, 11, 27, 9, 0))

    def _make(self, settle: float) -> Source:
        return FolderSource(self.inbox, ["*.xml"], settle, None, clock=self.clock)

    def put(self, name: str, data: bytes) -> None:
        (self.inbox / f".{name}.part").write_bytes(data)
        (self.inbox / f".{name}.part").rename(self.inbox / name)

    def at_source(self) -> list[str]:
        return sorted(p.name for p in self.inbox.iterdir())

    def advance(self, seconds: float) -> None:
        self.clock.advance(seconds)


class SftpHarness(Harness):
    remote = True

    def __init__(self, tmp_path: Path) -> None:
        super().__init__(tmp_path)
        try:
            self.sshd = Sshd.create()
        except SshdUnavailable as exc:
            pytest.skip(str(exc))
        self.inbox = self.sshd.root / "out"
        self.inbox.mkdir()
        self.now = 1000.0

    def _make(self, settle: float) -> Source:
        from gateway.sftp import SftpEndpoint

        endpoint = SftpEndpoint(self.sshd.host, self.sshd.port, self.sshd.user, self.sshd.client_key,
                                self.sshd.known_hosts, timeout=5, partner="partner", retry_delay=0.05)
        return SftpSource(endpoint, "out", ["*.xml"], settle, None, clock=lambda: self.now)

    def put(self, name: str, data: bytes) -> None:
        (self.inbox / f".{name}.part").write_bytes(data)
        (self.inbox / f".{name}.part").rename(self.inbox / name)

    def at_source(self) -> list[str]:
        return sorted(p.name for p in self.inbox.iterdir())

    def advance(self, seconds: float) -> None:
        self.now += seconds

    def down(self) -> None:
        self.sshd.kill()

    def up(self) -> None:
        self.sshd.start()

    def close(self) -> None:
        super().close()
        self.sshd.cleanup()


class SqlHarness(Harness):
    """Rows of a table on the session's PostgreSQL server, read by a query with a watermark, through a
    proxy that can be cut. A file put is a row (name, content, change time); a file still being written
    is a row inserted by a transaction that has not committed."""

    remote = True
    settles = False
    postgres: Any = None  # set by the fixtures below

    def __init__(self, tmp_path: Path) -> None:
        super().__init__(tmp_path)
        from tcpproxy import Proxy

        from gateway.clock import ManualClock
        from gateway.journal import open_journal

        if self.postgres is None:
            pytest.skip("no PostgreSQL server")
        self.name = f"conformance_src_{abs(hash(str(tmp_path))) % 10**8}"
        self.postgres.fresh_database(self.name)
        with self.postgres.connect(self.name) as conn:
            conn.execute("CREATE TABLE Eingang (Name varchar(100), Daten text, Geaendert timestamp)")
            conn.execute("GRANT ALL ON ALL TABLES IN SCHEMA public TO gateway")
        self.proxy = Proxy(self.postgres.port)
        self.env = f"GW_CONFORMANCE_{self.name.upper()}"
        os.environ[self.env] = self.postgres.url(self.name, port=self.proxy.port)
        self.clock = ManualClock(dt.datetime(2026, 11, 27, 9, 0))
        self.journal = open_journal(tmp_path / "journal.sqlite", self.clock)
        self.changes = 0
        self.unfinished: list[Any] = []

    def _make(self, settle: float) -> Source:
        from gateway.mapping.model import BatchInput
        from gateway.sources.sql import SqlSource
        from gateway.sql.database import Database, DatabaseConfig

        spec = BatchInput.model_validate({
            "format": "batch", "records": "eingang",
            "tables": {"eingang": {"query": "SELECT e.Name, e.Daten, e.Geaendert FROM Eingang e "
                                            "WHERE e.Geaendert > :watermark ORDER BY e.Name"}},
            "watermark": {"table": "eingang", "column": "Geaendert"},
        })
        database = Database("sol", DatabaseConfig(url_env=self.env, connect_timeout_seconds=2, lock_timeout_seconds=2))
        return SqlSource(database, "conformance", spec, {}, journal=self.journal, clock=self.clock)

    def put(self, name: str, data: bytes) -> None:
        self.changes += 1
        with self.postgres.connect(self.name) as conn:
            conn.execute("INSERT INTO Eingang VALUES (%s, %s, %s)",
                         (name, data.decode(), dt.datetime(2026, 11, 27, 8, 0) + dt.timedelta(seconds=self.changes)))

    def put_unfinished(self, name: str, data: bytes) -> None:
        conn = self.postgres.connect(self.name)
        conn.autocommit = False
        conn.execute("INSERT INTO Eingang VALUES (%s, %s, %s)", (name, data.decode(), dt.datetime(2026, 11, 27, 8)))
        self.unfinished.append(conn)  # rolled back in close()

    def matches(self, cand: Candidate, name: str, data: bytes) -> bool:
        return cand.name.startswith("conformance_") and cand.ready  # one read of the whole table, named by time

    def holds(self, work: Path, name: str, data: bytes) -> bool:
        import csv

        with open(work / "eingang.csv", encoding="utf-8", newline="") as fh:
            rows = list(csv.DictReader(fh, delimiter=";"))
        return any(r["Name"] == name and r["Daten"] == data.decode() for r in rows)

    def at_source(self) -> list[str]:
        """What the next run would read: the rows changed after the remembered watermark."""
        source = self.make()
        (cand,) = source.scan()
        work = source.fetch(cand, self.tmp_path / "peek")
        if work is None:
            return []
        import csv

        with open(work / "eingang.csv", encoding="utf-8", newline="") as fh:
            return [r["Name"] for r in csv.DictReader(fh, delimiter=";")]

    def waiting(self, source: Source) -> list[str]:
        return self.at_source()

    def advance(self, seconds: float) -> None:
        self.clock.advance(seconds)

    def down(self) -> None:
        self.proxy.down()

    def up(self) -> None:
        self.proxy.up()

    def close(self) -> None:
        for conn in self.unfinished:
            conn.rollback()
            conn.close()
        for source in self.made:
            source.database.close()  # type: ignore[attr-defined]
        super().close()
        self.journal.close()
        self.proxy.close()
        os.environ.pop(self.env, None)


class HttpHarness(Harness):
    """Rakuten France's getnewsales on the local Rakuten server: a web service has answers, not files. A
    file put is a sale waiting at the service (the bytes only name it), and an input holds that sale; an
    answer is complete when it comes, so nothing settles. The journal survives restarts as it would."""

    remote = True
    settles = False

    def __init__(self, tmp_path: Path) -> None:
        super().__init__(tmp_path)
        from rakuten_install import ServerEnvironment
        from rakuten_server import RakutenServer

        from gateway.journal import open_journal

        self.server = RakutenServer().start()
        self.environment = ServerEnvironment(self.server)
        self.journal = open_journal(tmp_path / "journal.sqlite")
        self.purchases: dict[str, str] = {}  # the name put → the purchase id of its sale
        self.count = 0

    def _make(self, settle: float) -> Source:
        from rakuten_install import service_config

        from gateway.clock import SYSTEM_CLOCK
        from gateway.sources.http import HttpSource
        from gateway.webservices.client import ServiceClient
        from gateway.webservices.rakuten_fr import RakutenFrance

        api = RakutenFrance(ServiceClient("rakuten-fr", service_config("rakuten-fr")))
        return HttpSource(api, "getnewsales", self.tmp_path / "spool", flow="flow", journal=self.journal,
                          clock=SYSTEM_CLOCK)

    def put(self, name: str, data: bytes) -> None:
        from rakuten_server import make_sale

        self.count += 1
        self.purchases[name] = self.server.add_sale(make_sale(self.count)).purchaseid

    def put_unfinished(self, name: str, data: bytes) -> None:
        """A web service has no half-written answers."""

    def matches(self, cand: Candidate, name: str, data: bytes) -> bool:
        return cand.name.startswith("getnewsales_") and cand.size > 0

    def holds(self, work: Path, name: str, data: bytes) -> bool:
        purchase = self.purchases.get(name)
        return purchase is not None and f"<purchaseid>{purchase}</purchaseid>".encode() in work.read_bytes()

    def at_source(self) -> list[str]:
        """What a fresh poll would offer: nothing once the answer is acknowledged."""
        return [c.name for c in ready(self.make())]

    def advance(self, seconds: float) -> None:
        pass

    def down(self) -> None:
        self.server.inject("*", "drop-before", times=10**6)

    def up(self) -> None:
        self.server.faults.clear()

    def close(self) -> None:
        super().close()
        self.journal.close()
        self.server.stop()
        self.environment.restore()


HARNESSES: dict[str, Callable[[Path], Harness]] = {"folder": FolderHarness, "sftp": SftpHarness, "sql": SqlHarness,
                                                   "http": HttpHarness}


def _made(request: pytest.FixtureRequest, name: str, tmp_path: Path) -> Harness:
    if name == "sql":
        SqlHarness.postgres = request.getfixturevalue("postgres")
    return HARNESSES[name](tmp_path)


@pytest.fixture(params=sorted(HARNESSES))
def harness(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Harness]:
    made = _made(request, request.param, tmp_path)
    try:
        yield made
    finally:
        made.close()


@pytest.fixture(params=sorted(n for n, h in HARNESSES.items() if getattr(h, "remote", False)))
def remote_harness(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Harness]:
    """The kinds whose place is another machine, which can be down."""
    made = _made(request, request.param, tmp_path)
    try:
        yield made
    finally:
        made.close()


def ready(source: Source) -> list[Candidate]:
    return [c for c in source.scan() if source.settle_remaining(c) <= 0]


# -- the tests --------------------------------------------------------------------------------------


def test_a_complete_file_is_fetched_whole_and_temporary_names_never(harness: Harness) -> None:
    data = b"<orders>" + b"<order/>" * 5000 + b"</orders>"
    harness.put("a.xml", data)
    harness.put_unfinished("b.xml", b"<half")
    source = harness.make()
    (cand,) = ready(source)
    assert harness.matches(cand, "a.xml", data)
    work = source.fetch(cand, harness.work)
    assert work is not None and work.parent == harness.work
    assert harness.holds(work, "a.xml", data)
    assert not harness.holds(work, "b.xml", b"<half")
    assert source.origin(cand)


def test_nothing_is_taken_before_it_has_settled(harness: Harness) -> None:
    harness.put("a.xml", b"<a/>")
    source = harness.make(settle=5)
    (cand,) = source.scan()
    if not harness.settles:  # complete by its transaction: nothing to wait for, ever
        assert source.settle_remaining(cand) == 0
        return
    assert source.settle_remaining(cand) > 0
    harness.advance(6)
    (cand,) = source.scan()
    assert source.settle_remaining(cand) == 0


def test_a_crash_between_fetch_and_acknowledge_loses_nothing(harness: Harness) -> None:
    harness.put("a.xml", b"<a>1</a>")
    crashed = harness.make()
    (cand,) = ready(crashed)
    work = crashed.fetch(cand, harness.work)
    assert work is not None
    # The process dies here. The content is in the work folder (recovery takes it from there) and,
    # for a remote source, still at the source: fetching again brings the same bytes.
    source = harness.make()
    source.recover(harness.work)
    assert harness.holds(work, "a.xml", b"<a>1</a>")
    again = ready(source)
    if harness.remote:
        (cand,) = again
        second = source.fetch(cand, harness.work)
        assert second is not None and harness.holds(second, "a.xml", b"<a>1</a>")
    else:
        assert again == []  # claimed by a rename: only the work folder has it


def test_acknowledge_removes_it_at_the_source_and_may_be_repeated(harness: Harness) -> None:
    harness.put("a.xml", b"<a/>")
    source = harness.make()
    (cand,) = ready(source)
    assert source.fetch(cand, harness.work) is not None
    source.acknowledge(cand)
    source.acknowledge(cand)  # again, as after a crash before the journal noted it
    assert harness.at_source() == []
    assert harness.waiting(harness.make()) == []


def test_two_processes_fetching_the_same_file_lose_nothing(harness: Harness) -> None:
    harness.put("a.xml", b"<a/>")
    first, second = harness.make(), harness.make()
    (c1,), (c2,) = ready(first), ready(second)
    got = [first.fetch(c1, harness.work), second.fetch(c2, harness.work)]
    fetched = [p for p in got if p is not None]
    assert fetched, "at least one process must have it"
    if not harness.remote:
        assert len(fetched) == 1  # a local claim is a rename: exactly one wins
    assert all(harness.holds(p, "a.xml", b"<a/>") for p in fetched)  # a remote twin is recognised by the journal


def test_the_partner_down_then_up(remote_harness: Harness) -> None:
    harness = remote_harness
    harness.put("a.xml", b"<a/>")
    source = harness.make()
    harness.down()
    with pytest.raises(DeliveryError) as info:
        for cand in source.scan():  # a listing fails (SFTP), or the read itself (a database)
            source.fetch(cand, harness.work)
    assert str(info.value) and "Traceback" not in str(info.value)
    harness.up()
    (cand,) = ready(source)
    work = source.fetch(cand, harness.work)
    assert work is not None and harness.holds(work, "a.xml", b"<a/>")


def test_every_source_kind_has_a_harness() -> None:
    from gateway.kinds import builtin_kinds

    assert {k.name for k in builtin_kinds().kinds("source")} == set(HARNESSES), (
        "a new kind of source must pass this suite: add its harness")
