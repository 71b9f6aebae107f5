"""A local (or mounted) outbox folder."""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path

from ..errors import DeliveryError
from .base import Destination, temp_name


def fsync_dir(folder: Path) -> None:
    """Make a rename or a new name in ``folder`` survive a power cut."""
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class FolderDestination(Destination):
    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def describe(self) -> str:
        return f"folder {self.folder}"

    def _ready(self) -> None:
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise DeliveryError(f"the outbox folder {self.folder} cannot be created: {exc.strerror}") from None

    def upload(self, staged: Path, name: str) -> None:
        self._ready()
        temp = self.folder / temp_name(name)
        try:
            temp.unlink(missing_ok=True)
            try:
                # Same file system: a hard link is instant and leaves the staged file in place.
                os.link(staged, temp)
            except OSError as exc:
                if exc.errno not in (errno.EXDEV, errno.EPERM, errno.EMLINK, errno.ENOTSUP):
                    raise
                with open(staged, "rb") as src, open(temp, "wb") as dst:
                    shutil.copyfileobj(src, dst, 1024 * 1024)
                    dst.flush()
                    os.fsync(dst.fileno())
            fsync_dir(self.folder)
        except OSError as exc:
            raise DeliveryError(f"cannot write to the outbox {self.folder}: {exc.strerror or exc}") from None

    def has_upload(self, name: str) -> bool:
        return (self.folder / temp_name(name)).exists()

    def publish(self, name: str) -> str:
        final = self.folder / name
        if final.exists():
            raise DeliveryError(
                f"{final} already exists and was not written by this delivery; "
                "it is left alone (check the flow's output file name)"
            )
        try:
            os.rename(self.folder / temp_name(name), final)
            fsync_dir(self.folder)
        except OSError as exc:
            raise DeliveryError(f"cannot publish {final}: {exc.strerror or exc}") from None
        return str(final)

    def location(self, name: str) -> str:
        return str(self.folder / name)

    def write_marker(self, name: str, suffix: str) -> None:
        marker = self.folder / (name + suffix)
        temp = self.folder / temp_name(name + suffix)
        try:
            with open(temp, "wb") as fh:
                os.fsync(fh.fileno())
            os.rename(temp, marker)
            fsync_dir(self.folder)
        except OSError as exc:
            raise DeliveryError(f"cannot write the marker {marker}: {exc.strerror or exc}") from None
