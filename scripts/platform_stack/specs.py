"""The process list: per service its web instances, a Celery worker and a Celery beat, plus the gateway.

``process_specs(stack)`` says what ``Stack.start()`` launches; one small function per kind of process.
Process names: ``<service>.web`` (web instance 1), ``<service>.web.<n>`` (instance n of
``stack.replicas[service]``, on the service's port + 20·(n−1)), ``<service>.worker``, ``<service>.beat``
and ``gateway``, whose upstreams list every web instance.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from .common import REPO, SERVICES, VENV, Service, StackError, web_process_name

if TYPE_CHECKING:
    from .api import Stack


@dataclass
class ProcessSpec:
    name: str
    command: list[str]
    cwd: Path
    env: dict[str, str]
    health_url: str | None = None
    ready_marker: str | None = None  # text in the log that says "ready" (Celery workers)


def worker_queues(info: dict, service: Service) -> list[str]:
    """The queues a service's worker consumes: its ``CELERY_WORKER_QUEUES``, else its default and events queues."""
    if info.get("queues"):
        return list(info["queues"])
    return [info.get("default_queue") or f"{service.name}.default", f"{service.name}.events"]


def celery(service: Service, *args: str) -> list[str]:
    # --quiet: no plain-text banner, so every line of the log is ECS JSON (servicekit.logging).
    return [str(VENV / "bin" / "celery"), "-A", service.package, "--quiet", *args]


def web_spec(stack: Stack, service: Service, instance: int = 1) -> ProcessSpec:
    """Web instance ``instance`` (1-based) of ``service``: its own port and its own metrics folder."""
    return ProcessSpec(
        web_process_name(service.name, instance),
        [str(VENV / "bin" / "python"), "-m", "servicekit.server", f"{service.package}.wsgi:application"],
        REPO / service.directory,
        stack.service_env(service, instance),
        health_url=f"{stack.service_url(service.name, instance)}/healthz",
    )


def worker_spec(stack: Stack, service: Service, env: dict[str, str]) -> ProcessSpec:
    command = celery(
        service,
        "worker",
        "-Q",
        ",".join(stack.worker_queues(service)),
        "--concurrency",
        str(stack.worker_concurrency),
        "-n",
        f"{service.name}-{stack.ports['gateway']}@%h",
        "--without-gossip",
        "--without-mingle",
        "--loglevel",
        "INFO",
    )
    return ProcessSpec(f"{service.name}.worker", command, REPO / service.directory, env, ready_marker=" ready.")


def beat_spec(stack: Stack, service: Service, env: dict[str, str]) -> ProcessSpec:
    command = celery(service, "beat", "-s", str(stack.run_dir / f"celerybeat-{service.name}"), "--loglevel", "INFO")
    return ProcessSpec(f"{service.name}.beat", command, REPO / service.directory, env)


def gateway_spec(stack: Stack) -> ProcessSpec:
    from scripts import gateway

    conf = write_gateway_config(stack)
    return ProcessSpec(
        "gateway", gateway.local_command(conf), REPO, dict(stack.env), health_url=f"{stack.gateway_url}/healthz"
    )


def process_specs(stack: Stack) -> dict[str, ProcessSpec]:
    """Every process of the stack by name, in launch order (services first, the gateway last)."""
    specs: dict[str, ProcessSpec] = {}
    for service in SERVICES:
        for instance in range(1, stack.replicas[service.name] + 1):
            spec = web_spec(stack, service, instance)
            specs[spec.name] = spec
        env = stack.service_env(service)  # one environment for the worker and the beat of a service
        for build in (worker_spec, beat_spec):
            spec = build(stack, service, env)
            specs[spec.name] = spec
    specs["gateway"] = gateway_spec(stack)
    return specs


def upstream_weights(stack: Stack, weights: dict[str, dict[int, int]] | None = None) -> dict[str, dict[int, int]]:
    """Port -> weight of every service's upstream: each web instance alike, unless ``weights`` says otherwise.

    In ``weights`` (a release: ``{"votes": {8003: 90, 8013: 10}}``) the service's own port stands for all
    its web instances, each getting that weight; every other port (the canary) gets its weight times the
    number of instances, so it keeps its share of the traffic: 10 % stays 10 % with two instances."""
    upstreams = {}
    for service in SERVICES:
        ports = stack.web_ports(service.name)
        chosen = (weights or {}).get(service.name)
        if not chosen:
            upstreams[service.name] = dict.fromkeys(ports, 1)
            continue
        upstreams[service.name] = {}
        for port, weight in chosen.items():
            if port == stack.ports[service.name]:
                upstreams[service.name].update(dict.fromkeys(ports, weight))
            else:
                upstreams[service.name][port] = weight * len(ports)
    return upstreams


def write_gateway_config(stack: Stack, weights: dict[str, dict[int, int]] | None = None) -> Path:
    """Render the gateway's config for the stack's ports, every web instance in its service's upstream
    (``weights``: a canary beside them, as in a release, ``upstream_weights``), and check it with
    ``nginx -t``; returns its path."""
    from scripts import gateway

    conf = gateway.write_local(
        run_dir=stack.run_dir,
        port=stack.ports["gateway"],
        polls=stack.ports["polls"],
        choices=stack.ports["choices"],
        votes=stack.ports["votes"],
        host=stack.gateway_host,
        weights=upstream_weights(stack, weights),
        trace_sample_percent=float(
            stack.env.get("GATEWAY_TRACE_SAMPLE_PERCENT") or gateway.DEFAULT_TRACE_SAMPLE_PERCENT
        ),
        tls=gateway_tls(stack),
        edge_limits=gateway.edge_limits_from_env(stack.env),
    )
    checked = gateway.check(conf)
    if checked.returncode != 0:
        raise StackError(f"gateway: nginx -t failed: {checked.stderr.strip()}")
    return conf


def gateway_tls(stack: Stack) -> dict:
    """The gateway's HTTPS listener: the dev certificate from ``RUN_DIR/secrets`` (prepare.write_dev_secrets)
    unless ``GATEWAY_TLS_CERT_FILE``/``GATEWAY_TLS_KEY_FILE`` name another, and the ``GATEWAY_TLS_*`` options."""
    from scripts import gateway

    secrets = stack.run_dir / "secrets"
    redirect = (stack.env.get("GATEWAY_HTTPS_REDIRECT") or "false").strip().lower()
    if redirect not in ("true", "false", "1", "0", "yes", "no", "on", "off"):
        raise StackError(f"GATEWAY_HTTPS_REDIRECT must be true or false, not {redirect!r}")
    return {
        "port": stack.gateway_tls_port,
        "cert": stack.env.get("GATEWAY_TLS_CERT_FILE") or secrets / "gateway.crt",
        "key": stack.env.get("GATEWAY_TLS_KEY_FILE") or secrets / "gateway.key",
        "protocols": stack.env.get("GATEWAY_TLS_PROTOCOLS") or None,
        "hsts_max_age": int(stack.env.get("GATEWAY_HSTS_MAX_AGE") or gateway.LOCAL_HSTS_MAX_AGE),
        "redirect": redirect in ("true", "1", "yes", "on"),
    }
