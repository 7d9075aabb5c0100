"""``classtrack html DUMP``: the HTML report of a dump."""
import argparse
import os
import re

from classtrack import _safefile
from classtrack.commands.common import UserError, progress, writing_report


def add_parser(sub) -> None:
    p = sub.add_parser("html", help="write the HTML report of a dump",
                       description="Write an HTML report (an index page and a page per "
                                   "class) that opens offline in any browser.")
    p.add_argument("dump", metavar="DUMP", nargs="+",
                   help="a dump written by 'classtrack run' or dump_stats; several (the "
                        "NAME.<run>.<pid>.ctdump of 'run --follow-fork') are merged, with a "
                        "per-process section.  Or one census file ('classtrack attach -o')")
    p.add_argument("-o", "--output", metavar="FILE",
                   help="the index page to write (default: the dump's name with .html; "
                        "for NAME.<run>.<pid>.ctdump files, NAME.html)")
    p.add_argument("--title", default=None,
                   help="the report's title (default: ClassTracker Statistics; for a census, "
                        "the process's)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    # lazy: start-up time: cli imports every subcommand to build its parser
    from classtrack.classtracker_stats import HtmlStats
    from classtrack.report import census, merge  # lazy: as above
    paths = args.dump if isinstance(args.dump, list) else [args.dump]
    if census.which(paths):
        if len(paths) != 1:
            raise UserError("html takes one census file, not %d" % len(paths))
        out = args.output or os.path.basename(census.default_html_name(paths[0]))
        page = census.html_page(census.load(paths)[0], title=args.title)
        with writing_report(out), _safefile.replacing(
                out, named=args.output is not None, mode=_safefile.SHARED, text=True) as f:
            f.write(page)
        return 0
    stats, procs = merge.load_any(paths, HtmlStats)
    stats.processes = procs         # the index page's per-process section, if several
    first = os.path.basename(paths[0])
    if procs is not None:
        first = re.sub(r"(\.[0-9a-f]{8})?\.\d+\.ctdump$", ".ctdump", first)
    out = args.output or os.path.splitext(first)[0] + ".html"
    progress("rendering %d class pages..." % len(stats.index))
    with writing_report(out):
        stats.create_html(out, title=args.title or "ClassTracker Statistics",
                          _named=args.output is not None)
    return 0
