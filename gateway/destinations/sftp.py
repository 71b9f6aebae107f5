"""A partner's SFTP server as the outbox.

Like the local folder: the output is uploaded under its temporary name (``.name.part``,
ignored by importers), then renamed to its final name in one step, so the partner never
sees a half-written file. ``posix-rename@openssh.com`` is the default; servers without it
get plain ``rename`` (a partner setting). Each step reconnects once when the connection
breaks and is then done again, which is safe because every step is idempotent.
"""

from __future__ import annotations

import stat
from pathlib import Path
from typing import Any, Literal, TypeVar

from ..errors import DeliveryError
from ..sftp import RemoteFolder, SftpEndpoint
from .base import Destination, temp_name

RenameMode = Literal["posix", "plain"]
T = TypeVar("T")


class SftpDestination(RemoteFolder, Destination):
    def __init__(self, endpoint: SftpEndpoint, folder: str, rename: RenameMode = "posix") -> None:
        if rename not in ("posix", "plain"):
            raise ValueError(f"rename must be 'posix' or 'plain', not {rename!r}")
        self.endpoint = endpoint
        self.folder = folder
        self.rename = rename

    def _rename(self, sftp: Any, old: str, new: str) -> None:
        if self.rename == "posix":
            try:
                sftp.posix_rename(old, new)
            except OSError as exc:
                if isinstance(exc, (FileNotFoundError, PermissionError)):
                    raise
                raise OSError(
                    f"{exc} (if this server does not support posix-rename, set the partner's rename to 'plain')"
                ) from None
        else:
            sftp.rename(old, new)

    def upload(self, staged: Path, name: str) -> None:
        temp = self._path(temp_name(name))
        try:
            size = staged.stat().st_size
        except OSError as exc:
            raise DeliveryError(f"the staged file {staged} cannot be read: {exc.strerror or exc}") from None

        def step(sftp: Any) -> None:
            with open(staged, "rb") as fh:
                # "wb" truncates an old temporary file; putfo pipelines the writes and checks the size.
                attrs = sftp.putfo(fh, temp, file_size=size, confirm=True)
            if attrs.st_size != size:
                raise OSError(f"the server holds {attrs.st_size} bytes instead of {size}")

        self._run(f"uploading {name}", temp, step)

    def has_upload(self, name: str) -> bool:
        temp = self._path(temp_name(name))

        def step(sftp: Any) -> bool:
            try:
                attrs = sftp.stat(temp)
            except FileNotFoundError:
                return False
            return attrs.st_mode is None or stat.S_ISREG(attrs.st_mode)

        return self._run(f"looking for the upload of {name}", temp, step)

    def publish(self, name: str) -> str:
        final = self._path(name)
        temp = self._path(temp_name(name))
        seen: dict[str, int] = {}

        def step(sftp: Any) -> None:
            try:
                size = sftp.stat(temp).st_size
            except FileNotFoundError:
                if "size" in seen:
                    # The rename was sent before the connection broke: did it happen?
                    try:
                        if sftp.stat(final).st_size == seen["size"]:
                            return
                    except FileNotFoundError:
                        pass
                raise DeliveryError(
                    f"cannot publish {self.endpoint.url(final)}: the uploaded file {temp} is not on the server"
                ) from None
            seen["size"] = size
            try:
                sftp.stat(final)
            except FileNotFoundError:
                pass
            else:
                raise DeliveryError(
                    f"{self.endpoint.url(final)} already exists and was not written by this delivery; "
                    "it is left alone (check the flow's output file name)"
                )
            self._rename(sftp, temp, final)

        self._run(f"publishing {name}", final, step)
        return self.location(name)

    def location(self, name: str) -> str:
        return self.endpoint.url(self._path(name))

    def write_marker(self, name: str, suffix: str) -> None:
        marker = self._path(name + suffix)
        temp = self._path(temp_name(name + suffix))

        def step(sftp: Any) -> None:
            with sftp.open(temp, "wb"):
                pass
            if self.rename == "plain":
                try:
                    sftp.stat(marker)
                except FileNotFoundError:
                    pass
                else:  # already there (an earlier attempt): plain rename would refuse to replace it
                    sftp.remove(temp)
                    return
            self._rename(sftp, temp, marker)

        self._run(f"writing the marker {name + suffix}", marker, step)

    def close(self) -> None:
        self.endpoint.close()
