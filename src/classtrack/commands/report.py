"""``classtrack report DUMP``: the console report of a dump.

By default one table row per class (peak size and count, the last
snapshot, the change from first to last); ``--snapshots`` prints the
per-snapshot summary and the largest tracked objects as Pympler's
``print_summary``/``print_stats`` do; ``--json`` the table for scripts.
"""
import argparse
import sys
from typing import Any, Optional, TextIO

from classtrack.commands.common import UserError, width as _width

SORT_KEYS = ("classname", "tsize", "birth", "death", "name", "repr", "size")


def add_parser(sub) -> None:
    p = sub.add_parser("report", help="print the report of a dump",
                       description="Print one line per tracked class, largest peak size "
                                   "first: peak size and count, size and count at the last "
                                   "snapshot, and the change from the first snapshot to the "
                                   "last.  The table fits the terminal's width (COLUMNS "
                                   "overrides it); into a pipe or a file lines are never "
                                   "wrapped.")
    p.add_argument("dump", metavar="DUMP", nargs="+",
                   help="a dump written by 'classtrack run' or dump_stats; several (the "
                        "NAME.<run>.<pid>.ctdump of 'run --follow-fork') are merged, with a "
                        "per-process breakdown.  Or census files ('classtrack attach -o'): "
                        "one is printed, several are a series (first, last, change)")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--snapshots", action="store_true",
                      help="print every class in every snapshot, then the largest "
                           "tracked objects (Pympler's layout)")
    mode.add_argument("--summary", action="store_true",
                      help="print every class in every snapshot only")
    mode.add_argument("--json", action="store_true",
                      help="print the table as JSON (schema: docs/cli.md, \"report --json\")")
    p.add_argument("--sort", nargs="+", choices=SORT_KEYS, metavar="KEY",
                   help="sort the tracked objects by these keys (%s; default: size); "
                        "implies --snapshots" % ", ".join(SORT_KEYS))
    p.add_argument("--limit", type=float, default=None, metavar="N",
                   help="rows to print: a count, or a share of all below 1 (default: every "
                        "class; with --snapshots, 20 objects)")
    p.add_argument("--class", dest="classname", metavar="NAME",
                   help="only classes (and objects) whose class name contains NAME")
    p.add_argument("--growth", nargs="?", const=3, type=int, default=None, metavar="N",
                   help="name the classes whose live count grew at each of the last N "
                        "snapshots (default 3), with their counts; with --json, in a "
                        "\"growth\" field.  Write it after DUMP, or as --growth=N")
    p.set_defaults(run=run)


def run(args: argparse.Namespace, out: Optional[TextIO] = None) -> int:
    # lazy: start-up time: cli imports every subcommand to build its parser
    from classtrack.classtracker_stats import ConsoleStats
    from classtrack.report import census, merge, table  # lazy: as above
    out = out or sys.stdout
    if args.limit is not None and args.limit <= 0:
        raise UserError("--limit must be positive, not %g" % args.limit)
    if args.sort and (args.summary or args.json):
        raise UserError("--sort orders the object listing, which --%s does not print"
                        % ("summary" if args.summary else "json"))
    if args.growth is not None and (args.growth < 2 or args.summary or args.snapshots
                                    or args.sort):
        raise UserError("--growth compares at least 2 snapshots, not %d" % args.growth
                        if args.growth < 2 else "--growth prints its own list, not with "
                        "--snapshots, --summary or --sort")
    if census.which(args.dump):
        if args.summary or args.snapshots or args.sort:
            raise UserError("a census has no snapshots or objects to list: --summary, "
                            "--snapshots and --sort are for dumps")
        census.report(census.load(args.dump), out, _count(args.limit), args.classname,
                      args.json, args.growth)
        return 0
    stats, procs = merge.load_any(args.dump, ConsoleStats)    # procs: None for one dump
    stats.stream = out
    if args.summary or args.snapshots or args.sort:
        stats.print_summary()
        if not args.summary:
            stats.sort_stats(*(args.sort or ("size",)))
            stats.print_stats(clsname=args.classname,
                              limit=20 if args.limit is None else args.limit)
        return 0
    rows = table.class_rows(stats, contains=args.classname)
    shown = table.limit_rows(rows, args.limit)
    counted = table.counted_rows(stats, contains=args.classname)
    if args.growth is not None:
        return _growth(args, stats, rows, out, counted)
    if args.json:
        extra = None if procs is None else {
            "dumps": list(args.dump),
            "processes": [p.as_dict(args.classname) for p in procs]}
        out.write(table.as_json(stats, shown, source=_one(args.dump) if procs is None else None,
                                extra=extra, counted=table.limit_rows(counted, args.limit))
                  + "\n")
        return 0
    out.write(table.describe(stats, rows, args.classname, counted) + "\n")
    if stats.snapshots and counted and not rows:
        _write_counted(out, counted, args.limit)
        return 0
    if not stats.snapshots or not rows:
        out.write("nothing to show: %s\n" % ("no snapshots" if not stats.snapshots else
                                            "no class matches %r" % args.classname
                                            if args.classname else "no tracked classes"))
        return 0
    total = table.total_row(rows, len(stats.snapshots)) if len(rows) > 1 else None
    for line in table.format_table(shown, width=_width(out), total=total):
        out.write(line + "\n")
    if len(shown) < len(rows):
        out.write("(%d more %s not shown: --limit)\n"
                  % (len(rows) - len(shown), "class" if len(rows) - len(shown) == 1
                     else "classes"))
    if counted:
        _write_counted(out, counted, args.limit)
    if procs is not None:
        for line in merge.process_lines(procs, args.classname):
            out.write(line + "\n")
    return 0


def _write_counted(out: TextIO, counted: Any, limit: Optional[float]) -> None:
    """The count-only classes, in a table of their own under a heading."""
    from classtrack.report import table  # lazy: start-up time, as in run()
    seen = [r for r in counted if r.peak_count]
    out.write(table.COUNTED_HEADING + "\n")
    if seen:
        for line in table.format_table(table.limit_rows(seen, limit), width=_width(out)):
            out.write(line + "\n")
    if len(seen) < len(counted):
        # counted at every snapshot, never seen: one line, not a row of zeros each
        n = len(counted) - len(seen)
        out.write("(%d counted class%s had no instance at any snapshot)\n"
                  % (n, "" if n == 1 else "es"))


def _one(dump: Any) -> Any:
    """The path of a single dump (argparse gives a list of one)."""
    return dump[0] if isinstance(dump, list) else dump


def _count(limit: Optional[float]) -> Optional[int]:
    """--limit as a number of rows (a census has no share of rows)."""
    if limit is None:
        return None
    if limit < 1:
        raise UserError("--limit for a census is a number of rows, not a share (%g)" % limit)
    return int(limit)


def _growth(args: argparse.Namespace, stats: Any, rows: Any, out: TextIO,
            counted: Any = ()) -> int:
    """--growth N: the classes whose live count rose at each of the last N
    snapshots; count-only classes too, by their counts at snapshots
    (marked so)."""
    # lazy: start-up time: cli imports every subcommand to build its parser
    import json
    from classtrack.report import diff, table  # lazy: as above
    n = args.growth
    keep = diff.spaced([s.timestamp for s in stats.snapshots],
                       [s.desc for s in stats.snapshots])
    marked = [table.ClassRow(r.name + " (counted)", 0, r.counts, r.sizes) for r in counted]
    found = table.limit_rows(diff.growing(list(rows) + marked, n, keep), args.limit)
    nsnap = len(keep)
    judged = keep[-n:] if nsnap >= n else None
    first = judged[0] if judged else None
    dump = args.dump[0] if isinstance(args.dump, list) else args.dump
    if args.json:
        doc = json.loads(table.as_json(stats, table.limit_rows(rows, args.limit), source=dump,
                                       counted=table.limit_rows(counted, args.limit)))
        doc["growth"] = diff.growth_dict(found, n, first, judged)
        out.write(json.dumps(doc, separators=(",", ":")) + "\n")
        return 0
    out.write(table.describe(stats, rows, args.classname, counted) + "\n")
    skipped = len(stats.snapshots) - len(keep)
    if skipped:
        out.write("(%d snapshot%s taken right before the next one left out: growth is "
                  "judged on snapshots spaced as usual)\n" % (skipped, "" if skipped == 1 else "s"))
    if first is None:
        out.write("nothing to show: --growth %d needs %d snapshots, there %s %d\n"
                  % (n, n, "is" if nsnap == 1 else "are", nsnap))
        return 0
    if not found:
        out.write("no class grew at each of the last %d snapshots\n" % n)
        return 0
    out.write("%d %s grew at each of the last %d snapshots:\n"
              % (len(found), "class" if len(found) == 1 else "classes", n))
    labels = [stats.snapshots[k].desc or "#%d" % k for k in judged]
    for line in diff.format_growth(found, labels):
        out.write(line + "\n")
    return 0
