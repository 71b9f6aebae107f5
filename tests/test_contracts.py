"""The seams of the engine: the registry of kinds, injected parts, the journal's contract, poison inputs."""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path

import pytest
from conftest import Install, order_xml, orders_file, read_csv_rows
from mailserver import Server

from gateway import Engine, load_installation
from gateway.clock import ManualClock
from gateway.destinations import memory
from gateway.errors import ConfigError
from gateway.journal import InputState, JournalCorrupt, open_journal
from gateway.kinds import Kind, builtin_kinds
from gateway.processing import Processor

REPO = Path(__file__).resolve().parents[1]


def _set(install: Install, old: str, new: str) -> None:
    text = install.config.read_text(encoding="utf-8")
    assert old in text
    install.config.write_text(text.replace(old, new), encoding="utf-8")


# -- the registry of kinds ------------------------------------------------------------------------------


def test_a_kind_added_to_the_registry_can_be_named_in_gateway_yaml_and_receives_outputs(install: Install) -> None:
    _set(install, "    outbox:\n      folder: outbox/rakuten-orders\n", "    outbox: { memory: added-kind }\n")
    kinds = builtin_kinds().plus(memory.KIND)
    install.drop("a.xml", orders_file(order_xml("31-31-31")))
    inst = load_installation(install.config, kinds)
    engine = Engine(inst)
    try:
        assert engine.run_once(inst.select([]), wait_for_settle=False).done == 1
    finally:
        engine.close()
    (name,) = memory.store("added-kind").files()
    assert name == "auftraege_a_1.csv"


def test_a_kind_that_is_not_registered_is_refused_with_its_line(install: Install) -> None:
    _set(install, "    outbox:\n      folder: outbox/rakuten-orders\n", "    outbox: { memory: added-kind }\n")
    with pytest.raises(ConfigError) as info:
        load_installation(install.config)  # the built-in registry has no memory kind
    (problem,) = info.value.problems
    assert problem.line == 13 and "names its kind with one of the keys 'folder', 'sftp', 'smtp'" in problem.message


def test_each_kind_checks_what_it_names(install: Install) -> None:
    _set(install, "    outbox:\n      folder: outbox/rakuten-orders\n", "    outbox: { sftp: nobody, folder: /in }\n")
    with pytest.raises(ConfigError) as info:
        load_installation(install.config)
    (problem,) = info.value.problems
    assert "no partner named 'nobody'" in problem.message and problem.line == 13


def test_a_typo_in_a_kind_entry_is_named_with_a_suggestion(install: Install) -> None:
    _set(install, "      folder: outbox/rakuten-orders\n", "      folder: outbox/rakuten-orders\n      markr: .done\n")
    with pytest.raises(ConfigError) as info:
        load_installation(install.config)
    (problem,) = info.value.problems
    assert "markr" in problem.message and "marker" in problem.message


def test_the_readme_table_of_kinds_comes_from_the_registry() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert builtin_kinds().table() in readme, "regenerate the table: python -c 'from gateway.kinds import " \
                                              "builtin_kinds; print(builtin_kinds().table())'"


def test_no_isinstance_chain_over_kinds_remains() -> None:
    kind_classes = r"\b(Folder|Sftp|Smtp|Memory)(Source|Destination)(Config)?\b"
    for path in (REPO / "gateway").rglob("*.py"):
        if path.parent.name in ("sources", "destinations"):
            continue  # a kind's own module
        for line in path.read_text(encoding="utf-8").splitlines():
            assert not (re.search(r"isinstance\(", line) and re.search(kind_classes, line)), f"{path}: {line}"


def test_the_engine_and_the_command_line_do_not_speak_sqlite() -> None:
    for name in ("engine.py", "cli.py", "processing.py", "delivery.py", "finalize.py", "service.py", "health.py"):
        assert "sqlite3" not in (REPO / "gateway" / name).read_text(encoding="utf-8"), name


# -- injected parts -------------------------------------------------------------------------------------


def test_the_clock_given_to_the_engine_decides_the_archive_day_and_input_today(install: Install) -> None:
    install.drop("a.xml", orders_file(order_xml("32-32-32", created="2026-12-24 10:00:00")))
    inst = load_installation(install.config)
    clock = ManualClock(dt.datetime(2027, 1, 15, 8, 30))
    engine = Engine(inst, clock=clock)
    try:
        assert engine.run_once(inst.select([]), wait_for_settle=False).done == 1
        (row,) = engine.journal.entries()
    finally:
        engine.close()
    assert row.stored_path is not None and "/2027-01-15/" in row.stored_path
    assert row.received_at.startswith("2027-01-15T08:30")


def test_the_engine_takes_the_journal_it_is_given(install: Install, tmp_path: Path) -> None:
    install.drop("a.xml", orders_file(order_xml("33-33-33")))
    inst = load_installation(install.config)
    journal = open_journal(tmp_path / "elsewhere" / "journal.sqlite")
    engine = Engine(inst, journal=journal)
    try:
        engine.run_once(inst.select([]), wait_for_settle=False)
    finally:
        engine.close()
    again = open_journal(tmp_path / "elsewhere" / "journal.sqlite")
    assert [r.state for r in again.entries()] == [InputState.DONE]
    again.close()


# -- the journal's contract -------------------------------------------------------------------------------


def test_a_damaged_journal_is_named_with_what_to_do_and_not_overwritten(install: Install) -> None:
    journal = install.root / "state" / "journal.sqlite"
    journal.parent.mkdir(parents=True)
    journal.write_bytes(b"this is not a database" * 100)
    with pytest.raises(JournalCorrupt):
        open_journal(journal)
    result = install.process("status")
    assert result.returncode == 3
    assert "restore it from a backup" in result.stderr and "free disk space" not in result.stderr
    assert "Traceback" not in result.stderr
    assert journal.read_bytes() == b"this is not a database" * 100


def test_the_journal_states_are_one_vocabulary(install: Install) -> None:
    install.drop("a.xml", orders_file(order_xml("34-34-34")))
    install.drop("b.xml", "<broken")
    install.cli("run", "--once")
    entries = [json.loads(line) for line in install.cli("journal", "--json").output.splitlines()]
    assert {e["state"] for e in entries} <= {s.value for s in InputState}


# -- poison inputs -------------------------------------------------------------------------------------------


def test_an_input_that_meets_a_bug_is_quarantined_after_max_attempts_with_the_traceback(
    install: Install, monkeypatch: pytest.MonkeyPatch
) -> None:
    _set(install, "settle_seconds: 0\n", "settle_seconds: 0\nmax_attempts: 2\n")
    install.drop("a.xml", orders_file(order_xml("35-35-35")))
    install.drop("b.xml", orders_file(order_xml("36-36-36")))
    real = Processor._convert

    def bug_for_a(self: Processor, flow: object, row: object, work: Path, stage: Path) -> object:
        if work.name.endswith("--a.xml"):
            raise ZeroDivisionError("a bug in the gateway")
        return real(self, flow, row, work, stage)  # type: ignore[arg-type]

    monkeypatch.setattr(Processor, "_convert", bug_for_a)
    inst = load_installation(install.config)
    first = Engine(inst)
    try:
        summary = first.run_once(inst.select([]), wait_for_settle=False)
    finally:
        first.close()
    assert (summary.done, summary.pending, summary.failed) == (1, 1, 0)  # b went through; a is tried again
    second = Engine(inst)
    try:
        summary = second.run_once(inst.select([]), wait_for_settle=False)
        rows = {r.name: r for r in second.journal.entries()}
    finally:
        second.close()
    assert summary.failed == 1
    a = rows["a.xml"]
    assert a.state is InputState.FAILED
    assert "failed 2 times" in (a.error or "") and "ZeroDivisionError" in (a.error or "")
    reason = Path(str(a.stored_path) + ".reason.txt").read_text(encoding="utf-8")
    assert "Traceback" in reason and "a bug in the gateway" in reason and "gateway retry" in reason
    assert {r["Referenznummer"] for out in install.outputs() for r in read_csv_rows(out)} == {"36-36-36"}


def test_a_poison_input_sends_an_alert(install: Install, monkeypatch: pytest.MonkeyPatch) -> None:
    server = Server().start()
    try:
        _set(install, "settle_seconds: 0\n",
             f"settle_seconds: 0\nmax_attempts: 1\nsmtp: {{host: 127.0.0.1, port: {server.port}, security: none, "
             "sender: gw@example.org}\nalerts: {email: admin@example.org}\n")
        install.drop("a.xml", orders_file(order_xml("37-37-37")))

        def bug(*args: object) -> object:
            raise KeyError("surprise")

        monkeypatch.setattr(Processor, "_convert", bug)
        assert install.cli("run", "--once").exit_code == 1
        (message,) = server.mailbox.messages
        assert b"quarantined" in message[2] and b"gateway retry 1" in message[2]
    finally:
        server.stop()


# -- flows that wait for their environment variables --------------------------------------------------------


class _TokenConfig(memory.MemoryDestinationConfig):
    """The memory destination, needing a token from the environment as a web service would."""

    kind = "tokened"

    tokened: str  # the environment variable with the token
    memory: str = "tokened"


TOKENED = Kind(
    name="tokened", role="destination", config=_TokenConfig, build=lambda c, parts: memory.MemoryDestination(c.memory),
    summary="test", example="{tokened: VAR}", needs=lambda config, inst: [config.tokened],
)


def test_a_flow_whose_variables_are_not_set_does_not_run_and_status_names_them(
    install: Install, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("GATEWAY_TEST_TOKEN", raising=False)
    _set(install, "    outbox:\n      folder: outbox/rakuten-orders\n", "    outbox: { tokened: GATEWAY_TEST_TOKEN }\n")
    kinds = builtin_kinds().plus(TOKENED)
    install.drop("a.xml", orders_file(order_xml("38-38-38")))
    inst = load_installation(install.config, kinds)
    engine = Engine(inst)
    try:
        summary = engine.run_once(inst.select([]), wait_for_settle=False)
        assert summary.not_running == ["rakuten-orders"] and summary.exit_code == 0
        assert (install.inbox() / "a.xml").exists()  # not taken: nothing happens until the variable is set
        assert engine.waits_for(inst.flows["rakuten-orders"]) == ["GATEWAY_TEST_TOKEN"]
        monkeypatch.setenv("GATEWAY_TEST_TOKEN", "s3cr3t")
        assert engine.run_once(inst.select([]), wait_for_settle=False).done == 1
    finally:
        engine.close()
