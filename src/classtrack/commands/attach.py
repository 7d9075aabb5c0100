"""``classtrack attach PID``: what a running Python process holds, by class.

CPython 3.14+ only (PEP 768, ``sys.remote_exec``): the target's interpreter
runs a small script at its next safe point, with no debugger and nothing
written into its memory but the request.  The script imports classtrack
in the target, takes a census (``classtrack.census``) and writes it as
JSON into a private folder (mode 0700, made for this attach), atomically
(a temporary name, then a rename).  This process waits for that file,
every wait bounded, and prints it.  No socket is opened, no port listened
on.

In the target, afterwards: classtrack's modules stay imported (an import
cannot be undone safely); nothing else stays: no thread, hook, callback,
``sys.meta_path`` or ``sys.path`` entry.  If classtrack is not installed
in the target's environment, the script puts this installation on
``sys.path`` for the import, and only when it was built for the same
interpreter (same cache tag and extension suffix); otherwise it refuses.

``--track-class MODULE:CLASS --duration S`` instead starts a ClassTracker
in the target for S seconds (snapshots every ``--interval``), copies its
dump to ``-o``, and the tracker detaches completely (its timer thread
ends, the classes are restored).

A target that does not reach a safe point in time (its main thread blocked
in C: a long ``sleep``, a socket read) gives "did not reach a safe point".
CPython cannot withdraw a request already made, so the script is replaced
with one that does nothing but remove the folder: when the target gets
there later, it runs that, and nothing else happens.
"""
import argparse
import json
import os
import pwd
import re
import shutil
import sys
import sysconfig
import tempfile
import time
from typing import Any, Dict, List, Optional, Tuple

import classtrack
from classtrack import _safefile
from classtrack._census import Census, census_from_json
from classtrack.commands.common import UserError, positive_int

NEWEST_WAIT = 0.02          # seconds between looks for the result


def _seconds(text: str) -> float:
    try:
        s = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError("not a number of seconds: %r" % text) from None
    if not s > 0 or s != s or s == float("inf"):
        raise argparse.ArgumentTypeError("must be a positive number of seconds, not %s" % text)
    return s


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "attach", help="census of a running Python process (CPython 3.14+)",
        description="Take a census of a running Python process (CPython 3.14+, through "
                    "sys.remote_exec): every live object by class, the largest classes "
                    "first, with their count and bytes.  The target runs the census at "
                    "its next safe point and pauses for its duration (pause_s).")
    p.add_argument("pid", type=int, metavar="PID", help="the process to look into")
    p.add_argument("--limit", type=positive_int, default=20, metavar="N",
                   help="print the N largest classes (default 20)")
    p.add_argument("--package", metavar="NAME",
                   help="list only the classes of this package and its subpackages")
    p.add_argument("--retained", nargs="?", const=-1, type=positive_int, default=0,
                   metavar="K",
                   help="also the bytes each class retains (freeing all its instances "
                        "would free): of every class, or of the K largest")
    p.add_argument("--paths", type=int, default=0, metavar="K",
                   help="why one instance is alive, for each of the K largest classes "
                        "(one heap walk each)")
    p.add_argument("--json", action="store_true",
                   help="print the census as JSON (format 'classtrack-census')")
    p.add_argument("-o", "--output", metavar="FILE",
                   help="write the census to FILE (JSON; with --every, FILE is a prefix: "
                        "FILE.1.json, FILE.2.json, ...)")
    p.add_argument("--every", type=_seconds, metavar="SECONDS",
                   help="take a census every SECONDS (with --count)")
    p.add_argument("--count", type=positive_int, metavar="N",
                   help="how many censuses --every takes")
    track = p.add_argument_group(
        "tracking in the target", "Instead of a census: track classes inside the target "
        "for --duration seconds, snapshots every --interval, then write a dump and detach "
        "completely.")
    track.add_argument("--track-class", action="append", default=[], metavar="MODULE:CLASS",
                       help="a class to track (repeatable)")
    track.add_argument("--duration", type=_seconds, metavar="SECONDS",
                       help="how long to track")
    track.add_argument("--interval", type=_seconds, default=1.0, metavar="SECONDS",
                       help="seconds between snapshots while tracking (default 1)")
    p.add_argument("--timeout", type=_seconds, default=30.0, metavar="SECONDS",
                   help="how long to wait for the target to reach a safe point and "
                        "answer (default 30)")
    p.set_defaults(run=run)


# -- the target ---------------------------------------------------------------------------

def _owner(pid: int) -> Tuple[int, int]:
    st = os.stat("/proc/%d" % pid)
    return st.st_uid, st.st_gid


def _user(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return "uid %d" % uid


def _target_python(pid: int) -> Tuple[Optional[Tuple[int, int]], bool, str]:
    """(major, minor) of the Python the process runs, or None; whether it
    is a free-threaded build; its program."""
    exe = os.path.realpath("/proc/%d/exe" % pid)
    names = [os.path.basename(exe)]
    try:
        with open("/proc/%d/maps" % pid) as f:
            names += [os.path.basename(line.split()[-1]) for line in f
                      if "libpython" in line]
    except OSError:
        pass
    for name in names:
        m = re.match(r"(?:lib)?python(\d+)\.(\d+)(t?)(?:d)?(?:\.so|$|-)", name)
        if m:
            return (int(m.group(1)), int(m.group(2))), m.group(3) == "t", exe
    return None, False, exe


def check_target(pid: int) -> Tuple[int, int]:
    """Refuses, with one sentence, a target this attach cannot serve.
    Returns the owner's (uid, gid)."""
    here = sys.version_info[:2]
    if here < (3, 14) or not hasattr(sys, "remote_exec"):
        raise UserError("classtrack attach needs CPython 3.14 or newer (sys.remote_exec); "
                        "this is Python %d.%d: run it with the target's python3.14 or newer "
                        "(python3.14 -m classtrack attach %d)" % (here + (pid,)))
    if pid <= 0:
        raise UserError("not a process id: %d" % pid)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        raise UserError("no process with PID %d" % pid) from None
    except PermissionError:
        raise UserError(_no_permission(pid)) from None
    try:
        owner = _owner(pid)
        version, free_threaded, exe = _target_python(pid)
    except PermissionError:
        raise UserError(_no_permission(pid)) from None
    except FileNotFoundError:
        raise UserError("no process with PID %d" % pid) from None
    if version is None:
        raise UserError("PID %d is not a Python process (its program is %s)" % (pid, exe))
    if free_threaded:
        raise UserError("PID %d runs a free-threaded Python %d.%d, which classtrack does not "
                        "support" % ((pid,) + version))
    if version < (3, 14):
        raise UserError("PID %d runs Python %d.%d: attach needs 3.14 or newer (sys.remote_exec);"
                        " start the program under 'classtrack run' instead"
                        % ((pid,) + version))
    if version != here:
        raise UserError("PID %d runs Python %d.%d and classtrack runs on %d.%d: attach with "
                        "the target's version (python%d.%d -m classtrack attach %d)"
                        % ((pid,) + version + here + version + (pid,)))
    return owner


def _no_permission(pid: int) -> str:
    try:
        owner = _user(_owner(pid)[0])
    except OSError:
        owner = "another user"
    scope = ""
    try:
        with open("/proc/sys/kernel/yama/ptrace_scope") as f:
            scope = f.read().strip()
    except OSError:
        pass
    return ("no permission to attach to PID %d (owned by %s; you are %s): run classtrack as "
            "that user or as root%s" % (pid, owner, _user(os.geteuid()),
                                        "; kernel.yama.ptrace_scope is %s" % scope
                                        if scope and scope != "0" else ""))


# -- the request ------------------------------------------------------------------------

# Runs in the target, in a namespace of its own; JOB is the request.  It
# must work with only the standard library until classtrack is imported.
# Every answer is a JSON file written under a temporary name, then renamed.
_SCRIPT = r'''
def _classtrack_attach(job):
    import json, os, sys, time
    start = time.perf_counter()
    folder = job["folder"]

    def cancelled():
        if os.path.exists(os.path.join(folder, "cancelled")):
            import shutil
            shutil.rmtree(folder, ignore_errors=True)
            return True
        return False

    def answer(name, data):
        if cancelled():
            return
        tmp = os.path.join(folder, name + ".tmp")
        with open(tmp, "w") as f:
            json.dump(data, f)
        os.replace(tmp, os.path.join(folder, name))

    def failed(e):
        return {"error": "%s: %s" % (type(e).__name__, e)}

    if cancelled():
        return
    try:
        try:
            import classtrack
        except ImportError:
            import sysconfig
            here = (sys.implementation.cache_tag, sysconfig.get_config_var("EXT_SUFFIX"))
            if here != (job["cache_tag"], job["ext_suffix"]):
                raise RuntimeError(
                    "classtrack is not installed in the target's environment, and the "
                    "attaching one was built for %s (%s), not for the target's %s (%s): "
                    "install classtrack there" % (job["cache_tag"], job["ext_suffix"],
                                                  here[0], here[1])) from None
            sys.path.insert(0, job["site"])
            try:
                import classtrack
            finally:
                if job["site"] in sys.path:
                    sys.path.remove(job["site"])
        if not hasattr(classtrack, "census"):
            raise RuntimeError(
                "the target's classtrack (%s) is older than the attaching one and has no "
                "census: upgrade it there" % os.path.dirname(classtrack.__file__))
        if job["track"]:
            _classtrack_track(job, answer, failed)
            return
        c = classtrack.census(package=job["package"], retained=job["retained"],
                              paths=job["paths"])
        data = c.as_json()
        data["pause_s"] = time.perf_counter() - start
        result = {"census": data}
    except BaseException as e:
        result = failed(e)
    answer("result.json", result)


def _classtrack_track(job, answer, failed):
    import importlib, os, sys, threading
    from classtrack.classtracker import ClassTracker
    classes = []
    for spec in job["track"]:
        modname, _, qualname = spec.partition(":")
        obj = sys.modules.get(modname) or importlib.import_module(modname)
        for part in qualname.split("."):
            obj = getattr(obj, part, None)
        if not isinstance(obj, type):
            raise ValueError("%s names no class in the target" % spec)
        classes.append(obj)
    tracker = ClassTracker()
    try:
        for cls in classes:
            tracker.track_class(cls)
        tracker.create_snapshot("attach")
        tracker.start_periodic_snapshots(job["interval"])
    except BaseException:
        tracker.clear()
        raise

    def finish():
        try:
            tracker.stop_periodic_snapshots()
            tracker.create_snapshot("detach")
            tracker.stats.dump_stats(os.path.join(job["folder"], "dump.ctdump"))
            result = {"dump": "dump.ctdump", "snapshots": len(tracker.snapshots)}
        except BaseException as e:
            result = failed(e)
        finally:
            tracker.clear()
        answer("result.json", result)
    timer = threading.Timer(job["duration"], finish)
    timer.name = "classtrack-attach"
    timer.daemon = True
    timer.start()
    answer("started.json", {"classes": len(classes)})

_classtrack_attach(JOB)
'''

# What a request the attacher gave up on becomes: it only removes its folder.
_NOTHING = r'''
import shutil
shutil.rmtree(FOLDER, ignore_errors=True)
'''


def _installation() -> str:
    """The folder holding this classtrack package (what sys.path needs)."""
    return os.path.dirname(os.path.dirname(os.path.abspath(classtrack.__file__)))


def _write(path: str, text: str, owner: Optional[Tuple[int, int]]) -> None:
    fd = os.open(path + ".tmp", os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    if owner is not None:
        os.chown(path + ".tmp", *owner)
    os.replace(path + ".tmp", path)


class _Request:
    """One request to the target: its private folder, the script sent,
    and the answers awaited, every wait bounded.  A context: the folder
    is removed at the end, unless the request was given up on (the
    target's script removes it then)."""

    def __init__(self, pid: int, job: Dict[str, Any]) -> None:
        self.pid = pid
        self.owner = check_target(pid)
        self.chown = self.owner if os.geteuid() == 0 and self.owner[0] != 0 else None
        self.folder = tempfile.mkdtemp(prefix="classtrack-attach-")    # 0700
        self.script = os.path.join(self.folder, "request.py")
        self.handed_over = False
        try:
            if self.chown is not None:
                os.chown(self.folder, *self.chown)  # the target writes its answers here
            job = dict(job, folder=self.folder, site=_installation(),
                       cache_tag=sys.implementation.cache_tag,
                       ext_suffix=sysconfig.get_config_var("EXT_SUFFIX"))
            _write(self.script, _SCRIPT.replace("JOB", repr(job)), self.chown)
            try:
                sys.remote_exec(pid, self.script)
            except PermissionError:
                raise UserError(_no_permission(pid)) from None
            except (RuntimeError, OSError) as e:
                raise UserError(_refusal(pid, e)) from None
        except BaseException:
            self.close()
            raise

    def __enter__(self) -> "_Request":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        if not self.handed_over:
            shutil.rmtree(self.folder, ignore_errors=True)

    def wait(self, names: Tuple[str, ...], seconds: float, started: bool) -> Tuple[str, Any]:
        """The first of the answers `names` to come, as (name, data), within
        `seconds`.  `started`: the target ran the script already (else a
        timeout means it never reached a safe point, and the request is
        given up on)."""
        deadline = time.monotonic() + seconds
        while True:
            for name in names:
                path = os.path.join(self.folder, name)
                if os.path.exists(path):
                    with open(path) as f:
                        return name, json.load(f)
            if time.monotonic() > deadline:
                if started:
                    raise UserError("PID %d did not answer in %g s" % (self.pid, seconds))
                _write(os.path.join(self.folder, "cancelled"), "", self.chown)
                _write(self.script, _NOTHING.replace("FOLDER", repr(self.folder)), self.chown)
                self.handed_over = True
                raise UserError(
                    "PID %d did not reach a safe point in %g s (its main thread may be "
                    "blocked in C code: a sleep, a read); nothing was taken.  If it gets "
                    "there later it runs nothing but the removal of %s"
                    % (self.pid, seconds, self.folder))
            if not os.path.exists("/proc/%d" % self.pid):
                raise UserError("PID %d ended before answering" % self.pid)
            time.sleep(NEWEST_WAIT)


def census_of(pid: int, package: Optional[str] = None, retained: Any = False,
              paths: int = 0, timeout: float = 30.0) -> Census:
    """A census of the process `pid`, taken inside it.  Raises UserError
    with one sentence for anything that keeps it from being taken."""
    job = {"package": package, "retained": retained, "paths": paths, "track": []}
    with _Request(pid, job) as request:
        _, result = request.wait(("result.json",), timeout, started=False)
    if "error" in result:
        raise UserError("the census failed in PID %d: %s" % (pid, result["error"]))
    return census_from_json(result["census"], "PID %d's answer" % pid)


def track_in(pid: int, classes: List[str], duration: float, interval: float, output: str,
             timeout: float = 30.0, named: bool = True) -> int:
    """Tracks `classes` inside the process `pid` for `duration` seconds,
    then writes the target's dump to `output`.  The number of snapshots."""
    job = {"package": None, "retained": False, "paths": 0, "track": classes,
           "duration": duration, "interval": interval}
    with _Request(pid, job) as request:
        name, answer = request.wait(("started.json", "result.json"), timeout, started=False)
        if name == "started.json":
            _, answer = request.wait(("result.json",), duration + timeout, started=True)
        if "error" in answer:
            raise UserError("tracking failed in PID %d: %s" % (pid, answer["error"]))
        with open(os.path.join(request.folder, answer["dump"]), "rb") as src, \
                _safefile.replacing(output, named=named) as dst:
            shutil.copyfileobj(src, dst)
    return int(answer["snapshots"])


def _refusal(pid: int, e: BaseException) -> str:
    text = str(e)
    if "not enabled" in text:
        return ("PID %d has remote debugging disabled (PYTHON_DISABLE_REMOTE_DEBUG or "
                "-X disable-remote-debug): start it without, or under 'classtrack run'" % pid)
    if "Operation not permitted" in text or "ermission" in text:
        return _no_permission(pid)
    return "cannot attach to PID %d: %s" % (pid, text)


# -- the command --------------------------------------------------------------------------

def run(args: argparse.Namespace) -> int:
    if args.track_class:
        return _run_tracking(args)
    if args.duration is not None:
        raise UserError("--duration goes with --track-class")
    if (args.every is None) != (args.count is None):
        raise UserError("--every and --count go together")
    if args.paths < 0:
        raise UserError("--paths must be 0 or more, not %d" % args.paths)
    if args.package is not None and not all(p.isidentifier() for p in args.package.split(".")):
        raise UserError("--package needs a dotted module name, not %r" % args.package)
    retained = True if args.retained == -1 else (args.retained or False)
    rounds = args.count or 1
    for k in range(rounds):
        if k:
            time.sleep(args.every)
        c = census_of(args.pid, args.package, retained, args.paths, args.timeout)
        if args.output:
            c.dump(args.output if args.count is None else "%s.%d.json" % (args.output, k + 1))
        if args.json:
            print(json.dumps(c.as_json()))
        elif not args.output or args.count is None:
            c.print(limit=args.limit)
        else:
            print("census %d of %d: %s objects, %s bytes (pause %.2f s) -> %s.%d.json"
                  % (k + 1, rounds, format(c.objects, ","), format(c.bytes, ","),
                     c.pause_s, args.output, k + 1))
        sys.stdout.flush()
    return 0


def _run_tracking(args: argparse.Namespace) -> int:
    for spec in args.track_class:
        modname, colon, qualname = spec.partition(":")
        if not colon or not all(p.isidentifier() for p in modname.split(".") + qualname.split(".")):
            raise UserError("--track-class needs MODULE:CLASS, not %r" % spec)
    if args.duration is None:
        raise UserError("--track-class needs --duration SECONDS (how long to track)")
    if args.every is not None or args.count is not None or args.json or args.retained \
            or args.paths or args.package:
        raise UserError("--track-class takes --duration, --interval, -o and --timeout only")
    output = args.output or "classtrack-%d.ctdump" % args.pid
    n = track_in(args.pid, args.track_class, args.duration, args.interval, output,
                 args.timeout, named=args.output is not None)
    print("tracked %s in PID %d for %g s: %d snapshots -> %s (classtrack report %s)"
          % (", ".join(args.track_class), args.pid, args.duration, n, output, output))
    return 0
