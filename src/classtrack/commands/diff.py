"""``classtrack diff OLD NEW``: per class, what changed from one dump to
another, each at its last snapshot (new minus old), largest size growth
first."""
import argparse
import sys
from typing import Optional, TextIO

from classtrack.commands.common import UserError, load_stats, positive_int, width


def add_parser(sub) -> None:
    p = sub.add_parser("diff", help="compare two dumps class by class",
                       description="Compare the last snapshot of OLD with the last snapshot "
                                   "of NEW: per class the live count, size and (when "
                                   "measured) retained bytes in each and the change, "
                                   "largest size growth first.  Classes that did not "
                                   "change are counted, not listed.  The table fits the "
                                   "terminal's width (COLUMNS overrides it).")
    p.add_argument("old", metavar="OLD", help="the earlier dump (.ctdump), or census file")
    p.add_argument("new", metavar="NEW", help="the later dump (.ctdump), or census file")
    p.add_argument("--json", action="store_true",
                   help="print every class as JSON (format 'classtrack-diff')")
    p.add_argument("--limit", type=positive_int, default=None, metavar="N",
                   help="print the first N classes only")
    p.set_defaults(run=run)


def run(args: argparse.Namespace, out: Optional[TextIO] = None) -> int:
    # lazy: start-up time: cli imports every subcommand to build its parser
    from classtrack.classtracker_stats import Stats
    from classtrack.report import census  # lazy: as above
    out = out or sys.stdout
    if census.which([args.old, args.new]):
        old_c, new_c = census.load([args.old]) + census.load([args.new])
        census.diff(old_c, new_c, out, args.limit, args.json)
        return 0
    old = load_stats(args.old, Stats)
    new = load_stats(args.new, Stats)
    for path, stats in ((args.old, old), (args.new, new)):
        if not stats.snapshots:
            raise UserError("%s has no snapshot to compare" % path)
    result = old.diff(new)
    if args.json:
        out.write(result.as_json(args.old, args.new, limit=args.limit) + "\n")
    else:
        out.write("%s -> %s\n" % (args.old, args.new))
        out.write(result.format(width=width(out), limit=args.limit) + "\n")
    return 0
