"""The ``gateway`` command: builds objects from the configuration and maps outcomes to exit codes.

Exit statuses (DESIGN.md): 0 all done; 1 some input quarantined (``run --once``), a test failed,
or a preview failed; 2 the configuration is refused; 3 the gateway could not do its work (the
journal or the disk failed, a source or destination could not be reached: the inputs wait and the
next run takes them). A user error is one plain message, never a traceback.
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
from .i18n import N_, _, ngettext
from .summary import Progress, RunSummary

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import Progress as RichProgress
    from rich.table import Table

    from .config import Flow, Installation
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

    def installation(self, mappings: bool = True, noted: bool = False, checking: bool = False) -> Installation:
        """The installation; with ``mappings=False`` (commands that move nothing) mappings compile on first use,
        with ``noted`` (a run) mappings unchanged since they last passed their check compile on first use.

        Refused with every problem and exit 2; ``checking`` (``gateway check``) ends with what to do
        rather than with "nothing was processed", which only a run can say.
        """
        from .config import load_installation
        from .i18n import set_language

        set_language(_language_of(self.config))  # before loading: its problems are in that language too
        try:
            inst = load_installation(self.config, mappings=mappings, noted=noted)
            set_language(inst.language)
            return inst
        except ConfigError as exc:
            for problem in exc.problems:
                click.echo(str(problem), err=True)
            if checking:
                click.echo(ngettext("{count} problem: correct it, then run gateway check again.",
                                    "{count} problems: correct them, then run gateway check again.",
                                    len(exc.problems)).format(count=len(exc.problems)), err=True)
            else:
                click.echo(_("{count} problem(s); nothing was processed.").format(count=len(exc.problems)), err=True)
            raise SystemExit(2) from None


def _language_of(config: Path) -> str:
    """The ``language:`` gateway.yaml asks for, read before the file is validated (English when unsure)."""
    import re

    try:
        text = config.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError):
        return "en"
    match = re.search(r"^language:\s*[\"']?(de|en)[\"']?\s*(?:#.*)?$", text, re.MULTILINE)
    return match.group(1) if match else "en"


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
@click.option("--online", is_flag=True,
              help="Also connect to each database a flow uses: its tables and columns against the mappings.")
@click.pass_obj
def check(obj: _Obj, online: bool) -> None:
    """Validate gateway.yaml and every mapping; print each problem as FILE:LINE:COL: message."""
    from .config import disagreements
    from .fieldcheck import unknown_fields
    from .golden import examples_dir

    inst = obj.installation(checking=True)
    for warning in inst.warnings:
        click.echo(str(warning), err=True)
    for text in disagreements(list(inst.flows.values())):
        click.echo(text, err=True)
    for flow in inst.flows.values():
        folder = examples_dir(inst) / flow.name
        examples = sorted(folder.glob("*/input/*")) if folder.is_dir() else []
        if examples:
            for problem in unknown_fields(flow, examples[0]):
                click.echo(str(problem), err=True)
    for line in _service_notes(inst):
        click.echo(line, err=True)
    if online:
        _check_online(inst)
    click.echo(ngettext("{file}: OK ({count} flow(s): {flows})", "{file}: OK ({count} flow(s): {flows})",
                        len(inst.flows)).format(file=inst.path.name, count=len(inst.flows),
                                                flows=", ".join(inst.flows) or _("none")))


def _check_online(inst: Installation) -> None:
    """Connect to the databases the flows use and compare them with the mappings (exit 2 on problems)."""
    from .config import shown_path
    from .sql.checks import online_problems
    from .yamlload import load_yaml

    problems, notes = online_problems(inst, load_yaml(inst.path, shown_path(inst.path)))
    for note in notes:
        click.echo(note, err=True)
    for problem in problems:
        click.echo(str(problem), err=True)
    if problems:
        click.echo(_("{count} problem(s) found in the databases; nothing was processed.").format(count=len(problems)),
                   err=True)
        raise SystemExit(2)


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
            notes.append(_("{file}: warning: web service {name}: {variable} {problem}").format(
                file=inst.path.name, name=name, variable=config.url_env, problem=problem))
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
            words = _(STATE_WORDS.get(state, state))
            self.bar.update(self.task, description=f"{flow}: {name} [{words}]")
            self.bar.stop_task(self.task)
            self.task = None


def _print_summary(summary: RunSummary) -> None:
    parts = [_("{count} done").format(count=summary.done), _("{count} duplicate").format(count=summary.duplicate),
             _("{count} quarantined").format(count=summary.failed)]
    if summary.all_skipped:
        parts.append(_("{count} with every record skipped (see the journal)").format(count=summary.all_skipped))
    if summary.pending:
        parts.append(_("{count} waiting (tried again by the next run)").format(count=summary.pending))
    if summary.not_running:
        parts.append(_("not run (environment variables missing): {flows}").format(flows=", ".join(summary.not_running)))
    click.echo(", ".join(parts), err=True)


@cli.command()
@click.option("--once", is_flag=True, help="Process what is waiting now, then exit.")
@click.argument("flows", nargs=-1)
@click.pass_obj
def run(obj: _Obj, once: bool, flows: tuple[str, ...]) -> None:
    """Process inputs: with --once everything waiting now, otherwise until stopped (Ctrl-C / SIGTERM)."""
    inst = obj.installation(noted=True)
    try:
        selected = inst.select(flows)
    except ConfigError as exc:
        for problem in exc.problems:
            click.echo(str(problem), err=True)
        raise SystemExit(2) from None
    import contextlib

    from .engine import Engine

    bar: contextlib.AbstractContextManager[Any] = contextlib.nullcontext()
    progress: Progress | None = None
    if once and sys.stderr.isatty():  # the bar shows a manual run's inputs; a service runs for weeks and only logs
        from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn
        from rich.progress import Progress as RichProgress

        rich_bar = RichProgress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                TimeElapsedColumn(), console=err_console(), transient=False)
        bar, progress = rich_bar, _TerminalProgress(rich_bar)
    with bar:
        engine = Engine(inst, progress)
        try:
            summary = engine.run_once(selected) if once else _run_service(engine, inst, selected)
            counts = engine.journal.counts()
        finally:
            engine.close()
    _print_summary(summary)
    waiting = sum(counts.get(f.name, {}).get("states", {}).get("failed", 0) for f in selected)
    if waiting:
        click.echo(ngettext("{count} input is in quarantine and waits for a person: see 'gateway journal' and the "
                            "reason files in {folder}",
                            "{count} inputs are in quarantine and wait for a person: see 'gateway journal' and the "
                            "reason files in {folder}", waiting).format(count=waiting, folder=inst.quarantine_dir),
                   err=True)
    raise SystemExit(summary.exit_code if once else 0)


def _run_service(engine: Engine, inst: Installation, flows: list[Any]) -> RunSummary:
    """Automatic mode until SIGINT/SIGTERM; the input in hand is finished before it stops."""
    import signal
    import threading

    from .schedule import Schedule
    from .service import Service

    stop = threading.Event()

    def _stop(signum: int, frame: FrameType | None) -> None:
        logging.getLogger("gateway").info(_("stopping after the current input"))
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
    """Per flow: inputs waiting, done, duplicates, quarantined, all skipped, last run; each place's health."""
    from rich.console import Console

    from .engine import Engine
    from .status import flow_statuses

    inst = obj.installation(mappings=False)
    engine = Engine(inst)
    try:
        rows = [s.as_dict() for s in flow_statuses(engine)]
        services = _service_rows(inst, engine.journal.health())
    finally:
        engine.close()
    if as_json:
        for r in rows:
            click.echo(json.dumps(r))
        for r in services:
            click.echo(json.dumps(r))
        return
    console = Console()
    if console.width < 110:  # one block per flow, so that nothing is cut at 80 columns
        _echo_flow_blocks(rows)
    else:
        console.print(_flow_table(rows))
    _echo_place_health(rows)
    _echo_service_health(services)


def _flow_table(rows: list[dict[str, Any]]) -> Table:
    """The flows as one table, for a terminal wide enough to show it uncut."""
    from rich.table import Table

    table = Table(_("flow"), _("waiting"), _("in progress"), _("done"), _("duplicates"), _("quarantined"),
                  _("all skipped"), _("last run"), show_lines=False)
    for r in rows:
        name = r["flow"] + ("" if r["enabled"] else " " + _("(off)"))
        if r["waits_for"]:
            name += "\n" + _("waits for {names}").format(names=", ".join(r["waits_for"]))
        for entry, why in r["ignored"].items():
            name += "\n" + _("left alone: {name} ({why})").format(name=entry, why=why)
        waiting = _("remote") if r["waiting"] is None else str(r["waiting"])
        table.add_row(name, waiting, str(r["in_progress"]), str(r["done"]), str(r["duplicate"]),
                      str(r["failed"]), str(r["all_skipped"]), _when(r["last_run"]) or _("never"))
    return table


def _echo_flow_blocks(rows: list[dict[str, Any]]) -> None:
    """The flows one block each, for a narrow terminal where a table would cut columns off."""
    for r in rows:
        click.echo(f"{r['flow']}{'' if r['enabled'] else ' ' + _('(off)')}")
        figures = [(_("waiting"), _("remote") if r["waiting"] is None else r["waiting"]),
                   (_("in progress"), r["in_progress"]), (_("done"), r["done"]),
                   (_("duplicates"), r["duplicate"]), (_("quarantined"), r["failed"]),
                   (_("all skipped"), r["all_skipped"]), (_("last run"), _when(r["last_run"]) or _("never"))]
        click.echo("  " + " · ".join(f"{label} {value}" for label, value in figures[:4]))
        click.echo("  " + " · ".join(f"{label} {value}" for label, value in figures[4:]))
        if r["waits_for"]:
            click.echo("  " + _("waits for {names}").format(names=", ".join(r["waits_for"])))
        for entry, why in r["ignored"].items():
            click.echo("  " + _("left alone: {name} ({why})").format(name=entry, why=why))


def _echo_place_health(rows: list[dict[str, Any]]) -> None:
    """Each place the flows read or deliver to: when it was last reached and since when it fails."""
    from .alerts import place_words

    places = [p for r in rows for p in r["places"]]
    for p in places:
        line = _("{place}: last reached {ok}").format(place=place_words(p["place"]),
                                                      ok=_when(p["last_ok"]) or _("never"))
        if p["failing_since"]:
            line += "; " + _("failing since {since}: {error}").format(since=_when(p["failing_since"]),
                                                                     error=p["error"] or "")
        click.echo(line)


def _echo_service_health(services: list[dict[str, Any]]) -> None:
    """Each web service: its last call and answer, since when it fails, which variables it still waits for."""
    for r in services:
        line = _("web service {name} ({api}): last call {call}, last answered {ok}").format(
            name=r["service"], api=r["api"], call=_when(r["last_call"]) or _("never"),
            ok=_when(r["last_ok"]) or _("never"))
        if r["failing_since"]:
            line += "; " + _("failing since {since}: {error}").format(since=_when(r["failing_since"]),
                                                                     error=r["error"] or "")
        if r["waits_for"]:
            line += "; " + _("waits for {names}").format(names=", ".join(r["waits_for"]))
        click.echo(line)


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


def _when(stamp: str | None) -> str | None:
    """A journal time stamp (UTC) as local time to the minute, as an admin reads it."""
    if not stamp:
        return None
    import datetime as dt

    try:
        return dt.datetime.fromisoformat(stamp).astimezone().strftime("%Y-%m-%d %H:%M")
    except ValueError:
        return stamp


@cli.group(invoke_without_command=True)
@click.option("--flow", "flow", help="Only this flow.")
@click.option("--limit", type=int, default=None, help="Only the newest N entries.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per input.")
@click.pass_context
def journal(ctx: click.Context, flow: str | None, limit: int | None, as_json: bool) -> None:
    """The audit trail: one entry per input, with its outputs and errors."""
    if ctx.invoked_subcommand is not None:
        return
    from rich.console import Console

    from .continuity import mark, open_for

    inst = ctx.obj.installation(mappings=False)
    jr = open_for(inst)
    try:
        entries = [jr.as_dict(r) for r in jr.entries(flow, limit)]
        lost = mark(inst, jr)
    finally:
        jr.close()
    if lost:
        click.echo(_("warning: this journal replaced a lost one ({lost}); nothing is processed until it is "
                     "restored: see 'gateway journal restore --help'").format(lost=lost), err=True)
    if as_json:
        for e in entries:
            click.echo(json.dumps(e, ensure_ascii=False))
        return
    width = max(60, min(Console().width, 120))
    for e in entries:
        _print_entry(e, width)


STATE_WORDS = {"waiting": N_("waiting"), "processing": N_("in progress"), "delivering": N_("delivering"),
               "done": N_("done"), "duplicate": N_("duplicate"), "failed": N_("quarantined")}


def _print_entry(e: dict[str, Any], width: int) -> None:
    """One journal entry as a short block that wraps at ``width`` (readable in an 80-column terminal)."""
    import textwrap

    def block(label: str, text: str) -> None:
        click.echo(textwrap.fill(text, width, initial_indent=f"    {label}: ", subsequent_indent="      "))

    state = _(STATE_WORDS.get(e["state"], e["state"]))
    if e.get("warning"):
        state += " (" + _("all skipped") + ")"
    click.echo(f"{e['id']}  {e['flow']}  {e['name']}  {state}  {_when(e['received_at'])}")
    block(_("from"), e["source"])
    for out in e["outputs"]:
        block(_("to"), out)
    for name in e.get("pending_outputs") or []:
        block(_("not yet delivered"), name)
    if e["error"]:
        block(_("error") if e["state"] == "failed" else _("note"), e["error"])
    if e.get("warning"):
        block(_("warning"), e["warning"])
    elif e["note"]:
        block(_("note"), e["note"])
    for skip in e["skipped"][:5]:
        block(_("skipped"), f"{skip['key']}: {skip['reason']}")
    if len(e["skipped"]) > 5:
        block(_("skipped"), _("{count} more (gateway journal --json lists all)").format(count=len(e["skipped"]) - 5))


@journal.command("restore")
@click.option("--start-empty", is_flag=True,
              help="Do not take the keys from the ledger; accept the new journal as it is (orders may come twice).")
@click.pass_obj
def journal_restore(obj: _Obj, start_empty: bool) -> None:
    """After the journal was lost: take the delivered order numbers back from the key ledger."""
    from .continuity import ledger_path, open_for, restore

    inst = obj.installation(mappings=False)
    jr = open_for(inst)
    try:
        count = restore(inst, jr, start_empty=start_empty)
    finally:
        jr.close()
    if start_empty:
        click.echo(_("the new journal is accepted as it is; orders delivered before may be delivered again"))
    else:
        click.echo(_("{count} record key(s) taken from {ledger}; those orders are never delivered again").format(
            count=count, ledger=ledger_path(inst)))


@cli.command()
@click.argument("ids", nargs=-1, type=int)
@click.option("--flow", "flow", help="Retry every quarantined input of this flow.")
@click.option("--all", "all_", is_flag=True, help="Retry every quarantined input.")
@click.pass_obj
def retry(obj: _Obj, ids: tuple[int, ...], flow: str | None, all_: bool) -> None:
    """Put quarantined inputs back to be processed again (after the mapping or file was fixed)."""
    if not ids and not flow and not all_:
        raise click.UsageError(_("name input ids, or --flow FLOW, or --all"))
    from .engine import Engine

    inst = obj.installation(mappings=False)
    engine = Engine(inst)
    problems = 0
    try:
        if ids:
            rows = []
            for i in ids:
                row = engine.journal.find(i)
                if row is None:
                    click.echo(_("input {id}: no such entry in the journal").format(id=i), err=True)
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
            click.echo(_("input {id} ({flow}: {name}) will be processed by the next run").format(
                id=row.id, flow=row.flow, name=row.name))
        if not rows and not problems:
            click.echo(_("nothing to retry"))
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

    from .preview import converted, refuses_folder

    inst = obj.installation()
    try:
        (selected,) = inst.select([flow])
    except ConfigError as exc:
        for problem in exc.problems:
            click.echo(str(problem), err=True)
        raise SystemExit(2) from None
    refusal = refuses_folder(selected, input_file)
    if refusal:
        click.echo(_("error: {error}").format(error=refusal), err=True)
        raise SystemExit(2)
    with converted(inst, selected, input_file) as result:
        if result.error is not None:
            click.echo(_("error: {error}").format(error=result.error), err=True)
            raise SystemExit(1)
        for out in result.outputs:
            if out.encoding is None:  # a PDF or image passed on as it is: not text to print
                click.echo(_("==> {name} (a file of the input passed on as it is, {size:,} bytes) <==").format(
                    name=out.name, size=out.size), err=True)
            else:
                click.echo(_("==> {name} ({rows} rows, {encoding}) <==").format(
                    name=out.name, rows=out.rows, encoding=out.encoding), err=True)
                click.echo(out.text()[0], nl=False)
            if save_dir is not None:
                save_dir.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(out.path, save_dir / out.name)
                click.echo(_("saved as {path}").format(path=save_dir / out.name), err=True)
    for skip in result.skipped:
        click.echo(_("skipped: {reason}").format(reason=skip["reason"]), err=True)


@cli.command("settings")
@click.argument("flows", nargs=-1)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per flow.")
@click.pass_obj
def settings_command(obj: _Obj, flows: tuple[str, ...], as_json: bool) -> None:
    """Each flow's settings as its mapping sees them, and where each value comes from."""
    inst = obj.installation()
    try:
        selected = inst.select(flows) if flows else list(inst.flows.values())
    except ConfigError as exc:
        for problem in exc.problems:
            click.echo(str(problem), err=True)
        raise SystemExit(2) from None
    for flow in selected:
        effective = flow.effective_settings()
        if as_json:
            click.echo(json.dumps({"flow": flow.name, "settings": {
                name: {"value": s.value, "from": s.origin, "where": s.where} for name, s in effective.items()}},
                ensure_ascii=False))
            continue
        click.echo(f"{flow.name}:")
        for name, setting in effective.items():
            click.echo(f"  {name}: {setting.value!r}  ← {setting.describe()}")


@cli.command("test")
@click.argument("flows", nargs=-1)
@click.option("--refresh", is_flag=True,
              help="After an intended change: show how each example's outputs change, then write them as expected.")
@click.option("--yes", is_flag=True, help="With --refresh: write without asking (after reading the differences).")
@click.pass_obj
def test_examples(obj: _Obj, flows: tuple[str, ...], refresh: bool, yes: bool) -> None:
    """Convert each flow's golden examples and compare with the expected outputs (examples/FLOW/CASE/)."""
    from .golden import examples_dir, run_examples

    inst = obj.installation()
    try:
        selected = inst.select(flows) if flows else list(inst.flows.values())
    except ConfigError as exc:
        for problem in exc.problems:
            click.echo(str(problem), err=True)
        raise SystemExit(2) from None
    if refresh:
        _refresh_examples(inst, selected, yes)
        return
    results = run_examples(inst, selected)
    for r in results:
        line = _("PASS  {flow}/{case}") if r.passed else _("FAIL  {flow}/{case}")
        click.echo(line.format(flow=r.flow, case=r.case))
        for text in r.problems:
            click.echo("      " + text.replace("\n", "\n      ").rstrip())
    tested = {r.flow for r in results}
    for flow in selected:
        if flow.name not in tested:
            click.echo(_("none  {flow}: no examples in {folder}").format(
                flow=flow.name, folder=examples_dir(inst) / flow.name))
    failed = sum(not r.passed for r in results)
    if failed:
        click.echo(_("After an intended change to a mapping: gateway test --refresh FLOW shows the differences and "
                     "writes the new expected files (check each value, and the example's NOTES.md)."))
    click.echo(_("{passed} passed, {failed} failed").format(passed=len(results) - failed, failed=failed))
    raise SystemExit(1 if failed else 0)


def _refresh_examples(inst: Installation, flows: list[Flow], yes: bool) -> None:
    """Show each example's differences, then write the new expected files if the admin agrees."""
    from .golden import examples_dir, refresh_case, write_refresh

    pending = []
    for flow in flows:
        folder = examples_dir(inst) / flow.name
        for case in sorted(p for p in folder.iterdir() if p.is_dir()) if folder.is_dir() else []:
            found = refresh_case(inst, flow, case)
            if found.error:
                click.echo(_("skip  {flow}/{case}: {error}").format(flow=flow.name, case=case.name,
                                                                   error=found.error))
            elif not found.changed:
                click.echo(_("same  {flow}/{case}").format(flow=flow.name, case=case.name))
            else:
                click.echo(_("CHANGES  {flow}/{case}").format(flow=flow.name, case=case.name))
                for text in found.changes:
                    click.echo("      " + text.replace("\n", "\n      ").rstrip())
                for name in found.removed:
                    click.echo("      " + _("{name} is no longer produced and would be removed").format(name=name))
                pending.append((case, found))
    if not pending:
        click.echo(_("nothing to refresh"))
        return
    if not yes and not click.confirm(_("Write the new expected files of {count} example(s)?").format(
            count=len(pending)), default=False):
        click.echo(_("nothing written"))
        raise SystemExit(1)
    for case, found in pending:
        write_refresh(case, found)
        click.echo(_("written  {flow}/{case} (check the values and update its NOTES.md)").format(
            flow=found.flow, case=found.case))


@cli.group(invoke_without_command=True)
@click.option("--listen", help="Listen on this address instead of console.listen in gateway.yaml.")
@click.option("--port", type=click.IntRange(1, 65535), help="Listen on this port instead of console.port.")
@click.pass_context
def console(ctx: click.Context, listen: str | None, port: int | None) -> None:
    """The operator's web page: status, journal, quarantine and retry, trying a mapping, settings.

    On 127.0.0.1:8780 unless gateway.yaml's console section says otherwise; see docs/console.md.
    """
    if ctx.invoked_subcommand is not None:
        return
    from .console import ConsoleRefused, serve

    inst = ctx.obj.installation(mappings=False)
    changes = {k: v for k, v in (("listen", listen), ("port", port)) if v is not None}
    if changes:
        import dataclasses

        inst = dataclasses.replace(inst, console=inst.console.model_copy(update=changes))
    try:
        serve(inst)
    except ConsoleRefused as exc:
        click.echo(_("error: {error}").format(error=exc), err=True)
        raise SystemExit(2) from None


@console.command("passwd")
@click.argument("user")
@click.option("--role", type=click.Choice(["viewer", "operator"]),
              help="The user's role (a new user is a viewer unless told; an existing one keeps theirs).")
@click.pass_obj
def console_passwd(obj: _Obj, user: str, role: str | None) -> None:
    """Set USER's console password: asks for it twice and writes only its hash into gateway.yaml."""
    from .config import USER_NAME
    from .console.auth import hash_password
    from .console.passwd import PasswdError, set_password

    if not USER_NAME.match(user):
        click.echo(_("error: a user name may hold only letters, digits and . _ @ - (at most 64)"), err=True)
        raise SystemExit(2)
    password = click.prompt(_("Password for {user}").format(user=user), hide_input=True,
                            confirmation_prompt=_("Repeat it"))
    if len(password) < 10:
        click.echo(_("error: a console password needs at least 10 characters"), err=True)
        raise SystemExit(2)
    try:
        set_password(obj.config, user, hash_password(password), role)
    except (PasswdError, ConfigError, OSError) as exc:
        click.echo(_("error: {error}").format(error=exc), err=True)
        raise SystemExit(2) from None
    click.echo(_("the password hash of {user} is in {file}; restart the console to use it").format(
        user=user, file=obj.config))


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
        known = ", ".join(inst.services) or _("none")
        click.echo(_("no web service named '{name}' in {file} (services: {known})").format(
            name=name, file=inst.path.name, known=known), err=True)
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
        click.echo(_("{name}: FAILED: {error}").format(name=name, error=client.redact(str(exc))), err=True)
        raise SystemExit(1) from None
    finally:
        client.close()
    click.echo(_("{name}: OK ({api}, {url}): {answer}").format(name=name, api=config.api,
                                                              url=client.credentials.url, answer=words))


@cli.group()
def sftp() -> None:
    """SFTP partners: review and record their host keys."""


@sftp.command("trust")
@click.argument("partner")
@click.option("--fingerprint", metavar="SHA256:…",
              help="Record the key without asking, if and only if it has this fingerprint (the partner's word).")
@click.option("--yes", is_flag=True, hidden=True, help="Refused without --fingerprint: it would trust any key.")
@click.pass_obj
def sftp_trust(obj: _Obj, partner: str, fingerprint: str | None, yes: bool) -> None:
    """Show the partner's host key fingerprint and record it in the partner's known_hosts after confirmation.

    Compare the fingerprint with the one the partner tells you on another channel (phone,
    letter): a connection is only as safe as this comparison.
    """
    from .sftp import fetch_host_key, key_fingerprint, trust

    if yes and fingerprint is None:
        click.echo(_("--yes would trust whatever key the server shows; give the fingerprint the partner told you "
                     "instead: --fingerprint SHA256:…"), err=True)
        raise SystemExit(2)
    inst = obj.installation()
    if partner not in inst.partners:
        known = ", ".join(inst.partners) or _("none")
        click.echo(_("no partner named '{partner}' in {file} (partners: {known})").format(
            partner=partner, file=inst.path.name, known=known), err=True)
        raise SystemExit(2)
    p = inst.partners[partner]
    try:
        key = fetch_host_key(p.host, p.port, p.timeout)
    except GatewayError as exc:
        click.echo(_("error: {error}").format(error=exc), err=True)
        raise SystemExit(1) from None
    shown = key_fingerprint(key)
    click.echo(_("{partner}: {host}:{port} presents a {kind} key").format(partner=partner, host=p.host, port=p.port,
                                                                         kind=key.get_name()))
    click.echo("    " + _("fingerprint {fingerprint}").format(fingerprint=shown))
    if fingerprint is not None:
        if fingerprint.strip() != shown:
            click.echo(_("this is not the fingerprint you gave ({fingerprint}); nothing recorded. A different "
                         "key can mean that someone is in between: ask the partner before going on").format(
                fingerprint=fingerprint.strip()), err=True)
            raise SystemExit(1)
    elif not click.confirm(_("Is this the fingerprint the partner gave you?"), default=False):
        click.echo(_("nothing recorded"))
        raise SystemExit(1)
    line = trust(p.known_hosts, p.host, p.port, key)
    click.echo(_("recorded in {file}: {host} {kind}").format(file=p.known_hosts, host=line.split()[0],
                                                             kind=line.split()[1]))


def main() -> None:
    try:
        cli(standalone_mode=True)
    except GatewayError as exc:
        # Commands catch their own; what arrives here is mostly a JournalError (a full disk, a journal held
        # by another program), whose message says what the admin can do about it: the gateway could not work.
        click.echo(_("error: {error}").format(error=exc), err=True)
        raise SystemExit(3) from None


if __name__ == "__main__":
    main()
