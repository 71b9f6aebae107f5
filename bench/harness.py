"""What every bench shares: running code in a fresh interpreter, measured alone, and the engine
on a throw-away installation with one flow.

Each child reports its own time, CPU time and peak RSS, so a baseline and the engine run in
the same process tree do not see each other's memory. The peak is the larger of the kernel's
high-water mark of the child's own address space (``VmHWM``; not its ``ru_maxrss``: Linux
carries ``ru_maxrss`` over an ``exec``, so a child started by a bench that holds a large
generated file in memory would report the bench's size as its own) and the ``ru_maxrss`` of
the processes it forked and waited for: the engine converts each input in a forked process
(``gateway.isolation``), whose peak is the one that matters. CPU time (user + system, of the
child and what it forked) is printed beside the wall time: on a machine shared with other
work, it moves far less than the wall time does. Every bench compiles the gateway's modules first
(``compile_gateway``), as installing it does: a shell with ``PYTHONDONTWRITEBYTECODE`` set would
otherwise charge compiling the gateway's sources to every run of the engine.
"""

from __future__ import annotations

import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import NamedTuple

REPO = Path(__file__).resolve().parents[1]

# ``gateway run --once`` as the command line runs it; exit status 0 (everything done) expected.
ENGINE = r'''
import sys
from gateway.cli import main
sys.argv = ["gateway", "--config", sys.argv[1], "run", "--once"]
try:
    main()
except SystemExit as exc:
    if exc.code != 0:
        raise
'''

TIME_AND_MEMORY = r'''
import resource, sys, time
start = time.perf_counter()
sys.argv = [sys.argv[1], *sys.argv[2:]]
exec(compile(open(sys.argv[0]).read(), sys.argv[0], "exec"), {"__name__": "__main__"})
seconds = time.perf_counter() - start
me, forked = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
try:
    with open("/proc/self/status") as status:
        kib = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
except (OSError, StopIteration):
    kib = me.ru_maxrss  # KiB on Linux and the BSDs (bytes on macOS)
kib = max(kib, forked.ru_maxrss)
print(seconds, kib / 1024, me.ru_utime + me.ru_stime + forked.ru_utime + forked.ru_stime)
'''


class Run(NamedTuple):
    seconds: float  # wall time, imports included
    mb: float  # peak RSS of the child or of a process it forked
    cpu: float  # CPU seconds of the child and what it forked


def medians(runs: list[Run]) -> Run:
    """Median time and CPU time, and the largest peak, of several runs."""
    return Run(statistics.median(r.seconds for r in runs), max(r.mb for r in runs),
               statistics.median(r.cpu for r in runs))


def compile_gateway() -> None:
    """Compile the gateway's modules to ``__pycache__`` once, as installing it with pip does.

    Where ``PYTHONDONTWRITEBYTECODE`` is set (this machine's shells), every fresh interpreter would
    otherwise compile each gateway module from its source again: a cost an installed gateway does
    not pay, which would be charged to every run of the engine and never to a baseline.
    """
    import compileall

    compileall.compile_dir(REPO / "gateway", quiet=1)


def child(code: str, *args: str) -> Run:
    """Run ``code`` in a fresh interpreter; its own time (imports included), peak RSS in MB and CPU time."""
    with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as fh:
        fh.write(code)
    proc = subprocess.run([sys.executable, "-c", TIME_AND_MEMORY, fh.name, *args],
                          capture_output=True, text=True, check=False)
    Path(fh.name).unlink()
    if proc.returncode:
        sys.exit(proc.stderr)
    seconds, mb, cpu = proc.stdout.split()[-3:]
    return Run(float(seconds), float(mb), float(cpu))


def engine(config: Path) -> Run:
    """The real engine, `run --once` on the installation of ``config``, in a child of its own."""
    return child(ENGINE, str(config))


def warm(config: Path) -> None:
    """One `run --once` with nothing waiting, untimed: the installation as on a machine where the gateway
    has run before (each mapping's check is noted then, see gateway/mapping/check_cache.py)."""
    child(ENGINE, str(config))


def engine_once(work: Path, data: Path, *, flow: str, mapping: Path, input_name: str,
                files: Path | None = None) -> Run:
    """One flow, ``data`` dropped into its inbox as ``input_name``; ``files`` (a folder) is copied in first."""
    root = work / f"inst-{time.monotonic_ns()}"
    if files is not None:
        shutil.copytree(files, root)
    (root / "mappings").mkdir(parents=True, exist_ok=True)
    if mapping.resolve() != (root / "mappings" / f"{flow}.yaml").resolve():
        shutil.copy(mapping, root / "mappings" / f"{flow}.yaml")
    (root / "gateway.yaml").write_text(
        f"settle_seconds: 0\nflows:\n  {flow}:\n    mapping: mappings/{flow}.yaml\n"
        "    source: {folder: inbox}\n    outbox: {folder: outbox}\n", encoding="utf-8")
    (root / "inbox").mkdir()
    warm(root / "gateway.yaml")
    shutil.copy(data, root / "inbox" / input_name)
    result = engine(root / "gateway.yaml")
    shutil.rmtree(root)
    return result
