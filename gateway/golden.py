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
from dataclasses import dataclass, field
from pathlib import Path

from .config import Flow, Installation
from .convert import convert, input_info
from .errors import GatewayError
from .processing import mail_settings


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


def run_case(inst: Installation, flow: Flow, case: Path) -> CaseResult:
    result = CaseResult(flow.name, case.name)
    inputs = sorted(p for p in (case / "input").glob("*") if p.is_file()) if (case / "input").is_dir() else []
    if len(inputs) != 1:
        result.problems.append(f"{case}/input must hold exactly one file (it holds {len(inputs)})")
        return result
    source = inputs[0]
    expected_dir = case / "expected"
    expected = {p.name: p for p in expected_dir.glob("*") if p.is_file()} if expected_dir.is_dir() else {}
    info = input_info(1, source.name, flow.name, "", EXAMPLE_DATE.date())
    encodings = {o.name: getattr(o.spec, "encoding", "utf-8") for o in flow.mapping.outputs}
    with tempfile.TemporaryDirectory(prefix="gateway-test-") as tmp:
        try:
            conversion = convert(flow.mapping, source, source.name, Path(tmp), info, flow.settings,
                                 key_delivered=lambda key: None, mail=mail_settings(inst, EXAMPLE_DATE))
        except GatewayError as exc:
            if "error.txt" in expected:
                _compare_error(result, str(exc), expected.pop("error.txt"))
            else:
                result.problems.append(f"converting {source.name} failed: {exc}")
            return result
        if "error.txt" in expected:
            result.problems.append(f"{source.name} was expected to fail, but it converted")
            return result
        for staged in conversion.outputs:
            want = expected.pop(staged.name, None)
            if want is None:
                result.problems.append(f"an output {staged.name} was produced that expected/ does not have")
                continue
            _compare(result, staged.name, staged.path.read_bytes(), want.read_bytes(), encodings[staged.output])
    for name in sorted(expected):
        result.problems.append(f"the expected output {name} was not produced")
    return result


def _compare_error(result: CaseResult, actual: str, expected_file: Path) -> None:
    want = expected_file.read_text(encoding="utf-8").strip()
    if want not in actual:
        result.problems.append(f"the error was\n    {actual}\nbut error.txt expects it to contain\n    {want}")


def _compare(result: CaseResult, name: str, actual: bytes, expected: bytes, encoding: str) -> None:
    if actual == expected:
        return
    try:
        got = actual.decode(encoding).splitlines()
        want = expected.decode(encoding).splitlines()
    except UnicodeDecodeError:
        result.problems.append(f"{name}: the bytes differ, and the expected file is not {encoding} text")
        return
    if got == want:
        result.problems.append(f"{name}: the text is the same but the bytes differ (line ends or encoding)")
        return
    diff = "\n".join(difflib.unified_diff(want, got, f"expected/{name}", f"actual/{name}", n=1, lineterm=""))
    result.problems.append(f"{name} differs:\n{diff}")
