"""Each conversion runs in a child process with limits: whatever an input does, the gateway goes on.

The unit tests drive gateway.isolation directly with jobs that misbehave the way a hostile or
broken input can make a conversion misbehave (a segfault, memory, recursion, endless loops);
the flow tests show the whole way: the input is tried again, then quarantined with words, and
the other inputs are delivered meanwhile.
"""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from conftest import Install, order_xml, orders_file, read_csv_rows

from gateway.errors import MappingError
from gateway.isolation import ConversionFailed, Limits, run_isolated

NO_LIMITS = Limits(memory_mb=0, cpu_seconds=0, wall_seconds=0, open_files=0)


def run(job: Callable[[Callable[[], None]], dict[str, Any]], limits: Limits = NO_LIMITS) -> dict[str, Any]:
    return run_isolated(job, limits)


def test_a_result_comes_back_and_progress_is_counted() -> None:
    seen: list[int] = []

    def job(progress: Callable[[], None]) -> dict[str, Any]:
        for _ in range(250):
            progress()
        return {"outputs": ["a.csv"], "pid": os.getpid()}

    result = run_isolated(job, NO_LIMITS, lambda: seen.append(1))
    assert result["outputs"] == ["a.csv"] and result["pid"] != os.getpid()
    assert len(seen) == 250


def test_an_input_error_comes_back_with_its_words() -> None:
    def job(progress: Callable[[], None]) -> dict[str, Any]:
        raise MappingError("'XYZ' is not in the lookup table", file="o.xml", line=6, field="Zahlungskond")

    with pytest.raises(MappingError) as info:
        run(job)
    assert str(info.value).startswith("o.xml, line 6, field 'Zahlungskond': 'XYZ' is not in the lookup table")


def test_a_segfault_in_a_library_is_an_outcome_not_a_crash() -> None:
    def job(progress: Callable[[], None]) -> dict[str, Any]:
        os.kill(os.getpid(), signal.SIGSEGV)
        return {}

    with pytest.raises(ConversionFailed, match="segmentation fault"):
        run(job)


def test_memory_beyond_the_limit_is_an_outcome_in_words() -> None:
    def job(progress: Callable[[], None]) -> dict[str, Any]:
        hog = [bytearray(1024 * 1024) for _ in range(4096)]  # 4 GiB
        return {"n": len(hog)}

    with pytest.raises(ConversionFailed, match=r"more memory than the limit \(64 MB"):
        run(job, Limits(memory_mb=64, cpu_seconds=0, wall_seconds=0, open_files=0))


def test_recursion_without_end_is_an_outcome_in_words() -> None:
    def deeper(n: int) -> int:
        return deeper(n + 1) + 1

    def job(progress: Callable[[], None]) -> dict[str, Any]:
        return {"n": deeper(0)}

    with pytest.raises(ConversionFailed, match="nested too deeply"):
        run(job)


def test_a_base_exception_is_an_outcome_with_the_traceback() -> None:
    class Odd(BaseException):
        pass

    def job(progress: Callable[[], None]) -> dict[str, Any]:
        raise Odd("from a C extension")

    with pytest.raises(ConversionFailed) as info:
        run(job)
    assert "Odd: from a C extension" in info.value.words and "Traceback" in info.value.details


def test_processor_time_beyond_the_limit_stops_the_child() -> None:
    def job(progress: Callable[[], None]) -> dict[str, Any]:
        while True:
            pass

    with pytest.raises(ConversionFailed, match="more than 1 seconds of processor time"):
        run(job, Limits(memory_mb=0, cpu_seconds=1, wall_seconds=0, open_files=0))


def test_the_wall_clock_deadline_kills_a_child_that_waits_forever() -> None:
    def job(progress: Callable[[], None]) -> dict[str, Any]:
        signal.pause()  # uses no processor time at all
        return {}

    with pytest.raises(ConversionFailed, match=r"longer than 0\.5 seconds"):
        run(job, Limits(memory_mb=0, cpu_seconds=0, wall_seconds=0.5, open_files=0))


def test_open_files_are_bounded() -> None:
    def job(progress: Callable[[], None]) -> dict[str, Any]:
        handles = [open(os.devnull, "rb") for _ in range(200)]  # noqa: SIM115 - the point is to keep them open
        return {"n": len(handles)}

    with pytest.raises(ConversionFailed, match="Too many open files"):
        run(job, Limits(memory_mb=0, cpu_seconds=0, wall_seconds=0, open_files=64))


# -- the whole way -------------------------------------------------------------------------------------


def _mapping_with(install: Install, column: str) -> None:
    """The shipped order mapping with one more column whose value misbehaves."""
    mapping = install.root / "mappings" / "rakuten-orders.yaml"
    text = mapping.read_text(encoding="utf-8")
    marker = "      Belegart:"
    assert marker in text
    mapping.write_text(text.replace(marker, f"      Extra: \"{column}\"\n{marker}", 1), encoding="utf-8")


def _gateway_yaml(install: Install, extra: str) -> None:
    text = install.config.read_text(encoding="utf-8")
    install.config.write_text(text.replace("settle_seconds: 0\n", "settle_seconds: 0\n" + extra), encoding="utf-8")


def test_an_input_that_exhausts_memory_is_quarantined_and_the_others_are_delivered(install: Install) -> None:
    _gateway_yaml(install, "max_attempts: 2\nlimits: {memory_mb: 150}\n")
    _mapping_with(install, "{{ 'x' * (order.order_no == '666-666-666') * 4000000000 }}")
    install.drop("a.xml", orders_file(order_xml("666-666-666")))
    install.drop("b.xml", orders_file(order_xml("100-100-100")))
    first = install.process("run", "--once")
    assert first.returncode == 3, first.stderr  # not done, tried again by the next run
    assert "Traceback" not in first.stderr
    (out,) = install.outputs()
    assert {r["Referenznummer"] for r in read_csv_rows(out)} == {"100-100-100"}
    second = install.process("run", "--once")
    assert second.returncode == 1
    (reason,) = (install.quarantine / "rakuten-orders").glob("*.reason.txt")
    text = reason.read_text(encoding="utf-8")
    assert "failed 2 times" in text and "more memory than the limit (150 MB" in text


def test_a_record_time_limit_while_reading_ends_as_an_outcome(install: Install) -> None:
    _gateway_yaml(install, "max_attempts: 1\nrecord_seconds: 0.05\n")
    body = orders_file(order_xml("200-200-200")).replace("</orders>", "</orders>" + "<?a?>" * 6_000_000, 1)
    install.drop("slow.xml", body)
    install.drop("b.xml", orders_file(order_xml("300-300-300")))
    result = install.process("run", "--once")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert {r["Referenznummer"] for out in install.outputs() for r in read_csv_rows(out)} == {"300-300-300"}
    (reason,) = (install.quarantine / "rakuten-orders").glob("*.reason.txt")
    assert "longer than 0.05 seconds" in reason.read_text(encoding="utf-8")
    again = install.process("run", "--once")  # every later run starts cleanly
    assert again.returncode == 0, again.stderr


def test_a_killed_gateway_leaves_no_conversion_behind(install: Install, tmp_path: Path) -> None:
    _gateway_yaml(install, "record_seconds: 0\nlimits: {wall_seconds: 0, cpu_seconds: 0}\n")
    _mapping_with(install, "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}")
    install.drop("a.xml", orders_file(order_xml("400-400-400")))
    started = tmp_path / "started"
    os.mkfifo(started)
    script = textwrap.dedent(f"""
        import os, sys
        import gateway.isolation as iso
        real = iso._limit
        def announce(limits):
            with open({str(started)!r}, "w") as fifo:  # tells the test which process converts
                fifo.write(str(os.getpid()))
            real(limits)
        iso._limit = announce
        from gateway.cli import main
        sys.argv = ["gateway", "--config", {str(install.config)!r}, "run", "--once"]
        main()
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        with open(started, encoding="ascii") as fifo:  # blocks until the conversion has started
            child = int(fifo.read())
        watch = os.pidfd_open(child)
    finally:
        proc.kill()
        proc.wait()
    try:
        ready, _, _ = select.select([watch], [], [], 60)  # readable once the child has ended
    finally:
        os.close(watch)
    assert ready, "the conversion outlived the killed gateway"
