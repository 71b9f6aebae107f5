"""LibYAML (fast) and PyYAML's own composer read every YAML file the same: data, places and problems."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from conftest import REPO

from gateway import yamlload
from gateway.errors import ConfigError

FILES = sorted({*REPO.glob("*.yaml"), *REPO.glob("mappings/*.yaml"), *REPO.glob("examples/**/*.yaml"),
                *REPO.glob("examples/**/*.yml"), *REPO.glob("bench/**/*.yaml"), *REPO.glob("tests/**/*.yaml")})

pytestmark = pytest.mark.skipif(yamlload._C_LOADER is None, reason="PyYAML without LibYAML: one composer only")


def _both(text: str, monkeypatch: pytest.MonkeyPatch) -> tuple[object, object]:
    results = []
    for fast in (True, False):
        if not fast:
            monkeypatch.setattr(yamlload, "_C_LOADER", None)
        try:
            doc = yamlload.parse_yaml(text, "f.yaml")
            results.append((doc.data, doc.marks))
        except ConfigError as exc:
            results.append([str(p) for p in exc.problems])
    return results[0], results[1]


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(REPO)))
def test_every_shipped_yaml_file_reads_the_same_with_both_composers(path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    fast, slow = _both(path.read_text(encoding="utf-8-sig"), monkeypatch)
    assert fast == slow


@pytest.mark.parametrize("text", [
    "a: NO\nb: 0777\nc: 12:30\nd: ~\ne:\nf: ''\ng: null\nh: \"null\"\n",
    "text: |\n  line 1\n    line 2\n\n  line 4\nfolded: >-\n  a\n  b\n",
    "a: &x {b: 1}\nc: *x\n",
    "a: &x [1, *x]\n",
    "a: 1\na: 2\n",
    "a: [1, 2\n",
    "a: 'ä' \nb: \"\\u00fc\"\nüber: ö\n",
    "- a\n- {b: c}\n- [d, {e: f}]\n",
    "key: value # comment\n# only a comment\n",
    "a:\n\tb: 1\n",
])
def test_tricky_yaml_reads_the_same_with_both_composers(text: str, monkeypatch: pytest.MonkeyPatch) -> None:
    fast, slow = _both(text, monkeypatch)
    assert fast == slow


def test_a_file_with_an_alias_takes_pyyaml_s_composer_that_counts_aliases() -> None:
    assert yamlload._fast_compose("a: &x [1]\nb: *x\n") is yamlload._SLOW
    assert yamlload._fast_compose("a: &x [1]\nb: 2\n") is not yamlload._SLOW
    assert isinstance(yaml.compose("a: 1\n", Loader=yaml.SafeLoader), yaml.MappingNode)
