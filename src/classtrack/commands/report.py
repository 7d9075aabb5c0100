"""``classtrack report DUMP``: the console report of a dump."""
import argparse
import sys

from classtrack.commands.common import load_stats

SORT_KEYS = ("classname", "tsize", "birth", "death", "name", "repr", "size")


def add_parser(sub) -> None:
    p = sub.add_parser("report", help="print the report of a dump",
                       description="Print the per-class summary of each snapshot and the "
                                   "tracked objects, largest first.")
    p.add_argument("dump", metavar="DUMP", help="a dump written by 'classtrack run' or dump_stats")
    p.add_argument("--sort", nargs="+", choices=SORT_KEYS, metavar="KEY",
                   help="sort objects by these keys (%s); default: size" % ", ".join(SORT_KEYS))
    p.add_argument("--limit", type=float, default=20, metavar="N",
                   help="objects to print: a count, or a share of all below 1 (default 20)")
    p.add_argument("--class", dest="classname", metavar="NAME",
                   help="only objects whose class name contains NAME")
    p.add_argument("--summary", action="store_true", help="print the summary only")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from classtrack.classtracker_stats import ConsoleStats
    if args.limit <= 0:
        raise SystemExit("classtrack report: --limit must be positive")
    stats = load_stats(args.dump, ConsoleStats)
    stats.stream = sys.stdout
    stats.print_summary()
    if not args.summary:
        stats.sort_stats(*(args.sort or ("size",)))
        stats.print_stats(clsname=args.classname, limit=args.limit)
    return 0
