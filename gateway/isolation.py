"""Each conversion in a process of its own, with limits, so that no input can take the gateway down.

A partner's file is foreign input, and converting it runs a lot of code on it: an XML parser
in C, Jinja templates an admin wrote, table joins. Whatever that does (fill the memory, recurse
without end, loop for hours, crash inside a C library, be killed by the OOM killer), it happens
in a child process. The gateway process, which holds the journal and the claim, only ever sees
an outcome: outputs staged, the input's own fault (an ``InputError``), or a failure described in
words, which the engine counts towards ``max_attempts``.

The child is a ``fork`` of the gateway: it starts at once, with the mapping already compiled,
and leaves through ``os._exit`` without touching what it inherited (the journal's connection,
SFTP sockets). It opens its own journal connection to ask which record keys were delivered. It
dies with its parent (``PR_SET_PDEATHSIG``): a killed gateway leaves no child writing into a
stage folder that the next run is about to clear, nor holding the input's lock.

Limits (``limits:`` in gateway.yaml): memory the child may add to what it inherited
(``RLIMIT_AS``), CPU seconds (``RLIMIT_CPU``), open files (``RLIMIT_NOFILE``), and a wall-clock
deadline after which the parent kills it. The messages between child and parent are JSON lines
on a pipe, never pickles: the child has processed foreign input and is trusted no further than
that.

Linux only (fork, prctl); that is where the gateway runs.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import select
import signal
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .errors import InputError, MappingError, ReadError
from .i18n import _
from .timelimit import RecordTimeout

PR_SET_PDEATHSIG = 1
_READ = 65536


@dataclass(frozen=True)
class Limits:
    """What one conversion may use. ``0`` switches a limit off."""

    memory_mb: int = 2048  # on top of what the gateway process already uses
    cpu_seconds: int = 3600
    wall_seconds: float = 7200.0
    open_files: int = 1024


class ConversionFailed(Exception):
    """The conversion ended without an outcome of its own: the words say how, ``details`` has the rest."""

    def __init__(self, words: str, details: str = "") -> None:
        super().__init__(words)
        self.words = words
        self.details = details


def run_isolated(
    job: Callable[[Callable[[], None]], dict[str, Any]],
    limits: Limits,
    on_record: Callable[[], None] | None = None,
) -> dict[str, Any]:
    """Run ``job(progress)`` in a child process and return what it returned (a JSON-able dict).

    An ``InputError`` raised by the job is raised again here (the input's fault, with its words);
    anything else that ends the child raises :class:`ConversionFailed`.
    """
    read_fd, write_fd = os.pipe()
    parent = os.getpid()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child; its outcomes are tested through the parent
        os.close(read_fd)
        _child(job, limits, write_fd, parent)
    os.close(write_fd)
    try:
        return _wait(pid, read_fd, limits, on_record)
    finally:
        os.close(read_fd)


# -- the child ---------------------------------------------------------------------------------------


def _child(job: Callable[[Callable[[], None]], dict[str, Any]], limits: Limits, fd: int, parent: int) -> None:
    """Convert, report, and leave without running anything the parent set up (no atexit, no flushing)."""
    code = 0
    try:
        _die_with(parent)
        _limit(limits)
        pending = 0

        def progress() -> None:
            nonlocal pending
            pending += 1
            if pending >= 100:
                _send(fd, {"records": pending})
                pending = 0

        result = job(progress)
        if pending:
            _send(fd, {"records": pending})
        _send(fd, {"result": result})
    except InputError as exc:
        _send(fd, {"input_error": _input_error(exc)})
    except MemoryError:
        _send(fd, {"failed": _("the conversion needed more memory than the limit ({mb} MB more than the gateway "
                               "itself); the input is probably far larger or deeper than it should be").format(
                                   mb=limits.memory_mb)})
    except RecursionError:
        _send(fd, {"failed": _("the input is nested too deeply to be converted (it goes deeper than any real "
                               "export or order file does)"), "details": traceback.format_exc()})
    except RecordTimeout as exc:
        _send(fd, {"failed": _("reading or converting one record took longer than {seconds} seconds "
                               "(record_seconds); the input may hold something that takes very long to read, or "
                               "the mapping loops").format(seconds=f"{exc.args[0]:g}")})
    except KeyboardInterrupt:
        code = 3  # the user stopped the gateway: no outcome, the input is taken again next time
    except BaseException as exc:
        _send(fd, {"failed": _("unexpected error: {error}").format(error=f"{type(exc).__name__}: {exc}"),
                   "details": traceback.format_exc()})
    finally:
        with contextlib.suppress(OSError):
            os.close(fd)
        os._exit(code)


def _die_with(parent: int) -> None:
    """Be killed when the gateway process dies, whatever kills it."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):  # pragma: no cover - not Linux
        pass
    if os.getppid() != parent:  # the parent died between fork and prctl
        os._exit(3)


def _limit(limits: Limits) -> None:
    import resource

    if limits.memory_mb > 0:
        budget = _virtual_size() + limits.memory_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (budget, budget))
    if limits.cpu_seconds > 0:
        resource.setrlimit(resource.RLIMIT_CPU, (limits.cpu_seconds, limits.cpu_seconds + 5))
    if limits.open_files > 0:
        _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        wanted = limits.open_files if hard == resource.RLIM_INFINITY else min(limits.open_files, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))


def _virtual_size() -> int:
    """The process's address space now (what the memory limit comes on top of)."""
    with open("/proc/self/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    return 0


def _input_error(exc: InputError) -> dict[str, Any]:
    return {
        "kind": type(exc).__name__,
        "message": exc.message,
        **{k: getattr(exc, k) for k in InputError.WHERE},
    }


def _send(fd: int, message: dict[str, Any]) -> None:
    data = (json.dumps(message, ensure_ascii=False) + "\n").encode("utf-8")
    while data:
        written = os.write(fd, data)
        data = data[written:]


# -- the parent --------------------------------------------------------------------------------------


def _wait(pid: int, fd: int, limits: Limits, on_record: Callable[[], None] | None) -> dict[str, Any]:
    """Read the child's messages until it ends; kill it at the deadline. Always reaps it."""
    import time

    deadline = time.monotonic() + limits.wall_seconds if limits.wall_seconds > 0 else None
    buffer = b""
    final: dict[str, Any] | None = None
    try:
        while True:
            timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
            ready, _writable, _errors = select.select([fd], [], [], timeout)
            if not ready:
                os.kill(pid, signal.SIGKILL)
                _reap(pid)
                raise ConversionFailed(_(
                    "the conversion took longer than {seconds} seconds and was stopped; a mapping that loops, or an "
                    "input far larger than usual, can cause this").format(seconds=f"{limits.wall_seconds:g}"))
            chunk = os.read(fd, _READ)
            if not chunk:
                break
            buffer += chunk
            *lines, buffer = buffer.split(b"\n")
            for line in lines:
                message = json.loads(line)
                if "records" in message and on_record is not None:
                    for _record in range(int(message["records"])):
                        on_record()
                elif "records" not in message:
                    final = message
    except BaseException:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        _reap(pid)
        raise
    status = _reap(pid)
    if final is not None:
        return _outcome(final)
    raise ConversionFailed(_death(status, limits))


def _reap(pid: int) -> int:
    while True:
        try:
            return os.waitpid(pid, 0)[1]
        except ChildProcessError:
            return 0
        except InterruptedError:  # pragma: no cover - PEP 475 retries this already
            continue


def _outcome(message: dict[str, Any]) -> dict[str, Any]:
    if "result" in message:
        result: dict[str, Any] = message["result"]
        return result
    if "input_error" in message:
        data = dict(message["input_error"])
        kind = {"ReadError": ReadError, "MappingError": MappingError}.get(data.pop("kind"), InputError)
        text = data.pop("message")
        raise kind(text, **data)
    raise ConversionFailed(str(message.get("failed", _("the conversion failed"))), str(message.get("details", "")))


def _death(status: int, limits: Limits) -> str:
    """How a child that sent no outcome ended, in words."""
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        if sig == signal.SIGXCPU:
            return _("the conversion used more than {seconds} seconds of processor time and was stopped; a mapping "
                     "that loops, or an input far larger than usual, can cause this").format(
                         seconds=limits.cpu_seconds)
        if sig == signal.SIGKILL:
            return _("the conversion was killed (by the system's out-of-memory killer, or by an administrator); "
                     "the input probably needs far more memory than usual")
        if sig == signal.SIGSEGV:
            return _("the conversion crashed inside a library (segmentation fault) while reading this input")
        return _("the conversion ended by signal {signal}").format(signal=signal.Signals(sig).name)
    code = os.WEXITSTATUS(status) if os.WIFEXITED(status) else status
    if code == 3:
        return _("the conversion was interrupted (the gateway was being stopped)")
    return _("the conversion ended without a result (exit status {code})").format(code=code)
