"""The `remix-pipeline` command line: run, validate, serve, lineage, check-server."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="remix-pipeline",
        description="Fan out Videos API remix jobs from a table of prompt variants.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for register in _COMMANDS:
        register(commands)
    return parser


def _register_serve(commands: argparse._SubParsersAction) -> None:
    from remix_pipeline.service.server import add_serve_arguments, serve_command

    cmd = commands.add_parser("serve", help="Serve the embedded Videos API over HTTP.")
    add_serve_arguments(cmd)
    cmd.set_defaults(handler=serve_command)


def _register_run(commands: argparse._SubParsersAction) -> None:
    from remix_pipeline.console import add_run_arguments, run_command

    cmd = commands.add_parser(
        "run", help="Run the experiment headless: submit, wait, download, write the lineage."
    )
    add_run_arguments(cmd)
    cmd.set_defaults(handler=run_command)


def _register_lineage(commands: argparse._SubParsersAction) -> None:
    from remix_pipeline.console import add_lineage_arguments, lineage_command

    cmd = commands.add_parser(
        "lineage", help="Print the lineage table, or trace a video back to its source."
    )
    add_lineage_arguments(cmd)
    cmd.set_defaults(handler=lineage_command)


def _register_check(commands: argparse._SubParsersAction) -> None:
    from remix_pipeline.server_check import add_check_arguments, check_command

    cmd = commands.add_parser(
        "check-server",
        help="Probe a Videos API server or gateway and print what works through it.",
    )
    add_check_arguments(cmd)
    cmd.set_defaults(handler=check_command)


def _register_validate(commands: argparse._SubParsersAction) -> None:
    cmd = commands.add_parser(
        "validate",
        help="Check a request table: exit 0 if valid, 1 if rows are bad, 2 if unreadable.",
    )
    cmd.add_argument("path", metavar="PATH", help="Request table (.csv, .parquet, .jsonl).")
    cmd.set_defaults(handler=_validate_command)


def _validate_command(args: argparse.Namespace) -> int:
    """One line per problem on stderr, so the output can be grepped, counted and diffed."""
    from remix_pipeline.request_table import TableUnreadableError, read_request_table

    try:
        table = read_request_table(args.path)
    except TableUnreadableError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # a reader bug must still not show a user a traceback
        print(f"error: {args.path}: could not be read ({type(exc).__name__})", file=sys.stderr)
        return 2
    for note in table.notes:
        print(f"note: {note}", file=sys.stderr)
    bad_rows = len({p.row_number for p in table.problems if p.row_number is not None})
    summary = (
        f"{table.row_count} rows, {len(table.requests)} variants, "
        f"table sha256 {table.content_hash[:12]} ({table.path})"
    )
    if not table.problems:
        print(f"valid: {summary}")
        return 0
    for problem in table.problems:
        print(str(problem), file=sys.stderr)
    print(f"invalid: {len(table.problems)} problem(s), {bad_rows} bad row(s); {summary}")
    return 1


_COMMANDS: list[Callable[[argparse._SubParsersAction], None]] = [
    _register_run,
    _register_serve,
    _register_lineage,
    _register_validate,
    _register_check,
]


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return int(args.handler(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
