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

Stdlib only, so it runs before the virtualenv exists.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
TEMPLATE = REPO / "nginx" / "gateway.conf.template"
PLACEHOLDER = re.compile(r"\{\{([A-Z_]+)\}\}")

# Header-routed canary for Kubernetes: "X-Canary: always" (or the cookie canary=always) pins a request
# to the canary Deployment of the polls service; everything else goes to the stable one.
K8S_CANARY_HTTP = """
    upstream polls_canary {
        server polls-canary:8000 max_fails=3 fail_timeout=10s;
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


def server_lines(servers: dict[str, int]) -> str:
    """The ``server`` lines of one upstream: address -> weight (a lone server carries no weight)."""
    lines = []
    for address, weight in servers.items():
        share = f" weight={weight}" if len(servers) > 1 else ""
        lines.append(f"        server {address}{share} max_fails=3 fail_timeout=10s;")
    return "\n".join(lines)


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
) -> dict:
    """``weights`` replaces a service's one upstream by several local ports with their weights, e.g.
    ``{"votes": {8003: 90, 8013: 10}}`` (a canary taking a tenth of the votes). ``tls``: HTTPS as well,
    ``{"port": 8443, "cert": ..., "key": ...}`` plus any of ``protocols``, ``hsts_max_age``, ``redirect``."""
    prefix = Path(run_dir).resolve() / "nginx"
    ports = {"polls": polls, "choices": choices, "votes": votes}
    servers = {
        name: {f"127.0.0.1:{p}": w for p, w in ((weights or {}).get(name) or {ports[name]: 1}).items()}
        for name in ports
    }
    return {
        "WORKER_PROCESSES": "2",
        "PID_FILE": str(prefix / "nginx.pid"),
        "ERROR_LOG": "stderr",
        "ACCESS_LOG": "/dev/stdout",
        "MIME_TYPES": "/etc/nginx/mime.types",
        "TEMP_DIR": str(prefix / "temp"),
        "LISTEN": f"{host}:{port}",
        "POLLS_SERVERS": server_lines(servers["polls"]),
        "CHOICE_SERVERS": server_lines(servers["choices"]),
        "VOTE_SERVERS": server_lines(servers["votes"]),
        "WEB_ROOT": str(web_root()),
        "TRACE_SAMPLE_SPLIT": trace_sample_split(trace_sample_percent),
        "EXTRA_HTTP": "",
        "EXTRA_LOCATIONS": "",
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
) -> dict:
    """Compose or k8s: HTTP on 8080, HTTPS on 8443 (the certificate mounted, ``CONTAINER_CERTS``); the
    HTTP -> HTTPS redirect is on for k8s (its Service answers 443) unless ``https_redirect`` says otherwise."""
    cert, key = CONTAINER_CERTS[target]
    redirect = (target == "k8s") if https_redirect is None else https_redirect
    values = {
        "WORKER_PROCESSES": "auto",
        "PID_FILE": "/tmp/nginx.pid",
        "ERROR_LOG": "stderr",
        "ACCESS_LOG": "/dev/stdout",
        "MIME_TYPES": "/etc/nginx/mime.types",
        "TEMP_DIR": "/tmp",
        "LISTEN": "8080",
        "POLLS_SERVERS": server_lines({"polls:8000": 1}),
        "CHOICE_SERVERS": server_lines({"choices:8000": 1}),
        "VOTE_SERVERS": server_lines({"votes:8000": 1}),
        "WEB_ROOT": "/usr/share/nginx/html",
        "TRACE_SAMPLE_SPLIT": trace_sample_split(trace_sample_percent),
        "EXTRA_HTTP": "",
        "EXTRA_LOCATIONS": "",
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
) -> Path:
    """Render the local config to ``RUN_DIR/nginx/nginx.conf`` with its temp folders; return its path."""
    prefix = Path(run_dir).resolve() / "nginx"
    for sub in ("temp/client_body", "temp/proxy", "temp/fastcgi", "temp/uwsgi", "temp/scgi", "logs"):
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
    args = parser.parse_args(argv)
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
        )
        print(conf)
        if args.check:
            result = check(conf)
            sys.stderr.write(result.stderr)
            return result.returncode
        return 0
    options = {"tls_protocols": args.tls_protocols, "https_redirect": args.https_redirect}
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
