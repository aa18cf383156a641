#!/usr/bin/env python3
"""Render the one gateway template (``nginx/gateway.conf.template``) for a target and check it.

    python scripts/gateway.py local   --run-dir .run [--port 8080] [--polls 8001 --choices 8002 --votes 8003]
    python scripts/gateway.py compose --out nginx/rendered/compose.conf
    python scripts/gateway.py k8s     --out k8s/base/gateway/nginx.conf

``local`` is what ``make up`` and the test stack run (``nginx -p RUN_DIR/nginx -c RUN_DIR/nginx/nginx.conf``):
upstreams on 127.0.0.1, every temporary path absolute under ``RUN_DIR/nginx``, the browser client
served from ``web/dist`` when it was built, else ``web/``. ``compose`` and ``k8s`` use the service
hostnames (``polls``, ``choices``, ``votes`` on port 8000) and the paths inside the nginx image.

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
) -> dict:
    """``weights`` replaces a service's one upstream by several local ports with their weights, e.g.
    ``{"votes": {8003: 90, 8013: 10}}`` (a canary taking a tenth of the votes)."""
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
    }


def container_values(*, target: str, trace_sample_percent: float = DEFAULT_TRACE_SAMPLE_PERCENT) -> dict:
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
    }
    if target == "k8s":
        values["EXTRA_HTTP"] = K8S_CANARY_HTTP
    return values


def render_k8s(trace_sample_percent: float = DEFAULT_TRACE_SAMPLE_PERCENT) -> str:
    """The k8s variant: like compose, and polls routes go through the canary-aware ``$polls_pool``."""
    text = render(container_values(target="k8s", trace_sample_percent=trace_sample_percent))
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
    args = parser.parse_args(argv)
    percent = args.trace_sample_percent
    if args.target == "local":
        conf = write_local(
            run_dir=args.run_dir,
            port=args.port,
            polls=args.polls,
            choices=args.choices,
            votes=args.votes,
            trace_sample_percent=percent,
        )
        print(conf)
        if args.check:
            result = check(conf)
            sys.stderr.write(result.stderr)
            return result.returncode
        return 0
    if args.target == "k8s":
        text = render_k8s(trace_sample_percent=percent)
    else:
        text = render(container_values(target=args.target, trace_sample_percent=percent))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
