"""``classtrack html DUMP``: the HTML report of a dump."""
import argparse
import os
import sys

from classtrack.commands.common import UserError, load_stats, progress


def add_parser(sub) -> None:
    p = sub.add_parser("html", help="write the HTML report of a dump",
                       description="Write an HTML report (an index page and a page per "
                                   "class) that opens offline in any browser.")
    p.add_argument("dump", metavar="DUMP", help="a dump written by 'classtrack run' or dump_stats")
    p.add_argument("-o", "--output", metavar="FILE",
                   help="the index page to write (default: the dump's name with .html)")
    p.add_argument("--title", default="ClassTracker Statistics", help="the report's title")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from classtrack.classtracker_stats import HtmlStats
    stats = load_stats(args.dump, HtmlStats)
    out = args.output or os.path.splitext(os.path.basename(args.dump))[0] + ".html"
    progress("rendering %d class pages..." % len(stats.index))
    try:
        stats.create_html(out, title=args.title)
    except OSError as exc:
        raise UserError("cannot write %s: %s" % (out, exc.strerror or exc)) from None
    print("classtrack: report written to %s" % os.path.abspath(out), file=sys.stderr)
    return 0
