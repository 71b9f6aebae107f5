"""Inputs that once stopped every flow on every later run now end as an outcome of their own.

Each test reproduces a finding of the hostile-input review as it was found, and checks three
things: the run ends without a traceback, the other inputs are delivered, and the next run is
clean (nothing is retried forever, nothing stops recovery).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import GATEWAY_YAML, REPO, Install, order_xml, orders_file, read_csv_rows
from mailserver import Server

NOBODY = 65534


def _journal(install: Install) -> list[dict[str, object]]:
    result = install.cli("journal", "--json")
    return [json.loads(line) for line in result.output.splitlines() if line.startswith("{")]


def _orders(install: Install) -> set[str]:
    return {r["Referenznummer"] for out in install.outputs() for r in read_csv_rows(out)}


# -- 1. an input the gateway may not read ----------------------------------------------------------------


@pytest.fixture
def unprivileged() -> Iterator[Install]:
    """An installation owned by ``nobody``, in a folder that user can reach, for a gateway run as nobody."""
    if os.geteuid() != 0 or shutil.which("setpriv") is None:
        pytest.skip("needs root and setpriv to run the gateway as another user")
    base = Path(tempfile.mkdtemp(prefix="gateway-nobody-", dir="/tmp"))
    os.chmod(base, 0o755)  # noqa: S103 - the unprivileged gateway must enter it
    root = base / "gw"
    (root / "mappings").mkdir(parents=True)
    shutil.copy(REPO / "mappings" / "rakuten-orders.yaml", root / "mappings")
    (root / "gateway.yaml").write_text(GATEWAY_YAML, encoding="utf-8")
    (root / "inbox" / "rakuten-orders").mkdir(parents=True)
    (root / "outbox" / "rakuten-orders").mkdir(parents=True)
    for path in [root, *root.rglob("*")]:
        os.chown(path, NOBODY, NOBODY)
    try:
        yield Install(root)
    finally:
        shutil.rmtree(base, ignore_errors=True)


def _as_nobody(install: Install, *args: str) -> subprocess.CompletedProcess[str]:
    cmd = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups",
           sys.executable, "-m", "gateway", "--config", str(install.config), *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False,
                          env={**os.environ, "HOME": "/tmp"})


def test_a_file_the_gateway_may_not_read_is_quarantined_and_the_rest_goes_on(unprivileged: Install) -> None:
    install = unprivileged
    install.drop("a-unreadable.xml", orders_file(order_xml("1-0-1")))
    os.chmod(install.inbox() / "a-unreadable.xml", 0o600)  # owned by root: nobody may not read it
    install.drop("b.xml", orders_file(order_xml("1-0-2")))
    os.chown(install.inbox() / "b.xml", NOBODY, NOBODY)
    batch = install.inbox() / "c-locked.xml"
    batch.mkdir()
    (batch / "export.done").write_text("")
    os.chmod(batch, 0)

    first = _as_nobody(install, "run", "--once")
    assert first.returncode == 1, first.stderr
    assert "Traceback" not in first.stderr
    assert _orders(install) == {"1-0-2"}
    (reason,) = (install.quarantine / "rakuten-orders").glob("*.reason.txt")
    text = reason.read_text(encoding="utf-8")
    assert "a-unreadable.xml" in text and "cannot be read" in text and "permission" in text.lower()

    second = _as_nobody(install, "run", "--once")
    assert second.returncode == 0, second.stderr
    status = _as_nobody(install, "status")
    assert status.returncode == 0 and "Traceback" not in status.stderr


# -- 7. a lost journal --------------------------------------------------------------------------------------


@pytest.mark.parametrize("loss", ["deleted", "truncated"])
def test_a_lost_journal_stops_everything_until_the_keys_are_restored(install: Install, loss: str) -> None:
    install.drop("a.xml", orders_file(order_xml("7-0-1"), order_xml("7-0-2")))
    assert install.cli("run", "--once").exit_code == 0
    journal = install.root / "state" / "journal.sqlite"
    for suffix in ("", "-wal", "-shm"):
        side = journal.with_name(journal.name + suffix)
        if side.exists():
            side.unlink() if loss == "deleted" or suffix else side.write_bytes(b"")

    install.drop("again.xml", orders_file(order_xml("7-0-1"), order_xml("7-0-3")))
    refused = install.process("run", "--once")
    assert refused.returncode == 3 and "Traceback" not in refused.stderr
    assert "gateway journal restore" in refused.stderr and "delivered again" in refused.stderr
    assert (install.inbox() / "again.xml").exists()
    assert install.process("run", "--once").returncode == 3  # still refused: the decision is the admin's
    listing = install.process("journal")
    assert "replaced a lost one" in listing.stderr

    restored = install.cli("journal", "restore")
    assert restored.exit_code == 0 and "2 record key(s)" in restored.output
    assert install.cli("run", "--once").exit_code == 0
    rows = [r["Referenznummer"] for out in install.outputs() for r in read_csv_rows(out)]
    assert rows.count("7-0-1") == 2  # item + shipping, from the first file only
    assert "7-0-3" in rows


def test_a_new_installation_starts_without_asking(install: Install) -> None:
    install.drop("a.xml", orders_file(order_xml("7-1-1")))
    assert install.cli("run", "--once").exit_code == 0


# -- 9. long names ----------------------------------------------------------------------------------------


def test_a_name_of_255_bytes_is_delivered_archived_and_the_next_run_is_clean(install: Install) -> None:
    name = "b" * 251 + ".xml"
    (install.inbox() / name).write_text(orders_file(order_xml("9-0-1")), encoding="utf-8")  # no room for a temp name
    assert install.cli("run", "--once").exit_code == 0
    assert _orders(install) == {"9-0-1"}
    (entry,) = _journal(install)
    assert entry["name"] == name and entry["state"] == "done"
    assert Path(str(entry["stored_path"])).exists()
    assert install.cli("run", "--once").exit_code == 0


def test_a_broken_file_with_a_long_name_is_quarantined_with_its_own_reason(install: Install) -> None:
    name = "x" * 240 + ".xml"
    (install.inbox() / name).write_text("<result><orders><order>", encoding="utf-8")
    assert install.cli("run", "--once").exit_code == 1
    (entry,) = _journal(install)
    stored = Path(str(entry["stored_path"]))
    reason = stored.with_name(stored.name + ".reason.txt")
    assert stored.exists() and reason.exists()
    assert "line" in reason.read_text(encoding="utf-8")  # the real reason, not one about the file name
    assert install.cli("run", "--once").exit_code == 0


# -- 10. a file name that forges log lines -------------------------------------------------------------------


def test_a_file_name_with_line_breaks_forges_no_log_line_and_is_still_alerted(install: Install) -> None:
    server = Server().start()
    try:
        text = install.config.read_text(encoding="utf-8")
        install.config.write_text(text.replace(
            "settle_seconds: 0\n",
            f"settle_seconds: 0\nsmtp: {{host: 127.0.0.1, port: {server.port}, security: none, "
            "sender: gw@example.org}\nalerts: {email: admin@example.org}\n"), encoding="utf-8")
        name = "z\n2026-12-06 20:00:00,000 INFO rakuten-orders: all good\n.xml"
        install.drop(name, "<broken")
        result = install.process("run", "--once")
        assert result.returncode == 1
        assert not any(line.startswith("2026-12-06 20:00:00,000 INFO") for line in result.stderr.splitlines())
        assert "z\\x0a2026-12-06" in result.stderr
        (message,) = server.mailbox.messages
        assert b"quarantined" in message[2]
    finally:
        server.stop()


# -- 13. smaller findings ----------------------------------------------------------------------------------------


def test_links_pipes_and_folders_in_an_inbox_are_named_once_and_shown_by_status(install: Install) -> None:
    install.drop("a.xml", orders_file(order_xml("13-0-1")))
    (install.inbox() / "link.xml").symlink_to("/etc/passwd")
    os.mkfifo(install.inbox() / "pipe.xml")
    (install.inbox() / "folder.xml").mkdir()
    result = install.process("run", "--once")
    assert result.returncode == 0, result.stderr
    for name in ("link.xml", "pipe.xml", "folder.xml"):
        assert result.stderr.count(f"{name} is left alone") == 1
    (flow,) = [json.loads(line) for line in install.process("status", "--json").stdout.splitlines()]
    assert sorted(flow["ignored"]) == ["folder.xml", "link.xml", "pipe.xml"]


def test_a_work_folder_deleted_under_a_waiting_input_is_reported_not_left_processing(install: Install) -> None:
    install.drop("a.xml", orders_file(order_xml("13-1-1")))
    from gateway import Engine, load_installation
    from gateway.files import new_work_path

    inst = load_installation(install.config)
    engine = Engine(inst)
    try:
        flow = inst.flows["rakuten-orders"]
        source = engine.source(flow)
        (cand,) = source.scan()
        work = source.fetch(cand, engine.work_dir(flow))
        assert work is not None
        engine.journal.register(flow.name, "test", "a.xml", str(work), 10)
        shutil.rmtree(inst.work_dir)  # an admin "cleans up" state/work while the input waits
        assert new_work_path  # the work path is the journal's only trace of the input now
        summary = engine.run_once([flow], wait_for_settle=False)
    finally:
        engine.close()
    assert summary.failed == 1
    (entry,) = _journal(install)
    assert entry["state"] == "failed" and "disappeared" in str(entry["error"])
    assert install.cli("run", "--once").exit_code == 0


def test_security_none_with_a_login_is_a_warning_of_check(install: Install) -> None:
    text = install.config.read_text(encoding="utf-8")
    install.config.write_text(text.replace(
        "settle_seconds: 0\n", "settle_seconds: 0\nsmtp: {host: mail.example.org, port: 25, security: none, "
        "user: shop, password_env: SMTP_PW, sender: gw@example.org}\n"), encoding="utf-8")
    result = install.process("check")
    assert result.returncode == 0
    assert "security: none" in result.stderr and "in the clear" in result.stderr
