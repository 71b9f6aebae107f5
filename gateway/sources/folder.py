"""A local drop folder (the ``folder`` kind of source).

A file is taken only when it is complete: not named like a temporary file, and either
untouched for the settle time or announced by the producer's marker file. Claiming is
a rename into the work folder on the same file system, which is atomic: of two
gateway processes, exactly one gets the file, the other gets ``FileNotFoundError``.
Once claimed, nothing is left in the inbox to acknowledge: the engine moves the work
file to the archive when the input is finished.
"""

from __future__ import annotations

import errno
import fnmatch
import logging
import os
import shutil
from pathlib import Path

from pydantic import Field

from ..clock import SYSTEM_CLOCK, Clock
from ..files import fsync_dir, is_temporary_name, new_work_path, printable, try_lock
from ..i18n import _
from ..kinds import Kind, KindConfig, Parts
from .base import Candidate, Source

CLAIM_SUFFIX = ".gw-claim"  # a file being taken from an inbox on another file system
log = logging.getLogger("gateway")


class FolderSourceConfig(KindConfig):
    """A local drop folder that a producer writes into."""

    kind = "folder"

    folder: str
    include: list[str] = Field(default_factory=lambda: ["*"])
    settle_seconds: float | None = Field(default=None, ge=0)
    marker: str | None = None  # e.g. ".ok": file X is taken at once when X.ok exists
    batch_marker: str | None = None  # e.g. "export.done": a folder is one input once this file is in it


class FolderSource(Source):
    kind = "folder"

    def __init__(
        self, folder: Path, include: list[str], settle_seconds: float, marker: str | None,
        batch_marker: str | None = None, *, clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self.folder = folder
        self.include = include
        self.settle_seconds = settle_seconds
        self.marker = marker
        self.batch_marker = batch_marker  # a folder is one input (a batch) once this file is in it
        self.clock = clock
        self._ignored: dict[str, str] = {}  # entries that look like inputs but are not files: name → why

    @property
    def local_folder(self) -> Path:
        return self.folder

    @property
    def recursive_watch(self) -> bool:
        return self.batch_marker is not None

    def describe(self) -> str:
        return _("folder {path}").format(path=self.folder)

    def _wanted(self, name: str) -> bool:
        if is_temporary_name(name):
            return False
        if self.marker and name.endswith(self.marker):
            return False
        # Case does not matter: partners on Windows send ORDERS.XML as readily as orders.xml.
        lower = name.lower()
        return any(fnmatch.fnmatchcase(lower, pattern.lower()) for pattern in self.include)

    def _ignore(self, name: str, why: str) -> None:
        """An entry that matches the inbox's names but is no input: said once, and shown by ``status``."""
        if self._ignored.get(name) != why:
            log.warning(_("{place}: {name} is left alone: {why}").format(
                place=self.describe(), name=printable(name), why=why))
        self._ignored[name] = why

    def scan(self) -> list[Candidate]:
        """Every file that looks like an input, complete or not, oldest first."""
        found: list[Candidate] = []
        try:
            entries = list(os.scandir(self.folder))
        except FileNotFoundError:
            return []
        names = {e.name for e in entries}
        seen: set[str] = set()
        for entry in entries:
            if not self._wanted(entry.name):
                continue
            try:
                if entry.is_dir(follow_symlinks=False):
                    batch = self._batch(Path(entry.path))
                    if batch is not None:
                        found.append(batch)
                    elif self.batch_marker is None:
                        self._ignore(entry.name, _("it is a folder, and this flow takes files"))
                        seen.add(entry.name)
                    continue
                if not entry.is_file(follow_symlinks=False):
                    self._ignore(entry.name, _("it is a link; only plain files are taken") if entry.is_symlink() else
                                 _("it is not a regular file (a pipe, socket or device); only plain files are taken"))
                    seen.add(entry.name)
                    continue
                st = entry.stat(follow_symlinks=False)
            except FileNotFoundError:
                continue
            except PermissionError as exc:
                self._ignore(entry.name, _("it cannot be read ({error})").format(error=exc.strerror))
                seen.add(entry.name)
                continue
            marked = bool(self.marker) and (entry.name + str(self.marker)) in names
            # ctime, set by this machine's clock at every write and rename, not mtime: a producer or
            # a copying tool may set mtime to any time, also to one in the future
            found.append(Candidate(entry.path, entry.name, st.st_size, st.st_ctime, marked, Path(entry.path)))
        for gone in set(self._ignored) - seen:
            del self._ignored[gone]
        found.sort(key=lambda c: (c.changed, c.name))
        return found

    def _batch(self, folder: Path) -> Candidate | None:
        """A folder counts once the producer's marker file is in it; until then it is still being written."""
        if self.batch_marker is None:
            return None
        try:
            if not (folder / self.batch_marker).is_file():
                return None
            st = folder.stat()
        except PermissionError as exc:
            self._ignore(folder.name, _("the batch folder cannot be read ({error})").format(error=exc.strerror))
            return None
        return Candidate(str(folder), folder.name, 0, st.st_ctime, True, folder)

    def settle_remaining(self, candidate: Candidate) -> float:
        """Seconds until ``candidate`` counts as complete if nothing changes (0 when it does)."""
        if candidate.ready:
            return 0.0
        return max(0.0, self.settle_seconds - (self.clock.time() - candidate.changed))

    def fetch(self, candidate: Candidate, work_dir: Path) -> Path | None:
        """Move the file into ``work_dir``; ``None`` when another process was faster or it changed."""
        path = Path(candidate.identity)
        try:
            st = path.stat()
        except FileNotFoundError:
            return None
        if not candidate.ready and (st.st_size != candidate.size or st.st_ctime != candidate.changed):
            return None  # written to since it was seen: not complete after all
        work_dir.mkdir(parents=True, exist_ok=True)
        target = new_work_path(work_dir, candidate.name)
        try:
            os.rename(path, target)
        except FileNotFoundError:
            return None
        except OSError as exc:
            if exc.errno != errno.EXDEV or path.is_dir():
                log.error(_("{name} cannot be taken: {error}").format(
                    name=printable(candidate.name), error=exc.strerror or exc))
                return None
            # The inbox is on another file system (a mounted share): claim by a rename inside the
            # inbox, which is atomic there, then copy into the work folder.
            claimed = path.with_name(f".{target.name}{CLAIM_SUFFIX}")
            try:
                os.rename(path, claimed)
            except FileNotFoundError:
                return None
            if not self._copy_claimed(claimed, work_dir):
                return None
        if self.marker and candidate.ready and not target.is_dir():
            (path.parent / (candidate.name + self.marker)).unlink(missing_ok=True)
        fsync_dir(work_dir)
        return target

    def _copy_claimed(self, claimed: Path, work_dir: Path) -> bool:
        """Copy a file claimed inside the inbox into the work folder, then remove the claim.

        The claim is locked while it is copied; a claim left by a crashed process is finished by
        ``recover``. The work file's name comes from the claim's, so a repeated copy replaces,
        never doubles, it.
        """
        target = work_dir / claimed.name[1:-len(CLAIM_SUFFIX)]
        fd = try_lock(claimed)
        if fd is None:
            return False  # gone, or another process is copying it
        try:
            if not claimed.exists():
                return False
            temp = target.with_name("." + target.name + ".part")
            with open(claimed, "rb") as src, open(temp, "wb") as dst:
                shutil.copyfileobj(src, dst, 1024 * 1024)
                dst.flush()
                os.fsync(dst.fileno())
            os.replace(temp, target)
            fsync_dir(work_dir)
            claimed.unlink()
            return True
        finally:
            os.close(fd)

    def recover(self, work_dir: Path) -> None:
        """Finish claims of files from another file system that a crash interrupted."""
        try:
            leftovers = [p for p in self.folder.iterdir() if p.name.endswith(CLAIM_SUFFIX)]
        except OSError:
            return  # no inbox (yet), or not a folder: the scan reports that
        for claimed in leftovers:
            work_dir.mkdir(parents=True, exist_ok=True)
            self._copy_claimed(claimed, work_dir)

    def ignored(self) -> dict[str, str]:
        return dict(self._ignored)

    def waiting(self) -> int:
        return len(self.scan())


def _build(config: FolderSourceConfig, parts: Parts) -> FolderSource:
    folder = (parts.installation.root / config.folder).resolve()
    settle = config.settle_seconds if config.settle_seconds is not None else parts.flow.settle_seconds
    return FolderSource(folder, config.include, settle, config.marker, config.batch_marker, clock=parts.clock)


def _local_folder(config: FolderSourceConfig, root: Path) -> Path:
    return (root / config.folder).resolve()


KIND = Kind(
    name="folder",
    role="source",
    config=FolderSourceConfig,
    build=_build,
    summary="a local or mounted folder; files are taken once settled or marked, batches once their marker is in",
    example="{folder: inbox/x, include: ['*.xml']}",
    local_folder=_local_folder,
    default=True,
)
