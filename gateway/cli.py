"""The ``gateway`` command: builds objects from the configuration and maps outcomes to exit codes.

Exit statuses (DESIGN.md): 0 all done; 1 some inputs quarantined or not deliverable now
(``run --once``), a test failed, or a preview failed; 2 the configuration is refused.
A user error is one plain message, never a traceback.
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

import click

from .errors import ConfigError, GatewayError, InputError
from .summary import Progress, RunSummary

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import Progress as RichProgress

    from .config import Installation
    from .engine import Engine

# Commands import what they use when they run: ``gateway --help`` or ``gateway status`` must not
# pay for lxml, Jinja and paramiko, which only converting and SFTP need.

_err_console: Console | None = None


def err_console() -> Console:
    global _err_console
    if _err_console is None:
        from rich.console import Console

        _err_console = Console(stderr=True)
    return _err_console


def _setup_logging(verbose: bool) -> None:
    level = logging.DEBUG if verbose else logging.INFO
    handler: logging.Handler
    if sys.stderr.isatty():
        from rich.logging import RichHandler

        handler = RichHandler(console=err_console(), show_path=False, markup=False)
        handler.setFormatter(logging.Formatter("%(message)s"))
    else:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    root = logging.getLogger("gateway")
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False


class _Obj:
    def __init__(self, config: Path, verbose: bool) -> None:
        self.config = config
        self.verbose = verbose

    def installation(self) -> Installation:
        from .config import load_installation

        try:
            return load_installation(self.config)
        except ConfigError as exc:
            for problem in exc.problems:
                click.echo(str(problem), err=True)
            click.echo(f"{len(exc.problems)} problem(s); nothing was processed.", err=True)
            raise SystemExit(2) from None


@click.group()
@click.option("--config", "config", type=click.Path(path_type=Path), default=Path("gateway.yaml"),
              show_default=True, help="The installation's configuration file.")
@click.option("-v", "--verbose", is_flag=True, help="Log more detail.")
@click.version_option(package_name="gateway")
@click.pass_context
def cli(ctx: click.Context, config: Path, verbose: bool) -> None:
    """File exchange gateway between Sage Office Line and Rakuten."""
    _setup_logging(verbose)
    ctx.obj = _Obj(config, verbose)


@cli.command()
@click.pass_obj
def check(obj: _Obj) -> None:
    """Validate gateway.yaml and every mapping; print each problem as FILE:LINE:COL: message."""
    from .fieldcheck import unknown_fields
    from .golden import examples_dir

    inst = obj.installation()
    for flow in inst.flows.values():
        folder = examples_dir(inst) / flow.name
        examples = sorted(folder.glob("*/input/*")) if folder.is_dir() else []
        if examples:
            for problem in unknown_fields(flow, examples[0]):
                click.echo(str(problem), err=True)
    for line in _service_notes(inst):
        click.echo(line, err=True)
    click.echo(f"{inst.path.name}: OK ({len(inst.flows)} flow(s): {', '.join(inst.flows) or 'none'})")


def _service_notes(inst: Installation) -> list[str]:
    """What ``check`` can tell about the web services without calling them: an address that would be refused.

    Variables not set are no problem of the configuration (the flows wait for them; ``status`` names them).
    """
    import os

    from .webservices.config import url_problem

    notes = []
    for name, config in inst.services.items():
        if not os.environ.get(config.url_env):
            continue
        problem = url_problem(os.environ[config.url_env].strip())
        if problem:
            notes.append(f"{inst.path.name}: warning: web service {name}: {config.url_env} {problem}")
    return notes


class _TerminalProgress(Progress):
    """A progress bar per input on a terminal; nothing at all in a log file."""

    def __init__(self, bar: RichProgress) -> None:
        self.bar = bar
        self.task: Any = None

    def input_started(self, flow: str, name: str) -> None:
        self.task = self.bar.add_task(f"{flow}: {name}", total=None)

    def record_done(self) -> None:
        if self.task is not None:
            self.bar.advance(self.task)

    def input_finished(self, flow: str, name: str, state: str) -> None:
        if self.task is not None:
            self.bar.update(self.task, description=f"{flow}: {name} [{state}]")
            self.bar.stop_task(self.task)
            self.task = None


def _print_summary(summary: RunSummary) -> None:
    parts = [f"{summary.done} done", f"{summary.duplicate} duplicate", f"{summary.failed} quarantined"]
    if summary.pending:
        parts.append(f"{summary.pending} waiting for delivery")
    if summary.not_running:
        parts.append(f"not run (environment variables missing): {', '.join(summary.not_running)}")
    click.echo(", ".join(parts), err=True)


@cli.command()
@click.option("--once", is_flag=True, help="Process what is waiting now, then exit.")
@click.argument("flows", nargs=-1)
@click.pass_obj
def run(obj: _Obj, once: bool, flows: tuple[str, ...]) -> None:
    """Process inputs: with --once everything waiting now, otherwise until stopped (Ctrl-C / SIGTERM)."""
    inst = obj.installation()
    try:
        selected = inst.select(flows)
    except ConfigError as exc:
        for problem in exc.problems:
            click.echo(str(problem), err=True)
        raise SystemExit(2) from None
    from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn
    from rich.progress import Progress as RichProgress

    from .engine import Engine

    bar = RichProgress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        console=err_console(), disable=not sys.stderr.isatty(), transient=False,
    )
    with bar:
        # the bar shows a manual run's inputs; a service runs for weeks and only logs
        engine = Engine(inst, _TerminalProgress(bar) if once else None)
        try:
            summary = engine.run_once(selected) if once else _run_service(engine, inst, selected)
        finally:
            engine.close()
    _print_summary(summary)
    raise SystemExit(summary.exit_code if once else 0)


def _plus(inbox: int | None, journal: int) -> int | None:
    return None if inbox is None else inbox + journal


def _run_service(engine: Engine, inst: Installation, flows: list[Any]) -> RunSummary:
    """Automatic mode until SIGINT/SIGTERM; the input in hand is finished before it stops."""
    import signal
    import threading

    from .schedule import Schedule
    from .service import Service

    stop = threading.Event()

    def _stop(signum: int, frame: FrameType | None) -> None:
        logging.getLogger("gateway").info("stopping after the current input")
        stop.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    schedules = {
        f.name: Schedule(f.config.schedule.every_minutes, f.config.schedule.at)
        for f in flows if f.config.schedule is not None
    }
    for f in flows:  # a web service is polled every few minutes unless the flow says otherwise
        minutes = inst.kinds.poll_minutes(f)
        if f.name not in schedules and minutes:
            schedules[f.name] = Schedule(minutes, None)
    engine.stopping = stop.is_set
    service = Service(engine, flows, watch=inst.watch, rescan_seconds=inst.rescan_seconds,
                      schedules=schedules)
    return service.run(stop)


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="One JSON object per flow.")
@click.pass_obj
def status(obj: _Obj, as_json: bool) -> None:
    """Per flow: files waiting in the inbox, done, failed, duplicates, last run."""
    from rich.console import Console
    from rich.table import Table

    from .engine import Engine

    inst = obj.installation()
    engine = Engine(inst)
    try:
        counts = engine.journal.counts()
        health = engine.journal.health()
        rows = []
        for name, flow in inst.flows.items():
            c = counts.get(name, {"states": {}, "last_run": None})
            states = c["states"]
            rows.append({
                "flow": name,
                "enabled": flow.config.enabled,
                "waiting": _plus(engine.waiting(flow), states.get("waiting", 0)),
                "in_progress": states.get("processing", 0) + states.get("delivering", 0),
                "done": states.get("done", 0),
                "duplicate": states.get("duplicate", 0),
                "failed": states.get("failed", 0),
                "last_run": c["last_run"],
                "waits_for": engine.waits_for(flow),
                "places": [
                    {k: h[k] for k in ("place", "last_ok", "last_error", "error", "failing_since")}
                    for h in health if h["flow"] == name
                ],
            })
        services = _service_rows(inst, health)
    finally:
        engine.close()
    if as_json:
        for r in rows:
            click.echo(json.dumps(r))
        for r in services:
            click.echo(json.dumps(r))
        return
    table = Table("flow", "waiting", "in progress", "done", "duplicate", "failed", "last run")
    for r in rows:
        name = r["flow"] + ("" if r["enabled"] else " (off)")
        if r["waits_for"]:
            name += f" (waits for {', '.join(r['waits_for'])})"
        waiting = "remote" if r["waiting"] is None else str(r["waiting"])
        table.add_row(name, waiting, str(r["in_progress"]), str(r["done"]), str(r["duplicate"]),
                      str(r["failed"]), r["last_run"] or "never")
    Console().print(table)
    places = [p for r in rows for p in r["places"]]
    if places:
        health_table = Table("source / destination", "last reached", "failing since", "last error")
        for p in places:
            health_table.add_row(p["place"], p["last_ok"] or "never", p["failing_since"] or "",
                                 p["error"] or "")
        Console().print(health_table)
    if services:
        service_table = Table("web service", "api", "last call", "last answered", "failing since", "last error")
        for r in services:
            name = r["service"] + (f" (waits for {', '.join(r['waits_for'])})" if r["waits_for"] else "")
            service_table.add_row(name, r["api"], r["last_call"] or "never", r["last_ok"] or "never",
                                  r["failing_since"] or "", r["error"] or "")
        Console().print(service_table)


def _service_rows(inst: Installation, health: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per web service: its variables that are not set, its last call, last answer and last error."""
    import os

    from .webservices import place_of

    by_place = {h["place"]: h for h in health}
    rows = []
    for name, config in inst.services.items():
        h = by_place.get(place_of(name), {})
        last_ok, last_error = h.get("last_ok"), h.get("last_error")
        rows.append({
            "service": name,
            "api": config.api,
            "waits_for": [v for v in config.variables() if not os.environ.get(v)],
            "last_call": max((t for t in (last_ok, last_error) if t), default=None),
            "last_ok": last_ok,
            "last_error": last_error,
            "error": h.get("error"),
            "failing_since": h.get("failing_since"),
        })
    return rows


@cli.command()
@click.option("--flow", "flow", help="Only this flow.")
@click.option("--limit", type=int, default=None, help="Only the newest N entries.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per input.")
@click.pass_obj
def journal(obj: _Obj, flow: str | None, limit: int | None, as_json: bool) -> None:
    """The audit trail: one entry per input, with its outputs and errors."""
    from rich.console import Console
    from rich.table import Table

    from .journal import open_journal

    inst = obj.installation()
    jr = open_journal(inst.journal_path)
    try:
        entries = [jr.as_dict(r) for r in jr.entries(flow, limit)]
    finally:
        jr.close()
    if as_json:
        for e in entries:
            click.echo(json.dumps(e, ensure_ascii=False))
        return
    table = Table("id", "flow", "name", "state", "outputs / error", "received")
    for e in entries:
        detail = e["error"] or ", ".join(Path(o).name for o in e["outputs"]) or (e["note"] or "")
        if e["skipped"]:
            detail += f" ({len(e['skipped'])} skipped)"
        table.add_row(str(e["id"]), e["flow"], e["name"], e["state"], detail, e["received_at"])
    Console().print(table)


@cli.command()
@click.argument("ids", nargs=-1, type=int)
@click.option("--flow", "flow", help="Retry every quarantined input of this flow.")
@click.option("--all", "all_", is_flag=True, help="Retry every quarantined input.")
@click.pass_obj
def retry(obj: _Obj, ids: tuple[int, ...], flow: str | None, all_: bool) -> None:
    """Put quarantined inputs back to be processed again (after the mapping or file was fixed)."""
    if not ids and not flow and not all_:
        raise click.UsageError("name input ids, or --flow FLOW, or --all")
    from .engine import Engine

    inst = obj.installation()
    engine = Engine(inst)
    problems = 0
    try:
        if ids:
            rows = []
            for i in ids:
                row = engine.journal.find(i)
                if row is None:
                    click.echo(f"input {i}: no such entry in the journal", err=True)
                    problems += 1
                else:
                    rows.append(row)
        else:
            rows = [r for r in engine.journal.entries(flow) if r.state == "failed"]
        for row in rows:
            try:
                engine.retry(row)
            except InputError as exc:
                click.echo(str(exc), err=True)
                problems += 1
                continue
            click.echo(f"input {row.id} ({row.flow}: {row.name}) will be processed by the next run")
        if not rows and not problems:
            click.echo("nothing to retry")
    finally:
        engine.close()
    raise SystemExit(1 if problems else 0)


@cli.command()
@click.argument("flow")
@click.argument("input_file", type=click.Path(exists=True, path_type=Path))
@click.option("--save", "save_dir", type=click.Path(file_okay=False, path_type=Path),
              help="Also write the outputs, byte for byte, into this folder (for golden examples).")
@click.pass_obj
def preview(obj: _Obj, flow: str, input_file: Path, save_dir: Path | None) -> None:
    """Convert one file and print the output(s); no inbox, outbox or journal is touched.

    The file is converted as input number 1, as golden examples are. A flow that reads a
    batch also takes the batch's folder.
    """
    import shutil
    import tempfile

    from .convert import convert, input_info
    from .golden import EXAMPLE_DATE
    from .mapping.model import BatchInput, FileOutput
    from .processing import mail_settings

    inst = obj.installation()
    try:
        (selected,) = inst.select([flow])
    except ConfigError as exc:
        for problem in exc.problems:
            click.echo(str(problem), err=True)
        raise SystemExit(2) from None
    if input_file.is_dir() and not isinstance(selected.mapping.spec.input, BatchInput):
        click.echo(f"error: {input_file} is a folder; flow '{flow}' reads single files "
                   f"({selected.mapping.spec.input.format}), only a batch flow takes a folder", err=True)
        raise SystemExit(2)
    info = input_info(1, input_file.name, flow, "", EXAMPLE_DATE.date())
    with tempfile.TemporaryDirectory(prefix="gateway-preview-") as tmp:
        try:
            result = convert(selected.mapping, input_file, input_file.name, Path(tmp), info, selected.settings,
                             key_delivered=lambda key: None, mail=mail_settings(inst, EXAMPLE_DATE))
        except GatewayError as exc:
            click.echo(f"error: {exc}", err=True)
            raise SystemExit(1) from None
        specs = {o.name: o.spec for o in selected.mapping.outputs}
        for staged in result.outputs:
            spec = specs[staged.output]
            if isinstance(spec, FileOutput):  # a PDF or image passed on as it is: not text to print
                click.echo(f"==> {staged.name} (a file of the input passed on as it is, "
                           f"{staged.path.stat().st_size:,} bytes) <==", err=True)
            else:
                encoding = getattr(spec, "encoding", "utf-8")
                click.echo(f"==> {staged.name} ({staged.rows} rows, {encoding}) <==", err=True)
                click.echo(staged.path.read_bytes().decode(encoding, errors="replace"), nl=False)
            if save_dir is not None:
                save_dir.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(staged.path, save_dir / staged.name)
                click.echo(f"saved as {save_dir / staged.name}", err=True)
    for skip in result.skipped:
        click.echo(f"skipped: {skip['reason']}", err=True)


@cli.command("test")
@click.argument("flows", nargs=-1)
@click.pass_obj
def test_examples(obj: _Obj, flows: tuple[str, ...]) -> None:
    """Convert each flow's golden examples and compare with the expected outputs (examples/FLOW/CASE/)."""
    from .golden import examples_dir, run_examples

    inst = obj.installation()
    try:
        selected = inst.select(flows) if flows else list(inst.flows.values())
    except ConfigError as exc:
        for problem in exc.problems:
            click.echo(str(problem), err=True)
        raise SystemExit(2) from None
    results = run_examples(inst, selected)
    for r in results:
        click.echo(f"{'PASS' if r.passed else 'FAIL'}  {r.flow}/{r.case}")
        for text in r.problems:
            click.echo("      " + text.replace("\n", "\n      ").rstrip())
    tested = {r.flow for r in results}
    for flow in selected:
        if flow.name not in tested:
            click.echo(f"none  {flow.name}: no examples in {examples_dir(inst) / flow.name}")
    failed = sum(not r.passed for r in results)
    click.echo(f"{len(results) - failed} passed, {failed} failed")
    raise SystemExit(1 if failed else 0)


@cli.group()
def service() -> None:
    """Web services (Rakuten France, Rakuten.de): check the connection and the credentials."""


@service.command("test")
@click.argument("name")
@click.pass_obj
def service_test(obj: _Obj, name: str) -> None:
    """Make one harmless call to the web service NAME (under `services` in gateway.yaml) and say how it went.

    It reads nothing that changes anything: Rakuten France is asked for today's accepted sales,
    Rakuten.de for the API key's details. Exit 0 when the service answered, 1 when it did not.
    """
    import tempfile

    from .clock import SYSTEM_CLOCK
    from .webservices import api_for
    from .webservices.client import ServiceClient
    from .webservices.rakuten_fr import RakutenFrance

    inst = obj.installation()
    if name not in inst.services:
        known = ", ".join(inst.services) or "none"
        click.echo(f"no web service named '{name}' in {inst.path.name} (services: {known})", err=True)
        raise SystemExit(2)
    config = inst.services[name]
    client = ServiceClient(name, config, root=inst.root)
    api = api_for(client)
    try:
        with tempfile.TemporaryDirectory(prefix="gateway-service-test-") as spool:
            if isinstance(api, RakutenFrance):
                words = api.test(Path(spool), SYSTEM_CLOCK.today())
            else:
                words = api.test(Path(spool))
    except GatewayError as exc:
        click.echo(f"{name}: FAILED: {client.redact(str(exc))}", err=True)
        raise SystemExit(1) from None
    finally:
        client.close()
    click.echo(f"{name}: OK ({config.api}, {client.credentials.url}): {words}")


@cli.group()
def sftp() -> None:
    """SFTP partners: review and record their host keys."""


@sftp.command("trust")
@click.argument("partner")
@click.option("--yes", is_flag=True, help="Record the key without asking (only after checking the fingerprint).")
@click.pass_obj
def sftp_trust(obj: _Obj, partner: str, yes: bool) -> None:
    """Show the partner's host key fingerprint and record it in the partner's known_hosts after confirmation.

    Compare the fingerprint with the one the partner tells you on another channel (phone,
    letter): a connection is only as safe as this comparison.
    """
    from .sftp import fetch_host_key, key_fingerprint, trust

    inst = obj.installation()
    if partner not in inst.partners:
        known = ", ".join(inst.partners) or "none"
        click.echo(f"no partner named '{partner}' in {inst.path.name} (partners: {known})", err=True)
        raise SystemExit(2)
    p = inst.partners[partner]
    try:
        key = fetch_host_key(p.host, p.port, p.timeout)
    except GatewayError as exc:
        click.echo(f"error: {exc}", err=True)
        raise SystemExit(1) from None
    click.echo(f"{partner}: {p.host}:{p.port} presents a {key.get_name()} key")
    click.echo(f"    fingerprint {key_fingerprint(key)}")
    if not yes and not click.confirm("Is this the fingerprint the partner gave you?", default=False):
        click.echo("nothing recorded")
        raise SystemExit(1)
    line = trust(p.known_hosts, p.host, p.port, key)
    click.echo(f"recorded in {p.known_hosts}: {line.split()[0]} {line.split()[1]}")


def main() -> None:
    try:
        cli(standalone_mode=True)
    except GatewayError as exc:
        # Commands catch their own; what arrives here is mostly a JournalError (a full disk, a journal held
        # by another program), whose message says what the admin can do about it.
        click.echo(f"error: {exc}", err=True)
        raise SystemExit(1) from None


if __name__ == "__main__":
    main()
