"""``classtrack run --metrics-port PORT``: the tracker's metrics over HTTP.

While the program runs, ``http://ADDR:PORT/metrics`` serves what
``classtrack.metrics.ClassTrackerCollector`` exposes, through
``prometheus_client.start_http_server`` with a registry of its own (the
program's own metrics, if it has any, stay where they are).  ``--metrics-addr``
defaults to 127.0.0.1: a service's memory is nobody else's business unless
asked.  Port 0 takes a free port; the address served is said on stderr.
"""
import argparse
from typing import Any, Callable, Optional

from classtrack._dumps import UserError

VALUED = ("--metrics-port", "--metrics-addr")
USAGE = "[--metrics-port PORT [--metrics-addr ADDR]]"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--metrics-port", type=int, default=None, metavar="PORT",
                   help="serve Prometheus metrics of the tracked classes on this port "
                        "while the program runs (0: any free port; needs "
                        "pip install classtrack[prometheus])")
    p.add_argument("--metrics-addr", default=None, metavar="ADDR",
                   help="address to serve the metrics on (default 127.0.0.1)")


def check(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Usage errors of the metrics options (exit status 2)."""
    port = args.metrics_port
    if port is None:
        if args.metrics_addr is not None:
            parser.error("--metrics-addr needs --metrics-port")
        return
    if not 0 <= port <= 65535:
        parser.error("--metrics-port must be in 0..65535, not %d" % port)
    if args.metrics_addr is not None and not args.metrics_addr.strip():
        parser.error("--metrics-addr must not be empty")


def start(tracker: Any, args: argparse.Namespace, say: Callable[[str], None]) -> Optional[Any]:
    """Serve the tracker's metrics when --metrics-port was given; the
    server (for stop()), or None.  UserError when it cannot be served."""
    if args.metrics_port is None:
        return None
    try:
        # optional dependency (classtrack[prometheus]): imported only with --metrics-port
        import prometheus_client
        from classtrack.metrics import ClassTrackerCollector  # needs prometheus_client
    except ImportError:
        raise UserError("--metrics-port needs the prometheus_client library: "
                        "pip install classtrack[prometheus]") from None
    addr = args.metrics_addr or "127.0.0.1"
    registry = prometheus_client.CollectorRegistry()
    registry.register(ClassTrackerCollector(tracker))
    try:
        started = prometheus_client.start_http_server(args.metrics_port, addr=addr,
                                                      registry=registry)
    except OSError as exc:      # in use, not an address of this host, ...
        raise UserError("cannot serve metrics on %s port %d: %s"
                        % (addr, args.metrics_port, exc.strerror or exc)) from None
    # prometheus_client >= 0.17 returns (server, thread); older ones nothing
    server = started[0] if isinstance(started, tuple) else None
    port = server.server_address[1] if server is not None else args.metrics_port
    host = "[%s]" % addr if ":" in addr else addr
    say("metrics served at http://%s:%d/metrics" % (host, port))
    return server


def stop(server: Optional[Any]) -> None:
    """Stop serving (a no-op for None)."""
    if server is not None:
        server.shutdown()
        server.server_close()
