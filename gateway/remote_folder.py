"""A folder on a partner's SFTP server, as SFTP sources and destinations both see it.

Kept apart from :mod:`gateway.sftp` so that loading the configuration (which names the SFTP
kinds) does not import paramiko: the connection is made only when a flow uses it.
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from .errors import DeliveryError
from .i18n import _

if TYPE_CHECKING:
    from .sftp import SftpEndpoint

T = TypeVar("T")


def remote_path(folder: str, name: str) -> str:
    return posixpath.join(folder, name) if folder not in ("", ".") else name


class RemoteFolder:
    """A folder on a partner's server: names inside it, and one step of work with its words for errors."""

    endpoint: SftpEndpoint
    folder: str
    folder_hint = True  # a missing path most likely means a missing folder (not so for a vanished file)

    def describe(self) -> str:
        return f"SFTP {self.endpoint.url(self.folder)}"

    def _path(self, name: str) -> str:
        return remote_path(self.folder, name)

    def _run(self, what: str, path: str, step: Callable[[Any], T]) -> T:
        try:
            return self.endpoint.run(what, step)
        except OSError as exc:
            if isinstance(exc, FileNotFoundError):
                words = _("no such file or folder on the server (does the folder {folder} exist there?)").format(
                    folder=repr(self.folder)) if self.folder_hint else _("no such file or folder on the server")
            elif isinstance(exc, PermissionError):
                words = _("permission denied by the server")
            else:
                words = str(exc.strerror or exc)
            raise DeliveryError(_("{action} on {server}: {path}: {problem}").format(
                action=what, server=self.endpoint.describe(), path=path, problem=words)) from None
