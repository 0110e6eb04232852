"""What `remix-pipeline run` and `remix-pipeline lineage` show a person in a terminal."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd
from rich.cells import cell_len
from rich.console import Console
from rich.table import Table
from rich.text import Text

from remix_pipeline.experiment import LEDGER_URL_ENV, ExperimentSettings

if TYPE_CHECKING:
    from remix_pipeline.definitions.session import ExperimentSession

DEFAULT_TABLE = "data/requests.csv"
TRACE_COLUMNS = ["video_id", "source_video_id", "variant", "prompt", "run_id", "table_hash"]
LINEAGE_VIEW = [
    "source_video_id",
    "variant",
    "replicate",
    "attempt",
    "state",
    "video_id",
    "error_code",
]
# `remix-pipeline lineage --format table`: one line per attempt, found by its key or video id
# (csv and json carry every column).
LINEAGE_TABLE_VIEW = ["key", *LINEAGE_VIEW]
# Prose that may wrap between words on a terminal; every other value (ids, keys, paths,
# hashes, labels) is printed whole on one line, whatever the width.
FREE_TEXT_COLUMNS = frozenset({"prompt", "error_message"})
MISSING = "-"


def add_run_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--table", default=DEFAULT_TABLE, help="request table (CSV, Parquet, JSONL)"
    )
    parser.add_argument("--name", default="sample", help="experiment name (asset key prefix)")
    parser.add_argument(
        "--timeout", type=float, default=3600.0, help="give up waiting after this many seconds"
    )
    parser.add_argument(
        "--stall-timeout",
        type=float,
        default=1800.0,
        metavar="SECONDS",
        help="stop, naming what is stuck, when nothing progresses for this long",
    )
    parser.add_argument(
        "--start-afresh",
        action="store_true",
        help="the attempts were sent to another server: submit every variant again on this one",
    )
    parser.add_argument(
        "--same-server-as",
        action="append",
        default=[],
        metavar="URL",
        help="an earlier base URL of the configured server (a renamed host); repeatable",
    )
    parser.add_argument(
        "--max-cost-usd",
        type=float,
        default=None,
        metavar="USD",
        help="refuse a batch whose estimated cost exceeds this budget, before any paid call",
    )
    parser.add_argument(
        "--ledger-url",
        default=None,
        metavar="URL",
        help=f"SQLAlchemy URL of the submission ledger (default: ${LEDGER_URL_ENV}, else "
        "SQLite in the state home); the variable keeps a password out of the process list",
    )


def run_command(args: argparse.Namespace) -> int:
    from remix_pipeline.definitions.headless import (
        HeadlessRunner,
        Progress,
        ensure_dagster_home,
    )
    from remix_pipeline.definitions.session import ExperimentSession
    from remix_pipeline.ledger import LedgerError
    from remix_pipeline.request_table import TableUnreadableError
    from remix_pipeline.servers import ServerChangedError

    err = Console(stderr=True, soft_wrap=True)
    out = Console(soft_wrap=True)
    if args.ledger_url:
        # Through the environment, like every secret: the URL may carry a password.
        os.environ[LEDGER_URL_ENV] = args.ledger_url
    try:
        settings = ExperimentSettings(
            name=args.name,
            table=args.table,
            max_cost_usd=args.max_cost_usd,
            start_afresh=args.start_afresh,
            same_server_as=args.same_server_as,
        )
    except ValueError as exc:
        err.print(f"error: {_first_error(exc)}", markup=False)
        return 2
    if not settings.table_path.is_file():
        err.print(f"error: request table not found: {settings.table_path}")
        return 2
    home = ensure_dagster_home()
    import dagster as dg

    last_line = [""]
    started = time.monotonic()

    def show(progress: Progress) -> None:
        line = (
            f"[{time.monotonic() - started:5.1f}s] variants {progress.variants} · submitted "
            f"{progress.submitted} · running {progress.running} · completed {progress.completed}"
            f" · failed {progress.failed} · downloaded {progress.downloaded}"
        )
        if line != last_line[0]:
            out.print(line, highlight=False)
            last_line[0] = line

    out.print(
        f"remix-pipeline: experiment [bold]{settings.name}[/], table {settings.table_path}, "
        f"server {settings.server_label()}, Dagster home {home}",
        highlight=False,
    )
    try:
        session = ExperimentSession(settings)
        out.print(_preflight_estimate(session), highlight=False)
        with dg.DagsterInstance.get() as instance:
            runner = HeadlessRunner(
                settings,
                instance,
                on_progress=show,
                on_warning=lambda message: err.print(
                    f"warning: {message}", markup=False, highlight=False
                ),
                session=session,
            )
            summary = runner.run(timeout_seconds=args.timeout, stall_seconds=args.stall_timeout)
    except (TableUnreadableError, LedgerError) as exc:
        err.print(f"error: {exc}", markup=False)
        return 2
    except (dg.DagsterError, ServerChangedError) as exc:
        err.print(f"error: {exc}", markup=False)
        return 1
    for problem in summary.invalid_rows:
        err.print(f"skipped invalid row: {problem}", highlight=False)
    if not summary.finished:
        p = summary.progress
        why = summary.stopped_because or f"they have not ended after {args.timeout:.0f} s"
        err.print(
            f"{p.variants - p.ended} variants have not ended: {why}; run again to carry on "
            "(nothing is submitted twice).",
            markup=False,
        )
        for variant in summary.stuck:
            err.print(f"  stuck: {variant}", markup=False, highlight=False)
        return 1
    _print_summary(out, summary)
    if summary.unresolved:
        err.print(
            f"{len(summary.unresolved)} variants could not be resolved: their request may or "
            "may not have created a job on the server, and it could not be found there "
            "(see docs/gateways.md):",
            markup=False,
        )
        for variant in summary.unresolved:
            err.print(f"  unresolved: {variant}", markup=False, highlight=False)
        return 1
    return 0


def _preflight_estimate(session: ExperimentSession) -> str:
    """The batch's estimate, printed before the fan-out; the submissions step enforces the
    budget itself, so `dagster dev` refuses the same batch."""
    from remix_pipeline.budget import estimate_batch
    from remix_pipeline.planning import unpaid_requests
    from remix_pipeline.request_table import read_request_table

    settings = session.settings
    table = read_request_table(settings.table_path, strict=settings.strict)
    ledger = session.ledger()
    latest = ledger.latest(r.key for r in table.requests)
    # Refuses, before anything is paid, a table whose attempts live on another server.
    again = session.to_pay_again(ledger, latest, time.time(), refresh=False)
    to_pay = unpaid_requests(table.requests, ledger, lambda attempt: attempt.key in again)
    prices = session.prices
    estimate = session.run(lambda client: estimate_batch(to_pay, client, prices))
    budget = "" if settings.max_cost_usd is None else f" (budget ${settings.max_cost_usd:.2f})"
    return f"{estimate.describe()}{budget}"


def _print_summary(out: Console, summary: object) -> None:
    from remix_pipeline.lineage import read_lineage

    frame = read_lineage(summary.lineage_path)  # type: ignore[attr-defined]
    latest = frame.sort_values(["key", "attempt"]).groupby("key").tail(1)
    _print_rows(
        out,
        latest.sort_values("row_number", kind="stable"),
        LINEAGE_VIEW,
        title="lineage (latest attempt per variant)",
    )
    cost = pd.to_numeric(latest["estimated_cost_usd"], errors="coerce").sum()
    checks = ", ".join(
        f"{name} {'passed' if ok else 'FAILED'}"
        for name, ok in summary.checks.items()  # type: ignore[attr-defined]
    )
    out.print(
        f"{len(latest)} variants, {len(frame)} attempts, estimated cost ${cost:.2f}; "
        f"checks: {checks or 'none'}",
        markup=False,
        highlight=False,
    )
    out.print(
        f"lineage table: {summary.lineage_path}",  # type: ignore[attr-defined]
        markup=False,
        highlight=False,
        soft_wrap=True,
    )


def _print_rows(
    console: Console, frame: pd.DataFrame, columns: list[str], *, title: str | None = None
) -> None:
    """`columns` of every row of `frame`, no value ever shortened.

    Off a terminal (a pipe, a log, CI): plain columns aligned with spaces, one row per line at
    whatever width the values need, so `grep VIDEO_ID` finds the row and `less -S` scrolls.
    On a terminal: a table when every id fits whole beside the others (prose wraps between
    words), else one block of `column  value` lines per row, which the terminal itself wraps,
    so a long id is still one unbroken string to select and copy.
    """
    rows = [[_cell(v) for v in row] for row in frame.loc[:, columns].itertuples(index=False)]
    if console.is_terminal and _table_width(columns, rows) <= console.width:
        console.print(_table(columns, rows, title), soft_wrap=False)
        return
    lines = _record_lines(columns, rows) if console.is_terminal else _plain_lines(columns, rows)
    for line in [title, *lines] if title else lines:
        console.print(Text(line), soft_wrap=True, highlight=False)


def _table(columns: list[str], rows: list[list[str]], title: str | None) -> Table:
    """Ids at their full width (the caller checked that they fit); prose folds."""
    table = Table(title=title)
    for i, column in enumerate(columns):
        if column in FREE_TEXT_COLUMNS:
            table.add_column(column, overflow="fold")
        else:
            widest = max([cell_len(column), *(cell_len(row[i]) for row in rows)])
            table.add_column(column, no_wrap=True, overflow="fold", min_width=widest)
    for row in rows:
        table.add_row(*(Text(value) for value in row))
    return table


def _table_width(columns: list[str], rows: list[list[str]]) -> int:
    """The narrowest rich table (heavy head, padding 1) that keeps every value but prose
    whole, and prose no narrower than its longest word."""
    width = 1
    for i, column in enumerate(columns):
        values = [row[i] for row in rows]
        if column in FREE_TEXT_COLUMNS:
            values = [word for value in values for word in value.split()]
        width += max([cell_len(column), *map(cell_len, values)]) + 3
    return width


def _one_line(value: str) -> str:
    return " ".join(value.splitlines()).replace("\t", " ") if value else MISSING


def _plain_lines(columns: list[str], rows: list[list[str]]) -> list[str]:
    cells = [list(columns)] + [[_one_line(value) for value in row] for row in rows]
    widths = [max(cell_len(line[i]) for line in cells) for i in range(len(columns))]
    return [
        "  ".join(
            value + " " * (width - cell_len(value))
            for value, width in zip(line, widths, strict=True)
        ).rstrip()
        for line in cells
    ]


def _record_lines(columns: list[str], rows: list[list[str]]) -> list[str]:
    label = max(map(cell_len, columns))
    lines: list[str] = []
    for n, row in enumerate(rows):
        if n:
            lines.append("")
        lines.extend(
            f"{column.ljust(label)}  {_one_line(value)}"
            for column, value in zip(columns, row, strict=True)
        )
    return lines


def _cell(value: object) -> str:
    if value is None or (pd.api.types.is_scalar(value) and pd.isna(value)):
        return ""
    if isinstance(value, pd.Timestamp):
        utc = value.tz_convert("UTC") if value.tz else value.tz_localize("UTC")
        return utc.strftime("%Y-%m-%dT%H:%M:%S.%fZ" if utc.microsecond else "%Y-%m-%dT%H:%M:%SZ")
    return str(value)


def _first_error(exc: ValueError) -> str:
    errors = getattr(exc, "errors", None)
    if callable(errors):
        first = errors()[0]
        return f"{'.'.join(str(p) for p in first['loc'])}: {first['msg']}"
    return str(exc)


def add_lineage_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--table", default=DEFAULT_TABLE, help="request table of the experiment")
    parser.add_argument("--name", default="sample", help="experiment name")
    parser.add_argument("--path", help="lineage Parquet file (default: the experiment's)")
    parser.add_argument("--trace", metavar="VIDEO_ID", help="print the chain back to the root")
    parser.add_argument("--format", choices=["table", "csv", "json"], default="table")


def lineage_command(args: argparse.Namespace) -> int:
    from remix_pipeline.definitions.session import ExperimentSession
    from remix_pipeline.lineage import read_lineage, trace

    err = Console(stderr=True, soft_wrap=True, markup=False, highlight=False, emoji=False)
    path = (
        args.path
        or ExperimentSession(ExperimentSettings(name=args.name, table=args.table)).lineage_path
    )
    if not Path(path).exists() and "://" not in path:
        err.print(f"error: no lineage table at {path}; run `remix-pipeline run` first")
        return 2
    try:
        frame = read_lineage(path)
    except (OSError, ValueError) as exc:
        err.print(f"error: cannot read lineage table {path}: {exc}")
        return 2
    if args.trace:
        chain = trace(frame, args.trace)
        if len(chain) == 1 and chain[0].get("root") and chain[0]["video_id"] == args.trace:
            err.print(f"error: video {args.trace} is not in the lineage table")
            return 1
        view, columns = pd.DataFrame(chain).reindex(columns=TRACE_COLUMNS), TRACE_COLUMNS
    else:
        view, columns = frame, LINEAGE_TABLE_VIEW
    _emit(view, args.format, columns)
    return 0


def _emit(frame: pd.DataFrame, fmt: str, columns: list[str]) -> None:
    """csv and json: every column of `frame`, times as ISO 8601 UTC; table: `columns`."""
    if fmt == "csv":
        _iso_times(frame).to_csv(sys.stdout, index=False)
    elif fmt == "json":
        records = json.loads(_iso_times(frame).to_json(orient="records"))
        json.dump(records, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        _print_rows(Console(), frame.reindex(columns=columns), columns)


def _iso_times(frame: pd.DataFrame) -> pd.DataFrame:
    """Datetime columns as ISO 8601 UTC text (`2026-09-24T12:00:00Z`), missing ones empty.

    A column with any fraction of a second shows microseconds in every value, so the strings
    of one column sort as their times do.
    """
    texts = {}
    for name, column in frame.items():
        if not pd.api.types.is_datetime64_any_dtype(column):
            continue
        utc = column.dt.tz_convert("UTC") if column.dt.tz else column.dt.tz_localize("UTC")
        fraction = bool((utc.dropna().dt.microsecond != 0).any())
        text = utc.dt.strftime("%Y-%m-%dT%H:%M:%S.%fZ" if fraction else "%Y-%m-%dT%H:%M:%SZ")
        texts[name] = text.astype(object).where(utc.notna(), None)
    return frame.assign(**texts) if texts else frame
