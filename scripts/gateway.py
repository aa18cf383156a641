#!/usr/bin/env python3
"""Render the one gateway template (``nginx/gateway.conf.template``) for a target and check it.

    python scripts/gateway.py local   --run-dir .run [--port 8080] [--polls 8001 --choices 8002 --votes 8003]
                                      [--tls-port 8443 --cert gateway.crt --key gateway.key [--https-redirect]]
    python scripts/gateway.py compose --out nginx/rendered/compose.conf
    python scripts/gateway.py k8s     --out k8s/base/gateway/nginx.conf

``local`` is what ``make up`` and the test stack run (``nginx -p RUN_DIR/nginx -c RUN_DIR/nginx/nginx.conf``):
upstreams on 127.0.0.1, every temporary path absolute under ``RUN_DIR/nginx``, the browser client
served from ``web/dist`` when it was built, else ``web/``. ``compose`` and ``k8s`` use the service
hostnames (``polls``, ``choices``, ``votes`` on port 8000) and the paths inside the nginx image.

HTTPS: with a certificate (``local``: ``--tls-port`` with ``--cert``/``--key``, which ``make up`` passes
from ``RUN_DIR/secrets``; ``compose``/``k8s``: always, port 8443, the certificate mounted from the
compose secrets or the k8s TLS Secret) the gateway also listens with TLS 1.3 only (``--tls-protocols
"TLSv1.2 TLSv1.3"`` admits 1.2; 1.1 and older are never accepted), HTTP/2 offered by ALPN, HSTS on
every HTTPS answer, and, with ``--https-redirect`` (k8s: on), a 308 from plain HTTP to HTTPS.

Edge limits (``EdgeLimits``; the stack reads ``GATEWAY_EDGE_LIMITS`` and the budgets with
``edge_limits_from_env``; ``--no-edge-limits`` here): leaky buckets per client address for auth, writes
and reads, and a cap on its connections, answered with 429 by nginx. The micro-cache of public reads
lives in ``CACHE_DIR`` (local: ``RUN_DIR/nginx/cache``).

Stdlib only, so it runs before the virtualenv exists.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
TEMPLATE = REPO / "nginx" / "gateway.conf.template"
PLACEHOLDER = re.compile(r"\{\{([A-Z_]+)\}\}")

# Header-routed canary for Kubernetes: "X-Canary: always" (or the cookie canary=always) pins a request
# to the canary Deployment of the polls service; everything else goes to the stable one.
K8S_CANARY_HTTP = """
    upstream polls_canary {
        zone polls_canary 64k;
        least_conn;
        server polls-canary:8000 max_fails=2 fail_timeout=5s;
        keepalive 16;
    }
    map "$http_x_canary$cookie_canary" $polls_pool {
        "~always" polls_canary;
        default polls;
    }
"""


def web_root(repo: Path = REPO) -> Path:
    """``web/dist`` when the client was built, else its sources ``web/src``, else ``web/``."""
    for candidate in (repo / "web" / "dist", repo / "web" / "src"):
        if (candidate / "index.html").is_file():
            return candidate
    return repo / "web"


def nginx_binary() -> str:
    """Path of the nginx executable (it lives in /usr/sbin, often outside a user's PATH)."""
    found = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
    if not found:
        raise FileNotFoundError("nginx is not installed; install it with: sudo apt-get install -y nginx-light")
    return found


def nginx_version() -> tuple[int, ...]:
    """The local nginx's version, e.g. ``(1, 22, 1)`` (``nginx -v`` writes it to stderr)."""
    result = subprocess.run([nginx_binary(), "-v"], capture_output=True, text=True, check=False)
    found = re.search(r"nginx/(\d+(?:\.\d+)*)", result.stderr + result.stdout)
    return tuple(int(part) for part in found.group(1).split(".")) if found else (0,)


def render(values: dict[str, str], template: Path = TEMPLATE) -> str:
    """The template with every ``{{NAME}}`` replaced; a missing value is an error, never an empty string."""
    text = template.read_text()
    missing = sorted({name for name in PLACEHOLDER.findall(text) if name not in values})
    if missing:
        raise KeyError(f"gateway template placeholders without a value: {', '.join(missing)}")
    return PLACEHOLDER.sub(lambda m: str(values[m.group(1)]), text)


# Share of requests without a client traceparent whose gateway-started trace is sampled (flag 01).
# Services sample parent-based, so this is the head sampling rate; exporting happens only where
# OTEL_EXPORTER_OTLP_ENDPOINT is set. Override with GATEWAY_TRACE_SAMPLE_PERCENT (0-100, decimals allowed).
DEFAULT_TRACE_SAMPLE_PERCENT = 100.0


def trace_sample_split(percent: float) -> str:
    """The body of the gateway's ``split_clients`` that sets ``$otel_sampled`` to ``01`` for ``percent`` %."""
    percent = float(percent)
    if not 0 <= percent <= 100:
        raise ValueError(f"trace sample percent must be within 0..100, not {percent}")
    if percent == 100:
        return "        * 01;"
    if percent == 0:
        return "        * 00;"
    return f"        {percent:g}% 01;\n        * 00;"


# --- HTTPS ------------------------------------------------------------------------------------------
TLS_PROTOCOLS = ("TLSv1.2", "TLSv1.3")  # what may be enabled; TLS 1.1 and older never
DEFAULT_TLS_PROTOCOLS = "TLSv1.3"
# Only for TLS 1.2 (the 1.3 suites are fixed by OpenSSL): Mozilla's "intermediate" list, forward secret AEADs.
TLS12_CIPHERS = (
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:"
    "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"
)
# HSTS max-age: two years in the container images; five minutes for `make up`, because a browser would
# otherwise pin every port of `localhost` to HTTPS for two years (an IP address such as 127.0.0.1 never is).
DEFAULT_HSTS_MAX_AGE = 63072000
LOCAL_HSTS_MAX_AGE = 300
TLS_OFF = {
    "TLS_LISTEN": "        # no HTTPS listener: scripts/gateway.py was given no certificate",
    "TLS_SETTINGS": "",
    "HSTS": "",
    "HTTPS_REDIRECT": "0",
    "HTTPS_REDIRECT_PORT": "",
}


def tls_protocols(value: str) -> str:
    """``ssl_protocols`` from a space or comma separated list; anything but TLS 1.2/1.3 is refused."""
    chosen = [p for p in re.split(r"[\s,]+", value.strip()) if p]
    wrong = [p for p in chosen if p not in TLS_PROTOCOLS]
    if wrong or not chosen:
        raise ValueError(f"TLS protocols must be among {', '.join(TLS_PROTOCOLS)}, not {value!r}")
    return " ".join(p for p in TLS_PROTOCOLS if p in chosen)


def tls_values(
    *,
    listen: str,
    cert: str,
    key: str,
    protocols: str = DEFAULT_TLS_PROTOCOLS,
    hsts_max_age: int = DEFAULT_HSTS_MAX_AGE,
    redirect: bool = False,
    redirect_port: int = 443,
    http2_directive: bool = False,
) -> dict[str, str]:
    """The HTTPS placeholders: the TLS listener, its settings, HSTS and the HTTP -> HTTPS redirect.

    ``http2_directive``: nginx >= 1.25.1 enables HTTP/2 with ``http2 on;``; older ones (Debian 12's 1.22)
    only know ``listen ... http2``, which newer ones still accept (with a deprecation warning)."""
    enabled = tls_protocols(protocols)
    if int(hsts_max_age) < 0:
        raise ValueError(f"HSTS max-age must be >= 0, not {hsts_max_age}")
    listen_line = f"        listen {listen} ssl reuseport;\n        http2 on;"
    if not http2_directive:
        listen_line = f"        listen {listen} ssl http2 reuseport;"
    settings = [
        f"        ssl_certificate {cert};",
        f"        ssl_certificate_key {key};",
        f"        ssl_protocols {enabled};",
    ]
    if "TLSv1.2" in enabled:
        settings += [f"        ssl_ciphers {TLS12_CIPHERS};", "        ssl_prefer_server_ciphers off;"]
    settings += [
        "        ssl_session_cache shared:TLS:10m;",
        "        ssl_session_timeout 1d;",
        "        ssl_session_tickets off;",
    ]
    return {
        "TLS_LISTEN": listen_line,
        "TLS_SETTINGS": "\n".join(settings),
        "HSTS": f"max-age={int(hsts_max_age)}",
        "HTTPS_REDIRECT": "1" if redirect else "0",
        "HTTPS_REDIRECT_PORT": "" if int(redirect_port) == 443 else f":{int(redirect_port)}",
    }


# Passive health checks: two failed attempts (connection refused or reset, timeout, 502/504) within 5 s
# take an instance out for 5 s; then one request probes it again.
PASSIVE_HEALTH = "max_fails=2 fail_timeout=5s"


def server_lines(servers: dict[str, int]) -> str:
    """The ``server`` lines of one upstream: address -> weight (no weight when all weigh the same: replicas)."""
    weighted = len(set(servers.values())) > 1
    lines = []
    for address, weight in servers.items():
        share = f" weight={weight}" if weighted else ""
        lines.append(f"        server {address}{share} {PASSIVE_HEALTH};")
    return "\n".join(lines)


# --- edge limits: leaky buckets per client address ----------------------------------------------------
@dataclass(frozen=True)
class Bucket:
    """A leaky bucket: ``rate`` requests per second, the first ``burst`` above it answered at once (nodelay)."""

    rate: int
    burst: int

    @classmethod
    def parse(cls, text: str) -> Bucket:
        """``"200/400"`` -> ``Bucket(200, 400)`` (rate per second / burst)."""
        rate, _, burst = text.partition("/")
        bucket = cls(int(rate), int(burst or 0))
        if bucket.rate < 1 or bucket.burst < 0:
            raise ValueError(f"an edge budget is RATE/BURST with RATE >= 1 and BURST >= 0, not {text!r}")
        return bucket


@dataclass(frozen=True)
class EdgeLimits:
    """What one client address (the TCP peer, never X-Forwarded-For) may send through the gateway: a bucket
    per path class (auth: ``/api/v*/auth/``; writes: any other POST/PUT/PATCH/DELETE; reads: GET/HEAD/OPTIONS)
    and concurrent connections. Above them nginx answers 429 problem+json with Retry-After, no service
    involved. These defaults are what ``make up`` and the containers run; tests/conftest.py gives the test
    stack higher ones, scripts/bench.py turns them off (``GATEWAY_EDGE_LIMITS=off``)."""

    reads: Bucket = field(default_factory=lambda: Bucket(200, 400))
    writes: Bucket = field(default_factory=lambda: Bucket(100, 200))
    auth: Bucket = field(default_factory=lambda: Bucket(10, 40))
    connections: int = 256


DEFAULT_EDGE_LIMITS = EdgeLimits()
ON_OFF = {"on": True, "true": True, "1": True, "yes": True, "off": False, "false": False, "0": False, "no": False}


def edge_limits_from_env(env: Mapping[str, str | None]) -> EdgeLimits | None:
    """``GATEWAY_EDGE_LIMITS`` (on|off, default on) and the budgets ``GATEWAY_EDGE_READS``, ``_WRITES``,
    ``_AUTH`` (``RATE/BURST``) and ``GATEWAY_EDGE_CONNECTIONS``; None when off."""
    switch = (env.get("GATEWAY_EDGE_LIMITS") or "on").strip().lower()
    if switch not in ON_OFF:
        raise ValueError(f"GATEWAY_EDGE_LIMITS must be on or off, not {switch!r}")
    if not ON_OFF[switch]:
        return None
    budgets = {
        name: Bucket.parse(env[f"GATEWAY_EDGE_{name.upper()}"] or "")
        for name in ("reads", "writes", "auth")
        if env.get(f"GATEWAY_EDGE_{name.upper()}")
    }
    connections = int(env.get("GATEWAY_EDGE_CONNECTIONS") or DEFAULT_EDGE_LIMITS.connections)
    return EdgeLimits(**budgets, connections=connections)


EDGE_OFF = {
    "EDGE_LIMIT_ZONES": "    # no edge limits: rendered with GATEWAY_EDGE_LIMITS=off",
    "EDGE_LIMITS": "        # no edge limits: rendered with GATEWAY_EDGE_LIMITS=off",
}


def edge_values(limits: EdgeLimits | None) -> dict[str, str]:
    """The edge-limit placeholders: the zones (http level) and the limits every location inherits (server)."""
    if limits is None:
        return dict(EDGE_OFF)
    classes = ("auth", "write", "read")
    zones = [
        f'    map $edge_class $edge_{name}_key {{\n        {name} $binary_remote_addr;\n        default "";\n    }}'
        for name in classes
    ]
    buckets = {"auth": limits.auth, "write": limits.writes, "read": limits.reads}
    zones += [f"    limit_req_zone $edge_{n}_key zone=edge_{n}:10m rate={buckets[n].rate}r/s;" for n in classes]
    zones.append("    limit_conn_zone $binary_remote_addr zone=edge_conn:10m;")
    server = [f"        limit_req zone=edge_{n} burst={buckets[n].burst} nodelay;" for n in classes]
    server.append(f"        limit_conn edge_conn {int(limits.connections)};")
    return {"EDGE_LIMIT_ZONES": "\n".join(zones), "EDGE_LIMITS": "\n".join(server)}


def local_user() -> str:
    """The ``user`` line of a local rendering. nginx started as root runs its workers as ``nobody``, which
    cannot enter a private RUN_DIR (a 0700 pytest tmp dir) to write the micro-cache and temp files: then
    the workers run as root too. Started as anyone else, nginx keeps that user and the line stays a comment."""
    return "user root;" if os.geteuid() == 0 else "# workers run as the user who started nginx"


def local_values(
    *,
    run_dir: Path,
    port: int,
    polls: int,
    choices: int,
    votes: int,
    host: str = "127.0.0.1",
    weights: dict[str, dict[int, int]] | None = None,
    trace_sample_percent: float = DEFAULT_TRACE_SAMPLE_PERCENT,
    tls: dict | None = None,
    edge_limits: EdgeLimits | None = DEFAULT_EDGE_LIMITS,
) -> dict:
    """``weights`` replaces a service's one upstream by several local ports with their weights, e.g.
    ``{"votes": {8003: 90, 8013: 10}}`` (a canary taking a tenth of the votes) or ``{"votes": {8003: 1,
    8023: 1}}`` (two replicas; the native stack passes every instance, ``specs.upstream_weights``).
    ``tls``: HTTPS as well, ``{"port": 8443, "cert": ..., "key": ...}`` plus any of ``protocols``,
    ``hsts_max_age``, ``redirect``. ``edge_limits``: the budgets per client address (None: no limits)."""
    prefix = Path(run_dir).resolve() / "nginx"
    ports = {"polls": polls, "choices": choices, "votes": votes}
    servers = {
        name: {f"127.0.0.1:{p}": w for p, w in ((weights or {}).get(name) or {ports[name]: 1}).items()}
        for name in ports
    }
    return {
        "USER": local_user(),
        "WORKER_PROCESSES": "2",
        "PID_FILE": str(prefix / "nginx.pid"),
        "ERROR_LOG": "stderr",
        "ACCESS_LOG": "/dev/stdout",
        "MIME_TYPES": "/etc/nginx/mime.types",
        "TEMP_DIR": str(prefix / "temp"),
        "CACHE_DIR": str(prefix / "cache"),
        "LISTEN": f"{host}:{port}",
        "POLLS_SERVERS": server_lines(servers["polls"]),
        "CHOICE_SERVERS": server_lines(servers["choices"]),
        "VOTE_SERVERS": server_lines(servers["votes"]),
        "WEB_ROOT": str(web_root()),
        "TRACE_SAMPLE_SPLIT": trace_sample_split(trace_sample_percent),
        "EXTRA_HTTP": "",
        "EXTRA_LOCATIONS": "",
        **edge_values(edge_limits),
        **(local_tls_values(host=host, tls=tls) if tls else TLS_OFF),
    }


def local_tls_values(*, host: str, tls: dict) -> dict[str, str]:
    options = dict(tls)
    port = int(options.pop("port"))
    return tls_values(
        listen=f"{host}:{port}",
        cert=str(Path(options.pop("cert")).resolve()),
        key=str(Path(options.pop("key")).resolve()),
        protocols=options.pop("protocols", None) or DEFAULT_TLS_PROTOCOLS,
        hsts_max_age=int(options.pop("hsts_max_age", LOCAL_HSTS_MAX_AGE)),
        redirect=bool(options.pop("redirect", False)),
        redirect_port=port,
        http2_directive=nginx_version() >= (1, 25, 1),
        **options,
    )


# Where the containers find the certificate: compose secrets, the k8s TLS Secret (kubernetes.io/tls).
CONTAINER_CERTS = {
    "compose": ("/run/secrets/gateway_tls_cert", "/run/secrets/gateway_tls_key"),
    "k8s": ("/etc/nginx/tls/tls.crt", "/etc/nginx/tls/tls.key"),
}


def container_values(
    *,
    target: str,
    trace_sample_percent: float = DEFAULT_TRACE_SAMPLE_PERCENT,
    tls_protocols: str = DEFAULT_TLS_PROTOCOLS,
    https_redirect: bool | None = None,
    edge_limits: EdgeLimits | None = DEFAULT_EDGE_LIMITS,
) -> dict:
    """Compose or k8s: HTTP on 8080, HTTPS on 8443 (the certificate mounted, ``CONTAINER_CERTS``); the
    HTTP -> HTTPS redirect is on for k8s (its Service answers 443) unless ``https_redirect`` says otherwise."""
    cert, key = CONTAINER_CERTS[target]
    redirect = (target == "k8s") if https_redirect is None else https_redirect
    values = {
        "USER": "# workers run as nginx's default user",
        "WORKER_PROCESSES": "auto",
        "PID_FILE": "/tmp/nginx.pid",
        "ERROR_LOG": "stderr",
        "ACCESS_LOG": "/dev/stdout",
        "MIME_TYPES": "/etc/nginx/mime.types",
        "TEMP_DIR": "/tmp",
        "CACHE_DIR": "/tmp/nginx-cache",
        "LISTEN": "8080",
        "POLLS_SERVERS": server_lines({"polls:8000": 1}),
        "CHOICE_SERVERS": server_lines({"choices:8000": 1}),
        "VOTE_SERVERS": server_lines({"votes:8000": 1}),
        "WEB_ROOT": "/usr/share/nginx/html",
        "TRACE_SAMPLE_SPLIT": trace_sample_split(trace_sample_percent),
        "EXTRA_HTTP": "",
        "EXTRA_LOCATIONS": "",
        **edge_values(edge_limits),
        **tls_values(listen="8443", cert=cert, key=key, protocols=tls_protocols, redirect=redirect),
    }
    if target == "k8s":
        values["EXTRA_HTTP"] = K8S_CANARY_HTTP
    return values


def render_k8s(trace_sample_percent: float = DEFAULT_TRACE_SAMPLE_PERCENT, **options) -> str:
    """The k8s variant: like compose, and polls routes go through the canary-aware ``$polls_pool``."""
    text = render(container_values(target="k8s", trace_sample_percent=trace_sample_percent, **options))
    return text.replace("proxy_pass http://polls;", "proxy_pass http://$polls_pool;")


def write_local(
    *,
    run_dir: Path,
    port: int,
    polls: int,
    choices: int,
    votes: int,
    host: str = "127.0.0.1",
    weights: dict[str, dict[int, int]] | None = None,
    trace_sample_percent: float = DEFAULT_TRACE_SAMPLE_PERCENT,
    tls: dict | None = None,
    edge_limits: EdgeLimits | None = DEFAULT_EDGE_LIMITS,
) -> Path:
    """Render the local config to ``RUN_DIR/nginx/nginx.conf`` with its temp folders; return its path."""
    prefix = Path(run_dir).resolve() / "nginx"
    for sub in ("temp/client_body", "temp/proxy", "temp/fastcgi", "temp/uwsgi", "temp/scgi", "cache", "logs"):
        (prefix / sub).mkdir(parents=True, exist_ok=True)
    conf = prefix / "nginx.conf"
    conf.write_text(
        render(
            local_values(
                run_dir=run_dir,
                port=port,
                polls=polls,
                choices=choices,
                votes=votes,
                host=host,
                weights=weights,
                trace_sample_percent=trace_sample_percent,
                tls=tls,
                edge_limits=edge_limits,
            )
        )
    )
    return conf


def local_command(conf: Path) -> list[str]:
    """The foreground nginx command for a config written by ``write_local``."""
    prefix = conf.parent
    return [nginx_binary(), "-e", "stderr", "-p", f"{prefix}/", "-c", str(conf), "-g", "daemon off;"]


def check(conf: Path) -> subprocess.CompletedProcess:
    """``nginx -t`` on a local config (returns the completed process; ``returncode`` 0 when valid)."""
    prefix = conf.parent
    return subprocess.run(
        [nginx_binary(), "-t", "-q", "-e", "stderr", "-p", f"{prefix}/", "-c", str(conf)],
        capture_output=True,
        text=True,
        check=False,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("target", choices=["local", "compose", "k8s"])
    parser.add_argument("--run-dir", type=Path, default=REPO / ".run")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--polls", type=int, default=8001)
    parser.add_argument("--choices", type=int, default=8002)
    parser.add_argument("--votes", type=int, default=8003)
    parser.add_argument("--out", type=Path, help="write here instead of stdout (compose/k8s)")
    parser.add_argument("--check", action="store_true", help="run nginx -t on the local rendering")
    parser.add_argument(
        "--trace-sample-percent",
        type=float,
        default=DEFAULT_TRACE_SAMPLE_PERCENT,
        help="share of new traces (no client traceparent) the gateway marks sampled (default 100)",
    )
    parser.add_argument("--tls-port", type=int, help="local: also serve HTTPS on this port (with --cert, --key)")
    parser.add_argument("--cert", type=Path, help="local: PEM certificate chain of the HTTPS listener")
    parser.add_argument("--key", type=Path, help="local: PEM private key of the HTTPS listener")
    parser.add_argument(
        "--tls-protocols", default=DEFAULT_TLS_PROTOCOLS, help='"TLSv1.3" (default) or "TLSv1.2 TLSv1.3"'
    )
    parser.add_argument(
        "--https-redirect",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="308 plain HTTP to HTTPS, probes excepted (default: on for k8s, off otherwise)",
    )
    parser.add_argument(
        "--edge-limits",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="rate and connection limits per client address (default on, the EdgeLimits defaults)",
    )
    args = parser.parse_args(argv)
    edge_limits = DEFAULT_EDGE_LIMITS if args.edge_limits else None
    percent = args.trace_sample_percent
    tls = None
    if args.target == "local" and args.tls_port:
        if not (args.cert and args.key):
            parser.error("--tls-port needs --cert and --key")
        tls = {
            "port": args.tls_port,
            "cert": args.cert,
            "key": args.key,
            "protocols": args.tls_protocols,
            "redirect": bool(args.https_redirect),
        }
    if args.target == "local":
        conf = write_local(
            run_dir=args.run_dir,
            port=args.port,
            polls=args.polls,
            choices=args.choices,
            votes=args.votes,
            trace_sample_percent=percent,
            tls=tls,
            edge_limits=edge_limits,
        )
        print(conf)
        if args.check:
            result = check(conf)
            sys.stderr.write(result.stderr)
            return result.returncode
        return 0
    options = {"tls_protocols": args.tls_protocols, "https_redirect": args.https_redirect, "edge_limits": edge_limits}
    if args.target == "k8s":
        text = render_k8s(trace_sample_percent=percent, **options)
    else:
        text = render(container_values(target=args.target, trace_sample_percent=percent, **options))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
