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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from .config import Flow, Installation
from .preview import PreviewOutput, converted


@dataclass
class CaseResult:
    flow: str
    case: str
    problems: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.problems


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
        return {
            "same": None,
            "differs": f"{self.name} differs:\n{self.diff}",
            "bytes": f"{self.name}: the text is the same but the bytes differ (line ends or encoding)",
            "not-text": f"{self.name}: the bytes differ, and the expected file is not {self.encoding} text",
            "unexpected": f"an output {self.name} was produced that expected/ does not have",
            "missing": f"the expected output {self.name} was not produced",
        }[self.kind]


def examples_dir(inst: Installation) -> Path:
    return inst.root / "examples"


def cases(inst: Installation, flow: Flow) -> list[Path]:
    """The flow's example folders, by name."""
    folder = examples_dir(inst) / flow.name
    return sorted(p for p in folder.iterdir() if p.is_dir()) if folder.is_dir() else []


def case_inputs(case: Path) -> list[Path]:
    """The files in a case's ``input/`` (a case must have exactly one)."""
    return sorted(p for p in (case / "input").glob("*") if p.is_file()) if (case / "input").is_dir() else []


def run_examples(inst: Installation, flows: list[Flow]) -> list[CaseResult]:
    results: list[CaseResult] = []
    for flow in flows:
        for case in cases(inst, flow):
            results.append(run_case(inst, flow, case))
    return results


EXAMPLE_DATE = dt.datetime(2026, 11, 27, 12, 0, tzinfo=dt.UTC)  # e-mails of examples carry a fixed date


def run_case(inst: Installation, flow: Flow, case: Path) -> CaseResult:
    result = CaseResult(flow.name, case.name)
    inputs = case_inputs(case)
    if len(inputs) != 1:
        result.problems.append(f"{case}/input must hold exactly one file (it holds {len(inputs)})")
        return result
    source = inputs[0]
    expected_dir = case / "expected"
    with converted(inst, flow, source) as preview:
        if preview.error is not None:
            mismatch = error_mismatch(str(preview.error), expected_dir)
            if mismatch is None:
                return result
            result.problems.append(mismatch or f"converting {source.name} failed: {preview.error}")
            return result
        if (expected_dir / "error.txt").is_file():
            result.problems.append(f"{source.name} was expected to fail, but it converted")
            return result
        for difference in compare_outputs(preview.outputs, expected_dir):
            if difference.problem:
                result.problems.append(difference.problem)
    return result


def error_mismatch(actual: str, expected_dir: Path) -> str | None:
    """``None`` when ``expected/error.txt`` holds words that ``actual`` contains; else why not ("" without one)."""
    expected_file = expected_dir / "error.txt"
    if not expected_file.is_file():
        return ""
    want = expected_file.read_text(encoding="utf-8").strip()
    if want not in actual:
        return f"the error was\n    {actual}\nbut error.txt expects it to contain\n    {want}"
    return None


def compare_outputs(outputs: list[PreviewOutput], expected_dir: Path) -> list[Difference]:
    """Each output against its expected file, then each expected file that was not produced."""
    expected = {p.name: p for p in expected_dir.glob("*") if p.is_file()} if expected_dir.is_dir() else {}
    expected.pop("error.txt", None)
    found = []
    for out in outputs:
        want = expected.pop(out.name, None)
        if want is None:
            found.append(Difference(out.name, "unexpected"))
            continue
        found.append(_compare(out.name, out.path.read_bytes(), want.read_bytes(), out.encoding or "utf-8"))
    found += [Difference(name, "missing") for name in sorted(expected)]
    return found


def _compare(name: str, actual: bytes, expected: bytes, encoding: str) -> Difference:
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
