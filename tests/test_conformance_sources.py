"""The conformance suite every kind of source passes (the contract of gateway/sources/base.py).

Each kind runs against the real thing: a folder on disk and OpenSSH's sshd (tests/sshd.py). A
*harness* per kind puts files where a partner would, makes fresh source objects (as a restarted
process would), and, for remote kinds, takes the partner down and brings it back. The rules:

* a complete candidate is fetched whole into the work folder; a temporary name never is;
* nothing is taken before it has settled (clocks are injected, nothing sleeps);
* a crash between fetch and acknowledge loses nothing: the content is in the work folder or
  still at the source, and fetching again brings the same bytes;
* acknowledge removes it at the source and may be repeated;
* a partner that is down is a plain ``DeliveryError``, and everything works once it is back.

A web service (``http``) has answers, not files: its harness "puts" a sale at the local Rakuten
server (tests/rakuten_server.py), and an input holds that sale rather than the bytes put; an
answer is complete when it comes, so nothing settles. The harness says so through ``same``,
``names`` and ``settles``, and the rules are the same.

A new kind of source adds its harness to ``HARNESSES`` and must pass all of it.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sshd import Sshd, SshdUnavailable

from gateway.clock import ManualClock
from gateway.errors import DeliveryError
from gateway.sources.base import Candidate, Source
from gateway.sources.folder import FolderSource
from gateway.sources.sftp import SftpSource


class Harness:
    remote = False
    settles = True  # whether a new input needs time before it is complete (files do, answers do not)

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

    def put_unfinished(self, name: str, data: bytes) -> None:
        """A file still being written, under a temporary name."""
        (self.inbox / f".{name}.part").write_bytes(data)  # type: ignore[attr-defined]

    def same(self, work: Path, data: bytes) -> bool:
        """The fetched input holds what was put."""
        return work.read_bytes() == data

    def names(self, candidate: Candidate, name: str, data: bytes) -> bool:
        """The candidate is the one put as ``name``."""
        return candidate.name == name and candidate.size == len(data)

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


class HttpHarness(Harness):
    """Rakuten France's getnewsales on the local Rakuten server; the journal survives restarts as it would."""

    remote = True
    settles = False

    def __init__(self, tmp_path: Path) -> None:
        super().__init__(tmp_path)
        from rakuten_server import RakutenServer

        from gateway.journal import open_journal

        self.server = RakutenServer().start()
        self.saved_env = {k: os.environ.get(k) for k in self.server.env()}
        os.environ.update(self.server.env())
        self.journal = open_journal(tmp_path / "journal.sqlite")
        self.purchases: dict[bytes, str] = {}  # what was put → the purchase id of its sale
        self.count = 0

    def _make(self, settle: float) -> Source:
        from rakuten_install import service_config

        from gateway.clock import SYSTEM_CLOCK
        from gateway.sources.http import HttpSource
        from gateway.webservices.client import ServiceClient
        from gateway.webservices.rakuten_fr import RakutenFrance

        config = service_config("rakuten-fr")
        api = RakutenFrance(ServiceClient("rakuten-fr", config))
        return HttpSource(api, "getnewsales", self.tmp_path / "spool", flow="flow", journal=self.journal,
                          clock=SYSTEM_CLOCK)

    def put(self, name: str, data: bytes) -> None:
        """A buyer buys: a new sale waits at the service (the bytes only name it)."""
        from rakuten_server import make_sale

        self.count += 1
        self.purchases[data] = self.server.add_sale(make_sale(self.count)).purchaseid

    def put_unfinished(self, name: str, data: bytes) -> None:
        """A web service has no half-written answers."""

    def same(self, work: Path, data: bytes) -> bool:
        return f"<purchaseid>{self.purchases[data]}</purchaseid>".encode() in work.read_bytes()

    def names(self, candidate: Candidate, name: str, data: bytes) -> bool:
        return candidate.name.startswith("getnewsales_") and candidate.size > 0

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
        for key, value in self.saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


HARNESSES: dict[str, Callable[[Path], Harness]] = {"folder": FolderHarness, "sftp": SftpHarness, "http": HttpHarness}


@pytest.fixture(params=sorted(HARNESSES))
def harness(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Harness]:
    made = HARNESSES[request.param](tmp_path)
    try:
        yield made
    finally:
        made.close()


@pytest.fixture(params=sorted(n for n, h in HARNESSES.items() if getattr(h, "remote", False)))
def remote_harness(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Harness]:
    """The kinds whose place is another machine, which can be down."""
    made = HARNESSES[request.param](tmp_path)
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
    assert harness.names(cand, "a.xml", data)
    work = source.fetch(cand, harness.work)
    assert work is not None and work.parent == harness.work
    assert harness.same(work, data)
    assert source.origin(cand)


def test_nothing_is_taken_before_it_has_settled(harness: Harness) -> None:
    harness.put("a.xml", b"<a/>")
    source = harness.make(settle=5)
    (cand,) = source.scan()
    if not harness.settles:  # an answer of a web service is complete when it comes
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
    assert harness.same(work, b"<a>1</a>")
    again = ready(source)
    if harness.remote:
        (cand,) = again
        second = source.fetch(cand, harness.work)
        assert second is not None and harness.same(second, b"<a>1</a>")
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
    assert ready(harness.make()) == []


def test_two_processes_fetching_the_same_file_lose_nothing(harness: Harness) -> None:
    harness.put("a.xml", b"<a/>")
    first, second = harness.make(), harness.make()
    (c1,), (c2,) = ready(first), ready(second)
    got = [first.fetch(c1, harness.work), second.fetch(c2, harness.work)]
    fetched = [p for p in got if p is not None]
    assert fetched, "at least one process must have it"
    if not harness.remote:
        assert len(fetched) == 1  # a local claim is a rename: exactly one wins
    assert all(harness.same(p, b"<a/>") for p in fetched)  # a remote twin is recognised by the journal


def test_the_partner_down_then_up(remote_harness: Harness) -> None:
    harness = remote_harness
    harness.put("a.xml", b"<a/>")
    source = harness.make()
    harness.down()
    with pytest.raises(DeliveryError) as info:
        source.scan()
    assert str(info.value) and "Traceback" not in str(info.value)
    harness.up()
    (cand,) = ready(source)
    work = source.fetch(cand, harness.work)
    assert work is not None and harness.same(work, b"<a/>")


def test_every_source_kind_has_a_harness() -> None:
    from gateway.kinds import builtin_kinds

    assert {k.name for k in builtin_kinds().kinds("source")} == set(HARNESSES), (
        "a new kind of source must pass this suite: add its harness")
