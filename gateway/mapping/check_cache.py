"""What the check of each mapping found, kept under the state folder: idle flows are validated without compiling.

A run must refuse bad configuration before anything moves, so every mapping is checked at the
start of every run, also those of flows with nothing waiting. Checking a mapping means reading
its YAML, its lookup files and templates and parsing every value: most of what a run with
nothing to do would cost. So a mapping that passed its check leaves a note in
``state/cache/mappings/``: the hash of every file the check read (the mapping, the mapping it
is ``based_on``, its lookup files, templates and schemas, and the schemas those include), the
version of the gateway's code, and the few facts the installation's own checks need (settings
and their places, where each output goes). The next run re-hashes those files; when all are
unchanged, the check would find exactly what it found then, and the note stands in for it.
The flow's mapping is then compiled only when the flow has an input.

Why this is safe:

- Only a check that found *no* problem is noted. A check's result depends only on the files it
  read (it consults no environment variable, clock or network), and each of them is hashed:
  a changed, added-back or removed file (a missing one is hashed as missing), or a link now
  pointing elsewhere (the resolved path is part of the note), makes the note not match, and
  the mapping is checked again, with its problems reported as always.
- The gateway's code is part of the note (its source files' and message catalogs' names, sizes and
  times of change, and the versions of Python, Jinja, MarkupSafe, pydantic and PyYAML): a new gateway version
  checks everything again.
- The note is data (JSON), never code: nothing in it is executed. A note that cannot be read,
  or that does not describe this installation's file, is ignored; so is one written from another
  working folder (the places it holds are shown relative to the folder the gateway runs in).
- Notes are written whole (a temporary file renamed into place), so two gateways writing at
  once leave one complete note, and a crash leaves none or the previous one.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sys
import tempfile
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import Problem

if TYPE_CHECKING:
    from .runtime import Mapping

FORMAT = 1
_SCHEMA_LOCATION = re.compile(rb"""schemaLocation\s*=\s*["']([^"']+)["']""")


@dataclass(frozen=True)
class MappingFacts:
    """What the installation's checks need of a mapping that passed its own check."""

    settings: dict[str, tuple[str, str]]  # name -> (the mapping's value, "FILE:LINE" where it is written)
    outputs: list[tuple[str, str, int, int]]  # per output: where it goes ('to') and the place of 'to'
    checks: dict[str, list[list[Any]]] = field(default_factory=dict)  # a kind's check of the flow -> its problems

    @classmethod
    def of(cls, mapping: Mapping) -> MappingFacts:
        doc = mapping.doc
        settings = {name: (value, f"{doc.path}:{doc.where(('settings', name))[0]}")
                    for name, value in mapping.settings.items()}
        outputs = []
        for i, out in enumerate(mapping.spec.outputs):
            place = doc.problem(("outputs", i, "to"), "")
            outputs.append((out.to, place.file, place.line, place.column))
        return cls(settings, outputs)

    def output_problem(self, index: int, message: str) -> Problem:
        _, file, line, column = self.outputs[index]
        return Problem(file, line, column, message)


@lru_cache(maxsize=1)
def code_stamp() -> str:
    """The gateway's own code and the libraries that read mappings: a new version checks everything again.

    The gateway's source files and message catalogs (a noted check's problems are in the admin's
    language) count by name, size and time of change (a new version, installed or checked out,
    writes them anew); a library by the content of the file that holds its
    version, found without importing it (a run with nothing to do need not load Jinja).
    """
    from importlib.util import find_spec

    digest = hashlib.sha256(f"{FORMAT} {sys.version}".encode())
    for library, module in (("jinja2", "jinja2"), ("pydantic", "pydantic.version"), ("yaml", "yaml"),
                            ("markupsafe", "markupsafe")):
        spec = find_spec(module)
        origin = spec.origin if spec is not None else None
        digest.update(library.encode() + b"\0" + (Path(origin).read_bytes() if origin else b"?") + b"\0")
    package = Path(__file__).resolve().parents[1]
    for path in sorted(p for p in package.rglob("*") if p.suffix in (".py", ".mo")):  # .mo: a check's words
        info = path.stat()
        digest.update(f"{path.relative_to(package)}\0{info.st_size}\0{info.st_mtime_ns}\0".encode())
    return digest.hexdigest()


def file_hash(path: Path) -> str:
    """The content's hash, or ``missing``."""
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return "missing"


def schema_files(schema: Path, limit: int = 50) -> list[Path]:
    """An XSD and the files it includes or imports (``schemaLocation``), and theirs: what checking it reads."""
    found: list[Path] = []
    todo = [schema.resolve()]
    while todo and len(found) < limit:
        path = todo.pop()
        if path in found:
            continue
        found.append(path)
        try:
            text = path.read_bytes()
        except OSError:
            continue
        for location in _SCHEMA_LOCATION.findall(text):
            name = location.decode("utf-8", "replace")
            if "://" not in name:
                todo.append((path.parent / name).resolve())
    return found


class CheckCache:
    """The notes of one installation (see the module docstring)."""

    def __init__(self, state_dir: Path, root: Path) -> None:
        self.folder = state_dir / "cache" / "mappings"
        self.root = root.resolve()

    def _note(self, mapping_path: Path) -> Path:
        name = hashlib.sha256(str(mapping_path.resolve()).encode()).hexdigest()[:32]
        return self.folder / f"{name}.json"

    def lookup(self, mapping_path: Path) -> MappingFacts | None:
        """The facts noted for this mapping, if every file its check read is unchanged; else ``None``."""
        try:
            note = json.loads(self._note(mapping_path).read_text(encoding="utf-8"))
            if (note.get("stamp") != code_stamp() or note.get("root") != str(self.root)
                    or note.get("mapping") != str(mapping_path.resolve()) or note.get("cwd") != os.getcwd()):
                return None  # another gateway, installation or file; or places shown from another folder
            for given, (resolved, digest) in note["files"].items():
                path = Path(given)
                if str(path.resolve()) != resolved or file_hash(path) != digest:
                    return None
            facts = note["facts"]
            return MappingFacts({k: (v[0], v[1]) for k, v in facts["settings"].items()},
                                [(o[0], o[1], int(o[2]), int(o[3])) for o in facts["outputs"]],
                                {k: list(v) for k, v in facts.get("checks", {}).items()})
        except (OSError, ValueError, KeyError, TypeError, IndexError):
            return None  # no note, or one that cannot be read: the mapping is checked

    def store(self, mapping_path: Path, sources: list[Path], facts: MappingFacts) -> None:
        """Note that the mapping passed its check, having read ``sources``; a failure to write is no error."""
        files = {str(path): (str(path.resolve()), file_hash(path)) for path in dict.fromkeys([mapping_path, *sources])}
        note = {"format": FORMAT, "stamp": code_stamp(), "root": str(self.root),
                "mapping": str(mapping_path.resolve()), "cwd": os.getcwd(), "files": files,
                "facts": {"settings": facts.settings, "outputs": facts.outputs, "checks": facts.checks}}
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            fd, temporary = tempfile.mkstemp(dir=self.folder, prefix=".note-", suffix=".tmp")
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as fh:
                    json.dump(note, fh)
                os.replace(temporary, self._note(mapping_path))
            except BaseException:
                Path(temporary).unlink(missing_ok=True)
                raise
        except OSError:
            pass  # a read-only or full state folder: the next run checks the mapping again


def check_key(gateway_yaml: bytes, flow: str, role: str, place: tuple[str | int, ...], kind: str) -> str:
    """Which kind's check of which flow a noted result belongs to, with gateway.yaml as it was then."""
    digest = hashlib.sha256(gateway_yaml)
    digest.update(json.dumps([flow, role, list(place), kind]).encode())
    return digest.hexdigest()
