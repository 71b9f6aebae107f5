"""Golden examples: a sample input and the outputs it must give, per flow.

The admin's safety net when editing a mapping: ``gateway test`` converts every example
input with the current mapping and compares the result with the expected files, byte
for byte, showing a readable diff where they differ. Layout::

    examples/<flow>/<case>/input/<one input file>
    examples/<flow>/<case>/expected/<each output file it must produce>

An example is converted as input number 1 (``input.id``), with no memory of earlier
deliveries, and touches no inbox, outbox or journal.
"""

from __future__ import annotations

import datetime as dt
import difflib
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from .config import Flow, Installation
from .convert import Conversion, convert, input_info
from .errors import GatewayError
from .i18n import _, language, ngettext, set_language
from .processing import mail_settings

if TYPE_CHECKING:
    from .preview import PreviewOutput


@dataclass
class CaseResult:
    flow: str
    case: str
    problems: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.problems


def examples_dir(inst: Installation) -> Path:
    return inst.root / "examples"


def run_examples(inst: Installation, flows: list[Flow]) -> list[CaseResult]:
    results: list[CaseResult] = []
    for flow in flows:
        folder = examples_dir(inst) / flow.name
        cases = sorted(p for p in folder.iterdir() if p.is_dir()) if folder.is_dir() else []
        for case in cases:
            results.append(run_case(inst, flow, case))
    return results


EXAMPLE_DATE = dt.datetime(2026, 11, 27, 12, 0, tzinfo=dt.UTC)  # e-mails of examples carry a fixed date


def _convert_case(inst: Installation, flow: Flow, case: Path, tmp: Path) -> tuple[Path, Conversion]:
    """Convert the case's input as input number 1 into ``tmp``; ``ValueError`` when the case has no single input."""
    inputs = sorted(p for p in (case / "input").glob("*") if p.is_file()) if (case / "input").is_dir() else []
    if len(inputs) != 1:
        raise ValueError(_("{folder}/input must hold exactly one file (it holds {count})").format(
            folder=case, count=len(inputs)))
    source = inputs[0]
    info = input_info(1, source.name, flow.name, "", EXAMPLE_DATE.date())
    return source, convert(flow.mapping, source, source.name, tmp, info, flow.settings,
                           key_delivered=lambda key: None, mail=mail_settings(inst, EXAMPLE_DATE))


def _skipped_words(conversion: Conversion, limit: int = 5) -> str:
    """The records the mapping left out, and why: the usual reason an expected output was not produced."""
    if not conversion.skipped:
        return ""
    lines = [f"{s['key']}: {s['reason']}" for s in conversion.skipped[:limit]]
    more = len(conversion.skipped) - limit
    count = len(conversion.skipped)
    text = ngettext("{count} of {total} records were skipped:", "{count} of {total} records were skipped:",
                    count).format(count=count, total=conversion.records + count) + "\n  "
    text += "\n  ".join(lines)
    return text + ("\n  " + _("… and {count} more").format(count=more) if more > 0 else "")


def run_case(inst: Installation, flow: Flow, case: Path) -> CaseResult:
    result = CaseResult(flow.name, case.name)
    expected_dir = case / "expected"
    expected = {p.name: p for p in expected_dir.glob("*") if p.is_file()} if expected_dir.is_dir() else {}
    encodings = {o.name: getattr(o.spec, "encoding", "utf-8") for o in flow.mapping.outputs}
    with tempfile.TemporaryDirectory(prefix="gateway-test-") as tmp:
        try:
            source, conversion = _convert_case(inst, flow, case, Path(tmp))
        except ValueError as exc:
            result.problems.append(str(exc))
            return result
        except GatewayError as exc:
            if "error.txt" in expected:
                _compare_error(result, str(exc), expected.pop("error.txt"), lambda: _english_error(inst, flow, case))
            else:
                result.problems.append(_("converting {case}'s input failed: {error}").format(case=case.name, error=exc))
            return result
        if "error.txt" in expected:
            result.problems.append(_("{name} was expected to fail, but it converted").format(name=source.name))
            return result
        for staged in conversion.outputs:
            want = expected.pop(staged.name, None)
            if want is None:
                result.problems.append(_("an output {name} was produced that expected/ does not have").format(
                    name=staged.name))
                continue
            _compare(result, staged.name, staged.path.read_bytes(), want.read_bytes(), encodings[staged.output])
    told = False  # the skipped records are named already
    for name in sorted(expected):
        why = _skipped_words(conversion)
        if why:
            result.problems.append(_("the expected output {name} was not produced; {why}").format(name=name, why=why))
            told = True
        else:
            result.problems.append(_("the expected output {name} was not produced (no record was skipped: the "
                                     "output's rows or 'when' gave nothing)").format(name=name))
    if result.problems and conversion.skipped and not told:
        result.problems.append(_skipped_words(conversion))
    return result


def _english_error(inst: Installation, flow: Flow, case: Path) -> str | None:
    """The case's error in English: error.txt files hold the English words, whatever the admin's language."""
    was = language()
    if was == "en":
        return None
    set_language("en")
    try:
        with tempfile.TemporaryDirectory(prefix="gateway-test-") as tmp:
            _convert_case(inst, flow, case, Path(tmp))
    except GatewayError as exc:
        return str(exc)
    except ValueError:
        return None
    finally:
        set_language(was)
    return None


@dataclass
class Refresh:
    """What refreshing one example would change: each file with its diff, new or removed."""

    flow: str
    case: str
    outputs: dict[str, bytes] = field(default_factory=dict)  # what the mapping produces now
    changes: list[str] = field(default_factory=list)  # in words, with diffs
    removed: list[str] = field(default_factory=list)  # expected files no longer produced
    error: str | None = None  # the conversion failed: nothing to write

    @property
    def changed(self) -> bool:
        return bool(self.changes or self.removed)


def refresh_case(inst: Installation, flow: Flow, case: Path) -> Refresh:
    """Convert the example and compare with its expected files, without writing anything yet."""
    found = Refresh(flow.name, case.name)
    expected_dir = case / "expected"
    expected = {p.name: p for p in expected_dir.glob("*") if p.is_file()} if expected_dir.is_dir() else {}
    encodings = {o.name: getattr(o.spec, "encoding", "utf-8") for o in flow.mapping.outputs}
    if "error.txt" in expected:
        found.error = _("this example expects an error (error.txt); edit error.txt by hand")
        return found
    with tempfile.TemporaryDirectory(prefix="gateway-refresh-") as tmp:
        try:
            _source, conversion = _convert_case(inst, flow, case, Path(tmp))
        except (ValueError, GatewayError) as exc:
            found.error = _("converting the input failed, nothing is written: {error}").format(error=exc)
            return found
        for staged in conversion.outputs:
            data = staged.path.read_bytes()
            found.outputs[staged.name] = data
            old = expected.pop(staged.name, None)
            if old is None:
                found.changes.append(_("new file {name}").format(name=staged.name))
            elif old.read_bytes() != data:
                check = CaseResult(flow.name, case.name)
                _compare(check, staged.name, data, old.read_bytes(), encodings[staged.output])
                found.changes.extend(check.problems)
    found.removed = sorted(expected)
    return found


def write_refresh(case: Path, refresh: Refresh) -> None:
    """Write the example's new expected files (and remove those no longer produced)."""
    expected_dir = case / "expected"
    expected_dir.mkdir(exist_ok=True)
    for name in refresh.removed:
        (expected_dir / name).unlink()
    for name, data in refresh.outputs.items():
        (expected_dir / name).write_bytes(data)


def _compare_error(result: CaseResult, actual: str, expected_file: Path,
                   english: Callable[[], str | None] = lambda: None) -> None:
    """The error must contain error.txt's words (in English, they are written so, or the admin's language)."""
    want = expected_file.read_text(encoding="utf-8").strip()
    if want in actual:
        return
    again = english()
    if again is not None and want in again:
        return
    result.problems.append(_("the error was\n    {actual}\nbut error.txt expects it to contain\n    {expected}").format(
        actual=actual, expected=want))


def _compare(result: CaseResult, name: str, actual: bytes, expected: bytes, encoding: str) -> None:
    problem = _difference(name, actual, expected, encoding).problem
    if problem:
        result.problems.append(problem)


@dataclass(frozen=True)
class Difference:
    """How one output compares with its expected file (the console shows ``kind`` and ``diff``)."""

    name: str
    kind: Literal["same", "differs", "bytes", "not-text", "unexpected", "missing"]
    diff: str = ""  # a unified diff, expected → actual, when ``kind`` is "differs"
    encoding: str = "utf-8"

    @property
    def problem(self) -> str | None:
        """The words ``gateway test`` prints, ``None`` when the output is as expected."""
        if self.kind == "same":
            return None
        if self.kind == "differs":
            return _("{name} differs:\n{diff}").format(name=self.name, diff=self.diff)
        if self.kind == "bytes":
            return _("{name}: the text is the same but the bytes differ (line ends or encoding)").format(name=self.name)
        if self.kind == "not-text":
            return _("{name}: the bytes differ, and the expected file is not {encoding} text").format(
                name=self.name, encoding=self.encoding)
        if self.kind == "unexpected":
            return _("an output {name} was produced that expected/ does not have").format(name=self.name)
        return _("the expected output {name} was not produced").format(name=self.name)


def cases(inst: Installation, flow: Flow) -> list[Path]:
    """The flow's example folders, by name."""
    folder = examples_dir(inst) / flow.name
    return sorted(p for p in folder.iterdir() if p.is_dir()) if folder.is_dir() else []


def case_inputs(case: Path) -> list[Path]:
    """The files in a case's ``input/`` (a case must have exactly one)."""
    return sorted(p for p in (case / "input").glob("*") if p.is_file()) if (case / "input").is_dir() else []


def compare_outputs(outputs: list[PreviewOutput], expected_dir: Path) -> list[Difference]:
    """Each output of a preview against its expected file, then each expected file that was not produced."""
    expected = {p.name: p for p in expected_dir.glob("*") if p.is_file()} if expected_dir.is_dir() else {}
    expected.pop("error.txt", None)
    found = []
    for out in outputs:
        want = expected.pop(out.name, None)
        if want is None:
            found.append(Difference(out.name, "unexpected"))
            continue
        found.append(_difference(out.name, out.path.read_bytes(), want.read_bytes(), out.encoding or "utf-8"))
    found += [Difference(name, "missing") for name in sorted(expected)]
    return found


def _difference(name: str, actual: bytes, expected: bytes, encoding: str) -> Difference:
    if actual == expected:
        return Difference(name, "same")
    try:
        got = actual.decode(encoding).splitlines()
        want = expected.decode(encoding).splitlines()
    except UnicodeDecodeError:
        return Difference(name, "not-text", encoding=encoding)
    if got == want:
        return Difference(name, "bytes")
    diff = "\n".join(difflib.unified_diff(want, got, f"expected/{name}", f"actual/{name}", n=1, lineterm=""))
    return Difference(name, "differs", diff)
