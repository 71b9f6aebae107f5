"""Hostile and broken partner inputs (DESIGN.md, Guarantees 5 and 7).

Every test drops one bad input next to a good one into the rakuten-orders inbox and runs
the real command. The bad input must end quarantined with a reason a non-programmer can
act on (or, where that is right, be ignored and left alone), the process must stay alive
(exit 1, "some quarantined": no traceback, no crash, no hang), the good input must be
delivered, and nothing may be written outside the installation.

Where the gateway does the wrong thing today, the test says what is right and is marked
``xfail(strict=True)`` with the precise defect, so that fixing it turns the mark into an error.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import Install, order_xml, orders_file, read_csv_rows

FLOW = "rakuten-orders"
GOOD_NAME = "good.xml"
GOOD_ORDER = "900-000-001"
HEAD = '<?xml version="1.0" encoding="utf-8"?>\n'
CANARY = "CANARY-4711-do-not-leak"  # stands for the content of a file a partner must never reach
AREAS = {"gateway.yaml", "mappings", "templates", "inbox", "outbox", "quarantine", "archive", "state"}
MiB = 1024 * 1024


# -- helpers -------------------------------------------------------------------------------------------------


def journal(install: Install) -> list[dict[str, Any]]:
    result = install.cli("journal", "--json")
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in result.stdout.splitlines()]


def entry_named(install: Install, name: str) -> dict[str, Any]:
    entries = [e for e in journal(install) if e["name"] == name]
    assert len(entries) == 1, f"journal entries named {name!r}: {entries}"
    return entries[0]


def drop_good(install: Install) -> None:
    install.drop(GOOD_NAME, orders_file(order_xml(GOOD_ORDER)))


def tail(text: str, lines: int = 4) -> str:
    """The last lines of a process's stderr: a traceback's exception, or the closing summary."""
    return "\n".join(line[:600] for line in text.strip().splitlines()[-lines:])


def run(install: Install, expected_exit: int = 1, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """``gateway run --once`` in its own process: a crash shows as a traceback or a signal, not as exit 1."""
    result = install.process("run", "--once", timeout=timeout)
    assert "Traceback" not in result.stderr, tail(result.stderr)
    assert result.returncode == expected_exit, (result.returncode, tail(result.stderr))
    return result


def run_in_process(install: Install, expected_exit: int = 1) -> None:
    result = install.cli("run", "--once")
    assert result.exit_code == expected_exit, result.output[-3000:]


def assert_good_delivered(install: Install) -> None:
    """The good input dropped in the same run went through untouched by its bad neighbour."""
    good = entry_named(install, GOOD_NAME)
    assert good["state"] == "done", good
    (output,) = good["outputs"]
    assert Path(output) == install.outbox() / f"auftraege_good_{good['id']}.csv"
    assert {row["Referenznummer"] for row in read_csv_rows(Path(output))} == {GOOD_ORDER}


def assert_quarantined(install: Install, name: str, *words: str) -> str:
    """``name`` is quarantined where the admin looks, with a reason naming it and ``words``; returns the reason."""
    entry = entry_named(install, name)
    assert entry["state"] == "failed", entry
    assert entry["outputs"] == [] and entry.get("pending_outputs", []) == [], entry
    stored = install.quarantine / FLOW / f"{entry['id']}--{name}"
    assert Path(entry["stored_path"]) == stored
    assert stored.is_file(), stored
    reason_file = stored.with_name(stored.name + ".reason.txt")
    reason = reason_file.read_text(encoding="utf-8")
    error = entry["error"]
    assert reason.startswith(error.rstrip()), (reason, error)
    assert f"gateway retry {entry['id']}" in reason
    assert error.startswith(name), f"the reason does not start with the file name: {error!r}"
    for word in words:
        assert word in error, f"{word!r} missing from the reason {error!r}"
    stem = name.rpartition(".")[0]
    assert not [p for p in install.outputs() if f"_{stem}_" in p.name], "a quarantined input left an output"
    return error


def assert_contained(install: Install) -> None:
    """Nothing was written outside the installation, nor outside the folder it belongs in."""
    root = install.root.resolve()
    for entry in journal(install):
        for path in [entry["stored_path"], *entry["outputs"]]:
            if path:
                assert Path(path).resolve().is_relative_to(root), (entry["name"], path)
        for output in entry["outputs"]:
            assert Path(output).resolve().parent == install.outbox().resolve(), output
        if entry["state"] == "failed":
            assert Path(entry["stored_path"]).resolve().parent == (install.quarantine / FLOW).resolve()
    for folder, _dirs, files in os.walk(root):
        for file in files:
            relative = (Path(folder) / file).relative_to(root)
            assert relative.parts[0] in AREAS, f"unexpected file {relative}"
            if relative.parts[0] in ("outbox", "quarantine"):
                assert len(relative.parts) == 3 and relative.parts[1] == FLOW, f"file outside its folder: {relative}"
    # the test's own temporary folder holds the installation and nothing else the gateway made
    assert sorted(p.name for p in root.parent.iterdir() if p.name != "secret.csv") == [root.name]


# ``gateway run --once`` in a process of its own that then reports its peak memory: the high-water mark of
# its own address space (VmHWM) and the peak of the conversions it forked. Not ``ru_maxrss`` of the whole
# process: Linux carries that over an ``exec``, so a gateway started by a test process that once held
# 400 MiB would report 400 MiB as its own.
MEASURED = r"""
import resource, sys
from gateway.cli import main
report = sys.argv[2]
sys.argv = ["gateway", "--config", sys.argv[1], "run", "--once"]
try:
    main()
    code = 0
except SystemExit as exc:
    code = exc.code if isinstance(exc.code, int) else 1
with open("/proc/self/status") as status:
    own = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
forked = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
open(report, "w").write(str(max(own, forked)))
sys.exit(code)
"""


def run_measured(install: Install, expected_exit: int = 1, timeout: float = 60) -> float:
    """``run``, measured: the peak resident size in MiB of that gateway and of the conversions it forked."""
    with tempfile.TemporaryDirectory() as folder:  # apart: the tests check what the installation holds
        report = Path(folder) / "peak"
        result = subprocess.run([sys.executable, "-c", MEASURED, str(install.config), str(report)],
                                capture_output=True, text=True, timeout=timeout, check=False)
        assert "Traceback" not in result.stderr, tail(result.stderr)
        assert result.returncode == expected_exit, (result.returncode, tail(result.stderr))
        return int(report.read_text()) / 1024  # KiB


def edit_mapping(install: Install, old: str, new: str) -> None:
    path = install.root / "mappings" / f"{FLOW}.yaml"
    text = path.read_text(encoding="utf-8")
    assert text.count(old) == 1, old
    path.write_text(text.replace(old, new), encoding="utf-8")


def mapping_line(install: Install, needle: str) -> int:
    lines = (install.root / "mappings" / f"{FLOW}.yaml").read_text(encoding="utf-8").splitlines()
    (number,) = [i for i, line in enumerate(lines, 1) if needle in line]
    return number


KOPFTEXT = 'Kopftext: "{{ order.comment_client }}"'


def set_kopftext(install: Install, template: str) -> int:
    """Replace the mapping's Kopftext column by ``template``; returns its line in the mapping."""
    line = mapping_line(install, KOPFTEXT)
    edit_mapping(install, KOPFTEXT, "Kopftext: " + json.dumps(template))
    return line


@contextlib.contextmanager
def listener() -> Iterator[tuple[int, list[bytes]]]:
    """A TCP server on loopback that records every connection made to it: proof of a network access."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    server.settimeout(0.1)
    hits: list[bytes] = []
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                continue
            with conn:
                conn.settimeout(1)
                with contextlib.suppress(OSError):
                    hits.append(conn.recv(4096) or b"(connected)")

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield server.getsockname()[1], hits
    finally:
        time.sleep(0.2)  # a late connection still counts
        stop.set()
        thread.join()
        server.close()


def big_text_order_file(path: Path, text_mib: int) -> None:
    """An order file whose city is one text node of ``text_mib`` MiB on a single line, written in chunks."""
    before, after = order_xml("100-000-050", client={"city": "@CITY@"}).split("@CITY@")
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(HEAD.rstrip("\n") + "<result><orders>" + before)
        chunk = "A" * MiB
        for _ in range(text_mib):
            fh.write(chunk)
        fh.write(after + "</orders></result>")


def billion_laughs() -> str:
    entities = '<!ENTITY lol0 "lol">\n' + "".join(
        f'<!ENTITY lol{i} "{f"&lol{i - 1};" * 10}">\n' for i in range(1, 10)
    )
    order = order_xml("100-000-060", client={"city": "@CITY@"}).replace("@CITY@", "&lol9;")
    return HEAD + f"<!DOCTYPE result [\n{entities}]>\n<result><orders>{order}</orders></result>\n"


def deep_nesting(levels: int = 10_000) -> str:
    return HEAD + "<result><orders>" + order_xml("100-000-070", extra="<x>" * levels + "</x>" * levels) + (
        "</orders></result>\n"
    )


def windows_1252_declared_utf8() -> bytes:
    text = orders_file(order_xml("100-000-020", client={"city": "Köln", "last_name": "Müßig"}))
    return text.encode("windows-1252")  # declares utf-8, holds 0xF6 0xFC 0xDF


# -- broken files --------------------------------------------------------------------------------------------


def test_truncated_xml_is_quarantined_and_none_of_its_orders_delivered(install: Install) -> None:
    full = orders_file(order_xml("100-000-001"), order_xml("100-000-002"))
    cut = full[: full.index("Berlin", full.index("100-000-002")) + 3]  # the transfer broke off in order 2
    install.drop("truncated.xml", cut)
    drop_good(install)
    run(install)
    assert_quarantined(install, "truncated.xml", "line 3", "the XML is broken")
    assert_good_delivered(install)
    assert_contained(install)
    # order 1 was complete in the broken file, but nothing of a quarantined file counts as delivered:
    install.drop("complete.xml", full)
    run(install, expected_exit=0)
    assert entry_named(install, "complete.xml")["state"] == "done"
    (out,) = entry_named(install, "complete.xml")["outputs"]
    assert {r["Referenznummer"] for r in read_csv_rows(Path(out))} == {"100-000-001", "100-000-002"}


def test_xml_declaring_utf8_but_holding_windows_1252_umlauts_is_quarantined(install: Install) -> None:
    install.drop("latin.xml", windows_1252_declared_utf8())
    drop_good(install)
    run(install)
    assert_quarantined(install, "latin.xml", "line 3", "encoding")
    assert_good_delivered(install)
    assert_contained(install)


def test_nul_bytes_in_the_middle_are_quarantined(install: Install) -> None:
    content = orders_file(order_xml("100-000-030", client={"last_name": "Mus\x00\x00ter"})).encode("utf-8")
    assert b"\x00" in content
    install.drop("nul.xml", content)
    drop_good(install)
    run(install)
    assert_quarantined(install, "nul.xml", "line 3", "0x0")
    assert_good_delivered(install)
    assert_contained(install)


def test_empty_file_is_quarantined(install: Install) -> None:
    install.drop("empty.xml", b"")
    drop_good(install)
    run(install)
    assert_quarantined(install, "empty.xml", "empty (0 bytes)")
    assert_good_delivered(install)
    assert_contained(install)


def test_single_50_mb_line_is_refused_with_flat_memory(install: Install) -> None:
    inbox = install.inbox()
    temp = inbox / ".huge.xml.part"
    big_text_order_file(temp, 50)
    assert temp.stat().st_size > 50 * MiB
    temp.rename(inbox / "huge.xml")
    drop_good(install)
    peak = run_measured(install)
    assert peak < 400, f"the gateway took {peak:.0f} MiB for a 50 MB line"
    # libxml2 refuses a text node over 10,000,000 characters (huge_tree=False)
    assert_quarantined(install, "huge.xml", "line 1", "too long")
    assert_good_delivered(install)
    assert_contained(install)


# -- entities, DTDs and the network --------------------------------------------------------------------------


def test_billion_laughs_is_quarantined_quickly_and_without_memory(install: Install) -> None:
    install.drop("laughs.xml", billion_laughs())
    drop_good(install)
    peak = run_measured(install)
    assert 10 < peak < 400, f"the gateway took {peak:.0f} MiB for entities that expand to a billion 'lol's"
    error = assert_quarantined(install, "laughs.xml", "line 1")
    assert "lollollol" not in error
    assert_good_delivered(install)
    assert_contained(install)


def test_xxe_to_etc_passwd_is_refused_and_nothing_of_it_leaks(install: Install) -> None:
    secret = install.root.parent / "secret.csv"  # a file outside the installation, like /etc/passwd
    secret.write_text(CANARY + "\n", encoding="utf-8")
    passwd = Path("/etc/passwd").read_text(encoding="utf-8").splitlines()[0] if Path("/etc/passwd").exists() else ""
    for name, target in (("xxe_passwd.xml", "file:///etc/passwd"), ("xxe_secret.xml", secret.as_uri())):
        order = order_xml("100-000-080", client={"city": "@CITY@"}).replace("@CITY@", "&xxe;")
        install.drop(name, HEAD + f'<!DOCTYPE result [<!ENTITY xxe SYSTEM "{target}">]>\n'
                                  f"<result><orders>{order}</orders></result>\n")
    drop_good(install)
    result = run(install)
    for name in ("xxe_passwd.xml", "xxe_secret.xml"):
        assert_quarantined(install, name, "line 1", "DTD")
    assert_good_delivered(install)
    assert_contained(install)
    everything = result.stdout + result.stderr + install.cli("journal", "--json").stdout
    everything += "".join(p.read_text(encoding="utf-8") for p in (install.quarantine / FLOW).glob("*.reason.txt"))
    everything += "".join(p.read_bytes().decode("windows-1252") for p in install.outputs())
    assert CANARY not in everything
    if passwd:
        assert passwd not in everything


@pytest.mark.parametrize("kind", ["external-dtd", "parameter-entity", "external-entity", "xinclude"])
def test_references_to_a_http_url_are_refused_without_any_network_access(install: Install, kind: str) -> None:
    with listener() as (port, hits):
        url = f"http://127.0.0.1:{port}/evil"
        order = order_xml("100-000-090", client={"city": "@CITY@"})
        doctype, city, root = {
            "external-dtd": (f'<!DOCTYPE result SYSTEM "{url}.dtd">\n', "Berlin", "<result>"),
            "parameter-entity": (f'<!DOCTYPE result [<!ENTITY % p SYSTEM "{url}.dtd"> %p;]>\n', "Berlin", "<result>"),
            "external-entity": (f'<!DOCTYPE result [<!ENTITY e SYSTEM "{url}.txt">]>\n', "&e;", "<result>"),
            "xinclude": ("", "Berlin", '<result xmlns:xi="http://www.w3.org/2001/XInclude">'),
        }[kind]
        extra = f'<xi:include href="{url}.txt" parse="text"/>' if kind == "xinclude" else ""
        order = order.replace("@CITY@", city).replace("</order>", extra + "</order>")
        install.drop(f"{kind}.xml", HEAD + doctype + f"{root}<orders>{order}</orders></result>\n")
        drop_good(install)
        result = run(install, expected_exit=0 if kind == "xinclude" else 1)
    assert hits == [], f"the gateway connected to {url}: {hits}"
    if kind == "xinclude":  # not a DTD: the file is an ordinary order; the include is not followed
        entry = entry_named(install, f"{kind}.xml")
        assert entry["state"] == "done", entry
        assert url not in result.stderr
    else:
        assert_quarantined(install, f"{kind}.xml", "line 1", "DTD")
    assert_good_delivered(install)
    assert_contained(install)


# -- resource exhaustion by structure ------------------------------------------------------------------------


def test_10000_levels_of_nesting_are_quarantined(install: Install) -> None:
    install.drop("deep.xml", deep_nesting())
    drop_good(install)
    run(install)
    assert_quarantined(install, "deep.xml", "line 2", "depth")
    assert_good_delivered(install)
    assert_contained(install)


def test_100000_attributes_on_one_element_are_handled_within_seconds(install: Install) -> None:
    attributes = " ".join(f'a{i}="{i}"' for i in range(100_000))
    order = order_xml("100-000-100").replace("<order>", f"<order {attributes}>", 1)
    install.drop("attributes.xml", HEAD + f"<result><orders>{order}</orders></result>\n")
    drop_good(install)
    try:
        result = install.process("run", "--once", timeout=60)
    except subprocess.TimeoutExpired:
        pytest.fail("the gateway was still reading 100,000 attributes (1.3 MB) after 60 s")
    assert "Traceback" not in result.stderr, tail(result.stderr)
    if result.returncode == 1:  # refusing the file is as good as reading it
        assert_quarantined(install, "attributes.xml", "attribute")
    else:
        assert result.returncode == 0, tail(result.stderr)
        assert entry_named(install, "attributes.xml")["state"] == "done"
    assert_good_delivered(install)
    assert_contained(install)


# -- what the reasons say --------------------------------------------------------------------------------------


def test_billion_laughs_reason_says_dtds_are_not_accepted(install: Install) -> None:
    install.drop("laughs.xml", billion_laughs())
    run_in_process(install)
    error = assert_quarantined(install, "laughs.xml")
    assert "DTD" in error and "xmlCtxt" not in error, error


@pytest.mark.parametrize("kind", ["deep", "long-text"])
def test_parser_limit_reasons_do_not_advise_xml_parse_huge(install: Install, kind: str) -> None:
    if kind == "deep":
        install.drop("deep.xml", deep_nesting(300))
    else:
        big_text_order_file(install.inbox() / ".long-text.xml.part", 11)
        (install.inbox() / ".long-text.xml.part").rename(install.inbox() / "long-text.xml")
    run_in_process(install)
    error = assert_quarantined(install, f"{kind}.xml")
    assert "XML_PARSE_HUGE" not in error, error


def test_encoding_mismatch_reason_names_the_declared_encoding(install: Install) -> None:
    install.drop("latin.xml", windows_1252_declared_utf8())
    run_in_process(install)
    error = assert_quarantined(install, "latin.xml", "line 3")
    assert "UTF-8" in error.upper().replace("UTF8", "UTF-8"), error


def test_undeclared_entity_reason_names_the_entity_and_line(install: Install) -> None:
    order = order_xml("100-000-110", client={"city": "@CITY@"}).replace("@CITY@", "&xxe;")
    install.drop("entity.xml", orders_file(order))
    drop_good(install)
    run_in_process(install)
    assert_good_delivered(install)
    error = assert_quarantined(install, "entity.xml")
    assert "line 3" in error and "xxe" in error, error


def test_elements_where_text_is_expected_do_not_put_python_reprs_into_outputs(install: Install) -> None:
    order = order_xml("100-000-120", client={"city": "@CITY@"}).replace(
        "@CITY@", 'Berlin<xi:include xmlns:xi="http://www.w3.org/2001/XInclude" href="file:///etc/passwd"/>')
    install.drop("structure.xml", orders_file(order))
    drop_good(install)
    result = install.cli("run", "--once")
    assert result.exit_code in (0, 1), result.output
    assert_good_delivered(install)
    entry = entry_named(install, "structure.xml")
    for output in entry["outputs"]:
        text = Path(output).read_bytes().decode("windows-1252")
        assert "Record(" not in text and "MISSING" not in text, text
    if entry["state"] == "failed":
        assert "city" in entry["error"], entry["error"]


# -- partner file names --------------------------------------------------------------------------------------

NAMES_DONE = {
    "dots": "a..b.xml",
    "windows-con": "CON.xml",
    "windows-nul": "NUL.xml",
    "spaces-umlauts": "Bestellung Müller ä ß.xml",
    "dash": "-rf.xml",
}
NAMES_IGNORED = {  # named like a temporary file (leading '.'): left alone, by the README's rule
    "only-suffix": ".xml",
    "dotdot": "..xml",
    "backslash-traversal": "..\\..\\evil.xml",
    "dotdot-traversal": "...xml",
}


@pytest.mark.parametrize("name", NAMES_DONE.values(), ids=NAMES_DONE.keys())
def test_odd_partner_file_names_are_processed_into_plain_output_names(install: Install, name: str) -> None:
    install.drop(name, orders_file(order_xml("100-000-200")))
    drop_good(install)
    run(install, expected_exit=0)
    entry = entry_named(install, name)
    assert entry["state"] == "done", entry
    (output,) = entry["outputs"]
    assert Path(output) == install.outbox() / f"auftraege_{name.rpartition('.')[0]}_{entry['id']}.csv"
    assert Path(output).is_file()
    assert Path(entry["stored_path"]).parent.parent == install.archive / FLOW
    assert_good_delivered(install)
    assert_contained(install)


@pytest.mark.parametrize("name", NAMES_IGNORED.values(), ids=NAMES_IGNORED.keys())
def test_partner_file_names_like_temporaries_are_ignored_and_left_alone(install: Install, name: str) -> None:
    content = orders_file(order_xml("100-000-210"))
    install.drop(name, content)
    drop_good(install)
    run(install, expected_exit=0)
    assert (install.inbox() / name).read_text(encoding="utf-8") == content
    assert [e["name"] for e in journal(install)] == [GOOD_NAME]
    assert_good_delivered(install)
    assert_contained(install)


NAMES_REFUSED = {
    "control-character": "x\x01y.xml",
    "iso-timestamp": "orders_2026-11-27T09:14:03.xml",
}


@pytest.mark.parametrize("name", NAMES_REFUSED.values(), ids=NAMES_REFUSED.keys())
def test_partner_file_names_with_characters_outputs_cannot_hold_are_still_processed(install: Install,
                                                                                    name: str) -> None:
    install.drop(name, orders_file(order_xml("100-000-220")))
    drop_good(install)
    run(install, expected_exit=0)
    entry = entry_named(install, name)
    assert entry["state"] == "done", entry
    (output,) = entry["outputs"]
    plain = Path(output).name
    assert not any(ord(c) < 32 or c in '/\\:*?"<>|' for c in plain), plain
    assert_good_delivered(install)
    assert_contained(install)


def test_a_newline_in_a_file_name_cannot_forge_a_log_line(install: Install) -> None:
    install.drop("x\nFORGED INFO all inputs delivered.xml", orders_file(order_xml("100-000-230")))
    drop_good(install)
    result = install.process("run", "--once")
    assert "Traceback" not in result.stderr, result.stderr
    assert_good_delivered(install)
    assert_contained(install)
    assert not [line for line in result.stderr.splitlines() if line.startswith("FORGED")], result.stderr


def test_a_250_character_file_name_does_not_stop_the_run(install: Install) -> None:
    name = "L" * 246 + ".xml"
    temp = install.inbox() / ".long.part"
    temp.write_text(orders_file(order_xml("100-000-240")), encoding="utf-8")
    temp.rename(install.inbox() / name)
    drop_good(install)
    result = install.process("run", "--once")
    assert "Traceback" not in result.stderr, tail(result.stderr)
    assert result.returncode in (0, 1), result.stderr
    assert_good_delivered(install)
    assert_contained(install)
    entries = [e for e in journal(install) if e["name"] == name]
    if entries:  # processed (output name shortened) or quarantined with a reason naming it
        assert entries[0]["state"] in ("done", "failed"), entries
        for output in entries[0]["outputs"]:
            assert len(Path(output).name) <= 255
    else:  # ignored: left in the inbox
        assert (install.inbox() / name).is_file()


# -- mapping-side attacks ------------------------------------------------------------------------------------

SANDBOX_ESCAPES = {
    "subclasses": "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "cycler-globals": "{{ cycler.__init__.__globals__ }}",
    "template-context": "{{ self._TemplateReference__context }}",
    "lipsum-globals": "{{ lipsum.__globals__ }}",
}
PYTHON_INTERNALS = re.compile(r"<class |<function |<module |__builtins__|__globals__|subclasses|os\.system|Context ")


@pytest.mark.parametrize("template", SANDBOX_ESCAPES.values(), ids=SANDBOX_ESCAPES.keys())
def test_template_trying_to_escape_the_sandbox_is_refused_before_anything_moves(install: Install,
                                                                                template: str) -> None:
    line = set_kopftext(install, template)
    drop_good(install)
    result = install.process("run", "--once")
    assert result.returncode == 2, result.stderr
    assert f"rakuten-orders.yaml:{line}:" in result.stderr and "not allowed in templates" in result.stderr
    assert "Traceback" not in result.stderr
    assert (install.inbox() / GOOD_NAME).is_file()  # nothing moved: not even quarantined
    assert not install.outputs()
    others = "\n".join(ln for ln in result.stderr.splitlines() if "not allowed in templates" not in ln)
    assert not PYTHON_INTERNALS.search(others), result.stderr
    assert not (install.root / "state").exists()  # refused before the journal was even opened


@pytest.mark.parametrize("template", SANDBOX_ESCAPES.values(), ids=SANDBOX_ESCAPES.keys())
def test_check_refuses_a_template_that_tries_to_escape_the_sandbox(install: Install, template: str) -> None:
    line = set_kopftext(install, template)
    result = install.cli("check")
    assert result.exit_code == 2, result.output
    assert f"rakuten-orders.yaml:{line}:" in result.output


def test_template_looping_10_to_the_12_times_is_stopped_by_the_sandbox(install: Install) -> None:
    # What happens today: Jinja's sandbox refuses range() over MAX_RANGE (100,000) at once.
    line = set_kopftext(install, "{% for i in range(10**12) %}x{% endfor %}")
    drop_good(install)
    run(install)
    assert_quarantined(install, GOOD_NAME, "field 'Kopftext'", "Range too big", f"rakuten-orders.yaml:{line}]")
    assert not install.outputs()
    assert_contained(install)


def test_template_looping_for_hours_is_stopped_by_a_time_limit(install: Install) -> None:
    set_kopftext(install, "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}")
    config = install.config.read_text(encoding="utf-8")
    install.config.write_text(config.replace("settle_seconds: 0", "settle_seconds: 0\nrecord_seconds: 2"),
                              encoding="utf-8")
    drop_good(install)
    try:
        install.process("run", "--once", timeout=60)  # the child is killed when the time is up
    except subprocess.TimeoutExpired:
        pytest.fail("`gateway run --once` was still rendering one column after 60 s")
    assert_quarantined(install, GOOD_NAME, "order 900-000-001", "longer than 2 seconds", "loops")


def test_lookup_file_pointing_to_the_mapping_itself_is_a_config_error(install: Install) -> None:
    line = mapping_line(install, "  land:")
    edit_mapping(install, "  land:                             # ISO",
                 "  selbst:\n    file: mappings/rakuten-orders.yaml\n    key: Code\n    value: Wert\n  land:  # ISO")
    check = install.cli("check")
    assert check.exit_code == 2, check.output
    assert re.search(rf"rakuten-orders\.yaml:{line + 1}:\d+: .*the header lacks the required columns 'Code', 'Wert'",
                     check.output), check.output
    drop_good(install)
    result = run(install, expected_exit=2)
    assert "nothing was processed" in result.stderr
    assert (install.inbox() / GOOD_NAME).is_file(), "bad configuration: nothing moves"
    assert not list(install.outbox().iterdir())
    assert not (install.quarantine / FLOW).exists()


SELF_INCLUDE_OUTPUT = """\
outputs:
  - name: selbst
    file: "selbst_{{ input.id }}.txt"
    format: template
    template: templates/self.txt.j2
"""


def add_self_including_template(install: Install) -> None:
    (install.root / "templates").mkdir()
    (install.root / "templates" / "self.txt.j2").write_text(
        "{% for order in records %}{{ order.order_no }}{% endfor %}{% include 'templates/self.txt.j2' %}\n",
        encoding="utf-8")
    edit_mapping(install, "outputs:\n", SELF_INCLUDE_OUTPUT)


def test_template_including_itself_is_refused_before_anything_moves(install: Install) -> None:
    add_self_including_template(install)
    drop_good(install)
    run(install, expected_exit=2)
    assert (install.inbox() / GOOD_NAME).is_file()  # the input is not blamed for the mapping's fault
    assert not install.outputs()


def test_check_refuses_a_template_including_itself(install: Install) -> None:
    add_self_including_template(install)
    result = install.cli("check")
    assert result.exit_code == 2, result.output
    assert "self.txt.j2" in result.output and "RecursionError" not in result.output


def test_lookup_file_outside_the_installation_is_refused(install: Install) -> None:
    (install.root.parent / "secret.csv").write_text(f"Code;Wert\nPAL;{CANARY}\n", encoding="utf-8")
    edit_mapping(install, "  land:                             # ISO",
                 "  geheim:\n    file: ../secret.csv\n    key: Code\n    value: Wert\n  land:  # ISO")
    set_kopftext(install, "{{ order.payment | lookup('geheim') }}")
    check = install.cli("check")
    assert CANARY not in check.output
    assert check.exit_code == 2, check.output
    assert "secret.csv" in check.output
