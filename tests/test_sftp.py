"""SFTP destinations and sources against a real OpenSSH sshd on loopback (see tests/sshd.py)."""

from __future__ import annotations

import logging
import os
import subprocess
from contextlib import closing
from pathlib import Path

import paramiko
import pytest
from sshd import Sshd, keygen, sshd_fixture  # noqa: F401 - provides the "sshd" fixture

from gateway.destinations.base import Delivered, Delivery, NoCalls, Status
from gateway.destinations.sftp import SftpDestination
from gateway.errors import DeliveryError
from gateway.sftp import SftpEndpoint, fetch_host_key, fingerprint, known_hosts_name, trust
from gateway.sources.sftp import SftpSource, is_safe_name, remote_candidate


def endpoint(server: Sshd, known_hosts: Path | None = None) -> SftpEndpoint:
    return SftpEndpoint(
        server.host, server.port, server.user, server.client_key, known_hosts or server.known_hosts,
        timeout=5, partner="acme", retry_delay=0.05,
    )


def staged_file(tmp_path: Path, data: bytes, name: str = "staged.csv") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


# -- destination ---------------------------------------------------------------------------------------


def delivery(tmp_path: Path, data: bytes, name: str = "orders.csv", key: str = "ab12cd34-1") -> Delivery:
    return Delivery(key=key, name=name, staged=staged_file(tmp_path, data, f"staged-{key}"), flow="f",
                    input_id=1, output="o")


def test_prepare_then_deliver_appears_complete_under_its_final_name(sshd: Sshd, tmp_path: Path) -> None:
    out = sshd.root / "out"
    out.mkdir()
    data = os.urandom(300_000)
    with closing(SftpDestination(endpoint(sshd), "out")) as dest:
        dest.prepare(delivery(tmp_path, b"x" * 500_000))  # an old, longer temporary file of the same key
        item = delivery(tmp_path, data)
        dest.prepare(item)  # replaces it
        assert (out / item.temp_name).read_bytes() == data
        assert not (out / "orders.csv").exists()
        assert dest.status(item, NoCalls()).delivered is Delivered.NO

        url = dest.deliver(item, NoCalls())

        assert url == f"sftp://{sshd.user}@127.0.0.1:{sshd.port}/out/orders.csv" == dest.location("orders.csv")
        assert (out / "orders.csv").read_bytes() == data
        assert sorted(os.listdir(out)) == ["orders.csv"]  # the temporary name is gone
        assert dest.status(item, NoCalls()) == Status(Delivered.YES, url)


def test_deliver_refuses_to_overwrite(sshd: Sshd, tmp_path: Path) -> None:
    out = sshd.root / "out"
    out.mkdir()
    (out / "orders.csv").write_bytes(b"someone else's")
    item = delivery(tmp_path, b"ours")
    with closing(SftpDestination(endpoint(sshd), "out")) as dest:
        dest.prepare(item)
        with pytest.raises(DeliveryError, match="already exists and was not written by this delivery"):
            dest.deliver(item, NoCalls())
    assert (out / "orders.csv").read_bytes() == b"someone else's"
    assert (out / item.temp_name).read_bytes() == b"ours"


def test_status_after_a_crash(sshd: Sshd, tmp_path: Path) -> None:
    (sshd.root / "out").mkdir()
    item = delivery(tmp_path, b"a;b\n")
    crashed = SftpDestination(endpoint(sshd), "out")
    crashed.prepare(item)
    # The process dies here: nothing is closed, a new process starts with a new connection.
    with closing(SftpDestination(endpoint(sshd), "out")) as dest:
        assert dest.status(item, NoCalls()).delivered is Delivered.NO
        dest.deliver(item, NoCalls())
        # delivered: the journal's "uploaded" + no temporary file = delivered, even once the partner took it
        (sshd.root / "out" / "orders.csv").rename(sshd.root / "taken.csv")
        assert dest.status(item, NoCalls()).delivered is Delivered.YES
    assert (sshd.root / "taken.csv").read_bytes() == b"a;b\n"
    crashed.close()


def test_two_installations_sharing_a_folder_have_their_own_temporary_names(sshd: Sshd, tmp_path: Path) -> None:
    (sshd.root / "out").mkdir()
    ours, theirs = delivery(tmp_path, b"ours", key="aaaa0001-1"), delivery(tmp_path, b"theirs", key="bbbb0002-1")
    with closing(SftpDestination(endpoint(sshd), "out")) as dest:
        dest.prepare(ours)
        dest.prepare(theirs)
        assert ours.temp_name != theirs.temp_name
        assert (sshd.root / "out" / ours.temp_name).read_bytes() == b"ours"
        assert (sshd.root / "out" / theirs.temp_name).read_bytes() == b"theirs"


def test_deliver_whose_rename_happened_before_the_connection_broke(
    sshd: Sshd, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (sshd.root / "out").mkdir()
    real_rename = SftpDestination._rename
    calls = []

    def rename_then_lose_the_answer(self: SftpDestination, sftp: object, old: str, new: str) -> None:
        real_rename(self, sftp, old, new)
        calls.append(new)
        if len(calls) == 1:
            raise paramiko.SSHException("Server connection dropped: ")

    monkeypatch.setattr(SftpDestination, "_rename", rename_then_lose_the_answer)
    item = delivery(tmp_path, b"data")
    with closing(SftpDestination(endpoint(sshd), "out")) as dest:
        dest.prepare(item)
        assert dest.deliver(item, NoCalls()).endswith("/out/orders.csv")  # not "already exists"
    assert calls == ["out/orders.csv"]
    assert sorted(os.listdir(sshd.root / "out")) == ["orders.csv"]


def test_plain_rename_and_marker(sshd: Sshd, tmp_path: Path) -> None:
    (sshd.root / "out").mkdir()
    item = delivery(tmp_path, b"data")
    with closing(SftpDestination(endpoint(sshd), "out", rename="plain")) as dest:
        dest.prepare(item)
        dest.deliver(item, NoCalls())
        dest.write_marker(item, ".done")
        dest.write_marker(item, ".done")  # again, as after a crash: still one marker
    assert sorted(os.listdir(sshd.root / "out")) == ["orders.csv", "orders.csv.done"]


def test_missing_remote_folder_is_named(sshd: Sshd, tmp_path: Path) -> None:
    with (
        closing(SftpDestination(endpoint(sshd), "nope")) as dest,
        pytest.raises(DeliveryError, match="does the folder 'nope' exist"),
    ):
        dest.prepare(delivery(tmp_path, b"x"))


def test_sshd_killed_between_prepare_and_deliver(sshd: Sshd, tmp_path: Path) -> None:
    out = sshd.root / "out"
    out.mkdir()
    item = delivery(tmp_path, b"complete")
    with closing(SftpDestination(endpoint(sshd), "out")) as dest:
        dest.prepare(item)
        sshd.kill()
        with pytest.raises(DeliveryError, match="refused"):
            dest.deliver(item, NoCalls())
        with pytest.raises(DeliveryError, match="refused"):
            dest.status(item, NoCalls())
        sshd.start()
        assert dest.status(item, NoCalls()).delivered is Delivered.NO  # reconnects by itself
        dest.deliver(item, NoCalls())
        dest.deliver(item, NoCalls())  # the same key again: delivered once, never twice
    assert sorted(os.listdir(out)) == ["orders.csv"]
    assert (out / "orders.csv").read_bytes() == b"complete"


# -- host keys, keys, connection errors ----------------------------------------------------------------


def test_unknown_host_key_is_refused(sshd: Sshd, tmp_path: Path) -> None:
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    for known_hosts in (empty, tmp_path / "missing"):
        with pytest.raises(DeliveryError) as info:
            endpoint(sshd, known_hosts).connect()
        text = str(info.value)
        assert "host key is not known" in text
        assert sshd.host_fingerprint() in text
        assert "gateway sftp trust acme" in text
    assert not (tmp_path / "missing").exists()  # nothing was recorded behind the admin's back
    assert empty.read_text() == ""


def test_changed_host_key_is_refused(sshd: Sshd, tmp_path: Path) -> None:
    other = keygen(tmp_path / "other_host_key", "impostor")
    key_type, data = other.with_name("other_host_key.pub").read_text().split()[:2]
    known_hosts = tmp_path / "known_hosts"
    known_hosts.write_text(f"[127.0.0.1]:{sshd.port} {key_type} {data}\n")
    with pytest.raises(DeliveryError) as info:
        endpoint(sshd, known_hosts).connect()
    text = str(info.value)
    assert "host key has CHANGED" in text
    assert "attack" in text
    assert "Check with the partner" in text
    assert "gateway sftp trust acme" in text
    assert sshd.host_fingerprint() in text


def test_fingerprint_and_trust_then_connect(sshd: Sshd, tmp_path: Path) -> None:
    assert fingerprint(sshd.host, sshd.port) == ("ssh-ed25519", sshd.host_fingerprint())
    known_hosts = tmp_path / "partner" / "known_hosts"
    known_hosts.parent.mkdir()
    other = keygen(tmp_path / "old_key", "old")
    old_type, old_data = other.with_name("old_key.pub").read_text().split()[:2]
    known_hosts.write_text(f"# acme's server\nexample.org ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPlaceholder\n"
                           f"[127.0.0.1]:{sshd.port} {old_type} {old_data}\n")

    key = fetch_host_key(sshd.host, sshd.port)
    line = trust(known_hosts, sshd.host, sshd.port, key)

    key_type, data = sshd.host_public_key()
    assert line == f"[127.0.0.1]:{sshd.port} {key_type} {data}"
    lines = known_hosts.read_text().splitlines()
    assert lines[:2] == ["# acme's server", "example.org ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPlaceholder"]
    assert lines[2:] == [line]  # the old key for this host is replaced
    with endpoint(sshd, known_hosts) as ep:
        assert ep.connect().listdir(".") == []
    # OpenSSH's own client accepts the entry too.
    result = subprocess.run(
        ["ssh-keygen", "-F", f"[127.0.0.1]:{sshd.port}", "-f", str(known_hosts)], capture_output=True, text=True
    )
    assert result.returncode == 0 and data in result.stdout


def test_known_hosts_names() -> None:
    assert known_hosts_name("sftp.example.org", 22) == "sftp.example.org"
    assert known_hosts_name("sftp.example.org", 2222) == "[sftp.example.org]:2222"


def test_trust_replaces_hashed_and_shared_entries_and_uses_the_plain_name_for_port_22(tmp_path: Path) -> None:
    key = paramiko.PKey.from_path(keygen(tmp_path / "new", "new"))
    old = paramiko.PKey.from_path(keygen(tmp_path / "old", "old")).get_base64()
    known_hosts = tmp_path / "known_hosts"
    hashed = paramiko.HostKeys.hash_host("sftp.example.org")
    known_hosts.write_text(
        f"{hashed} ssh-ed25519 {old}\n"
        f"other.example.org,sftp.example.org ssh-ed25519 {old}\n"
        f"@revoked * ssh-ed25519 {old}\n"
    )
    line = trust(known_hosts, "sftp.example.org", 22, key)
    assert line == f"sftp.example.org ssh-ed25519 {key.get_base64()}"
    assert known_hosts.read_text().splitlines() == [
        f"other.example.org ssh-ed25519 {old}",
        f"@revoked * ssh-ed25519 {old}",
        line,
    ]


def test_key_refused_and_passphrase_from_environment(
    sshd: Sshd, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    stranger = keygen(tmp_path / "stranger", "stranger")
    with pytest.raises(DeliveryError, match=r"refused the key .*stranger"):
        SftpEndpoint(sshd.host, sshd.port, sshd.user, stranger, sshd.known_hosts, timeout=5).connect()

    locked = keygen(tmp_path / "locked", "locked", passphrase="correct horse")  # noqa: S106 - a test key
    sshd.authorize(locked.with_name("locked.pub"))

    def ep(env: str | None) -> SftpEndpoint:
        return SftpEndpoint(sshd.host, sshd.port, sshd.user, locked, sshd.known_hosts, passphrase_env=env, timeout=5)

    with pytest.raises(DeliveryError, match="protected by a passphrase"):
        ep(None).connect()
    monkeypatch.delenv("ACME_KEY_PASSPHRASE", raising=False)
    with pytest.raises(DeliveryError, match="environment variable ACME_KEY_PASSPHRASE, which is not set"):
        ep("ACME_KEY_PASSPHRASE").connect()
    monkeypatch.setenv("ACME_KEY_PASSPHRASE", "wrong")
    with pytest.raises(DeliveryError, match="wrong passphrase"):
        ep("ACME_KEY_PASSPHRASE").connect()
    monkeypatch.setenv("ACME_KEY_PASSPHRASE", "correct horse")
    with ep("ACME_KEY_PASSPHRASE") as good:
        assert good.connect().listdir(".") == []


def test_no_server_is_said_plainly(sshd: Sshd) -> None:
    sshd.stop()
    with pytest.raises(DeliveryError, match=r"cannot connect to .*the connection was refused"):
        endpoint(sshd).connect()


# -- source --------------------------------------------------------------------------------------------


def test_scan_lists_many_files_and_is_bounded(sshd: Sshd, caplog: pytest.LogCaptureFixture) -> None:
    inbox = sshd.root / "in"
    inbox.mkdir()
    names = {f"ORDER-{i:04d}.xml" for i in range(1000)}
    for name in names:
        (inbox / name).write_bytes(b"<x/>" * 500)
    for name in (".ORDER-x.xml.part", "ORDER-y.xml.tmp", "readme.txt", "bad\x01name.xml"):
        (inbox / name).write_bytes(b"-")
    (inbox / "folder.xml").mkdir()

    with closing(SftpSource(endpoint(sshd), "in", ["*.XML"], 0, None)) as source:
        found = source.scan()
        assert {c.name for c in found} == names
        assert all(c.size == 2000 for c in found)
    assert "'bad\\x01name.xml' is refused" in caplog.text

    caplog.clear()
    with (
        caplog.at_level(logging.INFO, logger="gateway"),
        closing(SftpSource(endpoint(sshd), "in", ["*.xml"], 0, None, max_entries=500)) as bounded,
    ):
        first = bounded.scan()
        assert len(first) == 500 and {c.name for c in first} <= names
        assert "more remain" in caplog.text
        assert len(bounded.scan()) == 500  # the connection is still usable


def test_growing_file_is_not_settled(sshd: Sshd) -> None:
    inbox = sshd.root / "in"
    inbox.mkdir()
    growing = inbox / "orders.xml"
    growing.write_bytes(b"<orders>")
    clock = FakeClock()
    with closing(SftpSource(endpoint(sshd), "in", ["*.xml"], 5, None, clock=clock)) as source:
        (c,) = source.scan()
        assert not source.is_settled(c)  # seen once only
        assert source.settle_remaining(c) == 5
        clock.now += 10
        with open(growing, "ab") as fh:
            fh.write(b"<order/>")
        (c,) = source.scan()
        assert not source.is_settled(c)  # grew since the last scan
        clock.now += 3
        (c,) = source.scan()
        assert not source.is_settled(c)  # unchanged, but not for the settle time yet
        assert source.settle_remaining(c) == 2
        clock.now += 3
        (c,) = source.scan()
        assert source.is_settled(c, 0.0)  # the engine's calling convention; the time asked is not used
        assert source.settle_remaining(c) == 0
        assert c.size == len(b"<orders><order/>")


def test_file_renamed_in_from_a_temporary_name_is_taken(sshd: Sshd, tmp_path: Path) -> None:
    inbox = sshd.root / "in"
    inbox.mkdir()
    temp = inbox / ".orders.xml.part"
    temp.write_bytes(b"<orders/>")
    clock = FakeClock()
    with closing(SftpSource(endpoint(sshd), "in", ["*.xml"], 2, None, clock=clock)) as source:
        assert source.scan() == []
        temp.rename(inbox / "orders.xml")
        (c,) = source.scan()
        clock.now += 2.5
        (c,) = source.scan()
        assert source.is_settled(c)
        target = tmp_path / "work" / "token--orders.xml"
        source.download(c, target)
        assert target.read_bytes() == b"<orders/>"


def test_settle_zero_takes_a_file_at_first_sight(sshd: Sshd) -> None:
    (sshd.root / "in").mkdir()
    (sshd.root / "in" / "a.xml").write_bytes(b"<a/>")
    with closing(SftpSource(endpoint(sshd), "in", ["*.xml"], 0, None)) as source:
        (c,) = source.scan()
        assert source.is_settled(c)


def test_download_with_prefetch_gives_identical_bytes(sshd: Sshd, tmp_path: Path) -> None:
    (sshd.root / "in").mkdir()
    data = os.urandom(5 * 1024 * 1024)
    (sshd.root / "in" / "big.xml").write_bytes(data)
    with closing(SftpSource(endpoint(sshd), "in", ["*.xml"], 0, None)) as source:
        (c,) = source.scan()
        target = tmp_path / "work" / "big.xml"
        source.download(c, target)
    assert target.read_bytes() == data
    assert os.listdir(tmp_path / "work") == ["big.xml"]


def test_download_refuses_names_that_escape(sshd: Sshd, tmp_path: Path) -> None:
    for name in ("../etc/passwd", "a/b.xml", "..", "x\n.xml", "a..b.xml", ""):
        assert not is_safe_name(name)
    assert is_safe_name("Bestellung 4711 (Kopie).xml")
    with (
        closing(SftpSource(endpoint(sshd), "in", ["*.xml"], 0, None)) as source,
        pytest.raises(DeliveryError, match="refused"),
    ):
        source.download(remote_candidate("../secret.xml", 1, 0), tmp_path / "t.xml")
    assert not (tmp_path / "t.xml").exists()


# When the connection drops while paramiko's prefetch thread is still sending read requests, that
# thread ends with EOFError, which Python reports on stderr; the download itself fails cleanly.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_sshd_killed_during_a_download(sshd: Sshd, tmp_path: Path) -> None:
    (sshd.root / "in").mkdir()
    data = os.urandom(16 * 1024 * 1024)  # far more than paramiko's 2 MiB window
    (sshd.root / "in" / "big.xml").write_bytes(data)
    work = tmp_path / "work"
    with closing(SftpSource(endpoint(sshd), "in", ["*.xml"], 0, None)) as source:
        (c,) = source.scan()

        def crash(done: int, total: int) -> None:
            if done >= 4 * 1024 * 1024:  # well into the file; 12 MiB are still to come
                sshd.kill()

        with pytest.raises(DeliveryError, match=r"downloading big\.xml"):
            source.download(c, work / "big.xml", progress=crash)
        assert os.listdir(work) == []  # neither the target nor a partial temporary file

        sshd.start()
        source.download(c, work / "big.xml")
    assert (work / "big.xml").read_bytes() == data
    assert os.listdir(work) == ["big.xml"]


def test_download_of_a_file_that_changed_after_the_scan(sshd: Sshd, tmp_path: Path) -> None:
    (sshd.root / "in").mkdir()
    (sshd.root / "in" / "a.xml").write_bytes(b"<a/>")
    with closing(SftpSource(endpoint(sshd), "in", ["*.xml"], 0, None)) as source:
        (c,) = source.scan()
        (sshd.root / "in" / "a.xml").write_bytes(b"<a>more</a>")
        with pytest.raises(DeliveryError, match="changed while it was taken"):
            source.download(c, tmp_path / "a.xml")
    assert list(tmp_path.iterdir()) == []


def test_finalize_moves_to_the_archive_or_deletes(sshd: Sshd, tmp_path: Path) -> None:
    inbox = sshd.root / "in"
    archive = sshd.root / "archive"
    inbox.mkdir()
    archive.mkdir()
    (inbox / "a.xml").write_bytes(b"<a/>")
    with closing(SftpSource(endpoint(sshd), "in", ["*.xml"], 0, "archive")) as source:
        (c,) = source.scan()
        source.download(c, tmp_path / "a.xml")
        assert source.finalize(c) == "archive/a.xml"
        assert source.finalize(c) is None  # again (after a crash): nothing left to do
        assert os.listdir(inbox) == []
        assert (archive / "a.xml").read_bytes() == b"<a/>"

        (inbox / "a.xml").write_bytes(b"<a>2</a>")  # the same name again the next day
        (c,) = source.scan()
        second = source.finalize(c)
        assert second is not None and second.startswith("archive/") and second.endswith("--a.xml")
        assert (sshd.root / second).read_bytes() == b"<a>2</a>"
        assert (archive / "a.xml").read_bytes() == b"<a/>"

    (inbox / "b.xml").write_bytes(b"<b/>")
    with closing(SftpSource(endpoint(sshd), "in", ["*.xml"], 0, None)) as deleting:
        (c,) = deleting.scan()
        assert deleting.finalize(c) == "deleted"
        assert deleting.finalize(c) is None
    assert os.listdir(inbox) == []

    with closing(SftpSource(endpoint(sshd), "in", ["*.xml"], 0, "no-such-folder")) as misconfigured:
        (inbox / "c.xml").write_bytes(b"<c/>")
        (c,) = misconfigured.scan()
        with pytest.raises(DeliveryError, match="archive folder 'no-such-folder' does not exist"):
            misconfigured.finalize(c)
    assert os.listdir(inbox) == ["c.xml"]


def test_a_file_larger_than_the_bound_is_refused_once_and_not_downloaded(
    sshd: Sshd, caplog: pytest.LogCaptureFixture
) -> None:
    inbox = sshd.root / "in"
    inbox.mkdir()
    (inbox / "huge.xml").write_bytes(b"<x/>" * 300_000)  # 1.2 MB
    (inbox / "small.xml").write_bytes(b"<x/>")
    with closing(SftpSource(endpoint(sshd), "in", ["*.xml"], 0, None, max_bytes=1_000_000)) as source:
        assert [c.name for c in source.scan()] == ["small.xml"]
        assert [c.name for c in source.scan()] == ["small.xml"]
        assert "huge.xml" in source.ignored() and "larger" in source.ignored()["huge.xml"]
    assert caplog.text.count("'huge.xml' is larger") == 1
