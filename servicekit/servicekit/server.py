"""The web server of every service: granian (a Rust HTTP server) in front of the Django WSGI application.

    python -m servicekit.server vote_service.wsgi:application

``make up``, the container entrypoint and Kubernetes all start it this way, tuned by the same
environment variables:

=========================  ==================================================================================
``WEB_BIND``               ``host:port`` to listen on (default ``127.0.0.1:8000``)
``WEB_WORKERS``            worker processes (default: the number of cores + 1)
``WEB_THREADS``            request threads per worker (default 1: each worker runs one Django request at a time)
``WEB_BACKLOG``            pending connections the kernel holds (default 1024)
``WEB_WORKERS_LIFETIME``   seconds after which a worker is replaced (default: never)
``WEB_LOG_LEVEL``          the server's own log level (default ``info``); access lines come from servicekit
=========================  ==================================================================================

Why granian and not gunicorn (measured in ``make bench``, docs/performance.md): HTTP parsing, keep-alive
and the socket work run in Rust outside the GIL, so a worker spends its CPU on the Django request; the
bare ``/healthz`` went from ~3,400 to ~6,000 requests/s on 2 cores and a vote's web CPU fell by a quarter.

Idle keep-alive connections stay open longer than the gateway's upstream ``keepalive_timeout`` (50 s;
measured: granian still answered on a connection idle for 62 s), so Nginx never sends a request on a
socket the server just closed. A worker that dies is replaced (``respawn_failed_workers``).
"""

from __future__ import annotations

import os
import sys

from granian.constants import HTTPModes, Interfaces
from granian.http import HTTP1Settings
from granian.log import LogLevels
from granian.server import MPServer, MTServer, Server

from servicekit.logging import server_logging_config

#: Time a client may take to send a request's headers, in milliseconds (granian's maximum).
HEADER_READ_TIMEOUT_MS = 60_000


def _bind(value: str) -> tuple[str, int]:
    host, _, port = value.rpartition(":")
    return host.strip("[]") or "127.0.0.1", int(port)


def server(target: str, environ: dict[str, str] | None = None) -> MPServer | MTServer:
    """A granian server for the WSGI ``target`` (``package.wsgi:application``), configured from ``environ``."""
    environ = dict(os.environ if environ is None else environ)
    address, port = _bind(environ.get("WEB_BIND", "127.0.0.1:8000"))
    lifetime = environ.get("WEB_WORKERS_LIFETIME", "")
    return Server(
        target,
        address=address,
        port=port,
        interface=Interfaces.WSGI,
        http=HTTPModes.http1,  # the gateway speaks HTTP/1.1 to upstreams
        websockets=False,
        workers=int(environ.get("WEB_WORKERS") or (os.cpu_count() or 1) + 1),
        blocking_threads=int(environ.get("WEB_THREADS") or 1),
        backlog=int(environ.get("WEB_BACKLOG") or 1024),
        http1_settings=HTTP1Settings(header_read_timeout=HEADER_READ_TIMEOUT_MS),
        respawn_failed_workers=True,
        respawn_interval=0.5,
        workers_lifetime=int(lifetime) if lifetime else None,
        workers_kill_timeout=20,
        log_level=LogLevels(environ.get("WEB_LOG_LEVEL", "info").lower()),
        # The server's own lines in the service's ECS JSON layout (servicekit.logging), like its workers'.
        log_dictconfig=server_logging_config(target, environ),
        log_access=False,
    )


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m servicekit.server <package>.wsgi:application", file=sys.stderr)
        return 64
    server(args[0]).serve()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
