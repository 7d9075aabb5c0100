"""The ``classtrack`` command line: one subcommand per module in
``classtrack.commands``, each with ``add_parser(subparsers)`` and ``run(args)``.

    classtrack run [options] (SCRIPT | -m MODULE) [ARGS...]
    classtrack report DUMP [--snapshots | --summary | --json] [--sort KEY ...] [--limit N]
                           [--class NAME]
    classtrack diff OLD NEW [--json] [--limit N]
    classtrack html DUMP [-o report.html]
    classtrack demo [-o classtrack-demo.html]
    classtrack attach PID [--json] [-o FILE] [--limit N] [--retained [K]] [--paths K]
                          [--every S --count N] [--timeout S]

Exit status: 0 on success; 1 for a problem with what was asked (one line
on stderr, never a traceback); 2 for a bad command line (argparse's usage
message); 130 when interrupted; 141 (128 + SIGPIPE, what a shell shows for
a tool killed by a closed pipe) when the output pipe was closed early, as
by ``| head``, after which classtrack stops quietly.  ``run`` exits with
the program's status (see ``classtrack.commands.run``).
"""
import argparse
import sys
from typing import IO, Any, List, Optional

from classtrack.commands import attach, demo, diff, html, report, run
from classtrack.commands.common import UserError
from classtrack.running.output import silence

COMMANDS = [run, report, diff, html, demo, attach]
EXIT_BROKEN_PIPE = 141


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


def _is_broken(stream: IO[str]) -> bool:
    try:
        stream.flush()
    except (BrokenPipeError, ValueError):
        return True
    return False


def main(argv: Optional[List[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        try:
            code = _main(argv)
            if run.program_interrupted():
                _end_as_interrupted()
            return code
        finally:
            # what is still buffered fails here, not in the interpreter's exit;
            # not for `run`, whose stdout is the program's, to fail as it would
            if not run.program_started() and sys.stdout is not None:
                sys.stdout.flush()
    except BrokenPipeError:
        # the reader of our output left (`| head`): stop quietly, like Unix tools
        for stream in (sys.stdout, sys.stderr):
            if stream is not None and _is_broken(stream):
                silence(stream)
        silence(sys.stdout)
        return EXIT_BROKEN_PIPE


def _end_as_interrupted() -> None:
    """The program ended in KeyboardInterrupt, which `run` reported as
    Python does: end as Python does too, by letting the interpreter see an
    unhandled KeyboardInterrupt (it then dies of SIGINT once its exit
    handlers ran, status -2), without printing the traceback again."""
    hook = sys.excepthook
    exc = KeyboardInterrupt()

    def quiet(kind: Any, value: Any, tb: Any) -> None:
        if value is not exc:
            hook(kind, value, tb)
    sys.excepthook = quiet
    raise exc


def _main(argv: List[str]) -> int:
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
