"""The ``classtrack`` command line: one subcommand per module in
``classtrack.commands``, each with ``add_parser(subparsers)`` and ``run(args)``."""
import argparse
import sys
from typing import List, Optional

from classtrack.commands import demo

COMMANDS = [demo]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="classtrack",
        description="Memory insight for Python programs: which classes hold memory, "
                    "how much, since when.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for command in COMMANDS:
        command.add_parser(sub)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.run(args) or 0)
    except KeyboardInterrupt:
        print("classtrack: interrupted", file=sys.stderr)
        return 130
