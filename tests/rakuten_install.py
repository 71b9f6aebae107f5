"""Throw-away installations with the web-service flows, pointed at the local Rakuten server (tests/rakuten_server.py).

Built from the shipped mappings and templates; the services are those of the shipped gateway.yaml
without a pace (the local server needs none) and with short timeouts, so that faults show quickly.
Shared by the tests and by the benchmarks and the long crash campaign under bench/.
"""

from __future__ import annotations

import csv
import io
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from conftest import REPO, Install
from rakuten_server import RakutenServer

if TYPE_CHECKING:
    from gateway.webservices.config import ServiceConfig

SMTP = """\
smtp: { host: 127.0.0.1, port: 25, security: none, sender: Shop Müller <shop@example.org>, domain: example.org }
"""

SERVICES = """\
services:
  rakuten-fr:
    api: rakuten-fr
    url_env: RAKUTEN_FR_URL
    login_env: RAKUTEN_FR_LOGIN
    token_env: RAKUTEN_FR_TOKEN
    calls_per_second: 0
    backoff_seconds: 0
    retries: 2
    timeout_seconds: {timeout}
    report_wait_seconds: 0
  rakuten-de:
    api: rakuten-de
    url_env: RAKUTEN_DE_URL
    key_env: RAKUTEN_DE_KEY
    calls_per_second: 0
    backoff_seconds: 0
    retries: 2
    timeout_seconds: {timeout}
    per_page: 20
    record_errors: ["2210", "2310", "3110", "3120"]   # the local server's codes for an unknown or shipped order
"""

FLOWS = {
    "rakuten-fr-sales": """\
  rakuten-fr-sales:
    mapping: mappings/rakuten-fr-orders.yaml
    source: { http: rakuten-fr, call: getnewsales }
    outbox: { folder: outbox/sol }
    destinations:
      annahme: { http: rakuten-fr, call: acceptsale }
""",
    "rakuten-de-orders": """\
  rakuten-de-orders:
    mapping: mappings/rakuten-orders.yaml
    source: { http: rakuten-de, call: getOrders, status: pending }
    outbox: { folder: outbox/sol-de }
""",
    "rakuten-shipping": """\
  rakuten-shipping:
    mapping: mappings/sol-shipping.yaml
    source: { folder: inbox/rakuten-shipping, include: ["versand_*.csv"] }
    outbox: { http: rakuten-de, call: setOrderShipped }
    destinations:
      rakuten-fr: { http: rakuten-fr, call: settrackingpackageinfos }
      mail: { folder: outbox/mail }
""",
    "rakuten-de-stock": """\
  rakuten-de-stock:
    mapping: mappings/sol-stock.yaml
    source: { folder: inbox/rakuten-de-stock, include: ["bestand_*"], batch_marker: export.done }
    outbox: { http: rakuten-de, call: editProduct }
    same_content_is_duplicate: no
""",
    "rakuten-fr-offers": """\
  rakuten-fr-offers:
    mapping: mappings/rakuten-fr-offers.yaml
    source: { folder: inbox/rakuten-fr-offers, include: ["katalog*", "angebote*"], batch_marker: export.done }
    outbox: { http: rakuten-fr, call: genericimportfile }
    same_content_is_duplicate: no
""",
}

MAPPINGS = {"rakuten-fr-sales": "rakuten-fr-orders", "rakuten-de-orders": "rakuten-orders",
            "rakuten-shipping": "sol-shipping", "rakuten-de-stock": "sol-stock",
            "rakuten-fr-offers": "rakuten-fr-offers"}

VERSAND_HEADER = ("Mandant;Belegnummer;Belegdatum;Referenznummer;Kto;Versanddienstleister;Versandart;Sendungsnummer;"
                  "Versanddatum;EMail")


class WebInstall(Install):
    """An installation whose web services are the local server's."""

    server: RakutenServer

    def env(self) -> dict[str, str]:
        return self.server.env()

    def process(self, *args: str, env: dict[str, str] | None = None,  # type: ignore[override]
                timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """The real ``gateway`` command in its own process, with the server's variables."""
        return subprocess.run(
            [sys.executable, "-m", "gateway", "--config", str(self.config), *args],
            capture_output=True, text=True, timeout=timeout, check=False,
            env={**os.environ, **self.env(), **(env or {})},
        )

    def sol_rows(self, folder: str = "outbox/sol") -> list[dict[str, str]]:
        rows: list[dict[str, str]] = []
        out = self.root / folder
        for path in sorted(out.glob("*.csv")) if out.is_dir() else []:
            text = path.read_bytes().decode("windows-1252")
            rows.extend(csv.DictReader(io.StringIO(text, newline=""), delimiter=";"))
        return rows

    def ship(self, name: str, rows: list[str]) -> None:
        """SOL exports shipments into the inbox of rakuten-shipping."""
        self.drop(name, ("\r\n".join([VERSAND_HEADER, *rows]) + "\r\n").encode("windows-1252"), flow="rakuten-shipping")


def make_web_install(root: Path, server: RakutenServer, flows: tuple[str, ...] = ("rakuten-fr-sales",), *,
                     timeout: float = 2.0, extra: str = "") -> WebInstall:
    (root / "mappings").mkdir(parents=True)
    (root / "templates").mkdir()
    (root / "lookups").mkdir()
    for flow in flows:
        shutil.copy(REPO / "mappings" / f"{MAPPINGS[flow]}.yaml", root / "mappings")
    for template in (REPO / "templates").glob("*.j2"):
        shutil.copy(template, root / "templates")
    config = ("settle_seconds: 0\n" + SMTP + extra + SERVICES.format(timeout=timeout) + "flows:\n"
              + "".join(FLOWS[f] for f in flows))
    (root / "gateway.yaml").write_text(config, encoding="utf-8")
    install = WebInstall(root)
    install.server = server
    return install


def service_config(api: str, timeout: float = 2.0) -> ServiceConfig:
    """The test installations' settings of the service ``api`` (rakuten-fr or rakuten-de), for parts made by hand."""
    import yaml

    from gateway.webservices.config import ServiceConfig

    return ServiceConfig.model_validate(yaml.safe_load(SERVICES.format(timeout=timeout))["services"][api])


class ServerEnvironment:
    """The server's variables in this process's environment until ``restore`` (harnesses without monkeypatch)."""

    def __init__(self, server: RakutenServer) -> None:
        self.saved = {k: os.environ.get(k) for k in server.env()}
        os.environ.update(server.env())

    def restore(self) -> None:
        for key, value in self.saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def set_env(monkeypatch: object, server: RakutenServer) -> None:
    for name, value in server.env().items():
        monkeypatch.setenv(name, value)  # type: ignore[attr-defined]


def artifacts(root: Path) -> list[Path]:
    """Every file the gateway wrote: journal, work and spool files, archive, outbox, quarantine, reasons."""
    return [p for p in root.rglob("*") if p.is_file()]
