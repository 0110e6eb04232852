"""The `remix-pipeline` command line: run, validate, serve, lineage."""

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


_COMMANDS: list[Callable[[argparse._SubParsersAction], None]] = [
    _register_run,
    _register_serve,
    _register_lineage,
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
