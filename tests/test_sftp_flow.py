"""A flow whose source and outbox are a partner's SFTP server: trust, pull, deliver, archive, outages."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import Install, order_xml, orders_file
from sshd import Sshd, sshd_fixture  # noqa: F401 - provides the "sshd" fixture


def _configure(install: Install, sshd: Sshd) -> Path:
    for folder in ("out", "out/archive", "in"):
        (sshd.root / folder).mkdir(parents=True, exist_ok=True)
    known_hosts = install.root / "keys" / "partner_known_hosts"
    known_hosts.parent.mkdir()
    install.config.write_text(f"""\
settle_seconds: 0
partners:
  shop:
    host: {sshd.host}
    port: {sshd.port}
    user: {sshd.user}
    key_file: {sshd.client_key}
    known_hosts: keys/partner_known_hosts
flows:
  rakuten-orders:
    mapping: mappings/rakuten-orders.yaml
    source: {{ sftp: shop, folder: out, include: ["*.xml"], archive: out/archive }}
    outbox: {{ sftp: shop, folder: in }}
""", encoding="utf-8")
    return known_hosts


def _journal(install: Install) -> list[dict[str, object]]:
    return [json.loads(line) for line in install.cli("journal", "--json").output.splitlines()]


def test_trust_shows_the_fingerprint_and_records_the_key(install: Install, sshd: Sshd) -> None:
    known_hosts = _configure(install, sshd)
    refused = install.cli("sftp", "trust", "shop", input="n\n")
    assert refused.exit_code == 1
    assert sshd.host_fingerprint() in refused.output and not known_hosts.exists()
    accepted = install.cli("sftp", "trust", "shop", input="y\n")
    assert accepted.exit_code == 0, accepted.output
    assert f"[{sshd.host}]:{sshd.port} ssh-ed25519" in known_hosts.read_text()


def test_an_untrusted_partner_is_refused_and_status_says_what_to_do(install: Install, sshd: Sshd) -> None:
    _configure(install, sshd)
    (sshd.root / "out" / "a.xml").write_text(orders_file(order_xml("1-1-1")), encoding="utf-8")
    assert install.cli("run", "--once").exit_code == 3
    assert (sshd.root / "out" / "a.xml").exists()
    (flow,) = [json.loads(line) for line in install.cli("status", "--json").output.splitlines()]
    (place,) = flow["places"]
    assert place["place"] == "source of rakuten-orders" and "gateway sftp trust shop" in place["error"]


def test_files_are_pulled_converted_delivered_and_archived_remotely(install: Install, sshd: Sshd) -> None:
    _configure(install, sshd)
    assert install.cli("sftp", "trust", "shop", "--fingerprint", sshd.host_fingerprint()).exit_code == 0
    (sshd.root / "out" / "a.xml").write_text(orders_file(order_xml("1-1-1")), encoding="utf-8")
    (sshd.root / "out" / "b.xml").write_text(orders_file(order_xml("2-2-2")), encoding="utf-8")
    (sshd.root / "out" / ".c.xml.part").write_text("still being written", encoding="utf-8")
    result = install.cli("run", "--once")
    assert result.exit_code == 0, result.output
    delivered = sorted(p.name for p in (sshd.root / "in").iterdir())
    assert delivered == ["auftraege_a_1.csv", "auftraege_b_2.csv"]
    assert sorted(p.name for p in (sshd.root / "out" / "archive").iterdir()) == ["a.xml", "b.xml"]
    assert sorted(p.name for p in (sshd.root / "out").iterdir()) == [".c.xml.part", "archive"]
    entries = _journal(install)
    assert [e["state"] for e in entries] == ["done", "done"]
    assert all(str(o).startswith("sftp://") for e in entries for o in e["outputs"])  # type: ignore[union-attr]


def test_a_partner_that_is_down_delays_only_its_flow_and_nothing_is_lost(install: Install, sshd: Sshd) -> None:
    _configure(install, sshd)
    assert install.cli("sftp", "trust", "shop", "--fingerprint", sshd.host_fingerprint()).exit_code == 0
    (sshd.root / "out" / "a.xml").write_text(orders_file(order_xml("3-3-3")), encoding="utf-8")
    sshd.stop()
    assert install.cli("run", "--once").exit_code == 3
    assert _journal(install) == []
    sshd.start()
    assert install.cli("run", "--once").exit_code == 0
    assert [p.name for p in (sshd.root / "in").iterdir()] == ["auftraege_a_1.csv"]
    assert install.cli("run", "--once").exit_code == 0
    assert [p.name for p in (sshd.root / "in").iterdir()] == ["auftraege_a_1.csv"]


def test_the_same_file_offered_again_after_a_lost_archive_step_is_a_duplicate(install: Install, sshd: Sshd) -> None:
    _configure(install, sshd)
    assert install.cli("sftp", "trust", "shop", "--fingerprint", sshd.host_fingerprint()).exit_code == 0
    content = orders_file(order_xml("4-4-4"))
    (sshd.root / "out" / "a.xml").write_text(content, encoding="utf-8")
    assert install.cli("run", "--once").exit_code == 0
    # as if the remote move had not happened before a crash: the file is there again
    (sshd.root / "out" / "a.xml").write_text(content, encoding="utf-8")
    assert install.cli("run", "--once").exit_code == 0
    assert [p.name for p in (sshd.root / "in").iterdir()] == ["auftraege_a_1.csv"]
    assert [e["state"] for e in _journal(install)] == ["done", "duplicate"]


def test_trusting_without_looking_is_refused_and_a_wrong_fingerprint_records_nothing(
    install: Install, sshd: Sshd
) -> None:
    known_hosts = _configure(install, sshd)
    blind = install.cli("sftp", "trust", "shop", "--yes")
    assert blind.exit_code == 2 and "--fingerprint" in blind.output
    wrong = install.cli("sftp", "trust", "shop", "--fingerprint", "SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
    assert wrong.exit_code == 1 and "nothing recorded" in wrong.output
    assert not known_hosts.exists() or sshd.host_public_key()[1] not in known_hosts.read_text()
