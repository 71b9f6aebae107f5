"""The HTTP layer of the web services: timeouts, TLS, pace, back-off, bounded and safe answers, no secrets in words.

Against the local Rakuten server (tests/rakuten_server.py) with its injected faults; a call that
changes something is never repeated after its answer was lost (:class:`AnswerLost`).
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from rakuten_install import service_config
from rakuten_server import RakutenServer, make_sale

from gateway.clock import ManualClock
from gateway.errors import DeliveryError
from gateway.webservices.client import AnswerLost, RecordRefused, ServiceClient, ServiceError
from gateway.webservices.config import read_credentials, url_problem
from gateway.webservices.rakuten_fr import RakutenFrance


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[RakutenServer]:
    srv = RakutenServer().start()
    for name, value in srv.env().items():
        monkeypatch.setenv(name, value)
    yield srv
    srv.stop()


def france(**changes: object) -> RakutenFrance:
    config = service_config("rakuten-fr").model_copy(update=changes)
    return RakutenFrance(ServiceClient("rakuten-fr", config))


def test_a_reading_call_is_tried_again_after_a_5xx_and_a_truncated_answer(server: RakutenServer,
                                                                          tmp_path: Path) -> None:
    server.add_sale(make_sale(1))
    server.inject("getnewsales", "500")
    server.inject("getnewsales", "truncate")
    api = france()
    api.new_sales(tmp_path / "a.xml")
    assert b"<purchaseid>50000001</purchaseid>" in (tmp_path / "a.xml").read_bytes()
    assert api.client.calls == 3


def test_a_reading_call_gives_up_after_its_retries_with_a_plain_message(server: RakutenServer) -> None:
    server.inject("getshippinginformation", "500", times=10)
    server.add_sale(make_sale(1))
    with pytest.raises(ServiceError) as info:
        france(retries=2).shipping_cost("50000001")
    assert "HTTP 500" in str(info.value) and "3 tries" in str(info.value)
    assert len(server.calls("getshippinginformation")) == 3


@pytest.mark.parametrize("fault", ["500", "drop", "truncate"])
def test_a_call_that_changes_something_is_not_repeated_when_its_answer_is_lost(server: RakutenServer,
                                                                               fault: str) -> None:
    sale = server.add_sale(make_sale(1, units=1))
    server.inject("acceptsale", fault)
    with pytest.raises(AnswerLost) as info:
        france().accept(sale.items[0].itemid)
    assert "asked before anything is sent again" in str(info.value)
    assert len(server.calls("acceptsale")) == 1


def test_a_call_that_never_reached_the_service_may_be_made_again(server: RakutenServer) -> None:
    api = france(retries=1)
    url = server.url
    server.stop()
    with pytest.raises(ServiceError) as info:
        api.accept("700000010")
    assert not isinstance(info.value, AnswerLost) and "cannot be reached" in str(info.value)
    assert url


def test_a_service_that_does_not_answer_times_out(server: RakutenServer, tmp_path: Path) -> None:
    server.inject("getnewsales", "hang", times=5)
    with pytest.raises(ServiceError) as info:
        france(timeout_seconds=0.2, retries=1).new_sales(tmp_path / "a.xml")
    assert "did not answer within 0.2 s" in str(info.value)


def test_an_answer_that_trickles_in_is_cut_off_after_call_seconds(server: RakutenServer, tmp_path: Path) -> None:
    server.add_sale(make_sale(1))
    server.inject("getnewsales", "slow", times=5)
    with pytest.raises(ServiceError) as info:
        france(call_seconds=0.3, timeout_seconds=2, retries=0).new_sales(tmp_path / "a.xml")
    assert "took more than 0.3 s" in str(info.value)


def test_an_answer_larger_than_the_limit_is_not_read(server: RakutenServer, tmp_path: Path) -> None:
    server.inject("getnewsales", "huge")
    with pytest.raises(ServiceError) as info:
        france(max_answer_mb=1).new_sales(tmp_path / "a.xml")
    assert "larger than 1 MB" in str(info.value)
    assert len(server.calls("getnewsales")) == 1  # not tried again


def test_an_answer_with_a_dtd_is_refused(server: RakutenServer, tmp_path: Path) -> None:
    server.inject("getnewsales", "dtd", times=5)
    with pytest.raises(ServiceError) as info:
        france(retries=0).new_sales(tmp_path / "a.xml")
    assert "DTD" in str(info.value)


def test_a_redirect_is_not_followed(server: RakutenServer, tmp_path: Path) -> None:
    server.inject("getnewsales", "redirect")
    with pytest.raises(ServiceError) as info:
        france().new_sales(tmp_path / "a.xml")
    assert "redirect" in str(info.value) and len(server.calls("getnewsales")) == 1


def test_an_error_of_the_record_is_told_apart_from_one_of_the_service(server: RakutenServer) -> None:
    sale = server.add_sale(make_sale(1, units=1))
    api = france()
    api.accept(sale.items[0].itemid)
    with pytest.raises(RecordRefused) as record:
        api.accept(sale.items[0].itemid)  # a unit accepted twice
    assert "InvalidItemStatus" in str(record.value)
    server.expire_token("tok-other")
    with pytest.raises(ServiceError) as service:
        api.accept(sale.items[0].itemid)
    assert "RAKUTEN_FR_TOKEN" in str(service.value)


@pytest.mark.parametrize("encoding", ["ISO-8859-1", "UTF-8"])
def test_answers_are_read_in_the_encoding_they_declare(server: RakutenServer, tmp_path: Path, encoding: str) -> None:
    from gateway.sources.http import _sales_file

    server.encoding = encoding
    server.add_sale(make_sale(1))
    api = france()
    api.new_sales(tmp_path / "a.xml")
    assert f"encoding='{encoding}'".encode() in (tmp_path / "a.xml").read_bytes()[:60]
    assert _sales_file(api, tmp_path / "a.xml", tmp_path / "b.xml", True) == 1
    text = (tmp_path / "b.xml").read_text(encoding="utf-8")
    assert "Lefèvre" in text and "Tasse à café « Bureau »" in text


def test_the_pace_holds_between_calls(server: RakutenServer) -> None:
    clock = ManualClock(dt.datetime(2026, 11, 27, 9, 0))
    config = service_config("rakuten-fr").model_copy(update={"calls_per_second": 4})
    api = RakutenFrance(ServiceClient("rakuten-fr", config, clock=clock))
    server.add_sale(make_sale(1))
    start = clock.monotonic()
    for _ in range(5):
        api.shipping_cost("50000001")
    assert clock.monotonic() - start == pytest.approx(1.0)  # the 2nd to 5th call each waited 0.25 s


def test_tls_is_verified_and_a_ca_bundle_can_be_trusted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cert, key = self_signed_certificate(tmp_path)
    srv = RakutenServer(tls=(str(cert), str(key))).start()
    try:
        for name, value in srv.env().items():
            monkeypatch.setenv(name, value)
        srv.add_sale(make_sale(1))
        with pytest.raises(ServiceError) as info:
            france(retries=0).shipping_cost("50000001")
        assert "certificate" in str(info.value).lower()
        config = service_config("rakuten-fr").model_copy(update={"ca_file": cert.name})
        trusting = RakutenFrance(ServiceClient("rakuten-fr", config, root=tmp_path))
        assert trusting.shipping_cost("50000001") == ("4.9", "EUR")
    finally:
        srv.stop()


def test_the_token_is_in_no_message(server: RakutenServer, tmp_path: Path) -> None:
    token = server.token
    words = []
    for fault in ("500", "drop", "hang", "truncate", "redirect", "dtd"):
        server.inject("acceptsale", fault)
        try:
            france(timeout_seconds=0.2, retries=0).accept("700000010")
        except DeliveryError as exc:
            words.append(str(exc))
    server.expire_token("tok-renewed")
    with pytest.raises(ServiceError) as info:
        france().accept("700000010")
    words.append(str(info.value))
    assert len(words) == 7
    assert all(token not in w and "tok-renewed" not in w for w in words), words


def test_addresses_must_be_https_except_to_this_machine(monkeypatch: pytest.MonkeyPatch) -> None:
    assert url_problem("https://ws.fr.shopping.rakuten.com/") is None
    assert url_problem("http://127.0.0.1:8080/") is None
    assert "https://" in (url_problem("http://ws.fr.shopping.rakuten.com/") or "")
    assert "user name or password" in (url_problem("https://me:pw@ws.example/") or "")
    assert "https://" in (url_problem("ftp://x/") or "")
    monkeypatch.setenv("RAKUTEN_FR_URL", "http://ws.fr.shopping.rakuten.com/")
    monkeypatch.setenv("RAKUTEN_FR_LOGIN", "me")
    monkeypatch.setenv("RAKUTEN_FR_TOKEN", "secret-token")
    with pytest.raises(DeliveryError) as info:
        read_credentials("rakuten-fr", service_config("rakuten-fr"))
    assert "RAKUTEN_FR_URL" in str(info.value) and "secret-token" not in str(info.value)
    monkeypatch.delenv("RAKUTEN_FR_TOKEN")
    with pytest.raises(DeliveryError) as missing:
        read_credentials("rakuten-fr", service_config("rakuten-fr"))
    assert "RAKUTEN_FR_TOKEN" in str(missing.value)
    assert os.environ["RAKUTEN_FR_LOGIN"] == "me"


def self_signed_certificate(folder: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 that nobody trusts unless told to."""
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = folder / "ca.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path
