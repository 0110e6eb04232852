"""The `remix-pipeline` command line: run, validate, serve, lineage, check-server."""

from __future__ import annotations

import argparse
import gc
import importlib
import sys
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class _Command:
    """A subcommand. Its module is imported only when the command is the one given: the
    modules bring their own dependencies (`serve` uvicorn, `check-server` the gateway
    probes), which the other commands do not pay for."""

    name: str
    help: str
    module: str
    add_arguments: str
    handler: str

    def register(self, commands: argparse._SubParsersAction, *, chosen: bool) -> None:
        cmd = commands.add_parser(self.name, help=self.help)
        if chosen:
            module = importlib.import_module(self.module)
            getattr(module, self.add_arguments)(cmd)
            cmd.set_defaults(handler=getattr(module, self.handler))


_COMMANDS = (
    _Command(
        "run",
        "Run the experiment headless: submit, wait, download, write the lineage.",
        "remix_pipeline.console",
        "add_run_arguments",
        "run_command",
    ),
    _Command(
        "serve",
        "Serve the embedded Videos API over HTTP.",
        "remix_pipeline.service.server",
        "add_serve_arguments",
        "serve_command",
    ),
    _Command(
        "lineage",
        "Print the lineage table, or trace a video back to its source.",
        "remix_pipeline.console",
        "add_lineage_arguments",
        "lineage_command",
    ),
    _Command(
        "validate",
        "Check a request table: exit 0 if valid, 1 if rows are bad, 2 if unreadable.",
        "remix_pipeline.cli",
        "_add_validate_arguments",
        "_validate_command",
    ),
    _Command(
        "check-server",
        "Probe a Videos API server or gateway and print what works through it.",
        "remix_pipeline.server_check",
        "add_check_arguments",
        "check_command",
    ),
)


def _parser(argv: Sequence[str]) -> argparse.ArgumentParser:
    """The parser, with the arguments of the command `argv` names (the first word that is
    one: the program has no options of its own but `--help`)."""
    parser = argparse.ArgumentParser(
        prog="remix-pipeline",
        description="Fan out Videos API remix jobs from a table of prompt variants.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    names = {command.name for command in _COMMANDS}
    chosen = next((word for word in argv if word in names), None)
    for command in _COMMANDS:
        command.register(commands, chosen=command.name == chosen)
    return parser


def _add_validate_arguments(cmd: argparse.ArgumentParser) -> None:
    cmd.add_argument("path", metavar="PATH", help="Request table (.csv, .parquet, .jsonl).")


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


def main(argv: Sequence[str] | None = None) -> int:
    words = sys.argv[1:] if argv is None else list(argv)
    args = _parser(words).parse_args(words)
    try:
        return int(args.handler(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    finally:
        if argv is None:
            # The program ends when this returns. Python's last collection at exit walks
            # every object Dagster left behind: about a second after `run` had finished.
            # Frozen objects are skipped by it; they are freed with the process.
            gc.freeze()


if __name__ == "__main__":
    sys.exit(main())
