"""Converting one file the way a golden example is converted, touching no inbox, outbox or journal.

``gateway preview``, ``gateway test`` and the console's "Try a mapping" page all go through
:func:`converted`: the input is converted as input number 1 on the examples' fixed date, into a
temporary folder that is removed afterwards, so that trying a mapping can never deliver or
journal anything.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import GatewayError, InputError

if TYPE_CHECKING:
    from .config import Flow, Installation
    from .convert import Conversion


@dataclass(frozen=True)
class PreviewOutput:
    """One output of a preview, complete in the temporary folder."""

    output: str  # the output's name in the mapping
    name: str  # the file name it would get at the destination
    path: Path
    rows: int
    encoding: str | None  # None: a file of the input passed on as it is (a PDF), not text

    @property
    def size(self) -> int:
        return self.path.stat().st_size

    def text(self, limit: int | None = None) -> tuple[str, bool]:
        """The output as text (at most ``limit`` bytes of it) and whether it was cut."""
        with open(self.path, "rb") as fh:
            data = fh.read() if limit is None else fh.read(limit + 1)
        cut = limit is not None and len(data) > limit
        return (data[:limit] if cut else data).decode(self.encoding or "utf-8", errors="replace"), cut


@dataclass
class Preview:
    outputs: list[PreviewOutput] = field(default_factory=list)
    skipped: list[dict[str, str]] = field(default_factory=list)
    error: GatewayError | None = None  # the input (or the mapping) is refused: nothing else is set

    @property
    def where(self) -> dict[str, Any]:
        """The error's location (line, field…) when the input is at fault."""
        return self.error.where() if isinstance(self.error, InputError) else {}


@contextmanager
def converted(inst: Installation, flow: Flow, source: Path, shown_as: str | None = None) -> Iterator[Preview]:
    """Convert ``source`` with ``flow``'s mapping; the outputs exist only inside the ``with`` block."""
    from .convert import convert, input_info
    from .golden import EXAMPLE_DATE
    from .mapping.model import FileOutput
    from .processing import mail_settings

    name = shown_as or source.name
    info = input_info(1, name, flow.name, "", EXAMPLE_DATE.date())
    with tempfile.TemporaryDirectory(prefix="gateway-preview-") as tmp:
        try:
            mapping = flow.mapping
            result: Conversion = convert(mapping, source, name, Path(tmp), info, flow.settings,
                                         key_delivered=lambda key: None, mail=mail_settings(inst, EXAMPLE_DATE))
        except GatewayError as exc:
            yield Preview(error=exc)
            return
        specs = {o.name: o.spec for o in mapping.outputs}
        outputs = [
            PreviewOutput(staged.output, staged.name, staged.path, staged.rows,
                          None if isinstance(specs[staged.output], FileOutput)
                          else str(getattr(specs[staged.output], "encoding", "utf-8")))
            for staged in result.outputs
        ]
        yield Preview(outputs=outputs, skipped=result.skipped)


def refuses_folder(flow: Flow, source: Path) -> str | None:
    """Why ``source`` (a folder) cannot be previewed with ``flow``, or ``None``."""
    from .mapping.model import BatchInput

    if source.is_dir() and not isinstance(flow.mapping.spec.input, BatchInput):
        return (f"{source} is a folder; flow '{flow.name}' reads single files "
                f"({flow.mapping.spec.input.format}), only a batch flow takes a folder")
    return None
