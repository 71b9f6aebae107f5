"""A local (or mounted) outbox folder (the ``folder`` kind of destination).

``prepare`` puts the complete output under this delivery's own temporary name (hidden and
``.part``, which importers ignore); ``deliver`` renames it to its final name in one atomic
step. After a crash the temporary file answers :meth:`FolderDestination.status`: still there,
the rename did not happen; gone, it did, even if the importer has taken the output away since.
"""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path

from pydantic import field_validator

from ..errors import DeliveryError
from ..files import fsync_dir
from ..i18n import _
from ..kinds import Kind, KindConfig, Parts
from .base import CallLog, Delivered, Delivery, Destination, Status


class FolderDestinationConfig(KindConfig):
    """A local outbox folder that an importer reads from."""

    kind = "folder"

    folder: str
    marker: str | None = None  # e.g. ".done": written after each output

    @field_validator("marker")
    @classmethod
    def _marker_is_suffix(cls, v: str | None) -> str | None:
        if v is not None and (not v.startswith(".") or "/" in v or len(v) < 2):
            raise ValueError(_("a marker is a file name ending such as '.done' or '.ok'"))
        return v


class FolderDestination(Destination):
    kind = "folder"
    takes_markers = True

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def describe(self) -> str:
        return _("folder {path}").format(path=self.folder)

    def _ready(self) -> None:
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise DeliveryError(_("the outbox folder {folder} cannot be created: {error}").format(
                folder=self.folder, error=exc.strerror)) from None

    def prepare(self, item: Delivery) -> None:
        self._ready()
        temp = self.folder / item.temp_name
        try:
            temp.unlink(missing_ok=True)
            try:
                # Same file system: a hard link is instant and leaves the staged file in place.
                os.link(item.staged, temp)
            except OSError as exc:
                if exc.errno not in (errno.EXDEV, errno.EPERM, errno.EMLINK, errno.ENOTSUP):
                    raise
                with open(item.staged, "rb") as src, open(temp, "wb") as dst:
                    shutil.copyfileobj(src, dst, 1024 * 1024)
                    dst.flush()
                    os.fsync(dst.fileno())
            fsync_dir(self.folder)
        except OSError as exc:
            raise DeliveryError(_("cannot write to the outbox {folder}: {error}").format(
                folder=self.folder, error=exc.strerror or exc)) from None

    def _reachable(self) -> None:
        """The outbox is there as a folder: only then does a missing temporary file mean anything."""
        if not self.folder.is_dir():
            raise DeliveryError(_("the outbox {folder} is not there (or not a folder); the output waits").format(
                folder=self.folder))

    def deliver(self, item: Delivery, calls: CallLog) -> str:
        final = self.folder / item.name
        temp = self.folder / item.temp_name
        self._reachable()
        if not temp.exists():
            # ``prepare`` always comes first, so a missing temporary file was renamed by an earlier
            # call for this key: delivered once, never twice (the importer may have taken it since).
            return str(final)
        if final.exists():
            raise DeliveryError(_(
                "{file} already exists and was not written by this delivery; it is left alone (check the flow's "
                "output file name)").format(file=final))
        try:
            os.rename(temp, final)
            fsync_dir(self.folder)
        except OSError as exc:
            raise DeliveryError(_("cannot publish {file}: {error}").format(
                file=final, error=exc.strerror or exc)) from None
        return str(final)

    def status(self, item: Delivery, calls: CallLog) -> Status:
        """The temporary file there: not delivered. Gone: renamed, so delivered (maybe taken by the importer)."""
        self._reachable()
        try:
            prepared = (self.folder / item.temp_name).exists()
        except OSError as exc:
            return Status(Delivered.UNKNOWN, detail=_("the outbox {folder} cannot be read: {error}").format(
                folder=self.folder, error=exc.strerror))
        if prepared:
            return Status(Delivered.NO)
        return Status(Delivered.YES, str(self.folder / item.name))

    def write_marker(self, item: Delivery, suffix: str) -> None:
        marker = self.folder / (item.name + suffix)
        temp = self.folder / f".{item.temp_name}{suffix}"
        try:
            with open(temp, "wb") as fh:
                os.fsync(fh.fileno())
            os.rename(temp, marker)
            fsync_dir(self.folder)
        except OSError as exc:
            raise DeliveryError(_("cannot write the marker {file}: {error}").format(
                file=marker, error=exc.strerror or exc)) from None


def _build(config: FolderDestinationConfig, parts: Parts) -> FolderDestination:
    return FolderDestination((parts.installation.root / config.folder).resolve())


def _local_folder(config: FolderDestinationConfig, root: Path) -> Path:
    return (root / config.folder).resolve()


KIND = Kind(
    name="folder",
    role="destination",
    config=FolderDestinationConfig,
    build=_build,
    summary="a local or mounted folder; each output is written under a temporary name, then renamed",
    example="{folder: outbox/x, marker: .done}",
    local_folder=_local_folder,
    default=True,
)
