"""No secret in any artifact: the Rakuten France token and the Rakuten.de key, through faults and refusals.

Every flow that calls a web service runs against the local Rakuten server while it fails in every
way it can; then every file the gateway wrote (journal, work, spool, archive, outbox, quarantine
and reason files) and everything it printed (run, status, journal, check, service test) is searched
for the secrets, in every form they could take in a URL.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote, quote_plus

import pytest
from click.testing import CliRunner
from conftest import order_xml
from rakuten_install import WebInstall, make_web_install
from rakuten_server import RakutenServer, make_sale

from gateway.cli import cli

TOKEN = "tok/+Geheim&42=x"  # noqa: S105 - a test token: characters that a URL encodes differently in a path, a query and a form
KEY = "key Geheim+7/äö"


@pytest.fixture
def server() -> Iterator[RakutenServer]:
    srv = RakutenServer(token=TOKEN, de_key=KEY).start()
    yield srv
    srv.stop()


def forms(secret: str) -> set[bytes]:
    text = {secret, quote(secret, safe=""), quote_plus(secret), quote(secret)}
    return {t.encode() for t in text} | {secret.encode("latin-1", "replace")}


def test_no_secret_appears_in_any_file_or_output(tmp_path: Path, server: RakutenServer,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    gw: WebInstall = make_web_install(tmp_path / "gw", server,
                                      ("rakuten-fr-sales", "rakuten-de-orders", "rakuten-shipping", "rakuten-de-stock"),
                                      timeout=0.5)
    for n in range(4):
        server.add_sale(make_sale(n))
    server.add_order("111-222-333", order_xml("111-222-333"))
    server.inject("acceptsale", "drop")
    server.inject("acceptsale", "500", skip=2)
    server.inject("getOrders", "truncate")
    server.inject("setOrderShipped", "hang")
    gw.ship("versand_1.csv", ["123;LS-1;01.12.2026;111-222-333;D1;DHL;Paket;0034;01.12.2026;a@example.org"])
    gw.ship("versand_2.csv", ["123;LS-2;01.12.2026;111-222-333;D1;Kutsche;Paket;0035;01.12.2026;a@example.org"])
    printed = [gw.process("-v", "run", "--once")]  # -v: every log line, down to debug
    server.expire_token("tok-expired/+")  # the gateway still has the old token
    server.add_sale(make_sale(9))
    printed.append(gw.process("-v", "run", "--once", env={"RAKUTEN_FR_TOKEN": TOKEN}))
    for name, value in {**server.env(), "RAKUTEN_FR_TOKEN": TOKEN}.items():
        monkeypatch.setenv(name, value)
    shown = [gw.cli(*args) for args in (("status",), ("status", "--json"), ("journal", "--json"), ("journal",),
                                        ("check",), ("service", "test", "rakuten-de"))]
    refused = CliRunner().invoke(cli, ["--config", str(gw.config), "service", "test", "rakuten-fr"])
    assert TOKEN in server.seen_secrets and KEY in server.seen_secrets  # the secrets were really used
    assert any((gw.root / "quarantine").rglob("*.reason.txt"))  # a reason file was written
    assert refused.exit_code == 1 and "FAILED" in refused.output  # the token is refused now
    assert shown[-1].exit_code == 0 and "OK" in shown[-1].output
    secrets = forms(TOKEN) | forms(KEY) | forms("tok-expired/+")
    outputs = [r.stdout + r.stderr for r in printed] + [r.output for r in [*shown, refused]]
    for out in outputs:
        for secret in secrets:
            assert secret not in out.encode(), (out[:200], secret)
    files = [p for p in gw.root.rglob("*") if p.is_file() and p.name != "gateway.yaml"]
    assert any(p.name == "journal.sqlite" for p in files)
    for path in files:
        data = path.read_bytes()
        for secret in secrets:
            assert secret not in data, (path, secret)
