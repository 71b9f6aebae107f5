"""Settings shared by flows: set once in gateway.yaml, inherited, overridable, and shown with their origin."""

from __future__ import annotations

import json

from conftest import Install


def _write(install: Install, head: str = "", flow_settings: str = "") -> None:
    text = install.config.read_text(encoding="utf-8")
    text = text.replace("settle_seconds: 0\n", "settle_seconds: 0\n" + head)
    if flow_settings:
        text = text.rstrip("\n") + "\n    settings:\n" + flow_settings
    install.config.write_text(text, encoding="utf-8")


def _effective(install: Install) -> dict[str, dict[str, str]]:
    result = install.cli("settings", "--json")
    assert result.exit_code == 0, result.output
    (flow,) = [json.loads(line) for line in result.output.splitlines()]
    return dict(flow["settings"])


def test_an_installation_setting_reaches_every_flow_that_has_it(install: Install) -> None:
    _write(install, "settings:\n  mandant: '456'\n")
    mandant = _effective(install)["mandant"]
    assert (mandant["value"], mandant["from"]) == ("456", "installation")
    assert mandant["where"].endswith("gateway.yaml:8")


def test_a_flow_setting_wins_over_the_installation_and_says_so(install: Install) -> None:
    _write(install, "settings:\n  mandant: '456'\n", "      mandant: '789'\n")
    assert _effective(install)["mandant"]["value"] == "789"
    assert _effective(install)["mandant"]["from"] == "flow"
    text = install.cli("settings").output
    assert "mandant: '789'  ← the flow in gateway.yaml" in text


def test_without_either_the_mapping_default_is_used_and_named(install: Install) -> None:
    belegart = _effective(install)["belegart"]
    assert belegart["from"] == "mapping" and "mappings/rakuten-orders.yaml:" in belegart["where"]


def test_an_installation_setting_no_mapping_has_is_refused_with_its_line(install: Install) -> None:
    _write(install, "settings:\n  manddant: '456'\n")
    result = install.cli("check")
    assert result.exit_code == 2
    assert "gateway.yaml:8:3: no flow's mapping has a setting 'manddant'" in result.output


def test_check_warns_when_flows_disagree_on_a_shared_setting(install: Install) -> None:
    text = install.config.read_text(encoding="utf-8")
    second = text.split("flows:\n", 1)[1].replace("rakuten-orders:", "second-orders:", 1).replace(
        "inbox/rakuten-orders", "inbox/second").replace("outbox/rakuten-orders", "outbox/second")
    install.config.write_text(text + second.rstrip("\n") + "\n    settings: { mandant: '999' }\n", encoding="utf-8")
    result = install.cli("check")
    assert result.exit_code == 0
    assert "the flows disagree on the setting 'mandant'" in result.output
    assert "second-orders '999' from the flow in gateway.yaml" in result.output
    assert "rakuten-orders '123' from the mapping's default" in result.output
