"""gunicorn configuration shared by every service: ``gunicorn -c python:servicekit.gunicorn_conf ...``.

Values come from the environment so ``make up``, compose and Kubernetes tune the same file:
``GUNICORN_BIND`` (default ``127.0.0.1:8000``), ``GUNICORN_WORKERS`` (default ``2 x cores + 1``),
``GUNICORN_THREADS`` (default 1: sync workers gave the best p99 for writes). The keep-alive is
above Nginx's upstream keepalive timeout, otherwise a POST can land on a socket gunicorn just closed
and Nginx answers 502. With ``PROMETHEUS_MULTIPROC_DIR`` set, dead workers' metric files are marked
so a scrape never counts a gone worker's gauges.
"""

import multiprocessing
import os

bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:8000")
workers = int(os.environ.get("GUNICORN_WORKERS", multiprocessing.cpu_count() * 2 + 1))
threads = int(os.environ.get("GUNICORN_THREADS", "1"))
worker_class = "gthread" if threads > 1 else "sync"
keepalive = 75
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "30"))
graceful_timeout = 20
max_requests = int(os.environ.get("GUNICORN_MAX_REQUESTS", "0"))
max_requests_jitter = max_requests // 10
# Each instance is its own process group; a shared control socket would mix up several instances.
control_socket_disable = True
# Access lines come from servicekit.logging as JSON; gunicorn's own would duplicate them.
accesslog = None
errorlog = "-"
loglevel = os.environ.get("GUNICORN_LOG_LEVEL", "info")
# The gateway is the only client; it sets X-Forwarded-* and we trust it alone.
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")


def child_exit(server, worker):  # noqa: ANN001 - gunicorn hook signature
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)
