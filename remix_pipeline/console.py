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
from rich.console import Console
from rich.table import Table

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
    from remix_pipeline.requests import TableUnreadableError
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
    from remix_pipeline.requests import read_request_table

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
    table = Table(title="lineage (latest attempt per variant)")
    for column in LINEAGE_VIEW:
        table.add_column(column)
    latest = frame.sort_values(["key", "attempt"]).groupby("key").tail(1)
    for row in latest.sort_values("row_number").itertuples():
        table.add_row(*[_cell(getattr(row, c)) for c in LINEAGE_VIEW])
    if not out.is_terminal:
        out.width = max(out.width, 160)
    out.print(table)
    cost = pd.to_numeric(latest["estimated_cost_usd"], errors="coerce").sum()
    checks = ", ".join(
        f"{name} {'passed' if ok else 'FAILED'}"
        for name, ok in summary.checks.items()  # type: ignore[attr-defined]
    )
    out.print(
        f"{len(latest)} variants, {len(frame)} attempts, estimated cost ${cost:.2f}; "
        f"checks: {checks or 'none'}",
        highlight=False,
    )
    out.print(f"lineage table: {summary.lineage_path}", highlight=False)  # type: ignore[attr-defined]


def _cell(value: object) -> str:
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return ""
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

    err = Console(stderr=True)
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
        err.print(f"error: cannot read lineage table {path}: {exc}", markup=False)
        return 2
    if args.trace:
        chain = trace(frame, args.trace)
        if len(chain) == 1 and chain[0].get("root") and chain[0]["video_id"] == args.trace:
            err.print(f"error: video {args.trace} is not in the lineage table")
            return 1
        view = pd.DataFrame(chain).reindex(columns=TRACE_COLUMNS)
    else:
        view = frame
    _emit(view, args.format)
    return 0


def _emit(frame: pd.DataFrame, fmt: str) -> None:
    if fmt == "csv":
        frame.to_csv(sys.stdout, index=False)
    elif fmt == "json":
        records = json.loads(frame.to_json(orient="records"))
        json.dump(records, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        table = Table()
        columns = [c for c in LINEAGE_VIEW if c in frame.columns] or list(frame.columns)
        if "prompt" in frame.columns and "prompt" not in columns:
            columns = list(frame.columns)
        for column in columns:
            table.add_column(column)
        for row in frame.loc[:, columns].itertuples(index=False):
            table.add_row(*[_cell(v) for v in row])
        Console().print(table)
