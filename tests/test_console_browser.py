"""The console in a real browser: headless Chromium (Debian's package) driven by Playwright, against the console
served for real by uvicorn.

Scenarios an operator lives through: a quarantined order fixed in the mapping and retried until it is in the
outbox; an order number found among 100,000 journal entries; a broken file tried on the preview page, its
error with line and field; the overview changing by itself when a file is dropped and a run takes it.
Every page is photographed at 1280 and at 390 pixels wide into ``test-artifacts/console/`` for a person to
look at. Tests wait for what the page shows (Playwright's auto-waiting), never for a time.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import GATEWAY_YAML, REPO, Install, order_xml, orders_file
from consoleserver import console_server
from journalfill import fill_journal

from gateway.console.auth import hash_password
from gateway.journal import JournalQuery
from gateway.journal.sqlite import SqliteJournal

pytestmark = pytest.mark.browser

playwright_api = pytest.importorskip("playwright.sync_api")
from playwright.sync_api import Browser, Page, expect  # noqa: E402 - after the skip when Playwright is missing

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = REPO / "test-artifacts" / "console"
WIDTHS = (1280, 390)
PASSWORD = "olga-secret-1"  # noqa: S105 - a test user's
ENTRIES = 100_000


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.skip("Debian's chromium is not installed (apt-get install -y chromium)")
    with playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        yield browser
        browser.close()


def photograph(page: Page, name: str) -> None:
    """The page as it is now, at each width, into test-artifacts/console/NAME-WIDTH.png."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    size = page.viewport_size
    for width in WIDTHS:
        page.set_viewport_size({"width": width, "height": 900})
        page.screenshot(path=ARTIFACTS / f"{name}-{width}.png", full_page=True)
    if size:
        page.set_viewport_size(size)


def _installation(root: Path) -> Install:
    (root / "mappings").mkdir(parents=True)
    shutil.copy(REPO / "mappings" / "rakuten-orders.yaml", root / "mappings")
    (root / "gateway.yaml").write_text(
        GATEWAY_YAML + "console:\n  users:\n"
        f"    olga: {{ role: operator, password_hash: \"{hash_password(PASSWORD)}\" }}\n", encoding="utf-8")
    (root / "inbox" / "rakuten-orders").mkdir(parents=True)
    (root / "outbox" / "rakuten-orders").mkdir(parents=True)
    return Install(root)


def run_once(gw: Install) -> subprocess.CompletedProcess[str]:
    """``gateway run --once`` in its own process, as the operator's scheduler would start it."""
    return subprocess.run([sys.executable, "-m", "gateway", "--config", str(gw.config), "run", "--once"],
                          capture_output=True, text=True, timeout=120, check=False, env=dict(os.environ))


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory) -> Install:
    return _installation(tmp_path_factory.mktemp("console") / "gw")


@pytest.fixture(scope="module")
def console_url(gw: Install) -> Iterator[str]:
    with console_server(gw.config, poll_seconds=0.3) as url:
        yield url


@pytest.fixture(scope="module")
def page(browser: Browser, console_url: str) -> Iterator[Page]:
    """One logged-in operator's tab for the scenarios (the login page photographed on the way)."""
    context = browser.new_context(viewport={"width": 1280, "height": 900}, base_url=console_url)
    tab = context.new_page()
    tab.goto("/")
    expect(tab.get_by_role("heading", name="Log in")).to_be_visible()
    photograph(tab, "login")
    tab.get_by_label("User name").fill("olga")
    tab.get_by_label("Password").fill(PASSWORD)
    tab.get_by_role("button", name="Log in").click()
    expect(tab.get_by_role("heading", name="Overview")).to_be_visible()
    yield tab
    context.close()


def test_a_quarantined_order_fixed_in_the_mapping_and_retried_reaches_the_outbox(gw: Install, page: Page) -> None:
    gw.drop("orders_xyz.xml", orders_file(order_xml("500-600-700", payment="XYZ")))
    assert run_once(gw).returncode == 1  # quarantined: the payment code XYZ is not in the lookup table

    page.goto("/quarantine")
    card = page.locator("article.card").filter(has_text="orders_xyz.xml")
    expect(card.locator(".where")).to_contain_text("Zahlungskond")
    expect(card.locator(".error-text")).to_contain_text("'XYZ' is not in the lookup table")
    card.get_by_label("Note").fill("XYZ is the new prepayment code; added to the mapping")
    card.get_by_role("button", name="Save note").click()
    expect(page.locator(".flash")).to_have_text("Note saved.")
    photograph(page, "quarantine")

    mapping = gw.root / "mappings" / "rakuten-orders.yaml"
    mapping.write_text(mapping.read_text(encoding="utf-8").replace(
        "      PP: VORKASSE", "      PP: VORKASSE\n      XYZ: VORKASSE", 1), encoding="utf-8")
    card = page.locator("article.card").filter(has_text="orders_xyz.xml")
    card.get_by_role("button", name="Retry").click()
    expect(page.locator(".flash")).to_contain_text("will be processed by the next run")
    expect(page.locator("article.card").filter(has_text="orders_xyz.xml")).to_have_count(0)

    assert run_once(gw).returncode == 0
    outputs = gw.outputs()
    assert len(outputs) == 1 and "500-600-700" in outputs[0].read_text(encoding="windows-1252")

    page.goto("/journal?name=orders_xyz")
    page.get_by_role("link", name="orders_xyz.xml").click()
    expect(page.locator("#state")).to_have_text("done")
    expect(page.locator(".keys")).to_contain_text("500-600-700")
    expect(page.locator(".notes")).to_contain_text("XYZ is the new prepayment code")
    expect(page.get_by_role("cell", name=outputs[0].name, exact=True)).to_be_visible()
    photograph(page, "input")
    page.get_by_role("link", name="View", exact=True).click()
    expect(page.locator("pre.file")).to_contain_text("500-600-700")
    photograph(page, "output")


def test_the_overview_changes_by_itself_when_a_file_is_dropped_and_a_run_takes_it(gw: Install, page: Page) -> None:
    page.goto("/")
    row = page.locator('tr[data-flow="rakuten-orders"]')
    done = int(row.locator('[data-field="done"]').inner_text())
    page.evaluate("window.notReloaded = true")
    gw.drop("orders_later.xml", orders_file(order_xml("800-900-100")))
    expect(row.locator('[data-field="waiting"]')).to_have_text("1")
    assert run_once(gw).returncode == 0
    expect(row.locator('[data-field="done"]')).to_have_text(str(done + 1))
    expect(row.locator('[data-field="waiting"]')).to_have_text("0")
    expect(page.locator("[data-list=places]")).to_contain_text("destination outbox of rakuten-orders")
    assert page.evaluate("window.notReloaded") is True  # the same page: it updated itself
    photograph(page, "overview")


def test_the_preview_shows_the_line_and_field_of_a_broken_file(gw: Install, page: Page) -> None:
    page.goto("/try")
    page.get_by_label("Flow").select_option("rakuten-orders")
    broken = orders_file(order_xml("300-300-300", payment="NOPE"))
    page.locator("#try-file").set_input_files(
        files=[{"name": "broken.xml", "mimeType": "application/xml", "buffer": broken.encode()}])
    page.get_by_role("button", name="Convert").click()
    expect(page.locator("#error-field")).to_have_text("Zahlungskond")
    expect(page.locator("#error-line")).to_have_text(str(_line_of(broken, "<order>")))
    expect(page.locator("#error")).to_contain_text("'NOPE' is not in the lookup table")
    photograph(page, "try-error")
    journal = SqliteJournal(gw.root / "state" / "journal.sqlite")
    try:
        assert not journal.search(JournalQuery(name="broken")).rows  # nothing journaled …
    finally:
        journal.close()
    assert not any("300-300-300" in p.read_text(encoding="windows-1252") for p in gw.outputs())  # … or delivered


def test_a_golden_example_is_compared_with_its_expected_files(gw: Install, page: Page) -> None:
    examples = gw.root / "examples" / "rakuten-orders"
    shutil.copytree(REPO / "examples" / "rakuten-orders" / "sample", examples / "sample")
    shutil.copytree(examples / "sample", examples / "changed")
    expected = next((examples / "changed" / "expected").glob("auftraege_*.csv"))
    expected.write_bytes(expected.read_bytes().replace(b"VVA", b"VVR", 1))
    page.goto("/try")
    page.get_by_label("Flow").select_option("rakuten-orders")
    page.get_by_label("An example").select_option("sample")
    page.get_by_role("button", name="Convert").click()
    expect(page.locator(".verdict")).to_have_text("The outputs are exactly the example's expected files.")
    page.get_by_label("An example").select_option("changed")
    page.get_by_role("button", name="Convert").click()
    expect(page.locator(".verdict")).to_have_text("The outputs differ from the example's expected files.")
    expect(page.locator("pre.diff .del").first).to_contain_text("VVR")
    expect(page.locator("pre.diff .add").first).to_contain_text("VVA")
    photograph(page, "try-example")


def test_the_settings_page_shows_where_each_value_comes_from(page: Page) -> None:
    page.goto("/settings")
    section = page.locator("section.card").filter(has_text="rakuten-orders")
    expect(section.get_by_role("row").filter(has_text="belegart")).to_contain_text("the mapping's default")
    photograph(page, "settings")


# -- 100,000 entries -----------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def big_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    gw = _installation(tmp_path_factory.mktemp("console-big") / "gw")
    fill_journal(gw.root / "state" / "journal.sqlite", ENTRIES)
    with console_server(gw.config) as url:
        yield url


def test_an_order_number_is_found_among_100000_journal_entries(browser: Browser, big_url: str) -> None:
    context = browser.new_context(viewport={"width": 1280, "height": 900}, base_url=big_url)
    page = context.new_page()
    try:
        page.goto("/journal")
        page.get_by_label("User name").fill("olga")
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Log in").click()
        expect(page.locator("#result-count")).to_have_text("100,000 entries")
        wanted = 54_321
        page.get_by_label("Order number").fill(f"{wanted:03d}-{wanted * 7 % 1000:03d}-{wanted % 997:03d}")
        page.get_by_role("button", name="Search").click()
        expect(page.locator("#result-count")).to_have_text("1 entry")
        expect(page.get_by_role("link", name=f"orders_{wanted:06d}.xml")).to_be_visible()
        page.get_by_label("Order number").fill("")
        page.get_by_label("State").select_option("failed")
        page.get_by_label("From").fill("2026-01-02")
        page.get_by_label("To").fill("2026-01-02")
        page.get_by_role("button", name="Search").click()
        expect(page.locator("#result-count")).to_have_text("3 entries")  # 288 inputs that day, every 97th failed
        page.get_by_label("State").select_option("")
        page.get_by_label("From").fill("")
        page.get_by_label("To").fill("")
        page.get_by_label("File name").fill("orders_0999")
        page.get_by_role("button", name="Search").click()
        expect(page.locator("#result-count")).to_have_text("100 entries")
        page.get_by_role("link", name="Older »").click()
        expect(page.locator("table.journal tbody tr")).to_have_count(50)
        expect(page.locator("table.journal tbody tr").last).to_contain_text("orders_099900.xml")
        page.goto("/journal")
        photograph(page, "journal")
    finally:
        context.close()


def _line_of(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)
