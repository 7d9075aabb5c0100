"""The ``classtrack`` command line: one subcommand per module in
``classtrack.commands``, each with ``add_parser(subparsers)`` and ``run(args)``.

    classtrack run [options] (SCRIPT | -m MODULE) [ARGS...]
    classtrack report DUMP [--sort KEY ...] [--limit N] [--class NAME] [--summary]
    classtrack html DUMP [-o report.html]
    classtrack demo [-o classtrack-demo.html]
"""
import argparse
import sys
from typing import List, Optional

from classtrack.commands import demo, html, report, run
from classtrack.commands.common import UserError

COMMANDS = [run, report, html, demo]


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
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    # `run` takes everything after the program as the program's own arguments
    args = run.parse(parser, argv) if argv[:1] == ["run"] else parser.parse_args(argv)
    try:
        return int(args.run(args) or 0)
    except UserError as exc:
        print("classtrack: %s" % exc, file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("classtrack: interrupted", file=sys.stderr)
        return 130
